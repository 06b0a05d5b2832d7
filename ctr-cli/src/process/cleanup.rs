//! The helper's teardown of a `ctr run --rm` container (its cgroups in
//! every hierarchy, and on a bridge its rules and lease), run by a
//! detached `ctr internal-cleanup ID` once `run` has removed the record
//! and the writable layer, so that `run` returns without waiting for a
//! second helper run (about as long as the container's whole start).
//!
//! Nothing is lost if this process never finishes: the helper's record of
//! the container names a dead process, so the user's next helper run (any
//! `ctr` command that starts one, or `ctr container prune`) removes what it
//! names. The container's processes are gone already: `run` starts this
//! only after reaping the container's init, whose death took everything
//! in its pid namespace with it.

use crate::helper_client::Helper;
use crate::paths::Paths;
use ctr_core::ids::ContainerId;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The hidden subcommand, dispatched before the argument parser.
pub const SUBCOMMAND: &str = "internal-cleanup";

/// Starts the detached teardown of container `id` and returns at once.
/// Its stdio is /dev/null, so that it holds no pipe of our caller's open
/// (a caller reading our output to its end would wait for it), and it is
/// in a process group of its own, out of reach of the terminal's Ctrl-C.
pub fn start(id: &ContainerId) -> std::io::Result<()> {
    // Not waited for: a zombie until we exit, then whoever adopts it reaps it.
    Command::new("/proc/self/exe")
        .arg0("ctr")
        .args([SUBCOMMAND, id.as_str()])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// `ctr internal-cleanup ID`: asks the helper to remove the container's
/// cgroups and network, then exits (0 on success).
pub fn main() -> ! {
    // Its own session: a hangup of the caller's terminal never reaches it.
    let _ = nix::unistd::setsid();
    let id = std::env::args().nth(2).and_then(|id| ContainerId::parse(&id).ok());
    let removed = match (id, Paths::discover()) {
        (Some(id), Ok(paths)) => Helper::new(&paths.helper()).remove_cgroup(&id).is_ok(),
        _ => false,
    };
    std::process::exit(if removed { 0 } else { 1 })
}
