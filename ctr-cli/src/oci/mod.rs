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
//! - [`mounts`]: the spec's mounts;
//! - [`lifecycle`]: `start`, `kill`, `delete`, `state`, `list`, `pause`,
//!   `resume`, `ps`; [`exec`]: `exec`;
//! - [`record`]: the state directory; [`cgroups`]: what only ctr-oci needs
//!   of the cgroup manager (`cgroupsPath`, device rules, pids);
//! - [`default_spec`]: the `spec` command; [`features`]: the `features` one.

pub mod bundle;
pub mod cgroups;
pub mod create;
pub mod default_spec;
pub mod exec;
pub mod features;
pub mod init;
pub mod lifecycle;
pub mod mounts;
pub mod record;
