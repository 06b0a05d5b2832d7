//! `ctr run`'s command line as docker's behaves (issue 14, item 2), as the
//! unprivileged test user through the setuid helper: flags before the
//! image must be known, flags after it are the command's, usage errors
//! exit 125, and `-t` sets TERM=xterm.

use ctr_tests::env;

#[test]
fn unknown_flags_are_refused_with_status_125_and_flags_after_the_image_are_the_commands() {
    let Some(env) = env() else { return };
    let out = env.ctr().args(["run", "--rm", "--no-such-flag", "always", "busybox", "true"]).output();
    assert_eq!(out.code(), Some(125), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    assert!(!out.stderr.contains("image"), "an unknown flag was read as the image: {}", out.stderr);
    for line in [&["ps", "--bogus"][..], &["run"][..], &["run", "--memory"][..], &["frobnicate"][..]] {
        let out = env.ctr().args(line).output();
        assert_eq!(out.code(), Some(125), "{line:?}: {}", out.stderr);
    }
    let help = env.ctr().args(["run", "--help"]).output();
    assert_eq!(help.code(), Some(0), "{}", help.stderr);
    assert!(help.stdout.contains("--dns"), "{}", help.stdout);

    let out = env
        .ctr()
        .args(["run", "--rm", "busybox", "sh", "-c", "echo args: \"$@\"", "sh", "-la", "--rm", "-e", "X=1"])
        .output();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "args: -la --rm -e X=1");
}

#[test]
fn a_terminal_sets_term_xterm_unless_the_user_sets_term() {
    let Some(env) = env() else { return };
    let term = |flags: &[&str]| {
        let out =
            env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "sh", "-c", "echo term=$TERM."]).output();
        assert_eq!(out.code(), Some(0), "{flags:?}: {}", out.stderr);
        out.stdout.trim().to_owned()
    };
    assert_eq!(term(&["-t"]), "term=xterm.");
    assert_eq!(term(&[]), "term=.");
    assert_eq!(term(&["-t", "-e", "TERM=vt100"]), "term=vt100.");
}

/// A directory of the test user's, removed on drop.
struct UserDir(std::path::PathBuf);

impl UserDir {
    fn new(env: &ctr_tests::Env, tag: &str) -> Self {
        let path = env.work.join(format!("{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        Self(path)
    }

    fn file(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for UserDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn env_file_labels_and_cidfile() {
    let Some(env) = env() else { return };
    let dir = UserDir::new(&env, "runflags");
    let env_file = dir.file("env", "# settings\nA=from-file\nB=two words\n\nC=file\n");
    let label_file = dir.file("labels", "tier=web\nowner=file\n");
    let cidfile = dir.0.join("cid");
    let name = ctr_tests::unique_name("flags");
    let out = env
        .ctr()
        .args(["run", "--name", &name, "--env-file"])
        .arg(&env_file)
        .args(["-e", "C=flag", "-l", "owner=flag", "--label", "team=ops", "--label-file"])
        .arg(&label_file)
        .arg("--cidfile")
        .arg(&cidfile)
        .args(["busybox", "sh", "-c", "echo \"$A|$B|$C\""])
        .output();
    let inspect = env.ctr().args(["inspect", &name]).output();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "from-file|two words|flag");
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let json = if json.is_array() { json[0].clone() } else { json };
    let labels = &json["Config"]["Labels"];
    assert_eq!(labels, &serde_json::json!({"owner": "flag", "team": "ops", "tier": "web"}), "{}", inspect.stdout);
    let id = std::fs::read_to_string(&cidfile).unwrap();
    assert_eq!(json["Id"], id.as_str());
    // A cidfile that exists is refused before anything starts.
    let again = env.ctr().args(["run", "--rm", "--cidfile"]).arg(&cidfile).args(["busybox", "true"]).output();
    assert_eq!(again.code(), Some(125), "{}", again.stderr);
    assert!(again.stderr.contains("--cidfile"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    let missing = env.ctr().args(["run", "--rm", "--env-file", "/nonexistent/env", "busybox", "true"]).output();
    assert_eq!(missing.code(), Some(125), "{}", missing.stderr);
}

#[test]
fn stop_sends_the_stop_signal_and_waits_the_stop_timeout() {
    let Some(env) = env() else { return };
    let name = ctr_tests::unique_name("stopsig");
    // The shell reports SIGUSR1 and ignores SIGTERM: only the stop signal
    // shows, and stop's SIGKILL comes after the container's own timeout.
    let script = "trap 'echo got-usr1' USR1; trap '' TERM; echo ready; while true; do sleep 0.1; done";
    env.ctr()
        .args(["run", "-d", "--name", &name, "--stop-signal", "USR1", "--stop-timeout", "2", "busybox", "sh", "-c"])
        .arg(script)
        .ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.ctr().args(["logs", &name]).output().stdout.contains("ready") {
        assert!(std::time::Instant::now() < deadline, "the container never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let inspect = env.ctr().args(["inspect", &name]).ok().stdout;
    let started = std::time::Instant::now();
    let stop = env.ctr().args(["stop", &name]).output();
    let took = started.elapsed();
    let logs = env.ctr().args(["logs", &name]).output().stdout;
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(stop.code(), Some(0), "{}", stop.stderr);
    assert!(logs.contains("got-usr1"), "{logs}");
    assert!(took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(9), "{took:?}");
    assert!(inspect.contains("\"StopSignal\": \"SIGUSR1\""), "{inspect}");
    assert!(inspect.contains("\"StopTimeout\": 2"), "{inspect}");
    let bad = env.ctr().args(["run", "--rm", "--stop-signal", "NOPE", "busybox", "true"]).output();
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);
}
