//! `ctr diff`, `ctr commit` and `ctr export` (issue 14, item 4), as the
//! unprivileged test user through the setuid helper: a container's
//! writable layer, added and deleted files included, read while the
//! container runs and after it stopped.

use ctr_tests::{env, BaseImage, Started};
use std::collections::BTreeSet;

#[test]
fn diff_commit_and_export_a_containers_changes() {
    let Some(env) = env() else { return };
    // The other test here prunes every stopped container.
    let _serial = ctr_tests::one_at_a_time();
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("commit");
    let image = format!("{name}-img:v1");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "300"]);
    let (dir, file) = BaseImage::of_run().sample_file();
    let script = format!("mkdir -p /made/sub && echo made > /made/sub/file && rm {dir}/{file}");
    env.ctr().args(["exec", &name, "sh", "-c", &script]).ok();

    let diff = |expect_running: bool| {
        let out = env.ctr().args(["diff", &name]).ok().stdout;
        let lines: BTreeSet<&str> = out.lines().collect();
        for line in ["A /made", "A /made/sub", "A /made/sub/file", &format!("D {dir}/{file}"), &format!("C {dir}")] {
            assert!(lines.contains(line), "running {expect_running}: no {line:?} in\n{out}");
        }
        assert!(!lines.iter().any(|l| l.contains("/bin/")), "unchanged files listed:\n{out}");
    };
    diff(true);

    let out = env
        .ctr()
        .args(["commit", "--change", r#"CMD ["cat", "/made/sub/file"]"#, "--change", "ENV FROM_COMMIT=yes"])
        .args(["-m", "a test", &name, &image])
        .ok();
    let id = out.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "commit printed {:?}", out.stdout);
    let run = env.ctr().args(["run", "--rm", "--network", "none", &image]).ok();
    assert_eq!(run.stdout, "made\n", "the image's CMD and the new file");
    let check = format!("test -e {dir}/{file} && echo present || echo gone; echo $FROM_COMMIT");
    let run = env.ctr().args(["run", "--rm", "--network", "none", &image, "sh", "-c", &check]).ok();
    assert_eq!(run.stdout, "gone\nyes\n", "the deleted file stays deleted (a whiteout), ENV is set");

    // Export, running and stopped: the whole file system, changes applied.
    let tar_names = |path: &std::path::Path| -> BTreeSet<String> {
        let file = std::fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(file);
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string().trim_end_matches('/').to_owned())
            .collect()
    };
    let out_file = env.work.join(format!("{name}.tar"));
    for round in ["running", "stopped"] {
        let _ = std::fs::remove_file(&out_file);
        env.ctr().args(["export", "-o", out_file.to_str().unwrap(), &name]).ok();
        let names = tar_names(&out_file);
        assert!(names.contains("made/sub/file"), "{round}: {names:?}");
        assert!(names.contains("bin/sh") || names.contains("bin"), "{round}: the image's files: {names:?}");
        let deleted = format!("{}/{file}", dir.trim_start_matches('/'));
        assert!(!names.contains(&deleted), "{round}: {deleted} is deleted");
        assert!(names.contains(dir.trim_start_matches('/')), "{round}: {dir}");
        if round == "running" {
            env.ctr().args(["stop", "-t", "0", &name]).ok();
            diff(false);
        }
    }
    let _ = std::fs::remove_file(&out_file);
    env.ctr().args(["rmi", &image]).ok();
}

#[test]
fn top_history_system_df_and_prune_after_a_commit() {
    let Some(env) = env() else { return };
    let _serial = ctr_tests::one_at_a_time();
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("top");
    let image = format!("{name}-img:v1");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "300"]);

    let top = env.ctr().args(["top", &name]).ok().stdout;
    let mut lines = top.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["UID", "PID", "PPID", "CMD"], "{top}");
    let sleep = lines.find(|l| l.ends_with("sleep 300")).unwrap_or_else(|| panic!("no sleep in\n{top}"));
    assert_eq!(sleep.split_whitespace().next(), Some(env.uid.to_string().as_str()), "{top}");

    let id = env.ctr().args(["commit", "-m", "a habit", &name, &image]).ok().stdout.trim().to_owned();
    let history = env.ctr().args(["history", &image]).ok().stdout;
    let rows: Vec<&str> = history.lines().collect();
    assert!(rows[0].starts_with("IMAGE") && rows[0].contains("CREATED BY"), "{history}");
    assert!(
        rows[1].starts_with(&id[7..19]) && rows[1].contains("ctr commit") && rows[1].ends_with("a habit"),
        "{history}"
    );
    assert!(rows.len() >= 3 && rows[2].starts_with("<missing>"), "{history}");
    assert_eq!(env.ctr().args(["history", "-q", &image]).ok().stdout, format!("{}\n", &id[7..19]));

    let df = env.ctr().args(["system", "df"]).ok().stdout;
    let kinds: Vec<&str> = df.lines().map(|l| l.split("   ").next().unwrap_or_default().trim()).collect();
    assert_eq!(kinds, ["TYPE", "Images", "Containers", "Local Volumes"], "{df}");
    let containers: Vec<&str> = df.lines().nth(2).unwrap().split_whitespace().collect();
    assert!(containers[1].parse::<u32>().unwrap() >= 1 && containers[2].parse::<u32>().unwrap() >= 1, "{df}");

    let unasked = env.ctr().args(["system", "prune"]).output();
    assert_eq!(unasked.code(), Some(125), "{}", unasked.stderr);
    env.ctr().args(["stop", "-t", "0", &name]).ok();
    let pruned = env.ctr().args(["system", "prune", "-f"]).ok().stdout;
    assert!(pruned.contains(&name) || pruned.contains("Deleted Containers"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(env.ctr().args(["ps", "-a", "-q", "--filter", &format!("name={name}")]).ok().stdout, "", "pruned");
    started.names.clear();
    env.ctr().args(["rmi", &image]).ok();
}

/// A commit killed midway leaves its work directory (`layers/.work-*`);
/// the next command that makes one removes it, but never one whose owner
/// still holds its lock.
#[test]
fn a_killed_commits_work_directory_is_removed_by_the_next_and_a_held_one_is_kept() {
    use std::path::PathBuf;
    let Some(env) = env() else { return };
    // No other commit of this binary makes work directories meanwhile.
    let _serial = ctr_tests::one_at_a_time();
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("killedcommit");
    let script = "head -c 60000000 /dev/urandom > /big && touch /ready && exec sleep 300";
    started.run_d(&name, &["--network", "none", "alpine", "sh", "-c", script]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env.ctr().args(["exec", &name, "test", "-e", "/ready"]).output().success() {
        assert!(std::time::Instant::now() < deadline, "the container never wrote /big");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let layers = env.data_home().join("ctr/layers");
    let work_dirs = || -> BTreeSet<PathBuf> {
        std::fs::read_dir(&layers)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".work-"))
            .map(|e| e.path())
            .collect()
    };
    let before = work_dirs();
    let mut commit = env.ctr().args(["commit", &name]).spawn();
    let killed = loop {
        let layer_started = work_dirs().difference(&before).find(|d| d.join("layer.tar").exists()).cloned();
        if let Some(dir) = layer_started {
            break dir;
        }
        assert!(commit.is_running(), "the commit ended before it could be killed");
        assert!(std::time::Instant::now() < deadline, "the commit never wrote its layer");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    commit.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = commit.wait();
    assert!(killed.exists(), "the killed commit left {}", killed.display());

    // A work directory whose owner (this test) holds its lock.
    let held = layers.join(format!(".work-held-{}", std::process::id()));
    std::fs::create_dir(&held).unwrap();
    nix::unistd::chown(&held, Some(env.uid.into()), Some(env.gid.into())).unwrap();
    let lock = nix::fcntl::Flock::lock(std::fs::File::open(&held).unwrap(), nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    let first = env.ctr().args(["commit", &name]).timeout(std::time::Duration::from_secs(300)).ok();
    assert!(!killed.exists(), "the next commit removed {}", killed.display());
    assert!(held.exists(), "a work directory in use was removed");
    drop(lock);
    let second = env.ctr().args(["commit", &name]).timeout(std::time::Duration::from_secs(300)).ok();
    assert!(!held.exists(), "once its lock was released, {} was removed", held.display());
    for id in [first.stdout.trim(), second.stdout.trim()] {
        let _ = env.ctr().args(["rmi", id]).output();
    }
}
