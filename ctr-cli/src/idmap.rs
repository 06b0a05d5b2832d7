//! The id maps a container of the caller gets: container root is the
//! caller's own uid and gid, and ids from 1 up map to the caller's
//! subordinate ranges in /etc/subuid and /etc/subgid. The helper checks
//! every line again against the same files; this side only proposes.

use ctr_core::idmap::{default_map, parse_subid_file, IdMapEntry};

/// 0 to our own id, then our subordinate ranges; the helper re-checks it.
pub fn id_maps() -> (Vec<IdMapEntry>, Vec<IdMapEntry>) {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name);
    let ranges = |file: &str, id: u32| {
        std::fs::read_to_string(file).map(|t| parse_subid_file(&t, name.as_deref(), id)).unwrap_or_default()
    };
    (default_map(uid, &ranges("/etc/subuid", uid)), default_map(gid, &ranges("/etc/subgid", gid)))
}
