//! `ctr run`'s mount options: `-v SRC:DST[:OPTS]`, `--tmpfs DST[:OPTS]` and
//! `--read-only`, parsed and checked on the caller's side into
//! [`MountSpec`]s that `ctr init` carries out inside the container.
//!
//! Docker's rules: a source containing `/` is a host path, anything else a
//! named volume (created if missing). Host paths must be absolute and must
//! exist (unlike `docker run -v`, ctr does not create a missing host
//! directory: a typo should not make directories on the host); they are
//! canonicalized here, as the caller, and must be readable by the caller.
//! The mount itself is done by `ctr init`, unprivileged on the host, so the
//! kernel checks every step against the caller's own access too.
//!
//! What is checked here must be what is mounted: a source is opened here
//! without following symlinks (its path is canonical, so none may appear),
//! and its device and inode travel with the spec; `ctr init` opens the path
//! the same way and refuses anything else (a symlink or directory swapped
//! in meanwhile by whoever can write a parent directory).

use crate::error::{IoContext, IoError};

/// A `-v` or `--tmpfs` that cannot be mounted, and why.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The option as given is wrong; the message says how to write it.
    #[error("{0}")]
    Invalid(String),
    #[error("bind source path does not exist: {0} (ctr does not create it: make it first)")]
    NoSource(String),
    #[error("duplicate mount point: {0}")]
    Duplicate(String),
    /// The named volume could not be made or found.
    #[error("volume {name}")]
    Volume { name: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = MountError> = std::result::Result<T, E>;

/// Refuses the option with a message that says what to do.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(MountError::Invalid(format!($($arg)*)))
    };
}
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// One mount inside the container, in the order `ctr init` makes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute and normalised (no `.`, `..`, empty or trailing components).
    pub destination: String,
    pub source: MountSource,
    pub read_only: bool,
    /// What a bind or volume source was when `ctr` checked it.
    #[serde(default)]
    pub source_id: Option<SourceId>,
}

/// A host file's identity, as `ctr` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceId {
    pub dev: u64,
    pub ino: u64,
    pub dir: bool,
}

impl SourceId {
    pub fn of(fd: &OwnedFd) -> Result<Self, IoError> {
        use std::os::fd::AsRawFd;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).io_context("stat a mount source")?;
        let dir = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFDIR;
        Ok(Self { dev: st.st_dev, ino: st.st_ino, dir })
    }
}

/// `path` as an O_PATH descriptor, refusing a symlink (and a /proc magic
/// link) anywhere on it: openat2 with RESOLVE_NO_SYMLINKS (Linux 5.6).
pub fn open_no_symlinks(path: &Path) -> nix::Result<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let raw = nix::fcntl::openat2(libc::AT_FDCWD, path, how)?;
    Ok(crate::sys::adopt(raw))
}

/// The identity of a canonical source path, opened as `ctr init` will.
fn identify(path: &Path) -> Result<SourceId, IoError> {
    let fd = open_no_symlinks(path).with_io_context(|| format!("open {}", path.display()))?;
    SourceId::of(&fd)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MountSource {
    /// A host path, canonicalized by `ctr` as the caller; bound recursively.
    Bind {
        path: PathBuf,
    },
    /// A named volume's data directory. With `copy_up`, when it is empty,
    /// the image's content at the destination is copied into it first.
    Volume {
        name: String,
        path: PathBuf,
        copy_up: bool,
    },
    Tmpfs(TmpfsOptions),
}

/// The only tmpfs options ctr passes to mount(2); no free-form string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    pub size_bytes: Option<u64>,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub noexec: bool,
    pub nosuid: bool,
    pub nodev: bool,
}

impl Default for TmpfsOptions {
    fn default() -> Self {
        Self { size_bytes: None, mode: 0o1777, uid: None, gid: None, noexec: true, nosuid: true, nodev: true }
    }
}

impl TmpfsOptions {
    /// The data argument of mount(2), built only from validated numbers.
    pub fn data(&self) -> String {
        let mut data = format!("mode={:o}", self.mode);
        if let Some(size) = self.size_bytes {
            data.push_str(&format!(",size={size}"));
        }
        if let Some(uid) = self.uid {
            data.push_str(&format!(",uid={uid}"));
        }
        if let Some(gid) = self.gid {
            data.push_str(&format!(",gid={gid}"));
        }
        data
    }
}

/// Checks that no two mounts share a destination and orders them so that
/// a mount comes after the one it sits in.
pub fn ordered(mut mounts: Vec<MountSpec>) -> Result<Vec<MountSpec>> {
    check_unique(&mounts)?;
    mounts.sort_by_key(|m| Path::new(&m.destination).components().count());
    Ok(mounts)
}

/// Names of the named volumes among `mounts`.
pub fn volume_names(mounts: &[MountSpec]) -> impl Iterator<Item = &str> {
    mounts.iter().filter_map(|m| match &m.source {
        MountSource::Volume { name, .. } => Some(name.as_str()),
        _ => None,
    })
}

/// Docker's `Mounts` array of `docker inspect`, for `ctr inspect`.
pub fn inspect_json(mounts: &[MountSpec]) -> serde_json::Value {
    mounts
        .iter()
        .map(|m| match &m.source {
            MountSource::Bind { path } => serde_json::json!({
                "Type": "bind", "Source": path, "Destination": m.destination, "RW": !m.read_only, "Propagation": "rprivate",
            }),
            MountSource::Volume { name, path, .. } => serde_json::json!({
                "Type": "volume", "Name": name, "Source": path, "Destination": m.destination, "Driver": "local", "RW": !m.read_only,
            }),
            MountSource::Tmpfs(t) => serde_json::json!({
                "Type": "tmpfs", "Source": "", "Destination": m.destination, "RW": !m.read_only, "Options": t.data(),
            }),
        })
        .collect()
}

/// An absolute container path, normalised; `/`, `..` and /proc are refused.
pub fn destination(raw: &str) -> Result<String> {
    if !raw.starts_with('/') {
        invalid!("invalid mount destination {raw:?}: it must be an absolute path");
    }
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => match n.to_str() {
                Some(n) => parts.push(n),
                None => invalid!("invalid mount destination {raw:?}: it must be UTF-8"),
            },
            Component::ParentDir => invalid!("invalid mount destination {raw:?}: '..' is not allowed"),
            Component::Prefix(_) => unreachable!("no prefixes on Unix"),
        }
    }
    if parts.is_empty() {
        invalid!("invalid mount destination {raw:?}: the destination can't be '/'");
    }
    if parts[0] == "proc" {
        invalid!("invalid mount destination {raw:?}: ctr does not mount over /proc");
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `SRC:DEST[:OPTS]`; `volume` resolves a volume name to its data directory.
pub fn parse_volume<E: std::error::Error + Send + Sync + 'static>(
    raw: &str,
    volume: impl FnOnce(&str) -> Result<PathBuf, E>,
) -> Result<MountSpec> {
    let fields: Vec<&str> = raw.split(':').collect();
    let (src, dst, opts) = match fields.as_slice() {
        [dst] if dst.starts_with('/') => {
            invalid!("-v {raw}: anonymous volumes are not supported; name one (-v NAME:{dst}) or bind a host path (-v /host/dir:{dst})")
        }
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => invalid!("invalid volume specification {raw:?}: use HOST-PATH:DEST[:ro] or NAME:DEST[:ro]"),
    };
    if src.is_empty() || dst.is_empty() {
        invalid!("invalid volume specification {raw:?}: use HOST-PATH:DEST[:ro] or NAME:DEST[:ro]");
    }
    let destination = destination(dst)?;
    let (mut read_only, mut nocopy) = (false, false);
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => nocopy = true,
            other => invalid!("-v {raw}: unsupported option {other:?} (supported: ro, rw, nocopy)"),
        }
    }
    let spec = if src.contains('/') {
        if nocopy {
            invalid!("-v {raw}: nocopy applies to named volumes only");
        }
        let path = host_source(src)?;
        let id = identify(&path).map_err(|e| IoError::new(format!("bind source {src}: {}", e.what), e.source))?;
        MountSpec { destination, source: MountSource::Bind { path }, read_only, source_id: Some(id) }
    } else {
        if ctr_core::ids::ContainerName::parse(src).is_err() {
            invalid!(
                "{src:?} includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed. \
If you intended to pass a host directory, use an absolute path"
            );
        }
        // Canonical, as `ctr init` opens it without following symlinks.
        let data = volume(src).map_err(|e| MountError::Volume { name: src.to_owned(), source: Box::new(e) })?;
        let path = std::fs::canonicalize(&data).with_io_context(|| format!("volume {src}: {}", data.display()))?;
        let id = identify(&path).map_err(|e| IoError::new(format!("volume {src}: {}", e.what), e.source))?;
        MountSpec {
            destination,
            source: MountSource::Volume { name: src.to_owned(), path, copy_up: !nocopy },
            read_only,
            source_id: Some(id),
        }
    };
    Ok(spec)
}

/// An existing host path the caller can read, canonicalized.
fn host_source(src: &str) -> Result<PathBuf> {
    if !src.starts_with('/') {
        invalid!("bind source {src:?} is a relative path: give an absolute path (e.g. \"$PWD/{src}\")");
    }
    let path = match std::fs::canonicalize(src) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(MountError::NoSource(src.to_owned())),
        Err(e) => return Err(IoError::new(format!("bind source {src}: you cannot access it"), e).into()),
    };
    let meta = std::fs::metadata(&path).with_io_context(|| format!("bind source {src}"))?;
    let mut need = nix::unistd::AccessFlags::R_OK;
    if meta.is_dir() {
        need |= nix::unistd::AccessFlags::X_OK;
    } else if !meta.is_file() {
        // Devices, sockets and fifos: the kernel decides on open.
        need = nix::unistd::AccessFlags::F_OK;
    }
    nix::unistd::access(&path, need).with_io_context(|| format!("bind source {src}: you cannot read it"))?;
    if path.to_str().is_none() {
        invalid!("bind source {} must be UTF-8", path.display());
    }
    Ok(path)
}

/// `DEST[:k=v,flag,...]` with a closed set of options.
pub fn parse_tmpfs(raw: &str) -> Result<MountSpec> {
    let (dst, opts) = raw.split_once(':').unwrap_or((raw, ""));
    let destination = destination(dst)?;
    let mut o = TmpfsOptions::default();
    let mut read_only = false;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let number = |v: Option<&str>| -> Result<u32> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| MountError::Invalid(format!("--tmpfs {raw}: {key} needs a number")))
        };
        match (key, value) {
            ("size", Some(v)) => match parse_size(v) {
                Ok(size) => o.size_bytes = Some(size),
                Err(problem) => invalid!("--tmpfs {raw}: {problem}"),
            },
            ("mode", Some(v)) => {
                o.mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| MountError::Invalid(format!("--tmpfs {raw}: mode must be octal, at most 7777")))?
            }
            ("uid", v) => o.uid = Some(number(v)?),
            ("gid", v) => o.gid = Some(number(v)?),
            ("noexec", None) => o.noexec = true,
            ("exec", None) => o.noexec = false,
            ("nosuid", None) => o.nosuid = true,
            ("nodev", None) => o.nodev = true,
            ("ro", None) => read_only = true,
            ("rw", None) => read_only = false,
            _ => invalid!(
                "--tmpfs {raw}: unsupported option {opt:?} (supported: size=N[k|m|g], mode=OCTAL, uid=N, gid=N, exec, noexec, nosuid, nodev, ro, rw)"
            ),
        }
    }
    Ok(MountSpec { destination, source: MountSource::Tmpfs(o), read_only, source_id: None })
}

/// `65536`, `64k`, `64m`, `1g` (also upper case, with an optional `b`).
fn parse_size(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, mult) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1u64 << 10),
        Some('m') => (&digits[..digits.len() - 1], 1 << 20),
        Some('g') => (&digits[..digits.len() - 1], 1 << 30),
        _ => (digits, 1),
    };
    let n: u64 =
        num.parse().ok().filter(|_| !num.is_empty()).ok_or_else(|| format!("invalid size {v:?}: use e.g. 64m"))?;
    n.checked_mul(mult)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("invalid size {v:?}: must be above 0 and fit in 64 bits"))
}

fn check_unique(mounts: &[MountSpec]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if mounts[..i].iter().any(|o| o.destination == m.destination) {
            return Err(MountError::Duplicate(m.destination.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_volume(_: &str) -> Result<PathBuf, IoError> {
        panic!("not a volume")
    }

    #[test]
    fn destinations_are_normalised_and_checked() {
        assert_eq!(destination("/data//x/./").unwrap(), "/data/x");
        assert!(destination("data").is_err());
        assert!(destination("/").is_err());
        assert!(destination("/a/../b").is_err());
        assert!(destination("/proc/sys").is_err());
        assert_eq!(destination("/procfoo").unwrap(), "/procfoo");
    }

    #[test]
    fn docker_volume_rules() {
        let dir = tempfile::tempdir().unwrap();
        let src = format!("{}/", dir.path().display());
        let m = parse_volume(&format!("{src}:/data:ro"), no_volume).unwrap();
        assert_eq!(m.destination, "/data");
        assert!(m.read_only);
        assert_eq!(m.source, MountSource::Bind { path: std::fs::canonicalize(dir.path()).unwrap() });
        let meta = std::fs::metadata(dir.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(m.source_id, Some(SourceId { dev: meta.dev(), ino: meta.ino(), dir: true }));

        let data = std::fs::canonicalize(dir.path()).unwrap();
        let v = parse_volume("cache:/var/cache", |_| Ok::<_, IoError>(dir.path().join("."))).unwrap();
        assert_eq!(v.source, MountSource::Volume { name: "cache".into(), path: data.clone(), copy_up: true });
        assert!(!v.read_only);
        let v = parse_volume("cache:/c:ro,nocopy", |_| Ok::<_, IoError>(data.clone())).unwrap();
        assert!(v.read_only && matches!(v.source, MountSource::Volume { copy_up: false, .. }));

        let err = |s: &str| parse_volume(s, |_| Ok::<_, IoError>(PathBuf::from("/x"))).unwrap_err().to_string();
        assert!(err("/data").contains("anonymous"));
        assert!(err("./rel:/data").contains("relative"));
        assert!(err("bad$name:/data").contains("invalid characters"));
        assert!(err("/no/such/dir/for/ctr:/data").contains("does not exist"));
        assert!(err("x:/data:z").contains("unsupported option"));
        assert!(err("x:relative").contains("absolute"));
        assert!(err("a:b:c:d").contains("invalid volume specification"));
        assert!(err(&format!("{src}:/d:nocopy")).contains("named volumes only"));
    }

    #[test]
    fn sources_are_opened_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink(real.join("d"), real.join("link")).unwrap();
        assert!(open_no_symlinks(&real.join("d")).is_ok());
        assert_eq!(open_no_symlinks(&real.join("link")).unwrap_err(), nix::errno::Errno::ELOOP);
        assert_eq!(open_no_symlinks(&real.join("link/.")).unwrap_err(), nix::errno::Errno::ELOOP);
        assert!(open_no_symlinks(Path::new("/proc/self/cwd")).is_err(), "magic links are refused too");
    }

    #[test]
    fn tmpfs_options_are_a_closed_set() {
        let m = parse_tmpfs("/run:size=64m,mode=755,uid=1,gid=2,exec").unwrap();
        let MountSource::Tmpfs(o) = &m.source else { panic!() };
        assert_eq!(o.data(), "mode=755,size=67108864,uid=1,gid=2");
        assert!(!o.noexec && o.nosuid && o.nodev);
        let d = parse_tmpfs("/tmp").unwrap();
        assert_eq!(d.source, MountSource::Tmpfs(TmpfsOptions::default()));
        for bad in [
            "/t:size=",
            "/t:size=-1",
            "/t:mode=8",
            "/t:mode=17777",
            "/t:uid=x",
            "/t:nr_inodes=5",
            "/t:suid",
            "/t:size=1m,context=x",
            "/t:huge=always",
        ] {
            assert!(parse_tmpfs(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("65536k").unwrap(), 64 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("0").is_err() && parse_size("m").is_err() && parse_size("99999999999999g").is_err());
    }

    #[test]
    fn duplicates_and_order() {
        let tmpfs = |dests: &[&str]| dests.iter().map(|d| parse_tmpfs(d).unwrap()).collect::<Vec<_>>();
        let mounts = ordered(tmpfs(&["/a/b", "/a"])).unwrap();
        assert_eq!(mounts.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>(), ["/a", "/a/b"]);
        assert!(ordered(tmpfs(&["/a", "/a/"])).unwrap_err().to_string().contains("duplicate"));
    }
}
