//! Where ctr keeps things. Non-root users keep runtime state under
//! $XDG_RUNTIME_DIR/ctr (or /tmp/ctr-run-UID, created 0700 and checked, when
//! it is unset, as under `su`) and storage under $XDG_DATA_HOME/ctr
//! (~/.local/share/ctr); root uses /run/ctr and /var/lib/ctr. The helper and
//! the built-in images are found next to the `ctr` binary, as installed by
//! `cargo xtask install`.

use crate::error::{IoContext, IoError};
use nix::unistd::{getuid, Uid};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why ctr cannot tell where its files go.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("neither XDG_DATA_HOME nor HOME is set to an absolute path: set one so ctr can store images")]
    NoHome,
    #[error(
        "{0} is not a private directory owned by you (someone else may have created it): remove it or set XDG_RUNTIME_DIR"
    )]
    NotPrivate(PathBuf),
    #[error(transparent)]
    Io(#[from] IoError),
}

#[derive(Debug, Clone)]
pub struct Paths {
    /// Runtime state of live processes only (the seccomp cache, attach
    /// sockets): a tmpfs, gone at logout or reboot.
    pub state: PathBuf,
    /// Image store, and every container's record, writable layer and log,
    /// which survive logout and reboot.
    pub storage: PathBuf,
    /// `PREFIX` that the running `ctr` was installed under.
    pub prefix: PathBuf,
}

impl Paths {
    pub fn discover() -> Result<Self, PathsError> {
        let uid = getuid();
        let (state, storage) = if uid.is_root() {
            (PathBuf::from("/run/ctr"), PathBuf::from("/var/lib/ctr"))
        } else {
            (user_runtime_dir(uid)?.join("ctr"), user_data_dir()?.join("ctr"))
        };
        let exe = std::env::current_exe().io_context("cannot find the ctr binary's own path")?;
        let prefix = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| "/usr/local".into());
        Ok(Self { state, storage, prefix })
    }

    pub fn helper(&self) -> PathBuf {
        self.prefix.join("libexec/ctr/ctr-setuid-helper")
    }

    pub fn builtin_images(&self) -> PathBuf {
        self.prefix.join("share/ctr/images")
    }

    /// One directory per container: its record, generated files, log and
    /// writable layer. In storage, so that a reboot keeps containers.
    pub fn containers(&self) -> PathBuf {
        self.storage.join("containers")
    }

    /// Name reservations (`names/<name>` holds the id).
    pub fn names(&self) -> PathBuf {
        self.storage.join("container-names")
    }
}

fn user_data_dir() -> Result<PathBuf, PathsError> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(dir.into());
    }
    let home = std::env::var_os("HOME").filter(|h| Path::new(h).is_absolute()).ok_or(PathsError::NoHome)?;
    Ok(PathBuf::from(home).join(".local/share"))
}

/// $XDG_RUNTIME_DIR when set and ours; otherwise a private /tmp directory
/// that we create 0700, refusing one that someone else made first.
fn user_runtime_dir(uid: Uid) -> Result<PathBuf, PathsError> {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if let Ok(meta) = std::fs::metadata(&dir) {
            if meta.uid() == uid.as_raw() && dir.is_absolute() {
                return Ok(dir);
            }
        }
    }
    let dir = PathBuf::from(format!("/tmp/ctr-run-{}", uid.as_raw()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(IoError::new(format!("cannot create {}", dir.display()), e).into()),
    }
    // symlink_metadata: never follow a link someone planted in /tmp.
    let meta = std::fs::symlink_metadata(&dir).with_io_context(|| format!("stat {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid.as_raw() || meta.permissions().mode() & 0o077 != 0 {
        return Err(PathsError::NotPrivate(dir));
    }
    Ok(dir)
}
