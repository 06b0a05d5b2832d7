//! Containers: the record each one keeps on disk ([`record`]), the state
//! machine of its life ([`state`]), and one file per verb. A verb acts on
//! one container named by name, id or id prefix; a front end given several
//! calls it for each and goes on past errors.
//!
//! The record and the state machine sit below [`crate::launch`], which
//! needs them; the verbs sit above it. The re-exports here are for front
//! ends.

pub mod attach;
pub mod copy;
pub mod create;
pub mod exec;
pub mod inspect;
pub mod kill;
pub mod layer;
pub mod limits;
pub mod pause;
pub mod prune;
pub mod record;
pub mod remove;
pub mod rename;
pub mod restart;
pub mod run;
pub mod saved_launch;
mod settle;
pub mod start;
pub mod state;
pub mod stop;
pub mod systemd_unit;
pub mod top;
pub mod tree;
pub mod update;
pub mod usage;
pub mod wait;

pub use record::{find, list, Container, RecordError, State};
pub use state::{RunState, StateError, Status};

use crate::error::IoError;
use crate::helper_client::CallError;
use crate::launch::LaunchError;
use ctr_core::frame::FrameError;

/// Why a verb failed on a container. Refusals of the state machine are
/// [`StateError`]s; the rest says which part failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Helper(#[from] CallError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Monitor(#[from] crate::process::monitor::MonitorError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Id(#[from] ctr_core::ids::IdError),
    #[error(transparent)]
    Vanished(#[from] crate::process::liveness::Vanished),
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    #[error(transparent)]
    RunOptions(#[from] crate::run_options::RunOptionsError),
    #[error(transparent)]
    Tuning(#[from] crate::tuning::TuningError),
    #[error(transparent)]
    Log(#[from] crate::process::tee::TeeError),
    #[error(transparent)]
    Limit(#[from] ctr_core::limits::LimitError),
    #[error(transparent)]
    DetachKeys(#[from] attach::BadDetachKeys),
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
    /// `--userns keep-id` without enough subordinate ids.
    #[error("{}", crate::image::userns::KEEP_ID_RANGES)]
    KeepIdRanges,
    /// Any other `--userns`.
    #[error(
        "--userns {0:?}: ctr always runs a container in a user namespace of yours, mapped as container root = you \
(the default, --userns \"\"); `host` and other modes are not supported"
    )]
    UsernsMode(String),
    #[error("{flag}: cannot find device {}: {source}", device.display())]
    DeviceNotFound { flag: &'static str, device: std::path::PathBuf, source: std::io::Error },
    #[error("{flag}: {} is not a block device; name a disk such as /dev/sda", device.display())]
    NotABlockDevice { flag: &'static str, device: std::path::PathBuf },
    #[error(transparent)]
    Io(#[from] IoError),
    /// A request ctr cannot carry out as given; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot send {signal} to {key}: {errno}")]
    Signal { key: String, signal: nix::sys::signal::Signal, errno: nix::errno::Errno },
    #[error("container {0} was removed")]
    RemovedWhileWaiting(String),
    #[error("container {0} never started")]
    NeverStarted(String),
    #[error("container {0} exited, but its exit code is unknown: its monitor was killed")]
    UnknownExit(String),
    #[error("the container was started by an older ctr; exec needs a newer one")]
    StartedByOlderCtr,
    #[error("the exec process did not take its task: {0}")]
    ExecHandoff(FrameError),
}

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// Refuses a request with a message that says what to change.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::container::ContainerError::Invalid(format!($($arg)*)))
    };
}
use invalid;
