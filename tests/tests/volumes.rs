//! Volumes and mounts, as an unprivileged user through the installed setuid
//! helper: `-v HOST:DEST[:ro]` binds, named volumes and `ctr volume`,
//! `--tmpfs`, `--read-only`, and the refusals: a mount destination that is
//! a symlink out of the image, a source the user cannot read.

use ctr_tests::{env, BaseImage, Env};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A directory in the test user's work area, owned by the user; removed on drop.
struct HostDir(PathBuf);

impl HostDir {
    fn new(env: &Env, tag: &str) -> Self {
        let path = env.work.join(format!("vol-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        Self(path)
    }

    fn write(&self, env: &Env, name: &str, content: &str) -> PathBuf {
        let file = self.0.join(name);
        std::fs::write(&file, content).unwrap();
        nix::unistd::chown(&file, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        file
    }

    fn arg(&self, dest: &str, opts: &str) -> String {
        format!("{}:{dest}{opts}", self.0.display())
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A named volume (and containers) removed on drop, even when the test fails.
struct Cleanup<'a> {
    env: &'a Env,
    volumes: Vec<String>,
    containers: Vec<String>,
    images: Vec<String>,
}

impl<'a> Cleanup<'a> {
    fn new(env: &'a Env) -> Self {
        Self { env, volumes: Vec::new(), containers: Vec::new(), images: Vec::new() }
    }

    fn volume(&mut self, tag: &str) -> String {
        let name = format!("ctrtest-{tag}-{}", std::process::id());
        self.volumes.push(name.clone());
        name
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.env.ctr().args(["rm", "-f", c]).output();
        }
        for v in &self.volumes {
            let _ = self.env.ctr().args(["volume", "rm", "-f", v]).output();
        }
        for i in &self.images {
            let _ = self.env.ctr().args(["image", "rm", i]).output();
        }
    }
}

fn run(env: &Env, mounts: &[&str], script: &str) -> ctr_tests::Output {
    env.ensure_alpine_image("alpine");
    env.ctr().args(["run", "--rm"]).args(mounts).args(["alpine", "sh", "-c", script]).output()
}

#[test]
fn a_read_only_bind_shows_host_files_and_rejects_writes_even_in_submounts() {
    let Some(env) = env() else { return };
    let dir = HostDir::new(&env, "ro");
    let file = dir.write(&env, "f", "from the host\n");
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    // A mount beneath the source: `:ro` must cover it too (recursive bind).
    let sub = dir.0.join("sub");
    nix::mount::mount(Some("tmpfs"), &sub, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("mode=0777,size=1m"))
        .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(sub.clone());

    let script = "cat /data/f; echo changed > /data/f; touch /data/new; touch /data/sub/x; echo done";
    let out = run(&env, &["-v", &dir.arg("/data", ":ro")], script);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.starts_with("from the host\n"), "{out:?}");
    assert_eq!(out.stderr.matches("Read-only file system").count(), 3, "every write must fail with EROFS: {out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from the host\n");
    assert!(!dir.0.join("new").exists() && !sub.join("x").exists());

    // Without :ro the same bind is writable, and files are the user's on the host.
    let out = run(&env, &["-v", &dir.arg("/data", "")], "echo changed > /data/f && touch /data/sub/x && echo ok");
    assert_eq!(out.stdout, "ok\n", "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "changed\n");
    assert_eq!(std::fs::metadata(sub.join("x")).unwrap().uid(), env.uid, "container root is the caller");
}

#[test]
fn a_named_volume_keeps_data_across_two_containers() {
    let Some(env) = env() else { return };
    let mut cleanup = Cleanup::new(&env);
    let name = cleanup.volume("keep");
    let spec = format!("{name}:/data");
    // /data/d ends up owned by a subordinate id, which the user cannot
    // delete on the host: `volume rm` must still remove it.
    let first = run(
        &env,
        &["-v", &spec],
        "echo persisted > /data/f && mkdir /data/d && touch /data/d/x && chown -R 123:123 /data/d && echo ok",
    );
    assert_eq!(first.stdout, "ok\n", "{first:?}");
    let second = run(&env, &["-v", &spec], "cat /data/f; ls /data");
    assert_eq!(second.stdout, "persisted\nd\nf\n", "{second:?}");

    let listed = env.ctr().args(["volume", "ls", "-q"]).ok().stdout;
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let inspect = env.ctr().args(["volume", "inspect", &name]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Name"], name.as_str());
    let mountpoint = PathBuf::from(v[0]["Mountpoint"].as_str().unwrap());
    assert!(mountpoint.starts_with(env.data_home()), "kept in the user's storage: {inspect}");
    assert_eq!(std::fs::read_to_string(mountpoint.join("f")).unwrap(), "persisted\n");
    assert!(v[0]["CreatedAt"].as_str().is_some_and(|c| c.ends_with('Z')), "{inspect}");

    assert_ne!(std::fs::metadata(mountpoint.join("d")).unwrap().uid(), env.uid);
    env.ctr().args(["volume", "rm", &name]).ok();
    assert!(!mountpoint.exists());
    let leftovers: Vec<_> = std::fs::read_dir(mountpoint.parent().unwrap().parent().unwrap()).unwrap().collect();
    assert!(leftovers.iter().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(".rm-")), "{leftovers:?}");
    assert!(!env.ctr().args(["volume", "ls", "-q"]).ok().stdout.lines().any(|l| l == name));
    assert!(!env.ctr().args(["volume", "rm", &name]).output().success(), "removing a missing volume fails");
    env.ctr().args(["volume", "rm", "-f", &name]).ok();
}

#[test]
fn an_empty_volume_gets_the_images_content_once() {
    let Some(env) = env() else { return };
    let mut cleanup = Cleanup::new(&env);
    let name = cleanup.volume("copy");
    // A directory of the image with a file in it (/etc/apk/arch on Alpine).
    let (dir, file) = BaseImage::of_run().sample_file();
    let at = |volume: &str, options: &str| format!("{volume}:{dir}{options}");
    let out = run(&env, &["-v", &at(&name, "")], &format!("cat {dir}/{file} && rm {dir}/{file} && touch {dir}/mine"));
    assert!(out.success() && !out.stdout.is_empty(), "{out:?}");
    // Not empty any more: nothing is copied again.
    let out = run(&env, &["-v", &at(&name, "")], &format!("ls {dir}"));
    assert!(out.stdout.contains("mine") && !out.stdout.contains(file), "{out:?}");
    // nocopy: an empty volume stays empty.
    let empty = cleanup.volume("nocopy");
    let out = run(&env, &["-v", &at(&empty, ":nocopy")], &format!("ls -A {dir} | wc -l"));
    assert_eq!(out.stdout.trim(), "0", "{out:?}");
}

#[test]
fn volume_rm_refuses_while_a_container_uses_it() {
    let Some(env) = env() else { return };
    env.ensure_alpine_image("alpine");
    let mut cleanup = Cleanup::new(&env);
    let name = cleanup.volume("inuse");
    let container = format!("ctrtest-vol-user-{}", std::process::id());
    cleanup.containers.push(container.clone());
    env.ctr().args(["volume", "create", &name]).ok();
    env.ctr().args(["run", "--name", &container, "-v", &format!("{name}:/data"), "alpine", "touch", "/data/x"]).ok();
    let refused = env.ctr().args(["volume", "rm", &name]).output();
    assert!(!refused.success(), "{refused:?}");
    assert!(refused.stderr.contains("in use") && refused.stderr.contains(&container), "{refused:?}");
    // (`volume prune` is not run here: it would take other tests' volumes.)
    assert!(env.ctr().args(["volume", "ls", "-q"]).ok().stdout.lines().any(|l| l == name));
    env.ctr().args(["rm", &container]).ok();
    env.ctr().args(["volume", "rm", &name]).ok();
}

/// Names, types, sizes and times of /etc's entries and /etc itself.
fn snapshot(dir: &Path) -> Vec<String> {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mut all = vec![format!(". {} {}", meta.mtime(), meta.mtime_nsec())];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        all.push(format!("{:?} {:o} {} {} {}", e.file_name(), m.mode(), m.size(), m.mtime(), m.mtime_nsec()));
    }
    all.sort();
    all
}

#[test]
fn a_symlink_in_the_image_cannot_redirect_a_mount_onto_the_host() {
    let Some(env) = env() else { return };
    let mut cleanup = Cleanup::new(&env);
    // An image whose /data is a symlink to /etc: alpine plus `data -> /etc`.
    let root = HostDir::new(&env, "evil-rootfs");
    let alpine = env.alpine.to_str().unwrap();
    env.as_user("tar", ["-xzf", alpine, "-C", root.0.to_str().unwrap()]).ok();
    std::os::unix::fs::symlink("/etc", root.0.join("data")).unwrap();
    std::os::unix::fs::lchown(root.0.join("data"), Some(env.uid), Some(env.gid)).unwrap();
    let tarball = env.work.join(format!("evil-{}.tar.gz", std::process::id()));
    env.as_user("tar", ["-czf", tarball.to_str().unwrap(), "-C", root.0.to_str().unwrap(), "."]).ok();
    let image = format!("ctrtest-symlink-{}", std::process::id());
    cleanup.images.push(image.clone());
    env.ctr().args(["image", "import", tarball.to_str().unwrap(), &image]).ok();
    let _ = std::fs::remove_file(&tarball);

    let host = HostDir::new(&env, "bind-src");
    host.write(&env, "planted", "x\n");
    let volume = cleanup.volume("escape");
    let before = snapshot(Path::new("/etc"));
    let rootfs = root.0.to_str().unwrap().to_owned();
    let attempts: Vec<Vec<String>> = vec![
        vec!["-v".into(), host.arg("/data", "")],
        vec!["-v".into(), host.arg("/data", ":ro")],
        vec!["-v".into(), host.arg("/data/planted-dir", "")],
        vec!["-v".into(), format!("{volume}:/data")],
        vec!["--tmpfs".into(), "/data".into()],
        vec!["--tmpfs".into(), "/data/sub".into()],
    ];
    for mounts in &attempts {
        for source in [vec![image.clone()], vec!["--rootfs".into(), rootfs.clone()]] {
            let out = env.ctr().args(["run", "--rm"]).args(mounts).args(&source).args(["/bin/true"]).output();
            assert_eq!(out.code(), Some(125), "{mounts:?} {source:?} must fail: {out:?}");
            assert!(
                out.stderr.contains("/data in the image is a symlink (to /etc)")
                    && out.stderr.contains("does not follow symlinks"),
                "the error says why: {out:?}"
            );
        }
    }
    assert_eq!(snapshot(Path::new("/etc")), before, "the host's /etc changed");
    assert!(
        !Path::new("/etc/planted").exists()
            && !Path::new("/etc/planted-dir").exists()
            && !Path::new("/etc/sub").exists()
    );
    // The image still runs without the mount, and its link stays a link.
    let out = env.ctr().args(["run", "--rm", &image, "readlink", "/data"]).ok();
    assert_eq!(out.stdout, "/etc\n");
}

#[test]
fn sources_the_user_cannot_use_are_refused() {
    let Some(env) = env() else { return };
    let refused = |spec: &str, says: &str| {
        let out = run(&env, &["-v", spec], "true");
        assert_eq!(out.code(), Some(125), "{spec}: {out:?}");
        assert!(out.stderr.contains(says), "{spec}: {out:?}");
    };
    assert_eq!(std::fs::metadata("/root").unwrap().mode() & 0o007, 0, "the test needs /root closed to others");
    refused("/root:/r", "you cannot read it");
    refused("/root:/r:ro", "you cannot read it");
    refused("/no/such/ctr/dir:/d", "does not exist");
    refused("rel/dir:/d", "relative");
    refused("bad$name:/d", "invalid characters");
    refused("/tmp:relative", "absolute");
    refused("/tmp:/", "can't be '/'");
    refused("/tmp:/proc/sys", "/proc");
    let dup = run(&env, &["-v", "/tmp:/d", "--tmpfs", "/d"], "true");
    assert!(dup.stderr.contains("duplicate mount point"), "{dup:?}");
}

#[test]
fn read_only_root_leaves_volumes_tmpfs_and_dev_writable() {
    let Some(env) = env() else { return };
    let dir = HostDir::new(&env, "rw-under-ro");
    let script = "touch /x 2>&1; touch /usr/y 2>&1; touch /run/a /dev/shm/b /data/c /tmp/d && echo writable";
    let out = run(&env, &["--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp", "-v", &dir.arg("/data", "")], script);
    assert!(out.stdout.contains("touch: /x: Read-only file system"), "{out:?}");
    assert!(out.stdout.contains("touch: /usr/y: Read-only file system"), "{out:?}");
    assert!(out.stdout.ends_with("writable\n"), "{out:?}");
    assert!(dir.0.join("c").exists());
    // Without --read-only the root is writable as before.
    assert_eq!(run(&env, &[], "touch /x && echo ok").stdout, "ok\n");
}

#[test]
fn tmpfs_takes_only_known_options() {
    let Some(env) = env() else { return };
    let out = run(&env, &["--tmpfs", "/t:size=1m,mode=1700"], "grep ' /t ' /proc/mounts; touch /t/x && echo ok");
    assert!(out.success(), "{out:?}");
    let line = out.stdout.lines().next().unwrap_or_default().to_owned();
    for want in ["tmpfs /t tmpfs", "nosuid", "nodev", "noexec", "size=1024k", "mode=1700"] {
        assert!(line.contains(want), "{want} missing from {line:?}");
    }
    assert!(out.stdout.ends_with("ok\n"));
    let exec = run(&env, &["--tmpfs", "/t:exec"], "grep ' /t ' /proc/mounts");
    assert!(!exec.stdout.contains("noexec"), "{exec:?}");
    for bad in ["/t:nr_inodes=1", "/t:size=1m,context=x", "/t:mode=99", "/t:suid"] {
        let out = run(&env, &["--tmpfs", bad], "true");
        assert_eq!(out.code(), Some(125), "{bad}: {out:?}");
        assert!(out.stderr.contains("--tmpfs"), "{bad}: {out:?}");
    }
}
