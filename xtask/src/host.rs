//! The host as xtask sees it: running commands (interruptibly, see
//! [`crate::interrupt`]), root checks, Debian packages, and root-owned files
//! written atomically.

use crate::interrupt;
use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{chown, Gid, Pid, Uid};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Refuses to go on unless we are root, saying how to run `cargo xtask <what>`.
pub fn require_root(what: &str) -> Result<()> {
    if !Uid::effective().is_root() {
        bail!("run as root, e.g. sudo cargo xtask {what}");
    }
    Ok(())
}

/// The workspace's root directory (the xtask crate sits in it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

/// `cargo`, the same one that runs us, in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(OsStr::to_string_lossy).collect::<Vec<_>>().join(" ")
}

/// Starts `cmd` in its own process group with no stdin, so that on Ctrl-C
/// we, not the terminal, decide when it stops (see [`wait`]).
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    cmd.stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start `{}`: is it installed?", describe(cmd)))
}

/// Waits for a child started by [`spawn`]. On Ctrl-C or SIGTERM it passes
/// SIGTERM to the child's process group, then SIGKILL after 10 s, and
/// reports the interruption as an error so the caller's cleanup runs.
pub fn wait(child: &mut Child, what: &str) -> Result<ExitStatus> {
    let group = Pid::from_raw(i32::try_from(child.id()).context("pid out of range")?);
    let mut terminated_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().with_context(|| format!("cannot wait for `{what}`"))? {
            return match terminated_at {
                Some(_) => bail!("interrupted while running `{what}`"),
                None => Ok(status),
            };
        }
        match terminated_at {
            None if interrupt::requested() => {
                let _ = killpg(group, Signal::SIGTERM);
                terminated_at = Some(Instant::now());
            }
            Some(at) if at.elapsed() > Duration::from_secs(10) => {
                let _ = killpg(group, Signal::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` to completion with inherited output; an error unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let what = describe(cmd);
    let status = wait(&mut spawn(cmd)?, &what)?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; an error with its stderr unless it exits 0.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{what}`: is it installed?"))?;
    if !out.status.success() {
        bail!("`{what}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{what}` printed non-UTF-8"))
}

/// Installs whichever of `packages` are missing with apt-get, updating the
/// package lists first (once) so a fresh machine can find them.
pub fn ensure_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !package_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let apt = || {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(apt().args(["update", "-q"]))
        .context("apt-get update failed: is this Debian or Ubuntu with a package mirror?")?;
    run(apt().args(["install", "-y", "-q", "--no-install-recommends"]).args(&missing))
        .with_context(|| format!("cannot install {}", missing.join(" ")))
}

fn package_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.stdout == b"installed")
}

/// Replaces `path` with `contents`, owned root:root with `mode`, by writing
/// a temporary file beside it and renaming it over: readers see the old file
/// or the new one, never half of one.
pub fn write_root_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_beside(path)?;
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        set_owner_and_mode(&tmp, mode)?;
        rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A temporary name in `path`'s directory, so renaming it over `path` is atomic.
pub fn temp_beside(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".xtask-{}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// root:root and `mode`, in that order: chown clears the setuid bit.
pub fn set_owner_and_mode(path: &Path, mode: u32) -> Result<()> {
    chown(path, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
        .with_context(|| format!("cannot chown {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// Creates `dir` (and its parents) root:root with `mode`; an existing
/// directory, such as /usr/local/bin, is left as its owner set it.
pub fn root_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    set_owner_and_mode(dir, mode)
}

/// Runs `cmd` with stderr shown as it comes and returns its stdout (e.g.
/// cargo's JSON messages); an error unless it exits 0.
pub fn stdout_streaming_stderr(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let mut child = spawn(cmd.stdout(Stdio::piped()))?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    // Read on a thread: `wait` must keep polling for Ctrl-C meanwhile.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).map(|_| text)
    });
    let status = wait(&mut child, &what)?;
    let text = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?
        .with_context(|| format!("cannot read `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(text)
}

/// Runs `cmd`, copying its stdout and stderr line by line to ours while
/// handing every line to `on_line` (the test driver reads cargo's
/// `test result:` lines this way). Returns its exit status.
pub fn run_tee(cmd: &mut Command, on_line: impl Fn(&str) + Send + Sync + 'static) -> Result<ExitStatus> {
    let what = describe(cmd);
    let mut child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    let on_line = std::sync::Arc::new(on_line);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let readers = [
        tee_thread(stdout, std::io::stdout, std::sync::Arc::clone(&on_line)),
        tee_thread(stderr, std::io::stderr, on_line),
    ];
    let status = wait(&mut child, &what);
    // Something the command started may still hold the pipes (a leaked
    // process): give it a moment, then stop waiting for end of file.
    let give_up = Instant::now() + Duration::from_secs(5);
    while !readers.iter().all(std::thread::JoinHandle::is_finished) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !readers.iter().all(std::thread::JoinHandle::is_finished) {
        eprintln!("xtask: warning: something `{what}` started still holds its output open");
    }
    status
}

fn tee_thread<W: Write + 'static>(
    pipe: impl std::io::Read + Send + 'static,
    out: fn() -> W,
    on_line: std::sync::Arc<impl Fn(&str) + Send + Sync + 'static>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        while std::io::BufRead::read_until(&mut lines, b'\n', &mut line).is_ok_and(|n| n > 0) {
            // A serial console (the test guest's) ends its lines with \r\n.
            if line.ends_with(b"\r\n") {
                line.remove(line.len() - 2);
            }
            let _ = out().write_all(&line);
            on_line(String::from_utf8_lossy(&line).trim_end());
            line.clear();
        }
    })
}
