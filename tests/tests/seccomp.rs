//! Seccomp and the security options, as an unprivileged user through the
//! installed setuid helper: what a process in a default container may not
//! do (new namespaces, keyctl, TIOCSTI), what it gets for a syscall newer
//! than the profile (ENOSYS), what `seccomp=unconfined`, `--privileged`,
//! `--cap-add SYS_ADMIN` and a profile file change, and the refusals.
//!
//! The calls are made by a small static C program (seccomp_support/probe.c)
//! built here with gcc and bound into the container read-only: Alpine's
//! busybox has no way to make a raw system call, and the probe makes them
//! raw so that no libc fallback hides the answer.

use ctr_tests::{env, Env};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

/// Builds the probe once per test binary, into a directory the test user
/// can read.
fn probe_dir(env: &Env) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = env.work.join(format!("seccomp-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/seccomp_support/probe.c");
        let out = std::process::Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(dir.join("probe"))
            .arg(&source)
            .output()
            .expect("gcc (cargo xtask test installs it)");
        assert!(out.status.success(), "building the probe failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .clone()
}

/// Runs the probe with `ops` in a new alpine container with `flags`;
/// returns each op's errno (0: the call succeeded).
fn probe(env: &Env, flags: &[&str], ops: &[&str]) -> HashMap<String, i64> {
    env.ensure_alpine_image("alpine");
    let volume = format!("{}:/probe:ro", probe_dir(env).display());
    let out = env
        .ctr()
        .args(["run", "--rm", "--network", "none", "-v", &volume])
        .args(flags)
        .args(["alpine", "/probe/probe"])
        .args(ops)
        .ok();
    parse(&out.stdout)
}

fn parse(stdout: &str) -> HashMap<String, i64> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().parse().unwrap_or_else(|_| panic!("probe printed {stdout:?}"))))
        .collect()
}

/// The running kernel implements open_tree_attr (Linux 6.15), the probe's
/// "syscall newer than the profile".
fn kernel_has_open_tree_attr() -> bool {
    let release = nix::sys::utsname::uname().unwrap().release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 15)
}

const ALL_OPS: [&str; 11] = [
    "unshare-user",
    "unshare-net",
    "clone-newns",
    "clone-plain",
    "clone3",
    "keyctl",
    "nr1000",
    "open_tree_attr",
    "tiocsti",
    "tiocsti-high",
    "tioclinux",
];

#[test]
fn seccomp_default_container_gets_dockers_profile() {
    let Some(env) = env() else { return };
    let r = probe(&env, &[], &ALL_OPS);
    assert_eq!(r["unshare-user"], EPERM, "unshare -U must fail: {r:?}");
    assert_eq!(r["unshare-net"], EPERM, "unshare -n must fail: {r:?}");
    assert_eq!(r["clone-newns"], EPERM, "clone(CLONE_NEWNS) must fail: {r:?}");
    assert_eq!(r["clone-plain"], 0, "a plain clone (fork) must work: {r:?}");
    assert_eq!(r["clone3"], ENOSYS, "clone3 gives ENOSYS so that libc falls back to clone: {r:?}");
    assert_eq!(r["keyctl"], EPERM, "keyctl is denied with EPERM: {r:?}");
    assert_eq!(r["nr1000"], ENOSYS, "an unknown syscall gives ENOSYS, not EPERM: {r:?}");
    assert_eq!(r["open_tree_attr"], ENOSYS, "a syscall newer than the profile gives ENOSYS: {r:?}");
    assert_eq!(r["tiocsti"], EPERM, "TIOCSTI must be refused: {r:?}");
    assert_eq!(r["tiocsti-high"], EPERM, "TIOCSTI with high bits set must be refused too: {r:?}");
    assert_eq!(r["tioclinux"], EPERM, "TIOCLINUX must be refused: {r:?}");
}

#[test]
fn seccomp_unconfined_and_privileged_lift_the_profile_but_keep_the_ioctl_guard() {
    let Some(env) = env() else { return };
    for flags in [&["--security-opt", "seccomp=unconfined"][..], &["--privileged"][..]] {
        let r = probe(&env, flags, &ALL_OPS);
        assert_eq!(r["unshare-user"], 0, "{flags:?}: {r:?}");
        assert_eq!(r["unshare-net"], 0, "{flags:?}: {r:?}");
        assert_eq!(r["clone-newns"], 0, "{flags:?}: {r:?}");
        assert_ne!(r["clone3"], ENOSYS, "{flags:?}: {r:?}");
        assert_ne!(r["keyctl"], EPERM, "{flags:?}: {r:?}");
        if kernel_has_open_tree_attr() {
            assert_ne!(r["open_tree_attr"], ENOSYS, "{flags:?}: the kernel's own answer: {r:?}");
        }
        assert_eq!(r["tiocsti"], EPERM, "{flags:?}: the TIOCSTI guard is in every container: {r:?}");
        assert_eq!(r["tiocsti-high"], EPERM, "{flags:?}: {r:?}");
    }
}

#[test]
fn seccomp_cap_add_sys_admin_opens_namespaces_as_docker_does() {
    let Some(env) = env() else { return };
    let r =
        probe(&env, &["--cap-add", "SYS_ADMIN"], &["unshare-user", "unshare-net", "clone-newns", "keyctl", "tiocsti"]);
    assert_eq!(r["unshare-user"], 0, "{r:?}");
    assert_eq!(r["unshare-net"], 0, "{r:?}");
    assert_eq!(r["clone-newns"], 0, "{r:?}");
    assert_eq!(r["keyctl"], EPERM, "keyctl stays denied: {r:?}");
    assert_eq!(r["tiocsti"], EPERM, "{r:?}");
}

#[test]
fn seccomp_privileged_has_every_capability_and_no_masked_paths_but_no_host_privilege() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let script = "grep CapBnd /proc/self/status; grep -cE ' /proc/(keys|timer_list|sys) ' /proc/self/mountinfo; cat /proc/self/uid_map";
    let default = env.ctr().args(["run", "--rm", "alpine", "sh", "-c", script]).ok().stdout;
    let privileged = env.ctr().args(["run", "--rm", "--privileged", "alpine", "sh", "-c", script]).ok().stdout;
    let bounding = |text: &str| -> u64 {
        let hex = text.lines().find_map(|l| l.strip_prefix("CapBnd:\t")).unwrap_or_else(|| panic!("{text}"));
        u64::from_str_radix(hex, 16).unwrap()
    };
    assert_eq!(bounding(&default), 0xa804_25fb, "docker's default set: {default}");
    // Every capability this kernel knows, inside the user namespace.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
    assert_eq!(bounding(&privileged), (1u64 << (last + 1)) - 1, "{privileged}");
    let lines: Vec<&str> = default.lines().collect();
    assert_ne!(lines[1], "0", "masked and read-only /proc paths by default: {default}");
    let lines: Vec<&str> = privileged.lines().collect();
    assert_eq!(lines[1], "0", "no masked or read-only /proc path with --privileged: {privileged}");
    let map: Vec<u32> = lines[2].split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(map, [0, env.uid, 1], "still the caller's uid on the host, in a user namespace: {privileged}");
}

#[test]
fn seccomp_profile_file_decides_with_its_own_errno() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let dir = probe_dir(&env);
    let profile = dir.join("deny-mkdir.json");
    // EMLINK (31): an errno nothing else would give mkdir here.
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 31, "comment": "test"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = env
        .ctr()
        .args(["run", "--rm", "--security-opt", &opt, "alpine", "sh", "-c", "mkdir /tmp/x; echo status=$?"])
        .output();
    assert!(out.stdout.contains("status=1"), "{out:?}");
    assert!(out.stderr.contains("Too many links"), "mkdir fails with the profile's errno: {out:?}");

    let name = format!("secc-{}", std::process::id());
    env.ctr().args(["run", "-d", "--name", &name, "--security-opt", &opt, "alpine", "sleep", "60"]).ok();
    let inspect = env.ctr().args(["inspect", &name]).output();
    let exec = env.ctr().args(["exec", &name, "mkdir", "/tmp/y"]).output();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap_or_else(|e| panic!("{e}: {inspect:?}"));
    let seccomp = &json[0]["Seccomp"];
    assert_eq!(seccomp["Profile"], "file", "{seccomp}");
    assert_eq!(seccomp["Path"], profile.display().to_string(), "{seccomp}");
    assert_eq!(seccomp["Sha256"].as_str().map(str::len), Some(64), "{seccomp}");
    assert_eq!(json[0]["HostConfig"]["SecurityOpt"][0], opt.as_str());
    assert_eq!(exec.code(), Some(1), "ctr exec runs under the container's profile: {exec:?}");
    assert!(exec.stderr.contains("Too many links"), "{exec:?}");
}

#[test]
fn seccomp_exec_inherits_the_default_filter_and_inspect_and_info_show_it() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let volume = format!("{}:/probe:ro", probe_dir(&env).display());
    let name = format!("secd-{}", std::process::id());
    env.ctr().args(["run", "-d", "--name", &name, "-v", &volume, "alpine", "sleep", "60"]).ok();
    let exec = env.ctr().args(["exec", &name, "/probe/probe", "unshare-net", "keyctl", "tiocsti"]).output();
    let status = env.ctr().args(["exec", &name, "grep", "Seccomp:", "/proc/self/status"]).output();
    let inspect = env.ctr().args(["inspect", &name]).output();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    let r = parse(&exec.stdout);
    assert_eq!(
        (r.get("unshare-net"), r.get("keyctl"), r.get("tiocsti")),
        (Some(&EPERM), Some(&EPERM), Some(&EPERM)),
        "{exec:?}"
    );
    assert!(status.stdout.contains("Seccomp:\t2"), "filter mode: {status:?}");
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap_or_else(|e| panic!("{e}: {inspect:?}"));
    assert_eq!(json[0]["Seccomp"]["Profile"], "default", "{inspect:?}");
    assert_eq!(json[0]["HostConfig"]["Privileged"], false, "{inspect:?}");
    let info = env.ctr().arg("info").ok().stdout;
    let line = info.lines().find(|l| l.starts_with("Seccomp:")).unwrap_or_else(|| panic!("{info}"));
    assert!(
        line.contains("libseccomp 2.") && line.contains("kernel filter mode: yes") && line.contains("TIOCSTI"),
        "{line}"
    );
}

#[test]
fn seccomp_bad_profiles_and_unsupported_options_are_clear_errors() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let dir = probe_dir(&env);
    let malformed = dir.join("malformed.json");
    std::fs::write(
        &malformed,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}]}"#,
    )
    .unwrap();
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "defaultAction: allow").unwrap();
    for (opt, needle) in [
        (format!("seccomp={}", malformed.display()), "SCMP_ACT_ALOW"),
        (format!("seccomp={}", not_json.display()), "docker's format"),
        (format!("seccomp={}/missing.json", dir.display()), "read the profile"),
        ("no-new-privileges=false".to_owned(), "no_new_privs"),
        ("apparmor=docker-default".to_owned(), "AppArmor"),
        ("label=disable".to_owned(), "SELinux"),
        ("bogus".to_owned(), "not supported"),
    ] {
        let out = env.ctr().args(["run", "--rm", "--security-opt", &opt, "alpine", "true"]).output();
        assert_eq!(out.code(), Some(125), "{opt}: {out:?}");
        assert!(out.stderr.contains(needle), "{opt}: {out:?}");
    }
    let ok = env
        .ctr()
        .args([
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges",
            "alpine",
            "sh",
            "-c",
            "grep NoNewPrivs /proc/self/status",
        ])
        .ok();
    assert!(ok.stdout.contains("NoNewPrivs:\t1"), "{ok:?}");
}

/// `ctr exec`'s process, against the container's pid 1 (started by `ctr
/// run`): the same namespaces and cgroups, the same capabilities (less
/// those dropped, in every set), no_new_privs, the seccomp filter, and
/// SIGPIPE at its default (init must not hand the command an ignored one).
#[test]
fn exec_joins_every_namespace_and_cgroup_with_the_containers_capabilities_filter_and_default_signals() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let name = format!("secx-{}", std::process::id());
    env.ctr().args(["run", "-d", "--name", &name, "--cap-drop", "CHOWN", "alpine", "sleep", "60"]).ok();
    let script = "for ns in user mnt pid uts ipc net cgroup; do echo ns-$ns $(readlink /proc/1/ns/$ns) $(readlink /proc/self/ns/$ns); done; \
                  echo cgroups $(cat /proc/1/cgroup | sort | tr '\\n' ' ') = $(cat /proc/self/cgroup | sort | tr '\\n' ' '); \
                  for f in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp SigIgn; do \
                  echo $f $(grep ^$f: /proc/1/status | cut -f2) $(grep ^$f: /proc/self/status | cut -f2); done";
    let exec = env.ctr().args(["exec", &name, "sh", "-c", script]).output();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert!(exec.success(), "{exec:?}");
    let field = |key: &str| -> Vec<String> {
        let line = exec.stdout.lines().find(|l| l.split_whitespace().next() == Some(key));
        line.unwrap_or_else(|| panic!("no {key}: {exec:?}")).split_whitespace().skip(1).map(str::to_owned).collect()
    };
    for ns in ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"] {
        let links = field(&format!("ns-{ns}"));
        assert!(links.len() == 2 && links[0] == links[1] && links[0].starts_with(ns), "{ns}: {links:?}");
    }
    let cgroups = field("cgroups").join(" ");
    let (init, ours) = cgroups.split_once(" = ").unwrap_or_else(|| panic!("{cgroups}"));
    assert!(!init.is_empty() && init == ours, "cgroups differ: {cgroups}");
    let [bounding, effective] = [field("CapBnd"), field("CapEff")];
    assert_eq!(bounding[0], bounding[1], "the bounding set is the container's");
    assert_eq!(effective[0], effective[1], "the effective set is the container's");
    let mask = u64::from_str_radix(&bounding[1], 16).unwrap();
    assert!(mask != 0 && mask & 1 == 0, "CAP_CHOWN was dropped: {mask:x}");
    for (key, both) in [("CapInh", "0000000000000000"), ("CapAmb", "0000000000000000"), ("NoNewPrivs", "1")] {
        assert_eq!(field(key), [both, both], "{key}");
    }
    assert_eq!(field("Seccomp"), ["2", "2"], "both run under the filter");
    // Ignored dispositions survive execve; init's must not reach the
    // command. (What the caller ignores, the container inherits.)
    let ignored = field("SigIgn");
    assert_eq!(ignored[0], ignored[1], "the same dispositions as the container's pid 1");
    let sigpipe = 1 << (libc::SIGPIPE - 1);
    assert_eq!(u64::from_str_radix(&ignored[1], 16).unwrap() & sigpipe, 0, "SIGPIPE is not ignored: {ignored:?}");
}

/// The names of `parent`'s children, from /proc.
fn children_of(parent: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let stats = entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok());
    // pid (comm) state ppid ...: the comm may hold spaces, so split at the last ')'.
    stats
        .filter_map(|stat| {
            let (head, tail) = stat.rsplit_once(')')?;
            let ppid: u32 = tail.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then(|| head.split_once('(').map_or("", |(_, comm)| comm).to_owned())
        })
        .collect()
}

/// `ctr exec` waits for the command's process itself: init forks it and
/// exits, and ctr (a subreaper) inherits it, so no process of ctr's sits
/// between them; ctr's signals reach the command, whose status ctr returns.
#[test]
fn exec_waits_for_its_command_as_its_own_child_and_passes_signals_to_it() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let name = format!("secw-{}", std::process::id());
    env.ctr().args(["run", "-d", "--name", &name, "alpine", "sleep", "60"]).ok();
    let mut exec = env.ctr().args(["exec", &name, "sh", "-c", "echo up; exec sleep 30"]).spawn();
    exec.wait_for_stdout("up", std::time::Duration::from_secs(20));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut children = children_of(exec.id());
    while children != ["sleep"] && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        children = children_of(exec.id());
    }
    exec.signal(nix::sys::signal::Signal::SIGTERM);
    let out = exec.wait();
    let _ = env.ctr().args(["rm", "-f", &name]).output();
    assert_eq!(children, ["sleep"], "ctr exec's only child is the command's process");
    assert_eq!(out.code(), Some(128 + 15), "SIGTERM reached the command: {out:?}");
}
