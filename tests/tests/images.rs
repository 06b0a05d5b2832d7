//! Images end to end, as an unprivileged user through the installed helper:
//! pulls from a real registry (Debian's docker-registry on 127.0.0.1, fed by
//! skopeo from OCI layouts that umoci builds), progress on a pty and in
//! logs, save/load round trips, skopeo's docker-archives, whiteouts in a
//! running container, shared layers, rmi and prune, concurrent pulls, and
//! real distributions (Alpine where the cache has it, Debian trixie)
//! running their package tools.

mod images_support;
mod registry_support;

use ctr_tests::{env, BaseImage};
use images_support::*;
use registry_support::Registry;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PULL_TIMEOUT: Duration = Duration::from_secs(120);

fn tools() -> bool {
    have_tool("docker-registry") && have_tool("skopeo") && have_tool("umoci")
}

#[test]
fn pull_from_a_local_registry_then_run_it() {
    let Some(env) = env() else { return };
    if !tools() {
        return;
    }
    let Some(registry) = Registry::start(&env) else { return };
    registry.push_layout(&umoci_alpine_layout(&env, "pull"), "3.20", "alpine");
    let store = private_store(&env, "pull");
    let image = format!("{}/alpine:3.20", registry.address);

    let pulled = ctr(&env, &store).args(["pull", &image]).timeout(PULL_TIMEOUT).ok();
    // Not a terminal: plain lines, one per layer when done, no escape codes.
    let complete = pulled.stderr.lines().filter(|l| l.contains(": Pull complete")).count();
    assert_eq!(complete, 3, "one line per layer:\n{}", pulled.stderr);
    assert!(!pulled.stderr.contains('\x1b'), "no terminal codes in a log:\n{}", pulled.stderr);
    assert_eq!(pulled.stdout.trim(), image);
    assert_eq!(layer_count(&store), 3);

    let out = ctr(&env, &store)
        .args([
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "pwd; cat /etc/layer2 /etc/layer3; test -e /etc/deleted-later || echo whited-out",
        ])
        .ok();
    assert_eq!(out.stdout, "/root\nlayer 2\nlayer 3\nwhited-out\n");
    if BaseImage::of_run() == BaseImage::Alpine {
        let apk = ctr(&env, &store).args(["run", "--rm", &image, "sh", "-c", "apk info | grep -c ."]).ok();
        let packages: u32 = apk.stdout.trim().parse().unwrap();
        assert!(packages > 5, "apk info lists the installed packages: {}", apk.stdout);
    }

    let table = ctr(&env, &store).arg("images").ok().stdout;
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(table.contains(&format!("{}/alpine   3.20", registry.address)), "{table}");

    let inspect = ctr(&env, &store).args(["image", "inspect", &image]).ok().stdout;
    let json: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(json[0]["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(json[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert!(json[0]["RepoDigests"][0].as_str().unwrap().contains("@sha256:"), "{inspect}");

    // A second pull finds everything in place.
    let again = ctr(&env, &store).args(["pull", &image]).ok();
    assert_eq!(again.stderr.matches("Already exists").count(), 3, "{}", again.stderr);

    let missing = ctr(&env, &store).args(["run", "--rm", &format!("{}/no-such-image", registry.address)]).output();
    assert_eq!(missing.code(), Some(125));
    assert!(
        missing.stderr.contains("not found locally and the registry said 404: check the name"),
        "{}",
        missing.stderr
    );
}

#[test]
fn pull_on_a_terminal_draws_a_bar_per_layer() {
    let Some(env) = env() else { return };
    if !tools() || !have_tool("script") {
        return;
    }
    let Some(registry) = Registry::start(&env) else { return };
    registry.push_layout(&umoci_alpine_layout(&env, "pty"), "3.20", "alpine");
    let store = private_store(&env, "pty");
    let command = format!("{} pull {}/alpine:3.20", env.ctr_path().display(), registry.address);
    let out = env
        .as_user("script", ["-qefc", &command, "/dev/null"])
        .env("XDG_DATA_HOME", &store)
        .env("TERM", "xterm")
        .timeout(PULL_TIMEOUT)
        .ok();
    let text = out.stdout;
    assert!(text.contains('\x1b'), "a terminal gets live bars:\n{text:?}");
    // Live bars repaint, so count layers, not lines: each ends complete.
    let layers: std::collections::BTreeSet<&str> = text
        .split(['\r', '\n'])
        .filter_map(|l| l.split_once(": Pull complete").map(|(id, _)| &id[id.len().saturating_sub(12)..]))
        .collect();
    assert_eq!(layers.len(), 3, "{layers:?} in {text:?}");
    assert!(text.contains("3.20: Pulling from alpine"), "{text:?}");
}

#[test]
fn concurrent_pulls_of_one_image_share_the_store() {
    let Some(env) = env() else { return };
    if !tools() {
        return;
    }
    let Some(registry) = Registry::start(&env) else { return };
    registry.push_layout(&umoci_alpine_layout(&env, "concurrent"), "3.20", "alpine");
    let store = private_store(&env, "concurrent");
    let image = format!("{}/alpine:3.20", registry.address);
    let children: Vec<_> =
        (0..2).map(|_| ctr(&env, &store).args(["pull", "-q", &image]).timeout(PULL_TIMEOUT).spawn()).collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait();
            assert!(out.success(), "{}", out.stderr);
            out.stdout.trim().to_owned()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(layer_count(&store), 3);
    ctr(&env, &store).args(["run", "--rm", &image, "true"]).ok();
}

#[test]
fn save_then_load_gives_the_same_image_id() {
    let Some(env) = env() else { return };
    if !tools() {
        return;
    }
    let Some(registry) = Registry::start(&env) else { return };
    registry.push_layout(&umoci_alpine_layout(&env, "save"), "3.20", "alpine");
    let store = private_store(&env, "save");
    let image = format!("{}/alpine:3.20", registry.address);
    let id = ctr(&env, &store).args(["pull", "-q", &image]).timeout(PULL_TIMEOUT).ok().stdout.trim().to_owned();
    for format in ["docker-archive", "oci"] {
        let file = store.join(format!("saved-{format}.tar"));
        ctr(&env, &store).args(["save", "--format", format, "-o"]).arg(&file).arg(&image).ok();
        let other = private_store(&env, &format!("save-{format}"));
        let loaded = ctr(&env, &other).args(["load", "-i"]).arg(&file).timeout(PULL_TIMEOUT).ok();
        assert!(loaded.stdout.contains(&format!("Loaded image: {image}")), "{format}: {}", loaded.stdout);
        let json: serde_json::Value =
            serde_json::from_str(&ctr(&env, &other).args(["image", "inspect", &image]).ok().stdout).unwrap();
        assert_eq!(json[0]["Id"], id.as_str(), "{format}: the id survives save and load");
        let out = ctr(&env, &other).args(["run", "--rm", &image, "cat", "/etc/layer3"]).ok();
        assert_eq!(out.stdout, "layer 3\n");
        // skopeo, an independent reader, accepts what ctr wrote.
        let transport = if format == "oci" { "oci-archive" } else { "docker-archive" };
        run(Command::new("skopeo")
            .args(["inspect", "--insecure-policy"])
            .arg(format!("{transport}:{}", file.display())));
    }
}

#[test]
fn a_docker_archive_made_by_skopeo_loads_and_runs() {
    let Some(env) = env() else { return };
    if !tools() {
        return;
    }
    let layout = umoci_alpine_layout(&env, "skopeo");
    let dir = scratch(&env, "skopeo-archive");
    let archive = dir.join("alpine.tar");
    run(Command::new("skopeo").args([
        "copy",
        "--insecure-policy",
        &format!("oci:{}:3.20", layout.display()),
        &format!("docker-archive:{}:skopeo/alpine:3.20", archive.display()),
    ]));
    run(Command::new("chmod").arg("a+r").arg(&archive));
    let store = private_store(&env, "skopeo");
    let loaded = ctr(&env, &store).args(["load", "-i"]).arg(&archive).timeout(PULL_TIMEOUT).ok();
    assert!(loaded.stdout.contains("Loaded image: skopeo/alpine:3.20"), "{}", loaded.stdout);
    let out = ctr(&env, &store)
        .args(["run", "--rm", "skopeo/alpine:3.20", "sh", "-c", ". /etc/os-release; echo $ID; cat /etc/layer2"])
        .ok();
    assert_eq!(out.stdout, format!("{}\nlayer 2\n", BaseImage::of_run().id()));
    // And an OCI layout directory loads too.
    let store = private_store(&env, "skopeo-oci-dir");
    let loaded = ctr(&env, &store).args(["load", "-i"]).arg(&layout).timeout(PULL_TIMEOUT).ok();
    assert!(loaded.stdout.contains("Loaded image ID: sha256:"), "{}", loaded.stdout);
}

/// A 3-layer image: the base image, a layer adding /opt/old and /etc/kept,
/// then a layer that deletes /etc/os-release (`.wh.os-release`)
/// and makes /opt opaque (`.wh..wh..opq`, hiding the /opt/old below it).
fn whiteout_image(env: &ctr_tests::Env, dir: &std::path::Path, tag: &str) -> PathBuf {
    let (alpine, alpine_diff) = alpine_layer(env);
    let base = RawTar::default().dir("opt/").file("opt/old", b"old").file("etc/kept", b"kept\n").finish();
    let top = RawTar::default()
        .file("etc/.wh.os-release", b"")
        .dir("opt/")
        .file("opt/.wh..wh..opq", b"")
        .file("opt/new", b"new")
        .finish();
    let layers = [(alpine, alpine_diff), (gzip(&base), sha256_hex(&base)), (top.clone(), sha256_hex(&top))];
    write_readable(dir, &format!("{tag}.tar"), &docker_archive(&layers, tag, &["/bin/sh"]))
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_files_in_a_container() {
    let Some(env) = env() else { return };
    let dir = scratch(&env, "whiteouts");
    let archive = whiteout_image(&env, &dir, "layered:1");
    let store = private_store(&env, "whiteouts");
    ctr(&env, &store).args(["load", "-i"]).arg(&archive).ok();
    let out = ctr(&env, &store)
        .args([
            "run",
            "--rm",
            "layered:1",
            "sh",
            "-c",
            "test -e /etc/os-release && echo os-release-present; ls /opt; cat /etc/kept; rm /etc/kept && echo removable",
        ])
        .ok();
    assert_eq!(out.stdout, "new\nkept\nremovable\n", "stderr: {}", out.stderr);
    // The container's deletion went to its own layer: the image is intact.
    let out = ctr(&env, &store).args(["run", "--rm", "layered:1", "cat", "/etc/kept"]).ok();
    assert_eq!(out.stdout, "kept\n");
}

#[test]
fn shared_layers_are_stored_once_rmi_keeps_the_other_and_prune_frees_the_rest() {
    let Some(env) = env() else { return };
    let dir = scratch(&env, "shared");
    let (alpine, alpine_diff) = alpine_layer(&env);
    let extra = RawTar::default().file("etc/extra", b"x\n").finish();
    let mid = RawTar::default().file("etc/mid", b"m\n").finish();
    let one = [(alpine.clone(), alpine_diff.clone()), (mid.clone(), sha256_hex(&mid))];
    let two = [(alpine, alpine_diff), (mid.clone(), sha256_hex(&mid)), (extra.clone(), sha256_hex(&extra))];
    let a = write_readable(&dir, "one.tar", &docker_archive(&one, "one:1", &["/bin/sh"]));
    let b = write_readable(&dir, "two.tar", &docker_archive(&two, "two:1", &["/bin/sh"]));
    let store = private_store(&env, "shared");
    ctr(&env, &store).args(["load", "-i"]).arg(&a).ok();
    ctr(&env, &store).args(["load", "-i"]).arg(&b).ok();
    assert_eq!(layer_count(&store), 3, "the two shared layers are stored once");

    // A container (kept, not --rm) uses `one`: rmi refuses without -f.
    ctr(&env, &store).args(["run", "--name", "user-of-one", "one:1", "true"]).ok();
    let refused = ctr(&env, &store).args(["rmi", "one:1"]).output();
    assert!(!refused.success() && refused.stderr.contains("in use by container user-of-one"), "{}", refused.stderr);
    let forced = ctr(&env, &store).args(["rmi", "-f", "one:1"]).ok();
    assert!(forced.stdout.contains("Untagged: one:1"), "{}", forced.stdout);
    assert_eq!(layer_count(&store), 3, "a used image's layers stay");
    let out = ctr(&env, &store).args(["run", "--rm", "two:1", "cat", "/etc/mid", "/etc/extra"]).ok();
    assert_eq!(out.stdout, "m\nx\n");

    ctr(&env, &store).args(["rmi", "two:1"]).ok();
    assert_eq!(layer_count(&store), 2, "two's own layer went; one's stay while its container exists");
    let out = ctr(&env, &store).args(["run", "--rm", "two:1", "true"]).output();
    assert_eq!(out.code(), Some(125));
}

#[test]
fn image_prune_frees_what_nothing_uses() {
    let Some(env) = env() else { return };
    let dir = scratch(&env, "prune");
    let (alpine, alpine_diff) = alpine_layer(&env);
    let top = RawTar::default().file("etc/top", b"t\n").finish();
    let archive = write_readable(
        &dir,
        "img.tar",
        &docker_archive(&[(alpine, alpine_diff), (top.clone(), sha256_hex(&top))], "img:1", &["/bin/sh"]),
    );
    let store = private_store(&env, "prune");
    ctr(&env, &store).args(["load", "-i"]).arg(&archive).ok();
    ctr(&env, &store).args(["tag", "img:1", "img:2"]).ok();
    ctr(&env, &store).args(["run", "--rm", "img:2", "cat", "/etc/top"]).ok();
    ctr(&env, &store).args(["rmi", "img:1"]).ok();
    assert_eq!(layer_count(&store), 2, "img:2 still names the image");
    let nothing = ctr(&env, &store).args(["image", "prune", "-f"]).ok();
    assert!(nothing.stdout.contains("Total reclaimed space: 0B"), "{}", nothing.stdout);
    // Untag the last name by moving it elsewhere: the image is dangling.
    ctr(&env, &store).args(["image", "import", "-", "img:2"]).stdin(RawTar::default().file("f", b"f").finish()).ok();
    let pruned = ctr(&env, &store).args(["image", "prune", "-f"]).ok();
    assert!(pruned.stdout.contains("Deleted: sha256:"), "{}", pruned.stdout);
    assert!(!pruned.stdout.contains("Total reclaimed space: 0B"), "{}", pruned.stdout);
    assert_eq!(layer_count(&store), 1, "only the imported layer is left");
}

/// One entry of [`owned_layer`]: name, is a directory, mode, uid, gid, content.
type OwnedEntry<'a> = (&'a str, bool, u32, u64, u64, &'a [u8]);

/// A layer whose entries have owners.
fn owned_layer(entries: &[OwnedEntry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for &(name, dir, mode, uid, gid, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_size(data.len() as u64);
        header.set_mtime(1_600_000_000);
        tar.append_data(&mut header, name, data).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Every path under `dir` (not following symlinks) whose owner or group
/// is not `uid`/`gid`: what the test user could not delete by itself.
fn foreign_owned(dir: &std::path::Path, uid: u32, gid: u32) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.uid() != uid || meta.gid() != gid {
            found.push(format!("{} {}:{}", entry.path().display(), meta.uid(), meta.gid()));
        }
        if meta.is_dir() {
            found.extend(foreign_owned(&entry.path(), uid, gid));
        }
    }
    found
}

#[test]
fn layer_files_keep_their_owners_and_rmi_and_prune_remove_them() {
    let Some(env) = env() else { return };
    if !have_tool("newuidmap") || !have_tool("newgidmap") {
        return;
    }
    let info = ctr(&env, &private_store(&env, "owners-info")).arg("info").ok().stdout;
    assert!(info.contains("Image file owners: kept"), "{info}");
    let dir = scratch(&env, "owners");
    let (alpine, alpine_diff) = alpine_layer(&env);
    let top = owned_layer(&[
        ("srv/", true, 0o755, 0, 0, b""),
        ("srv/user-file", false, 0o644, 1000, 1000, b"u\n"),
        ("srv/shadow", false, 0o640, 0, 42, b"s\n"),
        ("srv/suid", false, 0o4755, 1000, 1000, b"#!/bin/sh\nid -u\n"),
        ("srv/private/", true, 0o700, 1000, 1000, b""),
        ("srv/private/file", false, 0o600, 1000, 1000, b"p\n"),
    ]);
    let layers = [(alpine, alpine_diff), (gzip(&top), sha256_hex(&top))];
    let archive = write_readable(&dir, "owners.tar", &docker_archive(&layers, "owners:1", &["/bin/sh"]));
    let store = private_store(&env, "owners");
    ctr(&env, &store).args(["load", "-i"]).arg(&archive).ok();

    let paths = ["/srv/user-file", "/srv/shadow", "/srv/suid", "/srv/private", "/srv/private/file", "/etc/shadow"];
    let out = ctr(&env, &store).args(["run", "--rm", "owners:1", "stat", "-c", "%n %u:%g %a"]).args(paths).ok();
    assert_eq!(
        out.stdout,
        "/srv/user-file 1000:1000 644\n/srv/shadow 0:42 640\n/srv/suid 1000:1000 4755\n/srv/private 1000:1000 700\n/srv/private/file 1000:1000 600\n/etc/shadow 0:42 640\n",
        "the image's owners and modes, as docker shows them; stderr: {}",
        out.stderr
    );
    // Real owners: uid 1000 reads its private file and writes beside it
    // (a file of a subordinate id in the container's layer, removed with
    // it); another uid is denied.
    let out = ctr(&env, &store)
        .args([
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "owners:1",
            "sh",
            "-c",
            "cat /srv/private/file; echo m > /srv/private/mine; stat -c %u:%g /srv/private/mine",
        ])
        .ok();
    assert_eq!(out.stdout, "p\n1000:1000\n", "{}", out.stderr);
    let denied = ctr(&env, &store).args(["run", "--rm", "-u", "1001", "owners:1", "cat", "/srv/private/file"]).output();
    assert_eq!(denied.code(), Some(1), "{}", denied.stderr);
    assert!(denied.stderr.contains("Permission denied"), "{}", denied.stderr);
    // A kept container whose layer holds files of uid 1000, then removed.
    ctr(&env, &store)
        .args(["run", "--name", "owners-kept", "-u", "1000", "owners:1", "touch", "/srv/private/kept"])
        .ok();
    ctr(&env, &store).args(["rm", "owners-kept"]).ok();

    let layers_dir = store.join("ctr/layers");
    let subordinate = foreign_owned(&layers_dir, env.uid, env.gid);
    assert!(!subordinate.is_empty(), "the layers hold files of subordinate ids");
    let removed = ctr(&env, &store).args(["rmi", "owners:1"]).ok();
    assert!(removed.stdout.contains("Untagged: owners:1"), "{}", removed.stdout);
    ctr(&env, &store).args(["image", "prune", "-a", "-f"]).ok();
    // Checked as root: nothing of the image is left, however it was owned.
    for sub in ["layers", "images", "blobs/sha256"] {
        let left: Vec<_> =
            std::fs::read_dir(store.join("ctr").join(sub)).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "{sub} still holds {left:?}");
    }
    assert_eq!(
        foreign_owned(&store, env.uid, env.gid),
        Vec::<String>::new(),
        "nothing of a subordinate id is left in the store"
    );
}

/// Where the test driver leaves a Debian trixie rootfs tarball made with
/// `mmdebstrap --variant=minbase trixie FILE` (outside the network namespace).
fn debian_tarball(env: &ctr_tests::Env) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CTR_TEST_DEBIAN").map(PathBuf::from),
        env.work.parent().map(|p| p.join("cache/debian-trixie.tar")),
        Some(PathBuf::from("/var/cache/ctr-test/debian-trixie.tar")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        let message = "no Debian trixie rootfs: the test driver must run `mmdebstrap --variant=minbase trixie /var/cache/ctr-test/debian-trixie.tar` (package mmdebstrap) before entering the network namespace";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
    }
    found
}

#[test]
fn debian_trixie_boots_a_shell_and_lists_its_packages() {
    let Some(env) = env() else { return };
    let Some(tarball) = debian_tarball(&env) else { return };
    let dir = scratch(&env, "debian");
    let copy = dir.join("debian-trixie.tar");
    std::fs::copy(&tarball, &copy).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let store = private_store(&env, "debian");
    ctr(&env, &store).args(["image", "import"]).arg(&copy).arg("debian:trixie").timeout(Duration::from_secs(300)).ok();
    let out = ctr(&env, &store)
        .args([
            "run",
            "--rm",
            "debian:trixie",
            "/bin/sh",
            "-c",
            ". /etc/os-release; echo $VERSION_CODENAME; dpkg -l | grep -c '^ii'; dpkg-query -W -f='${Package}\\n' dpkg",
        ])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "trixie", "{}", out.stdout);
    assert!(lines[1].parse::<u32>().unwrap() > 20, "dpkg -l lists the packages: {}", out.stdout);
    assert_eq!(lines[2], "dpkg");
}

#[test]
fn alpine_runs_apk_info() {
    let Some(env) = env() else { return };
    if !BaseImage::alpine_only("this test of apk and musl") {
        return;
    }
    env.ensure_alpine_image("alpine");
    let out = env.ctr().args(["run", "--rm", "alpine", "sh", "-c", "apk info -vv | grep -c . ; apk info -e musl"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].parse::<u32>().unwrap() > 5, "{}", out.stdout);
    assert_eq!(lines[1], "musl");
}
