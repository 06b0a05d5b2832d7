//! `ctr-oci`'s engine: an OCI runtime with runc's command line, for
//! containerd, podman and anything else that drives runc. The binary
//! (`ctr-cli/ctr-oci/`) only parses arguments and prints; everything here
//! is library code that reuses the engine's container init where it fits
//! (the rootfs bind and pivot_root, masked and read-only paths, the
//! executable lookup, the capability bounding set, the seccomp compiler)
//! and ctr-core's cgroup manager.
//!
//! Privilege: the caller is root (containerd, rootful podman) or root of
//! its own user namespace; ctr-oci never uses the setuid helper.
//!
//! - [`bundle`]: config.json read and translated, refusing what is not
//!   supported;
//! - [`create`]: `create` and `run` (clone, cgroup, id maps, the record);
//! - [`init`]: the container's side until execve, blocked on `exec.fifo`
//!   between `create` and `start`;
//! - [`mounts`]: the spec's mounts; [`console`]: `process.terminal` over
//!   `--console-socket`;
//! - [`lifecycle`]: `start`, `kill`, `delete`, `state`, `list`, `pause`,
//!   `resume`, `ps`; [`exec`]: `exec`;
//! - [`hooks`]: the spec's hooks, with the state on stdin; [`fds`]: the
//!   descriptors passed (`LISTEN_FDS`, `--preserve-fds`) and the stdio's
//!   owner in a user namespace;
//! - [`shared_mounts`]: the mounts of a container without a mount
//!   namespace of its own, undone by `delete`;
//! - [`record`]: the state directory; [`cgroups`]: what only ctr-oci needs
//!   of the cgroup manager (`cgroupsPath`, device rules, pids);
//!   [`device_filter`]: device rules as cgroup v2's BPF program;
//!   [`systemd_cgroup`]: the systemd `slice:prefix:name` cgroupsPath,
//!   [`systemd_dbus`]: its scope made by systemd over D-Bus where it runs;
//! - [`default_spec`]: the `spec` command; [`features`]: the `features` one.

use crate::error::IoError;

/// Why `ctr-oci` could not do what it was asked. One type for the whole
/// OCI runtime, as [`crate::image::ImageError`] is for the image store:
/// a refusal says what to change; the failure of a step says which step,
/// with the cause as its source.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The bundle or the request asks for what ctr-oci does not do, or the
    /// container's state does not allow it; the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Os(#[from] std::io::Error),
    #[error(transparent)]
    Sys(#[from] nix::errno::Errno),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Spec(#[from] oci_spec::OciSpecError),
    #[error(transparent)]
    Capabilities(#[from] caps::errors::CapsError),
    #[error(transparent)]
    Number(#[from] std::num::TryFromIntError),
    #[error(transparent)]
    Channel(#[from] ctr_core::frame::FrameError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Init(#[from] crate::init::InitError),
    #[error(transparent)]
    Cgroup(#[from] ctr_core::protocol::HelperError),
    #[error(transparent)]
    Nul(#[from] std::ffi::NulError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// What was being done when `source` failed.
    #[error("{what}")]
    Context { what: String, source: Box<OciError> },
}

crate::error::module_error_context!(trait OciContext for OciError, none => Invalid);

pub type Result<T, E = OciError> = std::result::Result<T, E>;

/// An [`OciError::Invalid`] with a formatted message.
macro_rules! refused {
    ($($arg:tt)*) => {
        $crate::oci::OciError::Invalid(format!($($arg)*))
    };
}

/// Returns an [`OciError::Invalid`] with a formatted message.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(refused!($($arg)*))
    };
}

pub mod bundle;
pub mod cgroups;
pub mod console;
pub mod create;
pub mod default_spec;
pub mod device_filter;
pub mod exec;
pub mod fds;
pub mod features;
pub mod hooks;
pub mod init;
pub mod lifecycle;
pub mod mounts;
pub mod record;
pub mod shared_mounts;
pub mod systemd_cgroup;
pub mod systemd_dbus;
