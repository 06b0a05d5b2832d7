//! Host paths that cross into a container are resolved once: a volume
//! source checked by `ctr` and then swapped for a symlink (by whoever can
//! write one of its parent directories) must never redirect the mount.

mod boundary_support;

use boundary_support::{attacker, Containers, HostDir};
use ctr_tests::env;
use std::time::Duration;

/// The `Source` of the container's first mount, as `ctr inspect` shows it.
fn mount_source(env: &ctr_tests::Env, name: &str) -> String {
    let out = env.ctr().args(["inspect", name]).ok();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("inspect is JSON: {e}: {}", out.stdout));
    let container = if json.is_array() { &json[0] } else { &json };
    container["Mounts"][0]["Source"].as_str().unwrap_or_else(|| panic!("no mount source in {json}")).to_owned()
}

#[test]
fn volume_source_symlink_race() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut containers = Containers::new(&env);
    let shared = HostDir::new(&env, "src-race");
    let real = shared.make(&env, "dir", None);
    std::fs::write(real.join("marker"), "REAL\n").unwrap();
    let target = HostDir::new(&env, "src-race-target");
    target.make(&env, "marker", Some("TARGET\n"));
    shared.link(&env, "dir.alt", &target.0);
    let named = real.display().to_string();

    // A process of the user keeps exchanging `dir` and the symlink `dir.alt`.
    let swapper = env
        .as_user(attacker(&env), ["swap", &named, &format!("{named}.alt"), "300"])
        .timeout(Duration::from_secs(400))
        .spawn();
    let name = containers.name("src-race");
    let (mut real_seen, mut followed_at_check, mut refused, mut redirected) = (0, 0, 0, Vec::new());
    for i in 0..60 {
        let out = env
            .ctr()
            .args(["run", "--name", &name, "-v", &format!("{named}:/mnt"), "alpine", "cat", "/mnt/marker"])
            .output();
        if out.success() {
            // ctr may have found the symlink when it canonicalised the path
            // (docker follows it too): then the target is what it checked.
            let checked = mount_source(&env, &name);
            let expected = if checked == named { "REAL\n" } else { "TARGET\n" };
            if checked != named {
                assert_eq!(checked, target.0.display().to_string());
                followed_at_check += 1;
            } else {
                real_seen += 1;
            }
            if out.stdout != expected {
                redirected.push(format!("start {i}: ctr checked {checked}, the container saw {:?}", out.stdout));
            }
        } else {
            assert_eq!(out.code(), Some(125), "a start may fail, but cleanly: {out:?}");
            refused += 1;
        }
        let _ = env.ctr().args(["rm", "-f", &name]).output();
    }
    drop(swapper);
    eprintln!(
        "60 starts: {real_seen} mounted the real directory, {followed_at_check} the symlink's target as ctr resolved it, \
{refused} refused, {} redirected",
        redirected.len()
    );
    assert!(redirected.is_empty(), "the mount was redirected after ctr checked its source:\n{}", redirected.join("\n"));
    assert!(refused > 0 || followed_at_check > 0, "the swap never showed, so the race was not tested");
}
