//! `ctr diff`, `ctr commit` and `ctr export` (issue 14, item 4), as the
//! unprivileged test user through the setuid helper: a container's
//! writable layer, added and deleted files included, read while the
//! container runs and after it stopped.

use ctr_tests::{env, BaseImage, Started};
use std::collections::BTreeSet;

#[test]
fn diff_commit_and_export_a_containers_changes() {
    let Some(env) = env() else { return };
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
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
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
