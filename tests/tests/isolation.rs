//! What a process sees inside `ctr run`, checked as an unprivileged user
//! through the installed setuid helper: its own pid, UTS, IPC, network,
//! user and cgroup namespaces, the image's rootfs rather than the host's
//! (a foreign distribution's, Alpine, where the cache has it), and docker's
//! exit statuses.

use ctr_tests::{env, BaseImage, Env};
use std::time::Duration;

fn run_in_alpine(env: &Env, script: &str) -> String {
    env.ensure_alpine_image("alpine");
    env.ctr().args(["run", "--rm", "--network", "none", "alpine", "sh", "-c", script]).ok().stdout
}

#[test]
fn the_command_is_pid_1_and_sees_no_host_process() {
    let Some(env) = env() else { return };
    let out = run_in_alpine(&env, "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tail -1");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    let highest: u32 = lines[1].parse().unwrap();
    assert!(highest < 10, "the container sees pid {highest}: host processes leak in\n{out}");
}

#[test]
fn hostname_is_the_containers_own() {
    let Some(env) = env() else { return };
    let before = nix::unistd::gethostname().unwrap();
    env.ensure_alpine_image("alpine");
    let named = env
        .ctr()
        .args(["run", "--rm", "--hostname", "box-1", "alpine", "sh", "-c", "hostname; cat /etc/hostname"])
        .ok();
    assert_eq!(named.stdout, "box-1\nbox-1\n");
    let default = env.ctr().args(["run", "--rm", "alpine", "hostname"]).ok();
    let h = default.stdout.trim();
    assert_eq!(h.len(), 12, "default hostname is the short id, got {h:?}");
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(nix::unistd::gethostname().unwrap(), before, "the host's hostname changed");
}

#[test]
fn the_images_distribution_runs_on_this_debian_host() {
    let Some(env) = env() else { return };
    let base = BaseImage::of_run();
    let out = run_in_alpine(&env, ". /etc/os-release; echo $ID");
    assert_eq!(out.trim(), base.id());
    let host = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(!host.contains(&format!("ID={}\n", base.id())), "the test must run on a host of another distribution");
    if base == BaseImage::Alpine {
        assert!(run_in_alpine(&env, "apk --version").contains("apk-tools"));
    }
}

#[test]
fn root_inside_maps_to_the_caller_never_to_host_root() {
    let Some(env) = env() else { return };
    let out = run_in_alpine(&env, "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("0"));
    let maps: Vec<Vec<u32>> = lines.map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect()).collect();
    assert!(!maps.is_empty());
    assert_eq!(maps[0], vec![0, env.uid, 1], "container root must be the caller's uid: {out}");
    for m in &maps {
        assert_ne!(m[1], 0, "host id 0 is mapped: {out}");
    }
}

#[test]
fn only_loopback_in_the_network_namespace() {
    let Some(env) = env() else { return };
    let out = run_in_alpine(&env, "ls /sys/class/net; ip -o link | wc -l");
    assert_eq!(out, "lo\n1\n");
}

#[test]
fn host_sysv_ipc_is_invisible() {
    let Some(env) = env() else { return };
    let made = std::process::Command::new("ipcmk").args(["-M", "4096"]).output().expect("ipcmk (util-linux)");
    let text = String::from_utf8_lossy(&made.stdout).to_string();
    let shmid: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    assert!(!shmid.is_empty(), "ipcmk printed {text:?}");
    let host_view = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let out = run_in_alpine(&env, "cat /proc/sysvipc/shm | wc -l");
    let _ = std::process::Command::new("ipcrm").args(["-m", &shmid]).status();
    assert!(host_view.lines().count() >= 2, "the host segment should be visible on the host");
    assert_eq!(out.trim(), "1", "only the header line: the host's segment must not show");
}

#[test]
fn the_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let Some(env) = env() else { return };
    let out = run_in_alpine(&env, "cat /proc/self/cgroup");
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.ends_with(":/"), "cgroup line {line:?} is not at the namespace root\n{out}");
    }
}

/// The helper clones an exec's process straight into the container's v2
/// cgroup and writes only the v1 ones: in every hierarchy the process must
/// land where the container's pid 1 is, at its cgroup namespace's root.
#[test]
fn an_exec_is_in_the_containers_cgroup_in_every_hierarchy() {
    let Some(env) = env() else { return };
    let mut started = ctr_tests::Started::new(&env);
    let name = ctr_tests::unique_name("iso-exec-cg");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "300"]);
    let script = "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup";
    let out = env.ctr().args(["exec", &name, "sh", "-c", script]).ok().stdout;
    let (exec, init) = out.split_once("--\n").unwrap_or_else(|| panic!("{out}"));
    assert!(!exec.is_empty() && exec == init, "the exec's cgroups differ from pid 1's:\n{out}");
    for line in exec.lines() {
        assert!(line.ends_with(":/"), "cgroup line {line:?} is not at the namespace root\n{out}");
    }
}

#[test]
fn exit_statuses_follow_docker() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let code = |args: &[&str]| env.ctr().args(["run", "--rm", "alpine"]).args(args).output();
    assert_eq!(code(&["sh", "-c", "exit 7"]).code(), Some(7));
    let not_exec = code(&["/etc/passwd"]);
    assert_eq!(not_exec.code(), Some(126), "{}", not_exec.stderr);
    let missing = code(&["no-such-command"]);
    assert_eq!(missing.code(), Some(127), "{}", missing.stderr);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    let engine = env.ctr().args(["run", "--rm", "no-such-image-here"]).output();
    assert_eq!(engine.code(), Some(125), "{}", engine.stderr);
    assert!(engine.stderr.contains("not found"), "{}", engine.stderr);
}

#[test]
fn a_signal_death_is_128_plus_n() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    // The init of a pid namespace is immune to signals it does not handle,
    // from inside; SIGKILL from the host's namespace still kills it.
    let mut child = env.ctr().args(["run", "--rm", "alpine", "sh", "-c", "echo ready; sleep 60"]).spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    let pid = container_init_pid(child.id()).expect("the container's init is a child of ctr");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let out = child.wait();
    assert_eq!(out.code(), Some(137), "{}", out.stderr);
}

/// The container's init is re-parented to `ctr` (a child subreaper), which
/// runs under setpriv/env as our child: find ctr's child.
fn container_init_pid(wrapper_pid: u32) -> Option<i32> {
    let children = |pid: i32| -> Vec<i32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    // setpriv execs env, which execs ctr: the same pid all along.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(&init) = children(wrapper_pid as i32).first() {
            return Some(init);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn every_container_process_runs_as_the_caller_or_a_subordinate_id() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let script = "sleep 60 & su -s /bin/sh nobody -c 'sleep 60' & echo ready; wait";
    let mut child = env.ctr().args(["run", "--rm", "alpine", "sh", "-c", script]).spawn();
    child.wait_for_stdout("ready", Duration::from_secs(30));
    let init = container_init_pid(child.id()).expect("container init");
    std::thread::sleep(Duration::from_millis(300));
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
    let range = subuid
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == env.user).then(|| (f[1].parse::<u32>().unwrap(), f[2].parse::<u32>().unwrap()))
        })
        .expect("the driver gives the test user a subuid range");
    let mut seen = 0;
    let mut saw_subordinate = false;
    for pid in descendants(init) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        for key in ["Uid:", "Gid:"] {
            let ids: Vec<u32> = status
                .lines()
                .find(|l| l.starts_with(key))
                .unwrap()
                .split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap())
                .collect();
            for id in ids {
                assert_ne!(id, 0, "pid {pid} holds host id 0:\n{status}");
                let own = id == env.uid || id == env.gid;
                let sub = id >= range.0 && id < range.0 + range.1;
                assert!(own || sub, "pid {pid} has id {id}, neither the caller's nor subordinate");
                saw_subordinate |= sub;
            }
        }
        seen += 1;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(seen >= 3, "expected init and two sleeps, saw {seen}");
    assert!(saw_subordinate, "`su nobody` should run as a subordinate id");
}

fn descendants(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        all.extend(kids.split_whitespace().filter_map(|k| k.parse::<i32>().ok()));
        i += 1;
    }
    all
}
