//! Processes ctr starts and follows: waiting on one in the foreground while
//! relaying signals and a terminal ([`wait`]), the monitor of a detached
//! container ([`monitor`]), whether a recorded process still runs
//! ([`liveness`]), terminals ([`tty`]), and the restart policies that
//! the monitor carries out ([`restart_policy`]), the log of a foreground
//! container ([`tee`]), its health checks ([`health_check`]), and the
//! frames of the monitor's attach connection ([`attach_stream`]).

pub mod attach_stream;
pub mod health_check;
pub mod liveness;
pub mod monitor;
pub mod restart_policy;
pub mod tee;
pub mod tty;
pub mod wait;
