//! The unpacking benchmark behind `cargo xtask bench image` (run it with
//! `cargo test --release -p ctr-cli image::bench -- --ignored --nocapture`):
//! a ~300 MB layer, gzip and zstd, unpacked by ctr, by `tar -x` and by umoci
//! from the same bytes; a 3-layer image (ctr unpacks layers in parallel)
//! against tar one layer after another; and the lookup that a `ctr run` of
//! a cached image does before its overlay mount.

use super::archive::{self, LoadInput};
use super::progress::Progress;
use super::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Files of a made-up root filesystem: many small text-like files and some
/// large binary-like ones, ~`total` bytes, compressible about 3:1.
fn rootfs_tar(total: usize, seed: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<String> = (0..512).map(|i| format!("word{i:03x}{} ", "abcdefgh".repeat(i % 4))).collect();
    let mut written = 0;
    let mut i = 0;
    while written < total {
        let size = if i % 50 == 0 { 2 << 20 } else { 512 + (next() % 16384) as usize };
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            if i % 50 == 0 && data.len() % 3 == 0 {
                data.extend_from_slice(&next().to_le_bytes());
            } else {
                data.extend_from_slice(words[(next() % 512) as usize].as_bytes());
            }
        }
        data.truncate(size);
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_mtime(1_600_000_000);
        builder.append_data(&mut header, format!("usr/share/d{:03}/f{i}", i % 700), &data[..]).unwrap();
        written += size;
        i += 1;
    }
    builder.into_inner().unwrap()
}

fn time(what: &str, f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    let elapsed = start.elapsed();
    println!("{what:<48} {:>8.3} s", elapsed.as_secs_f64());
    elapsed
}

fn sh(cmd: &str) {
    let status = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(status.success(), "{cmd}");
}

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool} >/dev/null")).status().is_ok_and(|s| s.success())
}

/// An OCI layout holding one image with `blob` as its only layer, for umoci.
fn oci_layout(dir: &Path, blob: &[u8], diff_id: &str, media_type: &str) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = digest::of_bytes(bytes);
        fs::write(blobs.join(digest::hex(&d).unwrap()), bytes).unwrap();
        d
    };
    let config =
        format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
    let config_digest = put(config.as_bytes());
    let layer_digest = put(blob);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{media_type}","digest":"{layer_digest}","size":{}}}]}}"#,
        oci::OCI_MANIFEST,
        oci::OCI_CONFIG,
        config.len(),
        blob.len()
    );
    let manifest_digest = put(manifest.as_bytes());
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"bench"}}}}]}}"#,
            oci::OCI_MANIFEST,
            manifest.len()
        ),
    )
    .unwrap();
}

#[test]
#[ignore = "a benchmark: cargo test --release -p ctr-cli image::bench -- --ignored --nocapture"]
fn unpack_benchmark() {
    let size: usize = std::env::var("CTR_BENCH_MB").ok().and_then(|m| m.parse().ok()).unwrap_or(300) << 20;
    let dir = tempfile::tempdir_in(std::env::var_os("CTR_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into())).unwrap();
    let d = dir.path();
    let tar = rootfs_tar(size, 7);
    let diff_id = digest::of_bytes(&tar);
    fs::write(d.join("layer.tar"), &tar).unwrap();
    sh(&format!("cd {} && gzip -6 -k layer.tar && zstd -q -3 -k layer.tar", d.display()));
    println!(
        "layer: {} MB tar, {} MB gzip, {} MB zstd",
        tar.len() >> 20,
        fs::metadata(d.join("layer.tar.gz")).unwrap().len() >> 20,
        fs::metadata(d.join("layer.tar.zst")).unwrap().len() >> 20
    );
    drop(tar);
    sh("sync");
    for (ext, flag, media_type) in [("gz", "-z", oci::OCI_LAYER_GZIP), ("zst", "--zstd", oci::OCI_LAYER_ZSTD)] {
        let archive = d.join(format!("layer.tar.{ext}"));
        let out = d.join(format!("tar-{ext}"));
        fs::create_dir(&out).unwrap();
        let tar_time = time(&format!("tar {flag} -xf ({ext})"), || {
            sh(&format!("tar {flag} -xf {} -C {}", archive.display(), out.display()))
        });
        let store = Store::open(&d.join(format!("store-{ext}"))).unwrap();
        let ctr_time = time(&format!("ctr unpack ({ext}, hash + keep blob + syncfs)"), || {
            let _lock = store.lock().unwrap();
            let expected = Expected { diff_id: Some(diff_id.clone()), ..Expected::default() };
            store.layer_from(File::open(&archive).unwrap(), UnpackMode::Layer, &expected).unwrap();
        });
        println!(
            "{:<48} {:>8.2}x",
            format!("ctr speed relative to tar ({ext})"),
            tar_time.as_secs_f64() / ctr_time.as_secs_f64()
        );
        if have("umoci") {
            let layout = d.join(format!("oci-{ext}"));
            oci_layout(&layout, &fs::read(&archive).unwrap(), &diff_id, media_type);
            time(&format!("umoci unpack --rootless ({ext})"), || {
                sh(&format!("umoci unpack --rootless --image {}:bench {} >/dev/null 2>&1 || echo 'umoci failed (zstd needs umoci >= 0.4.8)'", layout.display(), d.join(format!("bundle-{ext}")).display()))
            });
        }
        sh(&format!("rm -rf {} {}", out.display(), d.join(format!("bundle-{ext}")).display()));
    }

    // Three layers: tar one after another, ctr in parallel (`ctr load`).
    let layers: Vec<Vec<u8>> = (0..3).map(|i| rootfs_tar(size / 3, 11 + i)).collect();
    let mut entries = Vec::new();
    let mut archive_tar = tar::Builder::new(Vec::new());
    let mut diff_ids = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(layer).unwrap();
        let gz = gz.finish().unwrap();
        fs::write(d.join(format!("multi{i}.tar.gz")), &gz).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(gz.len() as u64);
        h.set_mode(0o644);
        archive_tar.append_data(&mut h, format!("l{i}/layer.tar"), &gz[..]).unwrap();
        entries.push(format!("l{i}/layer.tar"));
        diff_ids.push(digest::of_bytes(layer));
    }
    drop(layers);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":{}}}}}"#,
        serde_json::to_string(&diff_ids).unwrap()
    );
    let mut h = tar::Header::new_gnu();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    archive_tar.append_data(&mut h, "config.json", config.as_bytes()).unwrap();
    let manifest = format!(
        r#"[{{"Config":"config.json","RepoTags":["bench:1"],"Layers":{}}}]"#,
        serde_json::to_string(&entries).unwrap()
    );
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    archive_tar.append_data(&mut h, "manifest.json", manifest.as_bytes()).unwrap();
    fs::write(d.join("multi.tar"), archive_tar.into_inner().unwrap()).unwrap();
    sh("sync");
    let out = d.join("tar-multi");
    fs::create_dir(&out).unwrap();
    let tar_time = time("tar -xzf of 3 layers, one after another", || {
        for i in 0..3 {
            sh(&format!("tar -xzf {} -C {}", d.join(format!("multi{i}.tar.gz")).display(), out.display()));
        }
    });
    let store = Store::open(&d.join("store-multi")).unwrap();
    let ctr_time = time("ctr load of 3 layers (parallel)", || {
        archive::load(&store, LoadInput::Path(d.join("multi.tar")), &Progress::quiet()).unwrap();
    });
    println!(
        "{:<48} {:>8.2}x",
        "ctr speed relative to tar (3 layers)",
        tar_time.as_secs_f64() / ctr_time.as_secs_f64()
    );

    // What a second `ctr run` does before mounting: find the image and its layers.
    let runs = 1000;
    let start = Instant::now();
    for _ in 0..runs {
        let image = store.lookup("bench:1").unwrap().unwrap();
        assert_eq!(image.lower_dirs.len(), 3);
    }
    println!(
        "{:<48} {:>8.3} ms",
        "cached image lookup (per ctr run)",
        start.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
}
