//! Processes ctr starts and follows: waiting on one in the foreground while
//! relaying signals and a terminal ([`wait`]), the monitor of a detached
//! container ([`monitor`]), whether a recorded process still runs
//! ([`liveness`]), and terminals ([`tty`]).

pub mod liveness;
pub mod monitor;
pub mod tty;
pub mod wait;
