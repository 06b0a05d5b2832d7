//! The ctr engine: everything `ctr` does, as a library, with no command
//! line in it. The `ctr` binary (`main.rs` and its `args/`, `commands/`
//! and `output/`) parses arguments into the request types here, calls one
//! engine function per verb and prints what comes back; a second front end
//! (an OCI runtime, say) can do the same. No module here imports the
//! binary's, and the module graph has no cycles (`tests/module_graph.rs`).
//!
//! - [`container`]: the record of a container, its state machine, and one
//!   file per verb (create, start, run, restart, attach, rename, exec,
//!   update, stop, kill, wait, pause, rm, prune, inspect);
//! - [`launch`]: the first process of a container through the helper, and
//!   the spec handed to its `ctr init`; [`init`] is that `ctr init`;
//! - [`process`]: waiting on a process, the detached monitor, liveness
//!   of recorded processes, terminals;
//! - [`image`], [`volume`], [`network`], [`stats`], [`logs`]: what the
//!   names say; [`dns`], [`mounts`], [`seccomp`], [`spec`]: parts of a container's
//!   spec; [`helper_client`], [`fdpass`], [`lock`], [`paths`], [`idmap`],
//!   [`ports`], [`run_options`], [`timing`], [`tuning`], [`units`], [`user_config`], [`info`],
//!   [`log_options`]: the plumbing.

pub mod container;
pub mod devices;
pub mod dns;
pub mod error;
pub mod fdpass;
pub mod health;
pub mod helper_client;
pub mod idmap;
pub mod image;
pub mod info;
pub mod init;
pub mod launch;
pub mod lock;
pub mod log_options;
pub mod logs;
pub mod mounts;
pub mod network;
pub mod oci;
pub mod paths;
pub mod ports;
pub mod process;
pub mod run_options;
pub mod seccomp;
pub mod spec;
pub mod stats;
pub mod sys;
pub mod timing;
pub mod tuning;
pub mod units;
pub mod user_config;
pub mod volume;
