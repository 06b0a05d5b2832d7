//! A conformance set from the runtime spec: one bundle per config.json
//! field (from `ctr-oci spec`'s default config and the test's Alpine
//! rootfs), checked from inside the container by a shell test that prints
//! PASS. Each bundle runs under ctr-oci and under crun, in this one test;
//! both scores are printed, and ctr-oci must pass every case crun passes.
//!
//! crun refuses this hybrid host (v1 controllers with an empty v2 tree)
//! unless the v2 tree is hidden, which it is in a private mount namespace
//! of crun's own, and runs without a cgroup (its manager would put the
//! container outside the test's memory cgroup); ctr-oci makes its cgroup
//! beneath its own. No case here depends on a cgroup.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    name: &'static str,
    edit: fn(&mut Value, &Path),
    check: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "user namespace with id maps",
        edit: |c, _| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "user" }));
            let map = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
            c["linux"]["uidMappings"] = map.clone();
            c["linux"]["gidMappings"] = map;
        },
        check: r#"[ "$(id -u)" = 0 ] && grep -q '^ *0 *100000 *65536$' /proc/self/uid_map"#,
    },
    Case {
        name: "seccomp",
        edit: |c, _| {
            c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] });
        },
        check: r#"[ "$(mkdir /tmp/x 2>&1 | grep -c 'not permitted')" = 1 ] && [ ! -e /tmp/x ]"#,
    },
    Case {
        // runtime-tools' profiles list what they allow, and close_range is
        // not on them: the descriptors must be closed without it.
        name: "seccomp loaded before exec refuses close_range",
        edit: |c, _| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] });
        },
        check: r#"ls /proc/$$/fd > /tmp/fds && [ "$(tr '\n' ' ' < /tmp/fds)" = "0 1 2 " ]"#,
    },
    Case { name: "pid namespace", edit: |_, _| {}, check: r#"[ "$$" = 1 ]"# },
    Case {
        name: "cgroup namespace",
        edit: |c, _| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "cgroup" })),
        check: r#"grep -q '^[0-9]*:memory:/$' /proc/self/cgroup || grep -q '^0::/$' /proc/self/cgroup"#,
    },
    Case { name: "mqueue mount", edit: |_, _| {}, check: "grep -q '^mqueue /dev/mqueue mqueue' /proc/mounts" },
    Case {
        name: "hostname",
        edit: |c, _| c["hostname"] = json!("conf-host"),
        check: r#"[ "$(hostname)" = conf-host ]"#,
    },
    Case {
        name: "domainname",
        edit: |c, _| c["domainname"] = json!("conf.example"),
        check: r#"[ "$(cat /proc/sys/kernel/domainname)" = conf.example ]"#,
    },
    Case {
        name: "env",
        edit: |c, _| c["process"]["env"] = json!(["PATH=/usr/bin:/bin", "CONF_A=one two"]),
        check: r#"[ "$CONF_A" = "one two" ] && [ "$PATH" = /usr/bin:/bin ]"#,
    },
    Case { name: "cwd", edit: |c, _| c["process"]["cwd"] = json!("/etc"), check: r#"[ "$(pwd)" = /etc ]"# },
    Case {
        name: "user and additionalGids",
        edit: |c, _| c["process"]["user"] = json!({ "uid": 1000, "gid": 1001, "additionalGids": [10, 20] }),
        check: r#"[ "$(id -u)" = 1000 ] && [ "$(id -g)" = 1001 ] && id -G | grep -qw 10 && id -G | grep -qw 20"#,
    },
    Case {
        name: "capability sets",
        edit: |c, _| {
            let two = json!(["CAP_CHOWN", "CAP_NET_RAW"]);
            c["process"]["capabilities"] =
                json!({ "bounding": two, "effective": two, "permitted": two, "inheritable": [], "ambient": [] });
        },
        check: "grep -q '^CapBnd:\t0000000000002001$' /proc/self/status && \
                grep -q '^CapEff:\t0000000000002001$' /proc/self/status && \
                grep -q '^CapInh:\t0000000000000000$' /proc/self/status",
    },
    Case {
        name: "ambient capabilities for a non-root user",
        edit: |c, _| {
            let one = json!(["CAP_NET_BIND_SERVICE"]);
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            c["process"]["capabilities"] =
                json!({ "bounding": one, "effective": one, "permitted": one, "inheritable": one, "ambient": one });
        },
        check: "grep -q '^CapAmb:\t0000000000000400$' /proc/self/status && \
                grep -q '^CapEff:\t0000000000000400$' /proc/self/status",
    },
    Case {
        name: "rlimits",
        edit: |c, _| c["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 123, "hard": 456 }]),
        check: r#"[ "$(ulimit -n)" = 123 ] && [ "$(ulimit -Hn)" = 456 ]"#,
    },
    Case {
        name: "noNewPrivileges",
        edit: |c, _| c["process"]["noNewPrivileges"] = json!(true),
        check: "grep -q '^NoNewPrivs:\t1$' /proc/self/status",
    },
    Case {
        name: "oomScoreAdj",
        edit: |c, _| c["process"]["oomScoreAdj"] = json!(123),
        check: r#"[ "$(cat /proc/self/oom_score_adj)" = 123 ]"#,
    },
    Case {
        name: "readonly rootfs",
        edit: |c, _| c["root"]["readonly"] = json!(true),
        check: "! touch /conf-x 2>/dev/null && grep -q '^[^ ]* / [^ ]* ro[,\\ ]' /proc/mounts",
    },
    Case {
        name: "writable rootfs",
        edit: |c, _| c["root"]["readonly"] = json!(false),
        check: "touch /conf-x && rm /conf-x",
    },
    Case {
        name: "maskedPaths",
        edit: |c, _| c["linux"]["maskedPaths"] = json!(["/etc/alpine-release", "/opt"]),
        check: r#"[ -z "$(cat /etc/alpine-release)" ] && [ -z "$(ls -A /opt)" ] && ! touch /opt/x 2>/dev/null"#,
    },
    Case {
        name: "readonlyPaths",
        edit: |c, _| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["readonlyPaths"] = json!(["/etc"]);
        },
        check: "! touch /etc/conf-x 2>/dev/null && touch /conf-y && rm /conf-y",
    },
    Case {
        name: "sysctl",
        edit: |c, _| c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.msgmax": "4321" }),
        check: r#"[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] && [ "$(cat /proc/sys/kernel/msgmax)" = 4321 ]"#,
    },
    Case {
        name: "tmpfs mount",
        edit: |c, _| {
            let mount = json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1770", "nosuid"] });
            c["mounts"].as_array_mut().unwrap().push(mount);
        },
        check: "grep -q '^tmpfs /mnt tmpfs rw,nosuid,.*size=1024k,mode=1770' /proc/mounts && touch /mnt/x",
    },
    Case {
        name: "read-only bind mount",
        edit: |c, bundle| {
            let source = bundle.join("data");
            std::fs::create_dir_all(&source).unwrap();
            std::fs::write(source.join("f"), "bound\n").unwrap();
            let mount = json!({ "destination": "/srv", "type": "bind", "source": source, "options": ["rbind", "ro"] });
            c["mounts"].as_array_mut().unwrap().push(mount);
        },
        check: r#"[ "$(cat /srv/f)" = bound ] && ! touch /srv/g 2>/dev/null"#,
    },
    Case {
        name: "devices",
        edit: |c, _| {
            c["linux"]["devices"] = json!([{ "path": "/dev/conf-zero", "type": "c", "major": 1, "minor": 5,
                "fileMode": 0o640, "uid": 0, "gid": 0 }]);
        },
        check: "[ -c /dev/conf-zero ] && [ \"$(stat -c '%a %t:%T' /dev/conf-zero)\" = '640 1:5' ] && \
                [ \"$(head -c 3 /dev/conf-zero | od -An -tx1 | tr -d ' ')\" = 000000 ]",
    },
    Case {
        // Outside the devices every container may use: the device cgroup
        // must let init make them (mknod) once the spec lists them.
        name: "devices beyond the default allow list",
        edit: |c, _| {
            c["linux"]["resources"]["devices"] = json!([{ "allow": false, "access": "rwm" }]);
            c["linux"]["devices"] = json!([
                { "path": "/dev/conf-tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o600 },
                { "path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600 }]);
        },
        check: "[ \"$(stat -c '%F %t:%T' /dev/conf-tun)\" = 'character special file a:c8' ] && \
                [ \"$(stat -c '%F %t:%T' /dev/conf-loop)\" = 'block special file 7:c8' ]",
    },
    Case {
        name: "standard devices",
        edit: |_, _| {},
        check: "for d in null zero full random urandom tty; do [ -c /dev/$d ] || exit 1; done && \
                echo x > /dev/null && [ -L /dev/fd ] && [ -e /dev/pts/ptmx ]",
    },
];

/// A bundle for `case`, printing PASS when its check holds.
fn make_bundle(env: &ctr_tests::Env, dir: &Path, case: &Case) {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let status = Command::new("tar").arg("-xzf").arg(&env.alpine).arg("-C").arg(&rootfs).status().unwrap();
    assert!(status.success());
    env.as_root(env.prefix.join("bin/ctr-oci"), ["spec", "--bundle"]).arg(dir).ok();
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["linux"]["cgroupsPath"] = json!(ctr_tests::unique_name("ctr-oci-conf-cg-"));
    config["process"]["args"] = json!(["sh", "-c", format!("{} && echo PASS", case.check)]);
    (case.edit)(&mut config, dir);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// Whether the runtime ran the bundle and the check printed PASS; and
/// what it said otherwise.
fn passes(out: &ctr_tests::Output) -> Result<(), String> {
    if out.success() && out.stdout.lines().any(|l| l == "PASS") {
        Ok(())
    } else {
        Err(format!("{} stdout {:?} stderr {:?}", out.status, out.stdout, out.stderr))
    }
}

#[test]
fn oci_conformance_set_against_crun() {
    let Some(env) = ctr_tests::env() else { return };
    let base = std::env::temp_dir().join(ctr_tests::unique_name("ctr-oci-conf-"));
    let ctr_oci = env.prefix.join("bin/ctr-oci");
    let mut results: Vec<Outcome> = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let dir: PathBuf = base.join(n.to_string());
        make_bundle(&env, &dir, case);
        let id = ctr_tests::unique_name("conf-");
        let ours = env
            .as_root(&ctr_oci, ["--root"])
            .arg(base.join("state"))
            .args(["run", "--bundle"])
            .arg(&dir)
            .arg(&id)
            .output();
        let crun =
            env.crun().arg("--root").arg(base.join("crun-state")).args(["run", "--bundle"]).arg(&dir).arg(&id).output();
        results.push(Outcome { name: case.name, ours: passes(&ours), crun: passes(&crun) });
    }
    let _ = std::fs::remove_dir_all(&base);
    let ours = results.iter().filter(|r| r.ours.is_ok()).count();
    let crun = results.iter().filter(|r| r.crun.is_ok()).count();
    eprintln!("conformance: ctr-oci {ours}/{n}, crun {crun}/{n}", n = results.len());
    for r in &results {
        eprintln!("  {}: ctr-oci {}, crun {}", r.name, verdict(&r.ours), verdict(&r.crun));
    }
    let behind: Vec<String> = results
        .iter()
        .filter_map(|r| match (&r.ours, &r.crun) {
            (Err(why), Ok(())) => Some(format!("{}: {why}", r.name)),
            _ => None,
        })
        .collect();
    assert!(behind.is_empty(), "ctr-oci fails what crun passes:\n{}", behind.join("\n"));
    assert!(crun > CASES.len() / 2, "crun passed only {crun} cases: the comparison means little");
    // Neither runtime may hand the host's /dev/null to a user namespace's
    // root (by fchown of stdio, or of a device bound into the container).
    let null = std::fs::metadata("/dev/null").unwrap();
    let owner = (std::os::unix::fs::MetadataExt::uid(&null), std::os::unix::fs::MetadataExt::gid(&null));
    assert_eq!(owner, (0, 0), "the host's /dev/null changed owner");
}

/// One case's result under each runtime (Err: what the runtime said).
struct Outcome {
    name: &'static str,
    ours: Result<(), String>,
    crun: Result<(), String>,
}

fn verdict(result: &Result<(), String>) -> String {
    match result {
        Ok(()) => "pass".to_owned(),
        Err(why) => format!("FAIL ({why})"),
    }
}
