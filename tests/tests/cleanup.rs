//! After `--rm` runs, successful or failed, nothing of the container is
//! left: no cgroup in any hierarchy, no mount, no state, no storage. One
//! test in its own binary, so nothing else runs while it counts.

use ctr_tests::{env, Env};
use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
}

fn state_root(env: &Env) -> PathBuf {
    // XDG_RUNTIME_DIR is unset under the harness, as under `su`.
    PathBuf::from(format!("/tmp/ctr-run-{}/ctr", env.uid))
}

#[test]
fn nothing_is_left_after_rm_runs_and_failed_runs() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let runs: [(&[&str], i32); 6] = [
        (&["alpine", "true"], 0),
        (&["alpine", "sh", "-c", "exit 3"], 3),
        (&["alpine", "no-such-command"], 127),
        (&["-w", "/nonexistent/but/created", "alpine", "pwd"], 0),
        (&["-u", "no-such-user", "alpine", "true"], 125),
        // Files that only a subordinate id owns still get removed.
        (&["alpine", "sh", "-c", "su -s /bin/sh nobody -c 'mkdir -m 700 /tmp/private && touch /tmp/private/f'"], 0),
    ];
    for (args, expected) in runs {
        let out = env.ctr().args(["run", "--rm"]).args(args).output();
        assert_eq!(out.code(), Some(expected), "ctr run --rm {args:?}: {}", out.stderr);
    }
    let missing = env.ctr().args(["run", "--rm", "not-an-image", "true"]).output();
    assert_eq!(missing.code(), Some(125));

    env.await_helper_teardowns();
    let leftovers = ctr_tests::cgroup_leftovers();
    assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
    let records = entries(&PathBuf::from(format!("/run/ctr-helper/{}", env.uid)));
    assert!(records.is_empty(), "helper records left: {records:?}");
    let mounts = ctr_tests::mounts_under(&env.work);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    for dir in [
        state_root(&env).join("attach"),
        env.data_home().join("ctr/container-names"),
        env.data_home().join("ctr/containers"),
    ] {
        let left = entries(&dir);
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}
