//! `ctr cp` (issue 14, item 4), as the unprivileged test user through the
//! setuid helper: both ways, docker's destination rules, tar streams, and
//! never a symlink of the container followed to a host path, even while
//! the container keeps swapping a directory for such a symlink (the class
//! of CVE-2018-15664 and CVE-2025-47290).

use ctr_tests::{env, Env, Started};
use std::path::{Path, PathBuf};

/// A directory of the test user's, removed on drop.
struct UserDir(PathBuf);

impl UserDir {
    fn new(env: &Env, tag: &str) -> Self {
        let path = env.work.join(format!("{tag}-{}", ctr_tests::unique_name("")));
        std::fs::create_dir_all(&path).unwrap();
        nix::unistd::chown(&path, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        Self(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for UserDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sh(env: &Env, name: &str, script: &str) -> String {
    env.ctr().args(["exec", name, "sh", "-c", script]).ok().stdout
}

#[test]
fn cp_copies_files_and_trees_both_ways_as_docker_does() {
    let Some(env) = env() else { return };
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("cp");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "300"]);
    let dir = UserDir::new(&env, "cp");
    let hello = dir.file("hello.txt", "hello from the host\n");
    dir.file("tree/a/b.txt", "deep\n");
    let at = |path: &str| format!("{name}:{path}");

    // In: a file into a directory, as the container's root.
    let out = env.ctr().args(["cp", p(&hello), &at("/tmp/")]).ok();
    assert!(out.stderr.contains("Successfully copied 20B to"), "{}", out.stderr);
    assert_eq!(
        sh(&env, &name, "cat /tmp/hello.txt; stat -c '%u:%g %a' /tmp/hello.txt"),
        "hello from the host\n0:0 644\n"
    );
    // -a keeps the source's owner (the test user's uid, mapped inside).
    let mine = dir.file("mine.txt", "mine\n");
    nix::unistd::chown(&mine, Some(env.uid.into()), Some(env.gid.into())).unwrap();
    env.ctr().args(["cp", "-a", p(&mine), &at("/tmp/kept")]).ok();
    assert_eq!(sh(&env, &name, "stat -c %u:%g /tmp/kept"), format!("{}:{}\n", env.uid, env.gid));
    // A tree to a new name, and into an existing directory.
    env.ctr().args(["cp", p(&dir.path("tree")), &at("/tmp/newtree")]).ok();
    env.ctr().args(["cp", p(&dir.path("tree")), &at("/tmp")]).ok();
    assert_eq!(sh(&env, &name, "cat /tmp/newtree/a/b.txt /tmp/tree/a/b.txt"), "deep\ndeep\n");
    // A missing directory on the way is an error, not created.
    let out = env.ctr().args(["cp", p(&hello), &at("/no/such/dir/x")]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("/no/such/dir"), "{}", out.stderr);

    // Out: a tree with a symlink (copied as a symlink), a file into a directory.
    sh(&env, &name, "mkdir -p /srv/data && echo inside > /srv/data/x.txt && ln -s /etc/hostname /srv/data/l");
    env.ctr().args(["cp", &at("/srv/data"), p(&dir.path("out"))]).ok();
    assert_eq!(std::fs::read_to_string(dir.path("out/x.txt")).unwrap(), "inside\n");
    assert_eq!(std::fs::read_link(dir.path("out/l")).unwrap(), Path::new("/etc/hostname"));
    let out = env.ctr().args(["cp", &at("/srv/data/x.txt"), &format!("{}/", dir.0.display())]).ok();
    assert!(out.stderr.contains("Successfully copied 7B"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path("x.txt")).unwrap(), "inside\n");
    let meta = std::fs::metadata(dir.path("x.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), env.uid, "copied out as the caller");

    // Tar streams both ways.
    let ctr = env.ctr_path();
    let listing = env
        .as_user("sh", ["-c", &format!("{} cp {} - | tar -tf - | sed 's,/$,,' | sort", ctr.display(), at("/srv/data"))])
        .ok()
        .stdout;
    assert_eq!(listing, "data\ndata/l\ndata/x.txt\n");
    dir.file("streamed.txt", "through a stream\n");
    let script = format!("tar -C {} -cf - streamed.txt | {} cp - {}", dir.0.display(), ctr.display(), at("/tmp"));
    env.as_user("sh", ["-c", &script]).ok();
    assert_eq!(sh(&env, &name, "cat /tmp/streamed.txt"), "through a stream\n");

    // docker's `SRC/.`: a directory's contents, into a new directory or
    // merged into an existing one (not as a subdirectory of it).
    env.ctr().args(["cp", &format!("{}/.", p(&dir.path("tree"))), &at("/tmp/contents")]).ok();
    sh(&env, &name, "mkdir /tmp/existing");
    env.ctr().args(["cp", &format!("{}/.", p(&dir.path("tree"))), &at("/tmp/existing")]).ok();
    assert_eq!(sh(&env, &name, "cat /tmp/contents/a/b.txt /tmp/existing/a/b.txt; ls /tmp/existing"), "deep\ndeep\na\n");
    let merged = dir.path("merged");
    std::fs::create_dir(&merged).unwrap();
    nix::unistd::chown(&merged, Some(env.uid.into()), Some(env.gid.into())).unwrap();
    env.ctr().args(["cp", &at("/srv/data/."), p(&merged)]).ok();
    env.ctr().args(["cp", &at("/srv/data/."), p(&dir.path("fresh"))]).ok();
    for got in [&merged, &dir.path("fresh")] {
        assert_eq!(std::fs::read_to_string(got.join("x.txt")).unwrap(), "inside\n", "{}", got.display());
        assert!(!got.join("data").exists(), "{}", got.display());
    }
    let out = env.ctr().args(["cp", &at("/srv/data/x.txt/."), p(&dir.path("nodir"))]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("not a directory"), "{}", out.stderr);
    // -L follows a symlink at SRC, as the container resolves it: /srv/data/l
    // is /etc/hostname of the container, not of the host.
    env.ctr().args(["cp", "-L", &at("/srv/data/l"), p(&dir.path("followed"))]).ok();
    let inside = sh(&env, &name, "cat /etc/hostname");
    assert_eq!(std::fs::read_to_string(dir.path("followed")).unwrap(), inside);
    assert!(std::fs::symlink_metadata(dir.path("followed")).unwrap().is_file());
    sh(&env, &name, "ln -s ../../../../srv/data/x.txt /srv/xl");
    env.ctr().args(["cp", "-L", &at("/srv/xl"), p(&dir.path("xl"))]).ok();
    assert_eq!(std::fs::read_to_string(dir.path("xl")).unwrap(), "inside\n");
    // Between containers: refused, as docker does.
    let out = env.ctr().args(["cp", &at("/etc/hostname"), &at("/tmp/again")]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("copying between containers is not supported"), "{}", out.stderr);

    // Refusals: a missing source, two host paths, a stopped container.
    let out = env.ctr().args(["cp", &at("/nope"), p(&dir.path("nope"))]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    assert!(!dir.path("nope").exists());
    let out = env.ctr().args(["cp", p(&hello), p(&dir.path("h2"))]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    assert!(out.stderr.contains("CONTAINER:PATH"), "{}", out.stderr);
    // A stopped container, both ways, through its writable layer.
    env.ctr().args(["stop", "-t", "0", &name]).ok();
    env.ctr().args(["cp", p(&hello), &at("/etc/stopped.txt")]).ok();
    env.ctr().args(["cp", &at("/etc/stopped.txt"), p(&dir.path("back.txt"))]).ok();
    assert_eq!(std::fs::read_to_string(dir.path("back.txt")).unwrap(), "hello from the host\n");
    let out = env.ctr().args(["cp", &at("/nope"), p(&dir.path("nope"))]).output();
    assert_eq!(out.code(), Some(125), "{}", out.stderr);
    env.ctr().args(["cp", "-L", &at("/srv/xl"), p(&dir.path("followed-stopped"))]).ok();
    assert_eq!(std::fs::read_to_string(dir.path("followed-stopped")).unwrap(), "inside\n");
    env.ctr().args(["cp", &at("/srv/data/."), p(&dir.path("fresh-stopped"))]).ok();
    assert_eq!(std::fs::read_to_string(dir.path("fresh-stopped/x.txt")).unwrap(), "inside\n");
    env.ctr().args(["start", &name]).ok();
    assert_eq!(sh(&env, &name, "cat /etc/stopped.txt; stat -c %u /etc/stopped.txt"), "hello from the host\n0\n");
}

/// A host directory with a secret a naive copy would reach through the
/// container's symlinks (readable and writable by the test user).
fn host_secret(env: &Env) -> UserDir {
    let dir = UserDir::new(env, "cp-host");
    dir.file("secret", "HOST SECRET\n");
    dir
}

#[test]
fn cp_resolves_a_containers_symlinks_inside_it() {
    let Some(env) = env() else { return };
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("cplink");
    started.run_d(&name, &["--network", "none", "alpine", "sleep", "300"]);
    let host = host_secret(&env);
    let out_dir = UserDir::new(&env, "cp-out");
    let planted = out_dir.file("planted", "planted\n");
    let target = host.0.display().to_string();
    sh(
        &env,
        &name,
        &format!("ln -s {target} /link && mkdir /dst && ln -s {target} /dst/sub && ln -s ../../../../..{target} /rel"),
    );

    for source in ["/link/secret", "/rel/secret", "/dst/sub/secret"] {
        let dest = out_dir.path("leak");
        let out = env.ctr().args(["cp", &format!("{name}:{source}"), p(&dest)]).output();
        assert_ne!(out.code(), Some(0), "{source}: {}", out.stderr);
        assert!(!dest.exists(), "{source} was copied out");
    }
    // -L follows a link only as the container resolves it, never out.
    sh(&env, &name, &format!("ln -s {target}/secret /abs && ln -s ../../../../..{target}/secret /relfile"));
    for source in ["/link", "/rel", "/abs", "/relfile", "/dst/sub"] {
        let dest = out_dir.path("leak");
        let out = env.ctr().args(["cp", "-L", &format!("{name}:{source}"), p(&dest)]).output();
        assert_ne!(out.code(), Some(0), "-L {source}: {}", out.stderr);
        assert!(!dest.exists(), "-L {source} was copied out");
    }
    for dest in ["/link/", "/link/planted", "/rel/planted", "/dst/sub/"] {
        let out = env.ctr().args(["cp", p(&planted), &format!("{name}:{dest}")]).output();
        assert_ne!(out.code(), Some(0), "{dest}: {}", out.stderr);
    }
    // A tree whose directory `sub` is, in the container, a symlink out.
    let tree = out_dir.file("sub/planted", "planted\n");
    let out = env.ctr().args(["cp", p(tree.parent().unwrap()), &format!("{name}:/dst/")]).output();
    assert_ne!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(&host.0).unwrap().count(), 1, "something was written in the host directory");
    // The symlink itself is copied as a symlink.
    env.ctr().args(["cp", &format!("{name}:/link"), p(&out_dir.path("link"))]).ok();
    assert_eq!(std::fs::read_link(out_dir.path("link")).unwrap(), host.0);
}

#[test]
fn cp_never_reaches_a_host_file_while_a_container_swaps_a_directory_for_a_symlink() {
    let Some(env) = env() else { return };
    let mut started = Started::new(&env);
    let name = ctr_tests::unique_name("cprace");
    let host = host_secret(&env);
    let target = host.0.display().to_string();
    // /w is by turns a directory holding `secret` and a symlink to the host's directory.
    let swap = format!(
        "mkdir /w.dir && echo inside > /w.dir/secret && touch /ready; \
         while :; do mv /w.dir /w; mv /w /w.dir; ln -s {target} /w; rm /w; done"
    );
    started.run_d(&name, &["--network", "none", "alpine", "sh", "-c", &swap]);
    let out_dir = UserDir::new(&env, "cp-race");
    let planted = out_dir.file("planted", "planted\n");
    for _ in 0..100 {
        if env.ctr().args(["exec", &name, "test", "-e", "/ready"]).output().success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (mut out_ok, mut in_ok) = (0, 0);
    for i in 0..80 {
        let dest = out_dir.path(&format!("got{i}"));
        if env.ctr().args(["cp", &format!("{name}:/w/secret"), p(&dest)]).output().success() {
            out_ok += 1;
            assert_eq!(std::fs::read_to_string(&dest).unwrap(), "inside\n", "copy {i} read the host's file");
        }
        assert!(!dest.exists() || std::fs::read_to_string(&dest).unwrap() == "inside\n");
        // -L resolves /w beneath the container's root too.
        let followed = out_dir.path(&format!("followed{i}"));
        if env.ctr().args(["cp", "-L", &format!("{name}:/w/secret"), p(&followed)]).output().success() {
            assert_eq!(std::fs::read_to_string(&followed).unwrap(), "inside\n", "-L copy {i} read the host's file");
        }
        if env.ctr().args(["cp", p(&planted), &format!("{name}:/w/")]).output().success() {
            in_ok += 1;
        }
        assert!(!host.path("planted").exists(), "copy {i} wrote into the host's directory");
    }
    assert_eq!(std::fs::read_dir(&host.0).unwrap().count(), 1);
    // Not vacuous: while /w was the directory, copies went through.
    assert!(out_ok > 0 && in_ok > 0, "no copy succeeded ({out_ok} out, {in_ok} in): the test proves nothing");
}
