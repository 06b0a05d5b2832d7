//! Containers: the record each one keeps on disk ([`record`]), the state
//! machine of its life ([`state`]), and one file per verb. A verb acts on
//! one container named by name, id or id prefix; a front end given several
//! calls it for each and goes on past errors.
//!
//! The record and the state machine sit below [`crate::launch`], which
//! needs them; the verbs sit above it. The re-exports here are for front
//! ends.

pub mod attach;
pub mod create;
pub mod exec;
pub mod inspect;
pub mod kill;
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
pub mod update;
pub mod wait;

pub use record::{find, list, Container, State};
pub use state::{RunState, Status};
