//! `ctr run -it` driven through a real terminal (tmux): the prompt, a
//! command and its output, the window size, Ctrl-C, Ctrl-D, `exit 3` as
//! status 3, and the caller's terminal settings restored afterwards;
//! detaching with the detach keys, `ctr attach` again, resizes, and the
//! start time on a pty.

use ctr_tests::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private tmux server, killed (with the container) when the test ends.
struct Tmux {
    socket: PathBuf,
    dir: PathBuf,
    cleanup: Vec<String>,
}

impl Tmux {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("tmux is installed");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        self.keys_in("t", keys);
    }

    fn keys_in(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the screen shows `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize) -> String {
        self.wait_in("t", needle, times)
    }

    fn wait_in(&self, session: &str, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.tmux(&["capture-pane", "-p", "-t", session]);
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(Instant::now() < deadline, "the terminal never showed {needle:?} x{times}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        for cmd in &self.cleanup {
            let _ = Command::new("sh").args(["-c", cmd]).output();
        }
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// A shell command prefix that runs the test user's `ctr`.
fn as_user(env: &ctr_tests::Env) -> String {
    format!(
        "setpriv --reuid={} --regid={} --init-groups --reset-env /usr/bin/env XDG_DATA_HOME={} {}",
        env.uid,
        env.gid,
        quote(&env.data_home()),
        quote(&env.ctr_path())
    )
}

#[test]
fn interactive_shell_on_a_real_terminal() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let dir = std::env::temp_dir().join(format!("ctr-tty-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let as_user = as_user(&env);
    let tmux = Tmux {
        socket: dir.join("socket"),
        dir: dir.clone(),
        cleanup: vec![format!("cd / && {as_user} rm -f life-tty")],
    };
    let script = format!(
        "cd /; stty -a > {before}; {as_user} run -it --rm --network none --name life-tty alpine sh; echo STATUS=$?; stty -a > {after}; sleep 600",
        before = quote(&dir.join("before")),
        after = quote(&dir.join("after")),
    );
    tmux.tmux(&["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", &script]);
    tmux.wait_for("/ #", 1);
    // The shell switches its line editor on after printing the prompt, and
    // may flush what was typed before: give it a moment, as a person would.
    std::thread::sleep(Duration::from_millis(500));

    tmux.keys(&["echo out $((6*7)); stty size; tty", "Enter"]);
    // The next prompt: the output may arrive in more than one piece.
    let screen = tmux.wait_for("/ #", 2);
    assert!(screen.contains("out 42"), "the command's output:\n{screen}");
    assert!(screen.contains("30 100"), "the container's terminal has the caller's size:\n{screen}");
    assert!(screen.contains("/dev/pts/0"), "a terminal of the container's own devpts:\n{screen}");

    // Ctrl-C interrupts the foreground command, not the session.
    tmux.keys(&["sleep 300", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["C-c"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["echo after-int", "Enter"]);
    tmux.wait_for("\nafter-int", 1);

    // Ctrl-D ends a nested shell, and only that.
    tmux.keys(&["sh", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["echo nested-$((1+1))", "Enter"]);
    tmux.wait_for("nested-2", 1);
    tmux.keys(&["C-d"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["echo back-$((2+1))", "Enter"]);
    tmux.wait_for("back-3", 1);

    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_for("STATUS=3", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("after").exists() {
        assert!(Instant::now() < deadline, "no terminal settings after the session");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = std::fs::read_to_string(dir.join("before")).unwrap();
    let after = std::fs::read_to_string(dir.join("after")).unwrap();
    assert_eq!(before, after, "the caller's terminal was not restored");
    assert!(before.contains(" icanon") && before.contains(" echo"), "a cooked terminal to begin with: {before}");
}

/// `ctr run -it --rm alpine true` on a pseudo-terminal (`script`), ten
/// times: each exits 0 and leaves no container behind. Prints the times
/// (the start cost of a foreground `run -it`, which a monitor runs),
/// against `run -t` without -i (which `ctr` runs as its own child)
/// in turn with it, under the same load.
#[test]
fn foreground_run_it_rm_on_a_pty_exits_and_leaves_nothing() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let as_user = as_user(&env);
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..20 {
        let flag = ["-it", "-t"][i % 2];
        let name = format!("ttytime-{}-{i}", std::process::id());
        let command = format!("cd /; {as_user} run {flag} --rm --name {name} alpine true");
        let began = Instant::now();
        // stdin a pipe held open (never the host's /dev/null).
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|child| child.wait_with_output())
            .expect("script runs");
        times[i % 2].push(began.elapsed());
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let gone = env.ctr().args(["inspect", &name]).output();
        assert_ne!(gone.code(), Some(0), "--rm left {name} behind");
    }
    for (flag, mut times) in ["-it", "-t"].into_iter().zip(times) {
        times.sort();
        let ms: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
        eprintln!(
            "timing: run {flag} --rm alpine true on a pty: median {} ms, min {} ms, max {} ms ({ms:?})",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1]
        );
    }
}

/// A foreground `ctr run -it` on a real terminal detaches with Ctrl-P
/// Ctrl-Q (and with its own `--detach-keys`), leaving the container
/// running; `ctr attach` from another terminal gets that terminal's size
/// and every later resize, and the exit status; `--rm` removes it before
/// the status comes back.
#[test]
fn run_it_detaches_with_the_keys_and_attach_carries_resizes_and_the_status() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let as_user = as_user(&env);
    let dir = std::env::temp_dir().join(format!("ctr-tty-detach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (name, keyed) = (format!("tty-detach-{}", std::process::id()), format!("tty-keys-{}", std::process::id()));
    let tmux = Tmux {
        socket: dir.join("socket"),
        dir: dir.clone(),
        cleanup: vec![format!("cd / && {as_user} rm -f {name} {keyed}")],
    };
    let running = |n: &str| {
        let out = env.ctr().args(["inspect", "-f", "{{.State.Running}}", n]).output();
        out.code() == Some(0) && out.stdout.trim() == "true"
    };
    let session = |s: &str, x: &str, y: &str, command: String| {
        let script = format!("cd /; {command}; echo STATUS-{s}=$?; sleep 600");
        tmux.tmux(&["new-session", "-d", "-s", s, "-x", x, "-y", y, &script]);
    };
    session("run", "100", "30", format!("{as_user} run -it --rm --network none --name {name} alpine sh"));
    tmux.wait_in("run", "/ #", 1);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys_in("run", &["echo first-$((1+1))", "Enter"]);
    tmux.wait_in("run", "first-2", 1);
    tmux.keys_in("run", &["C-p", "C-q"]);
    tmux.wait_in("run", "STATUS-run=0", 1);
    assert!(running(&name), "detaching stopped the container");
    let ps = env.ctr().args(["ps", "--format", "{{.Names}}"]).ok();
    assert!(ps.stdout.lines().any(|l| l == name), "ps does not show {name}:\n{}", ps.stdout);

    // Another terminal of another size attaches; its size, then a resize.
    session("att", "80", "20", format!("{as_user} attach {name}"));
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys_in("att", &["stty size", "Enter"]);
    tmux.wait_in("att", "20 80", 1);
    tmux.tmux(&["resize-window", "-t", "att", "-x", "90", "-y", "25"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys_in("att", &["stty size", "Enter"]);
    tmux.wait_in("att", "25 90", 1);
    tmux.keys_in("att", &["exit 7", "Enter"]);
    tmux.wait_in("att", "STATUS-att=7", 1);
    let gone = env.ctr().args(["inspect", &name]).output();
    assert_ne!(gone.code(), Some(0), "--rm left {name} behind when attach returned");

    // run's own --detach-keys.
    session(
        "keys",
        "100",
        "30",
        format!("{as_user} run -it --detach-keys ctrl-x,q --network none --name {keyed} alpine sh"),
    );
    tmux.wait_in("keys", "/ #", 1);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys_in("keys", &["C-p", "C-q", "C-x", "q"]);
    tmux.wait_in("keys", "STATUS-keys=0", 1);
    assert!(running(&keyed), "detaching with ctrl-x,q stopped the container");
}
