//! Issue 10, item 6: an image archive of about 1 MB that inflates to 1 GiB
//! (a decompression bomb) is refused by default, with an error that names
//! the setting, and leaves nothing behind in the store; the user can allow
//! it in their own `ctr.toml`, and a typo there is an error.

use ctr_tests::{env, Env};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;
const MEMBER: usize = 16 << 20;

/// A gzip of a tar holding one 1 GiB file of zeros. Gzip members may be
/// concatenated (decoders read them all, as `pigz` writes them), so 16 MiB of
/// zeros is compressed once and repeated: quick to make, ~1000:1 to inflate.
fn bomb() -> Vec<u8> {
    let gzip = |data: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    };
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(GIB);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = gzip(header.as_bytes());
    let zeros = gzip(&vec![0u8; MEMBER]);
    for _ in 0..GIB / MEMBER as u64 {
        out.extend_from_slice(&zeros);
    }
    // The end-of-archive marker: two zero blocks.
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

/// A directory of the test user's, for its own store and config.
fn user_dir(env: &Env, name: &str) -> PathBuf {
    let dir = env.work.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(env.uid), Some(env.gid)).unwrap();
    dir
}

/// Everything under `dir`, for "nothing left behind".
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    tree(dir).iter().filter_map(|p| std::fs::symlink_metadata(p).ok()).map(|m| m.blocks() * 512).sum()
}

#[test]
fn a_decompression_bomb_is_refused_by_default_and_allowed_by_the_users_config() {
    let Some(env) = env() else { return };
    let home = user_dir(&env, "unpack-limits");
    let (data, config) = (home.join("data"), home.join("config"));
    for d in [&data, &config.join("ctr")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for d in [&data, &config, &config.join("ctr")] {
        std::os::unix::fs::chown(d, Some(env.uid), Some(env.gid)).unwrap();
    }
    let archive = home.join("bomb.tar.gz");
    std::fs::write(&archive, bomb()).unwrap();
    let archive_size = std::fs::metadata(&archive).unwrap().len();
    assert!(archive_size < 2 << 20, "the bomb is {archive_size} bytes");
    let import = |tag: &str| {
        env.ctr()
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", &config)
            .args(["image", "import"])
            .arg(&archive)
            .arg(tag)
            .timeout(Duration::from_secs(600))
            .output()
    };

    // Default limits: refused, early, with the setting named.
    let started = Instant::now();
    let refused = import("bomb:default");
    let took = started.elapsed();
    assert_ne!(refused.code(), Some(0), "a {archive_size}-byte archive that inflates to 1 GiB was accepted");
    assert!(refused.stderr.contains("max_unpack_ratio"), "{}", refused.stderr);
    assert!(refused.stderr.contains("ctr.toml"), "{}", refused.stderr);
    // Nothing left: no temporary layer or blob, no layer, no blob.
    let store = data.join("ctr");
    let left: Vec<PathBuf> = tree(&store)
        .into_iter()
        .filter(|p| {
            let temporary = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
            let content = !p.is_dir() && (p.starts_with(store.join("layers")) || p.starts_with(store.join("blobs")));
            temporary || content
        })
        .collect();
    let on_disk = du(&data);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(on_disk < 64 << 20, "{on_disk} bytes left in the store after the refusal");

    // A typo in the user's config is an error, not a silent default.
    std::fs::write(config.join("ctr/ctr.toml"), "[image]\nmax_unpack_raito = 2000\n").unwrap();
    let typo = import("bomb:typo");
    assert_ne!(typo.code(), Some(0));
    assert!(typo.stderr.contains("max_unpack_raito") && typo.stderr.contains("ctr.toml"), "{}", typo.stderr);

    // Raised by the user: accepted.
    std::fs::write(config.join("ctr/ctr.toml"), "[image]\nmax_unpack_ratio = 2000\n").unwrap();
    let accepted = import("bomb:allowed");
    assert_eq!(accepted.code(), Some(0), "{}", accepted.stderr);
    let listed =
        env.ctr().env("XDG_DATA_HOME", &data).env("XDG_CONFIG_HOME", &config).args(["image", "ls"]).ok().stdout;
    assert!(listed.contains("bomb"), "{listed}");
    let _ = std::fs::remove_dir_all(&home).or_else(|_| {
        // Files of the user's: let ctr remove its own store first.
        env.ctr()
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", &config)
            .args(["image", "rm", "bomb:allowed"])
            .output();
        std::fs::remove_dir_all(&home)
    });
    eprintln!("{archive_size}-byte bomb refused in {took:?} ({on_disk} bytes left in the store), accepted with max_unpack_ratio = 2000");
}
