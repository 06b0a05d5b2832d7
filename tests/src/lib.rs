//! Harness for ctr's integration tests (`tests/tests/*.rs`).
//!
//! The tests need a real kernel, an installed setuid helper and an
//! unprivileged user, so `cargo xtask test` sets all of that up and tells the
//! tests where it is through `CTR_TEST_*` variables ([`vars`]). This crate
//! reads them ([`env`]), runs `ctr` or any program as the test user with a
//! timeout ([`Env::ctr`], [`Env::as_user`]), imports the base image once per
//! run ([`Env::ensure_alpine_image`]; see [`BaseImage`] for which image that
//! is), and finds what a test may have leaked
//! ([`cgroup_leftovers`], [`mounts_under`]). The driver uses the same
//! [`procfs`] parsing to clean up after a run.
//!
//! Failures panic with the command line and everything it printed, at the
//! line of the test that ran it (`#[track_caller]`). A test file looks like
//! this:
//!
//! ```no_run
//! #[test]
//! fn runs_true() {
//!     let Some(env) = ctr_tests::env() else { return };
//!     env.ensure_alpine_image("alpine");
//!     let out = env.ctr().args(["run", "--rm", "--network", "none", "alpine", "echo", "hi"]).ok();
//!     assert_eq!(out.stdout, "hi\n");
//! }
//! ```

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{chown, Pid, User};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variables through which `cargo xtask test` describes its setup.
pub mod vars {
    /// Set (to `1`) only by the driver; without it the tests skip themselves.
    pub const DRIVER: &str = "CTR_TEST_DRIVER";
    /// The install prefix: `$CTR_TEST_PREFIX/bin/ctr`, `.../libexec/ctr/ctr-setuid-helper`.
    pub const PREFIX: &str = "CTR_TEST_PREFIX";
    /// Name of the unprivileged user that runs `ctr` (it has subuid/subgid ranges).
    pub const USER: &str = "CTR_TEST_USER";
    /// The base image's rootfs tarball (gzip), readable by the test user:
    /// the verified Alpine minirootfs, or the busybox rootfs ([`super::BaseImage`]).
    pub const ALPINE: &str = "CTR_TEST_ALPINE";
    /// Which of the two the tarball holds: `alpine` or `busybox`.
    pub const BASE: &str = "CTR_TEST_BASE";
    /// A scratch directory owned by the test user (mode 0700), removed after the run.
    pub const WORK: &str = "CTR_TEST_WORK";
    /// Optional factor for every harness timeout, e.g. `10` in the emulated
    /// (TCG) VM where fork+exec is about 30 times slower.
    pub const TIMEOUT_SCALE: &str = "CTR_TEST_TIMEOUT_SCALE";
}

/// How long a command may run before the harness kills it (times
/// [`timeout_scale`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The factor in `CTR_TEST_TIMEOUT_SCALE` (1 when unset or not a number
/// of at least 1). Tests that wait with their own clocks should use it too.
pub fn timeout_scale() -> u32 {
    std::env::var(vars::TIMEOUT_SCALE).ok().and_then(|v| v.parse().ok()).filter(|&f| f >= 1).unwrap_or(1)
}

/// After the command exits, how long its output pipes may stay open (held by
/// something it started) before the harness calls that a bug.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// The image the tests run most containers on (named `alpine` in them).
/// Alpine's minirootfs, a foreign musl distribution, when the optional cache
/// `../shared/images` holds it; otherwise the busybox rootfs that `cargo
/// xtask install` ships, made from Debian's busybox-static, so a clone alone
/// tests itself. Tests of what only Alpine has (apk, musl) ask [`Self::alpine_only`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseImage {
    Alpine,
    Busybox,
}

impl BaseImage {
    /// The value of [`vars::BASE`], and the image's `ID` in /etc/os-release.
    pub fn id(self) -> &'static str {
        match self {
            Self::Alpine => "alpine",
            Self::Busybox => "busybox",
        }
    }

    /// The one the driver chose ([`vars::BASE`]).
    #[track_caller]
    pub fn of_run() -> Self {
        let value = std::env::var(vars::BASE).unwrap_or_default();
        [Self::Alpine, Self::Busybox]
            .into_iter()
            .find(|b| b.id() == value)
            .unwrap_or_else(|| panic!("{}={value:?} is neither alpine nor busybox", vars::BASE))
    }

    /// A directory of the image and a regular file in it, for tests of what
    /// the image gives a volume.
    pub fn sample_file(self) -> (&'static str, &'static str) {
        match self {
            Self::Alpine => ("/etc/apk", "arch"),
            Self::Busybox => ("/usr/share/doc/busybox-static", "copyright"),
        }
    }

    /// Whether a test of Alpine itself can run; if not, says why it is skipped.
    pub fn alpine_only(what: &str) -> bool {
        let alpine = Self::of_run() == Self::Alpine;
        if !alpine {
            eprintln!("skipped: {what} needs Alpine's minirootfs, and ../shared/images has none (the busybox rootfs stands in)");
        }
        alpine
    }
}

/// The driver's setup, as seen by a test.
#[derive(Debug, Clone)]
pub struct Env {
    pub prefix: PathBuf,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub alpine: PathBuf,
    pub work: PathBuf,
}

/// The setup `cargo xtask test` made, or `None` (after printing why) when the
/// test runs outside the driver, e.g. under a plain `cargo test`. Under
/// `CI=true` a missing driver is a panic: CI must never pass by skipping.
#[track_caller]
pub fn env() -> Option<Env> {
    if std::env::var_os(vars::DRIVER).is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {} is unset: run the integration tests through `cargo xtask test`", vars::DRIVER);
        }
        eprintln!("skipped: run through `cargo xtask test`");
        return None;
    }
    let var = |name: &str| {
        std::env::var_os(name)
            .unwrap_or_else(|| panic!("{name} is unset: run the integration tests through `cargo xtask test`"))
    };
    let user = var(vars::USER).into_string().unwrap_or_else(|v| panic!("{} is not UTF-8: {v:?}", vars::USER));
    Some(
        Env::new(var(vars::PREFIX).into(), &user, var(vars::ALPINE).into(), var(vars::WORK).into())
            .unwrap_or_else(|e| panic!("bad test setup: {e}")),
    )
}

impl Env {
    /// Describes a setup made elsewhere (the driver and `xtask bench` use this).
    pub fn new(prefix: PathBuf, user: &str, alpine: PathBuf, work: PathBuf) -> std::io::Result<Self> {
        let entry = User::from_name(user)?
            .ok_or_else(|| std::io::Error::other(format!("no user named {user:?}: `cargo xtask test` creates it")))?;
        Ok(Self { prefix, user: user.to_owned(), uid: entry.uid.as_raw(), gid: entry.gid.as_raw(), alpine, work })
    }

    /// The installed `ctr` binary.
    pub fn ctr_path(&self) -> PathBuf {
        self.prefix.join("bin/ctr")
    }

    /// The installed setuid helper, for tests that talk to it directly.
    pub fn helper_path(&self) -> PathBuf {
        self.prefix.join("libexec/ctr/ctr-setuid-helper")
    }

    /// Waits for every helper teardown under way (any user's): a bridged
    /// container's rules, veth and lease go after `ctr` returned, in a
    /// detached helper that holds the container's record locked until it
    /// has removed it.
    pub fn await_helper_teardowns(&self) {
        let users = std::fs::read_dir("/run/ctr-helper").into_iter().flatten().flatten();
        let records = users.filter(|u| u.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()));
        for entry in records.flat_map(|u| std::fs::read_dir(u.path()).into_iter().flatten().flatten()) {
            if let Ok(file) = std::fs::File::open(entry.path()) {
                let _ = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockShared);
            }
        }
    }

    /// The test user's image store (`XDG_DATA_HOME`), shared by all tests of a run
    /// so the Alpine image is imported once.
    pub fn data_home(&self) -> PathBuf {
        self.work.join("data")
    }

    /// `ctr` run as the test user.
    pub fn ctr(&self) -> CtrCommand {
        self.as_user(self.ctr_path(), std::iter::empty::<&str>())
    }

    /// Any program run as the test user, e.g. a hostile client of the helper.
    pub fn as_user<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> CtrCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.ensure_data_home();
        CtrCommand {
            program: program.as_ref().to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: vec![("XDG_DATA_HOME".into(), self.data_home().into())],
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            uid: self.uid,
            gid: self.gid,
            cwd: self.work.clone(),
        }
    }

    /// `crun ARGS...` as root without cgroups, in a private mount namespace
    /// where the hybrid host's empty v2 tree is unmounted: crun refuses the
    /// hybrid layout otherwise. Add crun's arguments with `arg`. A stdin
    /// of /dev/null becomes an empty pipe: crun 1.8 fchowns its stdio to a
    /// user namespace's root, which would give the host's /dev/null away.
    pub fn crun(&self) -> CtrCommand {
        self.as_root(
            "unshare",
            [
                "-m",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                "umount /sys/fs/cgroup/unified 2>/dev/null; \
                 if [ \"$(readlink /proc/$$/fd/0)\" = /dev/null ]; then \
                 : | exec crun --cgroup-manager=disabled \"$@\"; \
                 else exec crun --cgroup-manager=disabled \"$@\"; fi",
                "sh",
            ],
        )
    }

    /// Any program run as root, through the same wrapper (root's groups, a
    /// clean environment, the timeout): for what root runs, like `ctr-oci`.
    pub fn as_root<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> CtrCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        CtrCommand {
            program: program.as_ref().to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            uid: 0,
            gid: 0,
            cwd: std::env::temp_dir(),
        }
    }

    /// Imports the Alpine minirootfs as image `name` into the shared store,
    /// once per run: test binaries run in parallel, so a file lock in the work
    /// directory serialises them and a marker file remembers the import.
    #[track_caller]
    pub fn ensure_alpine_image(&self, name: &str) {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)),
            "image name {name:?} is not a plain name"
        );
        static IN_PROCESS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let mut done = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        if done.contains(name) {
            return;
        }
        let dir = self.work.join(".harness");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let lock_path = dir.join("images.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));
        let marker = dir.join(format!("imported-{name}"));
        if !marker.exists() {
            let import = [OsStr::new("image"), "import".as_ref(), self.alpine.as_os_str(), name.as_ref()];
            self.ctr().args(import).timeout(Duration::from_secs(180)).ok();
            std::fs::write(&marker, b"").unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
        }
        done.insert(name.to_owned());
    }

    /// Creates the shared store directory owned by the test user. The harness
    /// runs as root; `ctr` runs as the user and must be able to write there.
    /// Made under a temporary name and renamed into place, so a parallel test
    /// never sees it still owned by root.
    fn ensure_data_home(&self) {
        let dir = self.data_home();
        if dir.is_dir() {
            return;
        }
        let tmp = self.work.join(format!(".data-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir(&tmp).unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));
        chown(&tmp, Some(self.uid.into()), Some(self.gid.into()))
            .unwrap_or_else(|e| panic!("cannot chown {}: {e}", tmp.display()));
        // Losing the race to another test is fine: its directory is as good.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir(&tmp);
            assert!(dir.is_dir(), "cannot create {}", dir.display());
        }
    }
}

/// A command to run as the test user, through
/// `setpriv --reuid --regid --init-groups --reset-env` (so it gets the user's
/// HOME, USER and PATH, and nothing of root's environment) and `env` for the
/// variables set here. `XDG_RUNTIME_DIR` stays unset, as under `su`.
#[derive(Debug, Clone)]
pub struct CtrCommand {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    uid: u32,
    gid: u32,
    cwd: PathBuf,
}

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl CtrCommand {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Bytes fed to the command's stdin, which is then closed. Without this,
    /// `output` gives it /dev/null and `spawn` an open pipe.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// How long the command may run (from spawn) before it is killed and the
    /// test panics; [`DEFAULT_TIMEOUT`] unless set. Either is multiplied by
    /// [`timeout_scale`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// Runs to completion and returns what it printed, whatever its exit status.
    #[track_caller]
    pub fn output(self) -> Output {
        self.start(false).wait()
    }

    /// Runs to completion; panics with its output unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        let what = self.describe();
        let out = self.output();
        assert!(out.success(), "`{what}` failed ({})\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
        out
    }

    /// Starts the command with stdout and stderr captured and stdin a pipe
    /// (or the bytes given to [`CtrCommand::stdin`]). Dropping the [`Child`]
    /// kills it.
    #[track_caller]
    pub fn spawn(self) -> Child {
        self.start(true)
    }

    /// The command line as the test wrote it (without the setpriv wrapper).
    pub fn describe(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    }

    #[track_caller]
    fn start(self, keep_stdin_open: bool) -> Child {
        let what = self.describe();
        let mut cmd = std::process::Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid)).arg(format!("--regid={}", self.gid)).args([
            "--init-groups",
            "--reset-env",
            "--",
            "/usr/bin/env",
            "--",
        ]);
        for (k, v) in &self.envs {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cmd.arg(kv);
        }
        assert!(
            !self.program.as_encoded_bytes().contains(&b'='),
            "env(1) would take {:?} for a variable",
            self.program
        );
        cmd.arg(&self.program).args(&self.args).current_dir(&self.cwd);
        let stdin = if self.stdin.is_some() || keep_stdin_open { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let inner = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{what}` via setpriv (util-linux): {e}"));
        Child::new(inner, self.stdin, started + self.timeout * timeout_scale(), what)
    }
}

/// A running command. Its output is collected as it comes, so a test can
/// wait for a line while the command keeps running. Dropping it kills it.
pub struct Child {
    pid: Pid,
    stdin: Option<ChildStdin>,
    stdout: Capture,
    stderr: Capture,
    /// A thread blocks in waitpid and sends the status here, so waiting is
    /// exact (benchmarks time it) and can still give up at the deadline.
    exited: Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    deadline: Instant,
    what: String,
}

impl Child {
    fn new(mut inner: std::process::Child, stdin_bytes: Option<Vec<u8>>, deadline: Instant, what: String) -> Self {
        let pid = Pid::from_raw(i32::try_from(inner.id()).expect("pids fit in i32"));
        let mut stdin = inner.stdin.take();
        if let (Some(bytes), Some(mut pipe)) = (stdin_bytes, stdin.take()) {
            // A thread, so a command that prints before reading cannot deadlock us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = Capture::start(inner.stdout.take().expect("stdout is piped"));
        let stderr = Capture::start(inner.stderr.take().expect("stderr is piped"));
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(inner.wait());
        });
        Self { pid, stdin, stdout, stderr, exited, status: None, deadline, what }
    }

    pub fn id(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// The stdin pipe; panics if stdin was given as bytes or already closed.
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin was given as bytes or already closed")
    }

    /// Closes stdin, so the command sees end of file.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr_so_far(&self) -> String {
        self.stderr.text()
    }

    /// Waits until stdout contains `needle` and returns stdout so far; panics
    /// with everything printed if it does not appear within `timeout` (times
    /// [`timeout_scale`]) or the command exits first.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        let timeout = timeout * timeout_scale();
        let give_up = Instant::now() + timeout;
        loop {
            let text = self.stdout.text();
            if text.contains(needle) {
                return text;
            }
            let exited = self.poll(Duration::from_millis(10));
            if exited.is_some() || Instant::now() >= give_up {
                let why = exited.map_or_else(|| format!("not within {timeout:?}"), |s| format!("it exited ({s})"));
                panic!(
                    "`{}` never printed {needle:?}: {why}\nstdout:\n{text}\nstderr:\n{}",
                    self.what,
                    self.stderr.text()
                );
            }
        }
    }

    /// Sends `signal` to the command (not to what it started).
    pub fn signal(&self, signal: Signal) {
        if self.status.is_none() {
            let _ = kill(self.pid, signal);
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.poll(Duration::ZERO).is_none()
    }

    /// Waits for it to exit (killing it and panicking at the timeout) and
    /// returns everything it printed.
    #[track_caller]
    pub fn wait(mut self) -> Output {
        let Some(status) = self.poll(self.deadline.saturating_duration_since(Instant::now())) else {
            self.signal(Signal::SIGKILL);
            self.poll(Duration::MAX);
            panic!(
                "`{}` timed out; killed it\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout.text(),
                self.stderr.text()
            );
        };
        let grace = Instant::now() + PIPE_GRACE;
        let (stdout, stderr) = (self.stdout.finish(grace), self.stderr.finish(grace));
        match (stdout, stderr) {
            (Some(stdout), Some(stderr)) => Output { status, stdout, stderr },
            _ => panic!(
                "`{}` exited ({status}) but something it started still holds its stdout or stderr open after {PIPE_GRACE:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout.text(),
                self.stderr.text()
            ),
        }
    }

    /// The exit status, waiting at most `timeout` for it.
    fn poll(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            let received = match timeout {
                Duration::ZERO => self.exited.try_recv().ok(),
                Duration::MAX => self.exited.recv().ok(),
                t => self.exited.recv_timeout(t).ok(),
            };
            if let Some(result) = received {
                self.status = Some(result.unwrap_or_else(|e| panic!("cannot wait for `{}`: {e}", self.what)));
            }
        }
        self.status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.poll(Duration::ZERO).is_none() {
            self.signal(Signal::SIGKILL);
            self.poll(Duration::MAX);
        }
    }
}

/// One output pipe, read to the end by a thread into a shared buffer.
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&chunk[..n]);
            }
        });
        Self { buf, reader: Some(reader) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Everything, once the pipe is closed; `None` if it is still open at `until`.
    fn finish(&mut self, until: Instant) -> Option<String> {
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) {
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Some(self.text())
    }
}

/// Every directory named `ctr-*` beneath this process's own cgroup, in every
/// hierarchy (v1 and v2). The helper, configured with `cgroup_parent =
/// "self"`, creates container cgroups there; after `ctr rm` none of a test's
/// own should be left. Other tests running in parallel have theirs here too,
/// so assert on the names your test created.
pub fn cgroup_leftovers() -> Vec<PathBuf> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"));
    let own = procfs::own_cgroup_dirs(&read("/proc/self/cgroup"), &read("/proc/self/mountinfo"));
    own.iter().flat_map(|dir| procfs::ctr_cgroups_beneath(dir)).collect()
}

/// Mount points strictly beneath `path` (a mount on `path` itself, such as
/// a tmpfs holding the work directory, is not a leak), from
/// /proc/self/mountinfo, in mount order.
pub fn mounts_under(path: impl AsRef<Path>) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_else(|e| panic!("cannot read mountinfo: {e}"));
    procfs::mounts_under(&procfs::parse_mountinfo(&text), path.as_ref())
        .into_iter()
        .map(|m| m.mount_point.to_string_lossy().into_owned())
        .collect()
}

/// Parsing of /proc/self/cgroup and /proc/self/mountinfo, kept pure so it can
/// be tested on recorded text; shared with the driver's cleanup.
pub mod procfs {
    use std::path::{Path, PathBuf};

    /// One line of /proc/PID/mountinfo (proc(5)), the fields we use.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Mount {
        /// `major:minor` of the filesystem: the same hierarchy mounted twice shares it.
        pub device: String,
        /// Path within the filesystem that is mounted here (for cgroups, the cgroup).
        pub root: String,
        pub mount_point: PathBuf,
        pub fstype: String,
        pub super_options: Vec<String>,
    }

    /// One line of /proc/PID/cgroup (cgroups(7)): `id:controllers:path`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Membership {
        /// 0 for the v2 hierarchy.
        pub hierarchy: u32,
        /// v1 controllers and `name=` of the hierarchy; empty for v2.
        pub controllers: Vec<String>,
        pub path: String,
    }

    pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
        text.lines().filter_map(parse_mount_line).collect()
    }

    fn parse_mount_line(line: &str) -> Option<Mount> {
        // Optional fields end at a lone "-"; fstype, source, super options follow.
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let mut after = after.split(' ');
        let (fstype, _source, super_options) = (after.next()?, after.next()?, after.next()?);
        Some(Mount {
            device: fields.get(2)?.to_string(),
            root: unescape(fields.get(3)?),
            mount_point: PathBuf::from(unescape(fields.get(4)?)),
            fstype: fstype.to_owned(),
            super_options: super_options.split(',').map(str::to_owned).collect(),
        })
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
    fn unescape(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let octal =
                bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match octal {
                Some(d) => {
                    out.push(d.iter().fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')));
                    i += 4;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
        text.lines()
            .filter_map(|line| {
                let (hierarchy, rest) = line.split_once(':')?;
                let (controllers, path) = rest.split_once(':')?;
                Some(Membership {
                    hierarchy: hierarchy.parse().ok()?,
                    controllers: controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                    path: path.to_owned(),
                })
            })
            .collect()
    }

    /// Mounts strictly beneath `path`, in mount order (so a mount on top of
    /// another comes after it).
    pub fn mounts_under<'a>(mounts: &'a [Mount], path: &Path) -> Vec<&'a Mount> {
        mounts.iter().filter(|m| m.mount_point.starts_with(path) && m.mount_point != path).collect()
    }

    /// This process's own cgroup directory in each mounted hierarchy: the
    /// mount of that hierarchy plus the path from /proc/self/cgroup (less the
    /// mount's root, for a mount of a sub-tree). v1 hierarchies are matched to
    /// mounts by their controllers, v2 by filesystem type.
    pub fn own_cgroup_dirs(proc_cgroup: &str, mountinfo: &str) -> Vec<PathBuf> {
        let mounts = parse_mountinfo(mountinfo);
        parse_proc_cgroup(proc_cgroup)
            .iter()
            .filter_map(|member| {
                mounts.iter().find_map(|m| {
                    let same_hierarchy = if member.hierarchy == 0 {
                        m.fstype == "cgroup2"
                    } else {
                        m.fstype == "cgroup"
                            && !member.controllers.is_empty()
                            && member.controllers.iter().all(|c| m.super_options.contains(c))
                    };
                    let relative = member.path.strip_prefix(m.root.trim_end_matches('/'))?;
                    (same_hierarchy && (relative.is_empty() || relative.starts_with('/')))
                        .then(|| m.mount_point.join(relative.trim_start_matches('/')))
                })
            })
            .collect()
    }

    /// Directories named `ctr-*` at any depth beneath `dir`, deepest first
    /// (the order in which they can be removed).
    pub fn ctr_cgroups_beneath(dir: &Path) -> Vec<PathBuf> {
        subdirs_deepest_first(dir).into_iter().filter(|d| is_ctr_cgroup(d)).collect()
    }

    pub fn is_ctr_cgroup(dir: &Path) -> bool {
        dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ctr-"))
    }

    /// Every directory beneath `dir` (not `dir` itself), children before
    /// their parents. Unreadable directories are skipped: cgroups vanish
    /// while we walk.
    pub fn subdirs_deepest_first(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else { return out };
        let mut children: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        children.sort();
        for child in children {
            out.extend(subdirs_deepest_first(&child));
            out.push(child);
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // Recorded on the cgroup-v1 hybrid CI host.
        const HYBRID_CGROUP: &str =
            "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/d8b7\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        const HYBRID_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

        #[test]
        fn parses_proc_cgroup_lines() {
            let m = parse_proc_cgroup("12:cpu,cpuacct:/a/b\n0::/user.slice\nbroken\n");
            assert_eq!(
                m,
                vec![
                    Membership {
                        hierarchy: 12,
                        controllers: vec!["cpu".into(), "cpuacct".into()],
                        path: "/a/b".into()
                    },
                    Membership { hierarchy: 0, controllers: vec![], path: "/user.slice".into() },
                ]
            );
        }

        #[test]
        fn finds_own_dirs_on_a_hybrid_host() {
            let dirs = own_cgroup_dirs(HYBRID_CGROUP, HYBRID_MOUNTINFO);
            let expected = [
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/pids",
                "/sys/fs/cgroup/memory/process_api/d8b7",
                "/sys/fs/cgroup/cpuacct",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/unified",
            ];
            assert_eq!(dirs, expected.iter().map(PathBuf::from).collect::<Vec<_>>());
        }

        #[test]
        fn finds_own_dir_on_pure_v2_and_combined_v1_controllers() {
            let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
            assert_eq!(
                own_cgroup_dirs("0::/user.slice/x.scope\n", v2),
                vec![PathBuf::from("/sys/fs/cgroup/user.slice/x.scope")]
            );
            let combined = "40 31 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
            assert_eq!(
                own_cgroup_dirs("3:cpu,cpuacct:/x\n", combined),
                vec![PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/x")]
            );
        }

        #[test]
        fn mount_of_a_subtree_strips_its_root() {
            let mi = "50 31 0:40 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
            assert_eq!(
                own_cgroup_dirs("5:pids:/docker/abc/inner\n", mi),
                vec![PathBuf::from("/sys/fs/cgroup/pids/inner")]
            );
            // Not beneath the mounted sub-tree, or only sharing a name prefix: no directory.
            assert!(own_cgroup_dirs("5:pids:/docker/abcdef\n", mi).is_empty());
        }

        #[test]
        fn unescapes_mount_points() {
            let mi = "60 27 0:50 / /var/tmp/a\\040b\\134c rw - tmpfs tmpfs rw\n";
            let mounts = parse_mountinfo(mi);
            assert_eq!(mounts[0].mount_point, PathBuf::from("/var/tmp/a b\\c"));
            assert_eq!(mounts_under(&mounts, Path::new("/var/tmp")).len(), 1);
            assert!(mounts_under(&mounts, Path::new("/var/tm")).is_empty());
            assert!(
                mounts_under(&mounts, Path::new("/var/tmp/a b\\c")).is_empty(),
                "the path itself is not beneath it"
            );
        }

        #[test]
        fn optional_fields_do_not_shift_the_filesystem_type() {
            let mi = "70 27 0:60 / /mnt rw,relatime shared:5 master:1 - overlay ovl rw,lowerdir=/a\n";
            let m = &parse_mountinfo(mi)[0];
            assert_eq!(
                (m.fstype.as_str(), m.device.as_str(), m.mount_point.as_path()),
                ("overlay", "0:60", Path::new("/mnt"))
            );
        }

        #[test]
        fn walks_ctr_cgroups_deepest_first() {
            let root = std::env::temp_dir().join(format!("ctr-tests-walk-{}", std::process::id()));
            for d in ["ctr-a/ctr-b/sub", "ctr-c", "other"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            let found = ctr_cgroups_beneath(&root);
            let _ = std::fs::remove_dir_all(&root);
            assert_eq!(found, vec![root.join("ctr-a/ctr-b"), root.join("ctr-a"), root.join("ctr-c")]);
        }
    }
}

/// Holds tests that measure or count shared things (CPU time, leases,
/// published ports) to one at a time within a test binary.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A container name unique within this run: `prefix`, pid, counter.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{prefix}{}x{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Containers a test started, removed with `rm -f` when it ends, even when
/// it fails.
pub struct Started<'a> {
    pub env: &'a Env,
    /// Names to remove; a test adds those it creates by other means.
    pub names: Vec<String>,
}

impl<'a> Started<'a> {
    /// Makes sure the test image `alpine` is there.
    pub fn new(env: &'a Env) -> Self {
        env.ensure_alpine_image("alpine");
        Self { env, names: Vec::new() }
    }

    /// `ctr run -d --name NAME ARGS...`; returns the id it printed.
    pub fn run_d(&mut self, name: &str, args: &[&str]) -> String {
        self.names.push(name.to_owned());
        let out = self.env.ctr().args(["run", "-d", "--name", name]).args(args).ok();
        let id = out.stdout.trim().to_owned();
        assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "run -d printed {:?}", out.stdout);
        id
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            let _ = self.env.ctr().args(["rm", "-f"]).args(&self.names).output();
        }
    }
}
