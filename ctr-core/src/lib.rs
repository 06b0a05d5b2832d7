//! Types that `ctr` and `ctr-setuid-helper` share: the wire protocol and its
//! framing, validated identifiers, user-namespace id maps, the helper's config.
//!
//! Everything the helper receives is built by parsing into these types, so a
//! value that exists is a value that was validated ("parse, don't check").
//! This crate has no `unsafe`; its only I/O is reading /proc and /sys, the
//! frames on a channel, whole-file replacement ([`fs`]) and the cgroup
//! manager ([`cgroup`]), which the helper and `ctr-oci` (as root) share.
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod config;
pub mod frame;
pub mod fs;
pub mod idmap;
pub mod ids;
pub mod limits;
pub mod liveness;
pub mod net;
pub mod protocol;
