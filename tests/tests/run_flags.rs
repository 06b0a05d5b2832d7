//! `ctr run`'s command line as docker's behaves (issue 14, item 2), as the
//! unprivileged test user through the setuid helper: flags before the
//! image must be known, flags after it are the command's, usage errors
//! exit 125, and `-t` sets TERM=xterm.

use ctr_tests::env;
use std::time::Duration;

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

#[test]
fn ulimit_sysctl_shm_size_and_group_add_reach_the_command_and_only_the_container() {
    let Some(env) = env() else { return };
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let wanted_shmmni = if host_shmmni.trim() == "1000" { "1001" } else { "1000" };
    let out = env
        .ctr()
        .args(["run", "--rm", "--ulimit", "nofile=512:1024", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80"])
        .args(["--sysctl", &format!("kernel.shmmni={wanted_shmmni}"), "--shm-size", "128m", "--group-add", "4242"])
        .args(["busybox", "sh", "-c"])
        .arg(
            "echo nofile=$(ulimit -n):$(ulimit -Hn); \
             echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
             echo shmmni=$(cat /proc/sys/kernel/shmmni); \
             echo shm=$(df -k /dev/shm | awk 'NR==2 {print $2}'); \
             echo groups=$(id -G)",
        )
        .output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    let line =
        |key: &str| out.stdout.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_owned();
    assert_eq!(line("nofile"), "512:1024", "{}", out.stdout);
    assert_eq!(line("port_start"), "80", "{}", out.stdout);
    assert_eq!(line("shmmni"), wanted_shmmni, "{}", out.stdout);
    assert_eq!(line("shm"), "131072", "{}", out.stdout);
    assert!(line("groups").split_whitespace().any(|g| g == "4242"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host_shmmni, "the host's sysctl changed");

    for (flags, why) in [
        (&["--sysctl", "kernel.hostname=x"][..], "not a namespaced sysctl"),
        (&["--sysctl", "vm.swappiness=1"][..], "not a namespaced sysctl"),
        (&["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..], "--network host"),
        (&["--ulimit", "nofile=1024:1099511627776"][..], "above yours"),
        (&["--ulimit", "bogus=1"][..], "unknown limit"),
        (&["--shm-size", "lots"][..], "--shm-size"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
    }
}

#[test]
fn init_reaps_orphans_forwards_signals_and_keeps_the_commands_status() {
    let Some(env) = env() else { return };
    let script = "(sleep 0.2 &); sleep 1; echo pid=$$; echo pid1=$(cat /proc/1/comm); \
                  echo zombies=$(grep -l 'State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); exit 3";
    let out = env.ctr().args(["run", "--rm", "--init", "busybox", "sh", "-c", script]).output();
    assert_eq!(out.code(), Some(3), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("pid=1\n"), "the command is pid 1: {}", out.stdout);
    assert!(out.stdout.contains("pid1=ctr"), "{}", out.stdout);
    assert!(out.stdout.contains("zombies=0"), "an orphan was not reaped: {}", out.stdout);

    // SIGTERM reaches a command that, as pid 1, would ignore it.
    let name = ctr_tests::unique_name("reaper");
    env.ctr().args(["run", "-d", "--init", "--name", &name, "busybox", "sleep", "100"]).ok();
    let started = std::time::Instant::now();
    let stop = env.ctr().args(["stop", "-t", "20", &name]).output();
    let took = started.elapsed();
    let inspect = env.ctr().args(["inspect", &name]).output().stdout;
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(stop.code(), Some(0), "{}", stop.stderr);
    assert!(took < std::time::Duration::from_secs(10), "stop waited for SIGKILL: {took:?}");
    assert!(inspect.contains("\"ExitCode\": 143"), "{inspect}");
    assert!(inspect.contains("\"Init\": true"), "{inspect}");
}

#[test]
fn pull_policy_and_platform_decide_which_image_runs() {
    let Some(env) = env() else { return };
    let run = |flags: &[&str], image: &str| {
        env.ctr().args(["run", "--rm"]).args(flags).args([image, "true"]).timeout(Duration::from_secs(60)).output()
    };
    let here = run(&["--pull", "never"], "busybox");
    assert_eq!(here.code(), Some(0), "{}", here.stderr);
    let missing = run(&["--pull", "never"], "ctr-test-no-such-image");
    assert_eq!(missing.code(), Some(125), "{}", missing.stderr);
    assert!(missing.stderr.contains("--pull never"), "{}", missing.stderr);
    assert!(!missing.stderr.contains("Pulling from"), "{}", missing.stderr);
    // The test's network namespace reaches no registry: `always` shows it
    // goes there even for an image that is here.
    let always = run(&["--pull", "always"], "busybox");
    assert_eq!(always.code(), Some(125), "{}", always.stderr);
    assert!(always.stderr.contains("--pull always: pulling"), "{}", always.stderr);
    let bad = run(&["--pull", "sometimes"], "busybox");
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);

    let amd64 = run(&["--platform", "linux/amd64"], "busybox");
    assert_eq!(amd64.code(), Some(0), "{}", amd64.stderr);
    let arm64 = run(&["--platform", "linux/arm64"], "busybox");
    assert_eq!(arm64.code(), Some(125), "{}", arm64.stderr);
    assert!(arm64.stderr.contains("not linux/arm64"), "{}", arm64.stderr);
    let nonsense = run(&["--platform", "amd64"], "busybox");
    assert_eq!(nonsense.code(), Some(125), "{}", nonsense.stderr);
}

#[test]
fn mount_long_form_binds_read_only_mounts_tmpfs_and_keeps_volumes() {
    let Some(env) = env() else { return };
    let dir = UserDir::new(&env, "mountflag");
    dir.file("f", "from-host\n");
    let volume = ctr_tests::unique_name("mvol");
    let out = env
        .ctr()
        .args(["run", "--rm", "--mount"])
        .arg(format!("type=bind,source={},target=/data,readonly", dir.0.display()))
        .args(["--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "--mount"])
        .arg(format!("type=volume,source={volume},target=/v"))
        .args(["busybox", "sh", "-c"])
        .arg(
            "cat /data/f; touch /data/x 2>/dev/null || echo read-only; \
             echo scratch=$(df -k /scratch | awk 'NR==2 {print $2}'); echo kept > /v/k",
        )
        .output();
    let reread = env.ctr().args(["run", "--rm", "-v", &format!("{volume}:/v"), "busybox", "cat", "/v/k"]).output();
    let _ = env.ctr().args(["volume", "rm", &volume]).output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("from-host\nread-only\nscratch=1024\n"), "{}", out.stdout);
    assert!(!dir.0.join("x").exists());
    assert_eq!(reread.stdout.trim(), "kept", "{}", reread.stderr);
    let bad = env.ctr().args(["run", "--rm", "--mount", "type=bind,target=/x", "busybox", "true"]).output();
    assert_eq!(bad.code(), Some(125), "{}", bad.stderr);
    assert!(bad.stderr.contains("source=ABSOLUTE-PATH"), "{}", bad.stderr);
}

/// `inspect NAME` as JSON (the first object of the array).
fn inspect_json(env: &ctr_tests::Env, name: &str) -> serde_json::Value {
    let out = env.ctr().args(["inspect", name]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    if json.is_array() {
        json[0].clone()
    } else {
        json
    }
}

#[test]
fn attach_shows_only_the_streams_asked_for_and_the_log_keeps_both() {
    let Some(env) = env() else { return };
    let mut started = ctr_tests::Started::new(&env);
    let script = "echo to-out; echo to-err >&2";
    let run =
        |flags: &[&str]| env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "sh", "-c", script]).output();
    let out = run(&["-a", "stdout"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "to-out\n");
    assert!(!out.stderr.contains("to-err"), "{}", out.stderr);
    let err = run(&["-a", "STDERR"]);
    assert_eq!(err.code(), Some(0), "{}", err.stderr);
    assert_eq!(err.stdout, "");
    assert!(err.stderr.contains("to-err"), "{}", err.stderr);
    let both = run(&["-a", "stdout", "-a", "stderr"]);
    assert_eq!((both.stdout.as_str(), both.stderr.contains("to-err")), ("to-out\n", true), "{}", both.stderr);
    // -a STDIN with -i passes stdin on; without -i it is refused.
    let input =
        env.ctr().args(["run", "--rm", "-i", "-a", "stdin", "-a", "stdout", "busybox", "cat"]).stdin("fed\n").output();
    assert_eq!(input.stdout, "fed\n", "{}", input.stderr);

    // The log gets both streams, whatever was shown.
    let name = ctr_tests::unique_name("attachlog");
    started.names.push(name.clone());
    let out = env.ctr().args(["run", "--name", &name, "-a", "stderr", "busybox", "sh", "-c", script]).output();
    assert_eq!(out.stdout, "", "{}", out.stderr);
    let logs = env.ctr().args(["logs", &name]).ok();
    assert!(logs.stdout.contains("to-out") && logs.stderr.contains("to-err"), "{} / {}", logs.stdout, logs.stderr);

    // create records the streams; run -d attaches to none.
    let created = ctr_tests::unique_name("attachcreate");
    started.names.push(created.clone());
    env.ctr().args(["create", "--name", &created, "-a", "stdout", "busybox", "true"]).ok();
    let config = &inspect_json(&env, &created)["Config"];
    assert_eq!(
        (&config["AttachStdin"], &config["AttachStdout"], &config["AttachStderr"]),
        (&false.into(), &true.into(), &false.into())
    );
    let detached = ctr_tests::unique_name("attachd");
    started.run_d(&detached, &["busybox", "sleep", "30"]);
    assert_eq!(inspect_json(&env, &detached)["Config"]["AttachStdout"], false);

    for (flags, why) in [
        (&["-a", "stdin"][..], "-i"),
        (&["-a", "stdio"][..], "STDIN, STDOUT and STDERR"),
        (&["-d", "-a", "stdout"][..], "-a and -d conflict"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
    }
}

#[test]
fn detach_keys_detach_attach_and_leave_the_container_running() {
    let Some(env) = env() else { return };
    let mut started = ctr_tests::Started::new(&env);
    let running = |name: &str| inspect_json(&env, name)["State"]["Running"] == true;
    let timeout = Duration::from_secs(20);

    // The container's own keys (run -d --detach-keys), used by a plain attach.
    let own = ctr_tests::unique_name("dkeys");
    started.run_d(&own, &["-it", "--detach-keys", "ctrl-x,q", "busybox", "sh"]);
    let attached = env.ctr().args(["attach", &own]).stdin(&b"echo one\n\x18q"[..]).timeout(timeout).output();
    assert_eq!(attached.code(), Some(0), "{}", attached.stderr);
    assert!(running(&own), "detaching stopped the container");
    // --detach-keys on attach wins; docker's default is ctrl-p,ctrl-q.
    let attached = env
        .ctr()
        .args(["attach", "--detach-keys", "ctrl-a,ctrl-b", &own])
        .stdin(&[1u8, 2][..])
        .timeout(timeout)
        .output();
    assert_eq!(attached.code(), Some(0), "{}", attached.stderr);
    assert!(running(&own));
    let plain = ctr_tests::unique_name("dkeysdef");
    started.run_d(&plain, &["-it", "busybox", "sh"]);
    let attached = env.ctr().args(["attach", &plain]).stdin(&[0x10u8, 0x11][..]).timeout(timeout).output();
    assert_eq!(attached.code(), Some(0), "{}", attached.stderr);
    assert!(running(&plain));

    // Keys that are not the sequence go through: the container ends the
    // attachment by exiting (status 4), not by a detach (status 0).
    let exits = ctr_tests::unique_name("dkeysexit");
    started.run_d(&exits, &["-it", "--detach-keys", "ctrl-x,q", "busybox", "sh", "-c", "sleep 4; exit 4"]);
    let attached = env.ctr().args(["attach", &exits]).stdin(&[0x10u8, 0x11, 0x18, b'x'][..]).timeout(timeout).output();
    assert_eq!(attached.code(), Some(4), "{}", attached.stderr);

    for (flags, why) in [
        (&["-i", "--detach-keys", "ctrl-p"][..], "needs -it"),
        (&["-dit", "--detach-keys", "alt-x"][..], "ctrl-p,ctrl-q"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
    }
}

#[test]
fn device_binds_nodes_the_user_can_open_and_refuses_limits_it_cannot_enforce() {
    let Some(env) = env() else { return };
    let out = env
        .ctr()
        .args([
            "run",
            "--rm",
            "--device",
            "/dev/zero:/dev/myzero",
            "--device",
            "/dev/kmsg:/dev/k:r",
            "busybox",
            "sh",
            "-c",
        ])
        .arg(
            "echo zero=$(stat -c %t:%T /dev/myzero) kmsg=$(stat -c %t:%T /dev/k); \
             echo bytes=$(head -c 3 /dev/myzero | od -An -tx1 | tr -d ' '); \
             echo x > /dev/myzero && echo wrote; echo x > /dev/k 2>/dev/null || echo k-read-only",
        )
        .output();
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("zero=1:5 kmsg=1:b\n"), "{}", out.stdout);
    assert!(out.stdout.contains("bytes=000000\nwrote\nk-read-only\n"), "{}", out.stdout);
    assert!(!out.stderr.contains("--device"), "no warning for these: {}", out.stderr);

    // An explicit m is taken, with a warning that no container can mknod.
    let m = env.ctr().args(["run", "--rm", "--device", "/dev/zero:/dev/z:rwm", "busybox", "true"]).output();
    assert_eq!(m.code(), Some(0), "{}", m.stderr);
    assert!(m.stderr.contains("m (mknod) cannot be granted"), "{}", m.stderr);

    for (device, why) in [
        ("/dev/zero:/dev/z:r", "cannot keep the container from writing"),
        ("/dev/kmsg", "cannot open /dev/kmsg for writing yourself"),
        ("/dev/kvm", "for reading yourself"),
        ("/tmp:/dev/t", "not a device node"),
        ("/dev/zero:dev/z", "absolute"),
        ("/dev/zero:/dev/z:rx", "some of r, w and m"),
    ] {
        if device == "/dev/kvm" && !std::path::Path::new(device).exists() {
            continue;
        }
        let out = env.ctr().args(["run", "--rm", "--device", device, "busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{device}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{device}: {}", out.stderr);
    }
    // Kept for inspect as docker shows it.
    let name = ctr_tests::unique_name("device");
    let _made = ctr_tests::Started { env: &env, names: vec![name.clone()] };
    env.ctr().args(["create", "--name", &name, "--device", "/dev/zero:/dev/z:rw", "busybox", "true"]).ok();
    let devices = &inspect_json(&env, &name)["HostConfig"]["Devices"];
    assert_eq!(
        devices,
        &serde_json::json!([{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "rw"}])
    );
}

/// The base image's tarball with one more file, owned by container uid
/// and gid 1234: a layer of its own, which no other test's image shares.
fn unique_rootfs_tar(env: &ctr_tests::Env, path: &std::path::Path, tag: &str) {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&env.alpine).unwrap());
    let mut archive = tar::Archive::new(gz);
    let mut out = tar::Builder::new(std::fs::File::create(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let name = entry.path().unwrap().into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name().unwrap().unwrap().into_owned();
                out.append_link(&mut header, &name, &target).unwrap();
            }
            _ => out.append_data(&mut header, &name, &mut entry).unwrap(),
        }
    }
    let content = format!("{tag}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(1234);
    header.set_gid(1234);
    header.set_entry_type(tar::EntryType::Regular);
    out.append_data(&mut header, "srv/owned-by-1234", content.as_bytes()).unwrap();
    out.finish().unwrap();
}

#[test]
fn userns_keep_id_runs_as_the_caller_over_a_keep_id_copy_made_once_and_removed_with_the_image() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = env() else { return };
    let tag = format!("keepid-{}", std::process::id());
    let dir = UserDir::new(&env, &tag);
    let tarball = dir.0.join("rootfs.tar");
    unique_rootfs_tar(&env, &tarball, &tag);
    env.ctr().args(["image", "import"]).arg(&tarball).arg(&tag).timeout(Duration::from_secs(180)).ok();
    let volume = format!("{}:/out", dir.0.display());
    let script = "id -u; id -g; stat -c %u:%g / /etc/passwd /srv/owned-by-1234; touch /out/made; \
                  whoami; id -un; id -gn; echo $HOME";
    let run = || env.ctr().args(["run", "--rm", "--userns", "keep-id", "-v", &volume, &tag, "sh", "-c", script]).ok();
    let began = std::time::Instant::now();
    let out = run();
    let first = began.elapsed();
    let own = format!("{}:{}", env.uid, env.gid);
    // The image has no entry for the caller's ids: podman's are added.
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(env.uid)).unwrap().unwrap();
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(env.gid)).unwrap().unwrap();
    let home = user.dir.display().to_string();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            env.uid.to_string(),
            env.gid.to_string(),
            "0:0".into(),
            "0:0".into(),
            "1234:1234".into(),
            user.name.clone(),
            user.name.clone(),
            group.name.clone(),
            home.clone()
        ],
        "{}",
        out.stderr
    );
    // Started twice, the container has its entries once, in its own
    // writable layer; the line is podman's.
    let count = format!("grep -c ^{}: /etc/passwd; grep -c ^{}: /etc/group", user.name, group.name);
    let created =
        env.ctr().args(["create", "--userns", "keep-id", &tag, "sh", "-c", &count]).ok().stdout.trim().to_owned();
    let mode = env.ctr().args(["inspect", "-f", "{{.HostConfig.UsernsMode}}", &created]).ok();
    assert_eq!(mode.stdout.trim(), "keep-id");
    for _ in 0..2 {
        let started = env.ctr().args(["start", "-a", &created]).ok();
        assert_eq!(started.stdout, "1\n1\n", "{}", started.stderr);
    }
    let upper = env.data_home().join("ctr/containers").join(&created).join("layer/upper/etc/passwd");
    let line = format!("{}:*:{}:{}:{}:{home}:/bin/sh", user.name, env.uid, env.gid, user.name);
    let layer_passwd = std::fs::read_to_string(&upper).unwrap();
    assert!(layer_passwd.lines().any(|l| l == line), "{line:?} not in the writable layer's passwd:\n{layer_passwd}");
    env.ctr().args(["rm", &created]).ok();
    let made = std::fs::metadata(dir.0.join("made")).unwrap();
    assert_eq!(format!("{}:{}", made.uid(), made.gid()), own, "a file the process made is the caller's on the host");

    // The copy is made once: its layer's keep-id directory is the same one
    // after a second run.
    let layers = env.data_home().join("ctr/layers");
    let copy = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("keep-id"))
        .find(|k| std::fs::read_to_string(k.join("rootfs/srv/owned-by-1234")).is_ok_and(|c| c.trim() == tag))
        .expect("the image's layer has a keep-id copy");
    let shared = std::fs::read_to_string(copy.join("rootfs/etc/passwd")).unwrap();
    assert!(!shared.contains(&format!("{}:", user.name)), "the shared keep-id copy was written:\n{shared}");
    let inode = std::fs::metadata(&copy).unwrap().ino();
    let began = std::time::Instant::now();
    run();
    eprintln!(
        "timing: --userns keep-id run: first {} ms, second {} ms",
        first.as_millis(),
        began.elapsed().as_millis()
    );
    assert_eq!(std::fs::metadata(&copy).unwrap().ino(), inode, "the second run reused the copy");
    // The default map is unchanged: root inside, the file still 1234's.
    let plain = env.ctr().args(["run", "--rm", &tag, "stat", "-c", "%u", "/srv/owned-by-1234"]).ok();
    assert_eq!(plain.stdout.trim(), "1234");

    env.ctr().args(["rmi", &tag]).ok();
    assert!(!copy.exists(), "rmi removed the layer's keep-id copy");
    let host = env.ctr().args(["run", "--rm", "--userns", "host", "busybox", "true"]).output();
    assert_eq!(host.code(), Some(125), "{}", host.stderr);
}

/// Waits until `inspect NAME` satisfies `done`; returns the JSON.
fn wait_for_inspect(
    env: &ctr_tests::Env,
    name: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let json = inspect_json(env, name);
        if done(&json) {
            return json;
        }
        assert!(std::time::Instant::now() < deadline, "{name} never became {what}: {json:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn health_checks_are_run_by_the_monitor_and_shown_by_ps_inspect_and_filters() {
    let Some(env) = env() else { return };
    let mut started = ctr_tests::Started::new(&env);
    let health = |json: &serde_json::Value| json["State"]["Health"].clone();
    let status_is = |wanted: &'static str| move |json: &serde_json::Value| json["State"]["Health"]["Status"] == wanted;

    // Healthy while /tmp/ok exists, unhealthy after two failures once it is gone.
    let name = ctr_tests::unique_name("health");
    started.run_d(
        &name,
        &[
            "--health-cmd",
            "test -e /tmp/ok && echo fine",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "busybox",
            "sh",
            "-c",
            "touch /tmp/ok; exec sleep 300",
        ],
    );
    let json = inspect_json(&env, &name);
    assert_eq!(json["Config"]["Healthcheck"]["Retries"], 2, "{json:#}");
    let json = wait_for_inspect(&env, &name, "healthy", status_is("healthy"));
    let log = health(&json)["Log"].as_array().cloned().unwrap_or_default();
    let last = log.last().cloned().unwrap_or_default();
    assert_eq!(last["ExitCode"], 0, "{json:#}");
    assert!(last["Output"].as_str().unwrap_or_default().contains("fine"), "{json:#}");
    let ps = env.ctr().args(["ps", "--filter", "health=healthy"]).ok().stdout;
    let line = ps.lines().find(|l| l.contains(&name)).unwrap_or_default().to_owned();
    assert!(line.contains("(healthy)"), "{ps}");
    let ps = env.ctr().args(["ps", "--filter", "health=unhealthy"]).ok().stdout;
    assert!(!ps.contains(&name), "{ps}");

    env.ctr().args(["exec", &name, "rm", "/tmp/ok"]).ok();
    let json = wait_for_inspect(&env, &name, "unhealthy", status_is("unhealthy"));
    assert!(health(&json)["FailingStreak"].as_u64().unwrap_or(0) >= 2, "{json:#}");
    let ps = env.ctr().args(["ps", "--filter", "health=unhealthy"]).ok().stdout;
    assert!(ps.lines().any(|l| l.contains(&name) && l.contains("(unhealthy)")), "{ps}");
    assert!(env.ctr().args(["ps", "--filter", "health=sick"]).output().code() == Some(125));

    // Failures within the start period do not count.
    let patient = ctr_tests::unique_name("healthstart");
    started.run_d(
        &patient,
        &["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", "--health-start-period", "60s"]
            .into_iter()
            .chain(["busybox", "sleep", "300"])
            .collect::<Vec<_>>(),
    );
    let json = wait_for_inspect(&env, &patient, "checked twice", |j| {
        j["State"]["Health"]["Log"].as_array().is_some_and(|l| l.len() >= 2)
    });
    assert_eq!(
        (health(&json)["Status"].clone(), health(&json)["FailingStreak"].clone()),
        ("starting".into(), 0.into())
    );
    let ps = env.ctr().args(["ps"]).ok().stdout;
    assert!(ps.lines().any(|l| l.contains(&patient) && l.contains("(health: starting)")), "{ps}");

    // A check that runs too long fails.
    let slow = ctr_tests::unique_name("healthslow");
    started.run_d(
        &slow,
        &["--health-cmd", "sleep 20", "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1"]
            .into_iter()
            .chain(["busybox", "sleep", "300"])
            .collect::<Vec<_>>(),
    );
    let json = wait_for_inspect(&env, &slow, "unhealthy", status_is("unhealthy"));
    let output = health(&json)["Log"][0]["Output"].as_str().unwrap_or_default().to_owned();
    assert!(output.contains("exceeded timeout"), "{json:#}");

    // A foreground run checks too (its own ctr does).
    let fg = ctr_tests::unique_name("healthfg");
    started.names.push(fg.clone());
    let out = env
        .ctr()
        .args(["run", "--name", &fg, "--health-cmd", "echo probed", "--health-interval", "500ms"])
        .args(["busybox", "sleep", "3"])
        .output();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let json = inspect_json(&env, &fg);
    assert_eq!(health(&json)["Status"], "healthy", "{json:#}");

    for (flags, why) in [
        (&["--no-healthcheck", "--health-cmd", "true"][..], "conflicts"),
        (&["--health-retries", "2"][..], "--health-cmd"),
        (&["--health-cmd", "true", "--health-interval", "soon"][..], "duration"),
    ] {
        let out = env.ctr().args(["run", "--rm"]).args(flags).args(["busybox", "true"]).output();
        assert_eq!(out.code(), Some(125), "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{flags:?}: {}", out.stderr);
    }
}

/// Docker runs no probe while a container is paused (and so counts none):
/// a paused container whose probe would time out stays healthy, and the
/// probes start again after its unpause.
#[test]
fn health_probes_do_not_run_while_the_container_is_paused() {
    let Some(env) = env() else { return };
    let mut started = ctr_tests::Started::new(&env);
    let name = ctr_tests::unique_name("healthpause");
    let flags = ["--health-cmd", "true", "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1"];
    started.run_d(&name, &flags.into_iter().chain(["busybox", "sleep", "300"]).collect::<Vec<_>>());
    let log_len = |json: &serde_json::Value| json["State"]["Health"]["Log"].as_array().map_or(0, Vec::len);
    wait_for_inspect(&env, &name, "healthy", |j| j["State"]["Health"]["Status"] == "healthy");
    env.ctr().args(["pause", &name]).ok();
    // A probe that was running when it paused is dropped: let it end first.
    std::thread::sleep(Duration::from_secs(2));
    let before = inspect_json(&env, &name);
    std::thread::sleep(Duration::from_secs(4));
    let after = inspect_json(&env, &name);
    assert_eq!(after["State"]["Status"], "paused", "{after:#}");
    assert_eq!(after["State"]["Health"], before["State"]["Health"], "no probe ran while paused: {after:#}");
    assert_eq!(after["State"]["Health"]["Status"], "healthy", "{after:#}");
    env.ctr().args(["unpause", &name]).ok();
    let last_start =
        |json: &serde_json::Value| json["State"]["Health"]["Log"].as_array().and_then(|l| l.last().cloned());
    let resumed = wait_for_inspect(&env, &name, "probed again", |j| last_start(j) != last_start(&after));
    assert!(log_len(&resumed) >= 1);
    assert_eq!(resumed["State"]["Health"]["Status"], "healthy", "{resumed:#}");
    assert_eq!(resumed["State"]["Health"]["FailingStreak"], 0, "{resumed:#}");
}
