//! Named regressions for the container-runtime CVEs that apply to ctr,
//! each played as an attacker inside (or beside) a real container:
//! - CVE-2017-5226: TIOCSTI from a container into the caller's terminal.
//! - CVE-2019-5736: a container opening (to overwrite) the host binary that
//!   `ctr exec` runs in it, through /proc/PID/exe.
//! - CVE-2024-21626: a host descriptor leaking into the container, or a
//!   working directory reached through one.
//! - CVE-2021-30465: a mount destination swapped for a symlink during start.
//! - CVE-2025-31133: /dev/null (or /dev) replaced, so that masking /proc
//!   paths binds something else.
//! - CVE-2016-8659 (ptrace of the privileged side) is ptrace_race.rs.

mod boundary_support;

use boundary_support::{alpine_rootfs, attacker_volume, Containers, HostDir};
use ctr_tests::{env, Env};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

nix::ioctl_write_ptr_bad!(tiocsti, libc::TIOCSTI, u8);

/// What a command run on a fresh pty did: its exit status, what it wrote
/// on the terminal, and what was left in the terminal's *input* queue
/// afterwards (what the caller's shell would read and run).
struct OnPty {
    code: Option<i32>,
    screen: String,
    injected: Vec<u8>,
}

fn drain(fd: &OwnedFd) -> Vec<u8> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let nonblock = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nonblock)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Runs `ctr ARGS` as the test user with a new pty as its controlling
/// terminal and as its stdin, stdout and stderr, like a login shell's job.
fn ctr_on_a_pty(env: &Env, args: &[&str]) -> OnPty {
    let pty = nix::pty::openpty(None, None).unwrap();
    let (master, slave) = (pty.master, pty.slave);
    // Raw: no echo, no line buffering, so an injected byte is readable at once.
    let mut mode = tcgetattr(&slave).unwrap();
    cfmakeraw(&mut mode);
    tcsetattr(&slave, SetArg::TCSANOW, &mode).unwrap();
    // The detector works: root may inject (CAP_SYS_ADMIN), and it shows.
    // SAFETY: TIOCSTI reads one byte from the pointer we pass.
    unsafe { tiocsti(slave.as_raw_fd(), &b'#') }.unwrap();
    assert_eq!(drain(&slave), b"#", "the pty's input queue cannot be read back");

    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", env.uid))
        .arg(format!("--regid={}", env.gid))
        .args(["--init-groups", "--reset-env", "--", "/usr/bin/env"])
        .arg(format!("XDG_DATA_HOME={}", env.data_home().display()))
        .arg(env.ctr_path())
        .args(args)
        .current_dir(&env.work)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("setpriv");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ctr {args:?} on a pty did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the container left in flight reaches the queues by now.
    std::thread::sleep(Duration::from_millis(300));
    let injected = drain(&slave);
    let screen = String::from_utf8_lossy(&drain(&master)).into_owned();
    OnPty { code: status.code(), screen, injected }
}

fn assert_no_injection(what: &str, run: &OnPty) {
    assert_eq!(run.code, Some(0), "{what}: {}", run.screen);
    let line = run
        .screen
        .lines()
        .find(|l| l.starts_with("tiocsti:"))
        .unwrap_or_else(|| panic!("{what}: no report: {}", run.screen));
    eprintln!("{what}: {line}");
    assert!(
        run.injected.is_empty(),
        "{what}: the container typed {:?} into the caller's terminal ({line})",
        String::from_utf8_lossy(&run.injected)
    );
    assert!(!line.contains("=OK"), "{what}: a TIOCSTI succeeded: {line}");
    assert!(line.contains("devtty=open:ENOENT"), "{what}: a container without -t has no /dev/tty: {line}");
}

#[test]
fn cve_2017_5226_tiocsti_from_run_without_a_terminal() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let att = attacker_volume(&env);
    for extra in [&[][..], &["-i"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", &att, "alpine", "/attacker", "tiocsti"]);
        let run = ctr_on_a_pty(&env, &args);
        assert_no_injection(&format!("ctr run {extra:?}"), &run);
    }
}

#[test]
fn cve_2017_5226_tiocsti_from_exec_without_a_terminal() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut containers = Containers::new(&env);
    let name = containers.name("tiocsti");
    env.ctr().args(["run", "-d", "--name", &name, "-v", &attacker_volume(&env), "alpine", "sleep", "300"]).ok();
    for extra in [&[][..], &["-i"][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&name, "/attacker", "tiocsti"]);
        let run = ctr_on_a_pty(&env, &args);
        assert_no_injection(&format!("ctr exec {extra:?}"), &run);
    }
}

/// `key=value` from the attacker's report line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[test]
fn cve_2019_5736_container_cannot_open_the_host_binary_exec_runs() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut containers = Containers::new(&env);
    let name = containers.name("exe");
    let report = HostDir::new(&env, "exe-report");
    let seconds = 20;
    let script = format!("/attacker exe-scan {seconds} > /r/out.tmp; mv /r/out.tmp /r/out");
    // With every capability in its user namespace (--cap-add ALL), as strong
    // as a rootless container gets: a superset of what `ctr init` holds there.
    let volume = format!("{}:/r", report.0.display());
    env.ctr()
        .args([
            "run",
            "-d",
            "--cap-add",
            "ALL",
            "--name",
            &name,
            "-v",
            &attacker_volume(&env),
            "-v",
            &volume,
            "alpine",
            "sh",
            "-c",
            &script,
        ])
        .ok();
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(seconds - 3);
    let mut execs = 0;
    while Instant::now() < deadline {
        env.ctr().args(["exec", &name, "true"]).ok();
        execs += 1;
    }
    let out = report.0.join("out");
    let until = Instant::now() + Duration::from_secs(30);
    while !out.exists() {
        assert!(Instant::now() < until, "the attacker never reported");
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = std::fs::read_to_string(&out).unwrap();
    eprintln!("{execs} execs; {}", line.trim());
    assert_eq!(field(&line, "opened"), 0, "the container opened a host executable: {line}");
    assert!(
        field(&line, "ctr_seen") > 0,
        "the attacker never saw ctr-init in the container, so it tested nothing: {line}"
    );
}

/// The descriptor numbers the attacker's `fds` mode listed.
fn fd_numbers(stdout: &str) -> Vec<String> {
    let line = stdout.lines().find(|l| l.starts_with("fds:")).unwrap_or_else(|| panic!("no fds line: {stdout}"));
    line.split_whitespace().skip(1).map(|kv| kv.split('=').next().unwrap().to_owned()).collect()
}

#[test]
fn cve_2024_21626_no_host_descriptor_and_no_cwd_through_one() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let att = attacker_volume(&env);
    let mut containers = Containers::new(&env);
    let name = containers.name("fds");
    let run = env.ctr().args(["run", "--rm", "-v", &att, "alpine", "/attacker", "fds"]).ok();
    assert_eq!(fd_numbers(&run.stdout), ["0", "1", "2"], "ctr run: {}", run.stdout);
    env.ctr().args(["run", "-d", "--name", &name, "-v", &att, "alpine", "sleep", "300"]).ok();
    let exec = env.ctr().args(["exec", &name, "/attacker", "fds"]).ok();
    assert_eq!(fd_numbers(&exec.stdout), ["0", "1", "2"], "ctr exec: {}", exec.stdout);
    let exec = env.ctr().args(["exec", "-i", &name, "/attacker", "fds"]).stdin("").ok();
    assert_eq!(fd_numbers(&exec.stdout), ["0", "1", "2"], "ctr exec -i: {}", exec.stdout);

    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let outs = [
            env.ctr().args(["run", "--rm", "-w", &cwd, "-v", &att, "alpine", "/attacker", "cwd"]).output(),
            env.ctr().args(["exec", "-w", &cwd, &name, "/attacker", "cwd"]).output(),
        ];
        for out in outs {
            assert!(
                !out.stdout.contains("outside"),
                "-w {cwd} put the working directory outside the container: {out:?}"
            );
            assert!(!out.success() || out.stdout.contains("cwd: inside"), "-w {cwd}: {out:?}");
        }
    }
}

#[test]
fn cve_2021_30465_a_destination_swapped_for_a_symlink_never_lands_outside() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut containers = Containers::new(&env);
    let shared = HostDir::new(&env, "dst-shared");
    shared.make(&env, "d", None);
    shared.link(&env, "d.alt", Path::new("/"));
    let vol = HostDir::new(&env, "dst-vol");
    vol.make(&env, "vmarker", Some("V\n"));
    // A container keeps exchanging /h/d and the symlink /h/d.alt -> /.
    let swapper = containers.name("swapper");
    let h = format!("{}:/h", shared.0.display());
    env.ctr()
        .args([
            "run",
            "-d",
            "--name",
            &swapper,
            "-v",
            &h,
            "-v",
            &attacker_volume(&env),
            "alpine",
            "/attacker",
            "swap",
            "/h/d",
            "/h/d.alt",
            "120",
        ])
        .ok();
    let (a, v) = (format!("{}:/a", shared.0.display()), format!("{}:/a/d", vol.0.display()));
    // The mount sits on the directory, whatever the swapper calls it by the
    // time the command looks: /a/d or /a/d.alt, both inside the container.
    // Had it followed the symlink, it would be on the host's / (in init's
    // mount namespace, detached at pivot_root), visible nowhere in here.
    let find = "awk '$4 ~ /bnd-dst-vol/ { print $5 }' /proc/self/mountinfo";
    let (mut mounted, mut refused) = (0, 0);
    for _ in 0..30 {
        let out = env.ctr().args(["run", "--rm", "-v", &a, "-v", &v, "alpine", "sh", "-c", find]).output();
        if out.success() {
            assert!(
                out.stdout == "/a/d\n" || out.stdout == "/a/d.alt\n",
                "the volume is not mounted on the directory at /a/d: {out:?}"
            );
            mounted += 1;
        } else {
            assert_eq!(
                out.code(),
                Some(125),
                "the start must fail cleanly or mount the volume on the directory at /a/d: {out:?}"
            );
            assert!(out.stderr.contains("symlink"), "{out:?}");
            refused += 1;
        }
    }
    eprintln!("30 starts: {mounted} mounted the volume, {refused} refused the symlink");
    assert!(refused > 0, "the destination was never a symlink at start, so the race was not tested");
}

#[test]
fn cve_2025_31133_masks_bind_the_null_device_whatever_dev_holds() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    // A volume over /dev whose null is a symlink to a host file bound too.
    let dev = HostDir::new(&env, "fake-dev");
    dev.link(&env, "null", Path::new("/t/file"));
    let host = HostDir::new(&env, "fake-dev-target");
    let file = host.make(&env, "file", Some("HOSTFILE\n"));
    let script = "cat /proc/keys /proc/timer_list; stat -c %F:%t:%T /proc/keys /proc/timer_list; echo PWNED > /proc/keys; echo done";
    let (d, t) = (format!("{}:/dev", dev.0.display()), format!("{}:/t", host.0.display()));
    let out = env.ctr().args(["run", "--rm", "-v", &d, "-v", &t, "alpine", "sh", "-c", script]).output();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "HOSTFILE\n",
        "a masked path was bound to the host file: {out:?}"
    );
    assert!(out.success(), "{out:?}");
    assert!(!out.stdout.contains("HOSTFILE"), "{out:?}");
    assert_eq!(out.stdout.matches("character special file:1:3").count(), 2, "{out:?}");

    // An image whose /dev/null is a symlink to a kernel knob.
    let root = alpine_rootfs(&env, "null-link");
    let _ = std::fs::remove_file(root.0.join("dev/null"));
    root.link(&env, "dev/null", Path::new("/proc/sys/kernel/core_pattern"));
    let rootfs = root.0.to_str().unwrap();
    let out =
        env.ctr().args(["run", "--rm", "--rootfs", rootfs, "stat", "-c", "%F:%t:%T", "/dev/null", "/proc/keys"]).ok();
    assert_eq!(out.stdout, "character special file:1:3\ncharacter special file:1:3\n", "{out:?}");

    // An image whose /dev is a symlink out of it: refused, nothing mounted there.
    let root = alpine_rootfs(&env, "dev-link");
    std::fs::remove_dir_all(root.0.join("dev")).unwrap();
    let elsewhere = HostDir::new(&env, "dev-link-target");
    root.link(&env, "dev", &elsewhere.0);
    let out = env.ctr().args(["run", "--rm", "--rootfs", root.0.to_str().unwrap(), "true"]).output();
    assert_eq!(out.code(), Some(125), "{out:?}");
    assert!(out.stderr.contains("is a symlink"), "{out:?}");
    assert_eq!(std::fs::read_dir(&elsewhere.0).unwrap().count(), 0, "something was created through the /dev symlink");
}
