//! Hostile image layers, one test per attack, loaded with `ctr load` as an
//! unprivileged user: each ends in a clear error or a safe result, and
//! afterwards neither the bait directory the layer aims at nor any other
//! place on the host (scanned for files the test user or its subordinate
//! ids created or changed) shows a write outside the image store.

mod images_support;

use ctr_tests::{env, Env};
use images_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// A directory the test user could write to, which a layer tries to reach.
struct Bait {
    dir: PathBuf,
}

impl Bait {
    fn new(env: &Env, name: &str) -> Bait {
        let dir = PathBuf::from(bait_name(name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("victim"), b"v").unwrap();
        for p in [dir.clone(), dir.join("victim")] {
            nix::unistd::chown(&p, Some(env.uid.into()), Some(env.gid.into())).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Bait { dir }
    }

    fn assert_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["victim"], "something was written into {}", self.dir.display());
        assert_eq!(std::fs::read(self.dir.join("victim")).unwrap(), b"v");
    }
}

impl Drop for Bait {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Expect {
    /// `ctr load` fails and says this.
    Refused(&'static str),
    /// It loads (maybe with this warning), and this script prints "ok" in it.
    Safe { warning: Option<&'static str>, check: &'static str },
}

/// Loads an image whose top layer is `layer` (on Alpine when it must run),
/// and checks the outcome, the bait and the host.
fn attack(name: &str, layer: Vec<u8>, expect: Expect, tamper: impl FnOnce(&mut Vec<(Vec<u8>, String)>)) {
    let Some(env) = env() else { return };
    let bait = Bait::new(&env, name);
    std::thread::sleep(Duration::from_millis(1100));
    let start = SystemTime::now();
    let dir = scratch(&env, &format!("hostile-{name}"));
    let store = private_store(&env, &format!("hostile-{name}"));
    let mut layers = Vec::new();
    if matches!(expect, Expect::Safe { .. }) {
        layers.push(alpine_layer(&env));
    }
    let diff = sha256_hex(&layer);
    layers.push((layer, diff));
    tamper(&mut layers);
    let archive =
        write_readable(&dir, "hostile.tar", &docker_archive(&layers, &format!("hostile-{name}:1"), &["/bin/sh"]));
    let loaded = ctr(&env, &store).args(["load", "-i"]).arg(&archive).timeout(Duration::from_secs(120)).output();
    match expect {
        Expect::Refused(message) => {
            assert_eq!(loaded.code(), Some(125), "the load must fail: {}", loaded.stdout);
            assert!(loaded.stderr.contains(message), "the error should say {message:?}:\n{}", loaded.stderr);
            assert_eq!(layer_count(&store), 0, "a refused layer leaves nothing usable behind");
            let tmp: Vec<_> = std::fs::read_dir(store.join("ctr/blobs/sha256")).unwrap().flatten().collect();
            assert!(tmp.is_empty(), "no blob of a refused image is kept: {tmp:?}");
        }
        Expect::Safe { warning, check } => {
            assert!(loaded.success(), "{}", loaded.stderr);
            if let Some(warning) = warning {
                assert!(loaded.stderr.contains(warning), "expected a warning {warning:?}:\n{}", loaded.stderr);
            }
            let out = ctr(&env, &store).args(["run", "--rm", &format!("hostile-{name}:1"), "sh", "-c", check]).ok();
            assert_eq!(out.stdout.trim(), "ok", "{}", out.stderr);
        }
    }
    bait.assert_untouched();
    let allowed = [env.work.clone(), PathBuf::from(format!("/tmp/ctr-run-{}", env.uid)), bait.dir.clone()];
    // Other tests' bait directories come and go meanwhile; each checks its own.
    let changed: Vec<PathBuf> = host_changes(&env, start, &allowed)
        .into_iter()
        .filter(|p| !p.starts_with("/tmp") || !p.to_string_lossy().starts_with("/tmp/ctr-bait-"))
        .collect();
    assert!(changed.is_empty(), "files changed outside the store: {changed:?}");
}

fn no_tamper(_: &mut Vec<(Vec<u8>, String)>) {}

/// The bait directory of test `name` (a path the test user could write to).
fn bait_name(name: &str) -> String {
    format!("/tmp/ctr-bait-{name}-{}", std::process::id())
}

#[test]
fn dot_dot_paths_are_refused() {
    let target = format!("{}{}/pwned", "../".repeat(20), bait_name("dotdot").trim_start_matches('/'));
    attack(
        "dotdot",
        RawTar::default().file(&target, b"x").finish(),
        Expect::Refused("\"..\" path components are not allowed"),
        no_tamper,
    );
}

#[test]
fn absolute_paths_are_refused() {
    let target = format!("{}/pwned", bait_name("absolute"));
    attack(
        "absolute",
        RawTar::default().file(&target, b"x").finish(),
        Expect::Refused("absolute paths are not allowed"),
        no_tamper,
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let layer = RawTar::default().symlink("escape", &bait_name("symlink")).file("escape/pwned", b"x").finish();
    attack("symlink", layer, Expect::Refused("is a symlink"), no_tamper);
}

#[test]
fn writing_through_a_relative_symlink_is_refused() {
    let bait = bait_name("relsymlink");
    let layer = RawTar::default()
        .symlink("escape", &format!("{}{}", "../".repeat(20), bait.trim_start_matches('/')))
        .dir("escape/sub/")
        .finish();
    attack("relsymlink", layer, Expect::Refused("is a symlink"), no_tamper);
}

#[test]
fn hard_links_to_outside_files_are_refused() {
    let layer = RawTar::default().hard_link("stolen", &format!("{}/victim", bait_name("hardlink"))).finish();
    attack("hardlink", layer, Expect::Refused("absolute paths are not allowed"), no_tamper);
}

#[test]
fn hard_links_to_missing_targets_are_refused() {
    attack(
        "hardmissing",
        RawTar::default().hard_link("x", "no/such/file").finish(),
        Expect::Refused("must be a regular file that comes earlier"),
        no_tamper,
    );
}

#[test]
fn whiteouts_aimed_outside_are_refused() {
    let target = format!("{}{}/.wh.victim", "../".repeat(20), bait_name("whiteout").trim_start_matches('/'));
    attack("whiteout", RawTar::default().file(&target, b"").finish(), Expect::Refused("\"..\""), no_tamper);
}

#[test]
fn whiteouts_through_a_symlink_are_refused() {
    let layer = RawTar::default().symlink("l", &bait_name("whiteoutlink")).file("l/.wh.victim", b"").finish();
    attack("whiteoutlink", layer, Expect::Refused("is a symlink"), no_tamper);
}

#[test]
fn device_nodes_are_skipped_with_a_warning() {
    let layer = RawTar::default()
        .dir("devs/")
        .entry("devs/sda", tar::EntryType::Block, "", 0o660, b"")
        .entry("devs/mem", tar::EntryType::Char, "", 0o666, b"")
        .file("devs/kept", b"k")
        .finish();
    attack(
        "devices",
        layer,
        Expect::Safe {
            warning: Some("skipping \"devs/sda\""),
            check: "test -e /devs/sda || test -e /devs/mem || test -e /devs/kept && echo ok",
        },
        no_tamper,
    );
}

#[test]
fn setuid_files_are_kept_and_harmless() {
    let layer = RawTar::default()
        .entry("usr/local/bin/suid", tar::EntryType::Regular, "", 0o4755, b"#!/bin/sh\nid -u\n")
        .finish();
    attack(
        "setuid",
        layer,
        Expect::Safe { warning: None, check: "test \"$(stat -c %a /usr/local/bin/suid)\" = 4755 && test \"$(su nobody -s /bin/sh -c /usr/local/bin/suid)\" != 0 && echo ok" },
        no_tamper,
    );
}

#[test]
fn oversized_headers_are_refused() {
    let big = "p".repeat(2 << 20);
    attack(
        "bigheader",
        RawTar::default().pax(&[("comment", &big)]).file("f", b"").finish(),
        Expect::Refused("over the 1024 KiB limit"),
        no_tamper,
    );
}

#[test]
fn decompression_bombs_are_refused() {
    // 5 MB of gzip claiming a 30 GiB file: refused before anything is written.
    let mut bomb = RawTar::default().claim("bomb", 30 << 30).0;
    bomb.extend(vec![0u8; 5 << 20]);
    let compressed = gzip(&bomb);
    let diff = sha256_hex(&bomb);
    attack("bomb", compressed, Expect::Refused("limit for an image layer"), move |layers| layers[0].1 = diff);
}

#[test]
fn digest_mismatches_are_refused() {
    let layer = RawTar::default().file("f", b"content").finish();
    attack("digest", layer, Expect::Refused("but the image config says"), |layers| {
        layers[0].1 = sha256_hex(b"something else")
    });
}

#[test]
fn size_and_digest_mismatches_in_an_oci_layout_are_refused() {
    let Some(env) = env() else { return };
    let layer = gzip(&RawTar::default().file("f", b"content").finish());
    let diff = sha256_hex(&gunzip(&layer));
    for (case, size_delta, expected) in
        [("size", 1i64, "bytes, but its manifest says"), ("truncated", -1, "is larger than")]
    {
        let dir = scratch(&env, &format!("oci-{case}"));
        let store = private_store(&env, &format!("oci-{case}"));
        let path =
            write_readable(&dir, "layout.tar", &oci_layout(&layer, &diff, (layer.len() as i64 + size_delta) as u64));
        let out = ctr(&env, &store).args(["load", "-i"]).arg(&path).output();
        assert_eq!(out.code(), Some(125), "{case}: {}", out.stdout);
        assert!(out.stderr.contains(expected), "{case}: {}", out.stderr);
        assert_eq!(layer_count(&store), 0);
    }
}

/// An OCI layout tar with one single-layer image whose layer descriptor says `size`.
fn oci_layout(layer: &[u8], diff_id: &str, size: u64) -> Vec<u8> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha256_hex(layer)), "size": size}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(),
                        "annotations": {"io.containerd.image.name": "docker.io/library/bad:1"}}],
    }))
    .unwrap();
    let mut tar = RawTar::default().file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).file("index.json", &index);
    for blob in [&config[..], &manifest[..], layer] {
        tar = tar.file(&format!("blobs/sha256/{}", sha256_hex(blob)), blob);
    }
    tar.finish()
}
