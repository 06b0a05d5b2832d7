//! Shared by the image tests (`images.rs`, `images_hostile.rs`): real
//! external tools (skopeo, umoci; the registry is `registry_support`'s), tar and
//! docker-archive builders, private image stores, and a scan of the host for
//! files an image wrote where it must not.
#![allow(dead_code)]

use ctr_tests::Env;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// The Debian packages these tests need (installed by the test driver).
pub const PACKAGES: &str = "docker-registry skopeo umoci";

/// Whether `tool` is installed. Under CI a missing tool is a failure (CI
/// must never pass by skipping); elsewhere the test is skipped with a message.
pub fn have_tool(tool: &str) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
            || Path::new("/usr/bin").join(tool).is_file();
    if !found {
        let message =
            format!("`{tool}` is not installed: `apt-get install {PACKAGES}` (the test driver must install them)");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
    }
    found
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Runs a command as root (the harness's user), panicking with its output on failure.
pub fn run(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh directory under the test work directory, created by root and
/// readable by everyone (so the test user can read what the test put there).
pub fn scratch(env: &Env, name: &str) -> PathBuf {
    let dir = env.work.join(format!("images-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A private, empty image store for one test (an `XDG_DATA_HOME` owned by
/// the test user), so that tests see exactly their own layers.
pub fn private_store(env: &Env, name: &str) -> PathBuf {
    let dir = env.work.join(format!("store-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    nix::unistd::chown(&dir, Some(env.uid.into()), Some(env.gid.into())).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// `ctr` as the test user with its own store.
pub fn ctr(env: &Env, store: &Path) -> ctr_tests::CtrCommand {
    env.ctr().env("XDG_DATA_HOME", store)
}

/// The unpacked layers of a private store.
pub fn layer_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("ctr/layers"))
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

/// A 3-layer Alpine image built with umoci in an OCI layout (`LAYOUT:3.20`):
/// 1. the Alpine minirootfs plus /etc/deleted-later;
/// 2. /etc/deleted-later removed (a `.wh.` whiteout), /etc/layer2 added;
/// 3. /etc/layer3 added; config: Cmd /bin/sh, WorkingDir /root.
pub fn umoci_alpine_layout(env: &Env, name: &str) -> PathBuf {
    let dir = scratch(env, &format!("umoci-{name}"));
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let image = format!("{}:3.20", layout.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    run(Command::new("tar").arg("-xzf").arg(&env.alpine).arg("-C").arg(&rootfs));
    std::fs::write(rootfs.join("etc/deleted-later"), "layer 1\n").unwrap();
    run(Command::new("umoci").args(["repack", "--refresh-bundle", "--image", &image]).arg(&bundle));
    std::fs::remove_file(rootfs.join("etc/deleted-later")).unwrap();
    std::fs::write(rootfs.join("etc/layer2"), "layer 2\n").unwrap();
    run(Command::new("umoci").args(["repack", "--refresh-bundle", "--image", &image]).arg(&bundle));
    std::fs::write(rootfs.join("etc/layer3"), "layer 3\n").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.workingdir",
        "/root",
        "--config.env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&dir));
    layout
}

/// Tar archives built byte by byte, so that tests can write what
/// `tar::Builder` refuses to (`..`, absolute names).
#[derive(Default)]
pub struct RawTar(pub Vec<u8>);

impl RawTar {
    pub fn entry(mut self, name: &str, kind: tar::EntryType, link: &str, mode: u32, data: &[u8]) -> Self {
        self.0.extend(header(name, kind, link, mode, data.len() as u64));
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }
    /// A header that claims `size` bytes without writing them.
    pub fn claim(mut self, name: &str, size: u64) -> Self {
        self.0.extend(header(name, tar::EntryType::Regular, "", 0o644, size));
        self
    }
    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, tar::EntryType::Regular, "", 0o644, data)
    }
    pub fn dir(self, name: &str) -> Self {
        self.entry(name, tar::EntryType::Directory, "", 0o755, b"")
    }
    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Symlink, target, 0o777, b"")
    }
    pub fn hard_link(self, name: &str, target: &str) -> Self {
        self.entry(name, tar::EntryType::Link, target, 0o644, b"")
    }
    pub fn pax(self, records: &[(&str, &str)]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while len.to_string().len() + body.len() != len {
                len += 1;
            }
            data.extend(format!("{len}{body}").bytes());
        }
        self.entry("PaxHeader", tar::EntryType::XHeader, "", 0o644, &data)
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

fn header(name: &str, kind: tar::EntryType, link: &str, mode: u32, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(1_600_000_000);
    header.set_cksum();
    header.as_bytes().to_vec()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// A `docker save` archive of one image: `layers` are (archive bytes as
/// stored, diff id hex) bottom first.
pub fn docker_archive(layers: &[(Vec<u8>, String)], tag: &str, cmd: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| format!("sha256:{d}")).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-09-06T12:00:00Z",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    };
    add(&config_name, &config);
    let mut names = Vec::new();
    for (i, (bytes, _)) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        add(&name, bytes);
        names.push(name);
    }
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    tar.into_inner().unwrap()
}

/// The Alpine minirootfs as a layer: its gzip bytes and its diff id.
pub fn alpine_layer(env: &Env) -> (Vec<u8>, String) {
    let gz = std::fs::read(&env.alpine).unwrap();
    let diff_id = sha256_hex(&gunzip(&gz));
    (gz, diff_id)
}

/// Writes `bytes` where the test user can read them.
pub fn write_readable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// Files on the host that the test user (or its subordinate ids) created
/// or changed since `since`, outside `allowed` trees.
pub fn host_changes(env: &Env, since: SystemTime, allowed: &[PathBuf]) -> Vec<PathBuf> {
    let home = nix::unistd::User::from_uid(env.uid.into()).ok().flatten().map(|u| u.dir);
    let mut roots: Vec<PathBuf> =
        ["/tmp", "/var/tmp", "/etc", "/root", "/home", "/opt", "/srv", "/usr/local", "/run", "/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .collect();
    roots.extend(home);
    let ids = subordinate_range(env);
    let since = since.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut found = Vec::new();
    for root in roots {
        walk(&root, 0, &mut |path, meta| {
            if allowed.iter().any(|a| path.starts_with(a)) {
                return false;
            }
            let ours =
                meta.uid() == env.uid || ids.iter().any(|(start, count)| (*start..start + count).contains(&meta.uid()));
            if ours && (meta.ctime() >= since || meta.mtime() >= since) {
                found.push(path.to_path_buf());
            }
            true
        });
    }
    found
}

fn subordinate_range(env: &Env) -> Vec<(u32, u32)> {
    std::fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            (who == env.user || who == env.uid.to_string()).then_some((start, count))
        })
        .collect()
}

/// Visits `dir`'s entries (not following symlinks), descending where
/// `visit` says so.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path, &std::fs::Metadata) -> bool) {
    if depth > 12 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if visit(&path, &meta) && meta.is_dir() {
            walk(&path, depth + 1, visit);
        }
    }
}
