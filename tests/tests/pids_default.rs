//! Issue 10, item 6: a container started without `--pids-limit` gets the
//! helper's `default_pids_limit` (2048 unless helper.toml says otherwise),
//! in its real pids cgroup and in `ctr inspect`; `--pids-limit -1` still
//! asks for no limit, as docker's does, and an explicit limit wins.

use ctr_tests::{env, Env};
use std::path::PathBuf;

/// `ctr inspect NAME` as JSON (one object).
fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let out = env.ctr().args(["inspect", name]).ok().stdout;
    let value: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    match value {
        serde_json::Value::Array(mut all) => all.remove(0),
        one => one,
    }
}

/// pids.max of the container's cgroup, read on the host.
fn pids_max(info: &serde_json::Value) -> String {
    let dirs: Vec<PathBuf> = info["CgroupPaths"]
        .as_array()
        .expect("CgroupPaths")
        .iter()
        .filter_map(|p| p.as_str().map(PathBuf::from))
        .collect();
    dirs.iter()
        .find_map(|d| std::fs::read_to_string(d.join("pids.max")).ok())
        .unwrap_or_else(|| panic!("no pids.max in {dirs:?}"))
        .trim()
        .to_owned()
}

#[test]
fn containers_get_the_default_pids_limit_unless_they_ask_otherwise() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut seen = Vec::new();
    for (flags, expected_file, expected_inspect) in [
        (vec![], "2048", Some(2048i64)),
        (vec!["--pids-limit", "100"], "100", Some(100)),
        (vec!["--pids-limit", "-1"], "max", Some(-1)),
    ] {
        let name = ctr_tests::unique_name("pids");
        env.ctr()
            .args(["run", "-d", "--network", "none", "--name", &name])
            .args(&flags)
            .args(["alpine", "sleep", "60"])
            .ok();
        let info = inspect(&env, &name);
        let in_file = pids_max(&info);
        let in_inspect = info["HostConfig"]["PidsLimit"].as_i64();
        env.ctr().args(["rm", "-f", &name]).ok();
        assert_eq!(in_file, expected_file, "{flags:?}: pids.max");
        assert_eq!(in_inspect, expected_inspect, "{flags:?}: inspect's HostConfig.PidsLimit");
        seen.push((flags, in_file));
    }
    eprintln!("pids.max by flags: {seen:?}");
}
