//! How `ctr` prints: one table writer ([`table`]), docker's status phrases
//! ([`status`]), `--format` templates ([`template`]) and
//! how listings use them ([`listing`]), the image table
//! ([`images`]), and the engine's unit formatters ([`units`]): one each
//! for human durations, sizes and RFC 3339 times, shared with the engine,
//! which needs them for pull progress, records and logs.

pub mod containers;
pub mod filter;
pub mod images;
pub mod info;
pub mod listing;
pub mod stats;
pub mod status;
pub mod table;
pub mod template;

pub use ctr_cli::units;
