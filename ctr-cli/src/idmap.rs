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

/// podman's `--userns keep-id`, from `default` (0 to `own_host`, then
/// subordinate ids from 1): container id `own` is the caller's own id, the
/// ids below it take the default map's next ones (`c` what `c + 1` was), the
/// ids above keep theirs. Every container id the default map covers is
/// still covered, so a layer's owners need only that shift. None when the
/// default map does not reach `own` (too few subordinate ids).
pub fn keep_id_map(default: &[IdMapEntry], own: u32) -> Option<Vec<IdMapEntry>> {
    let (first, rest) = default.split_first()?;
    if own == 0 {
        return Some(default.to_vec());
    }
    let mut map = vec![IdMapEntry::new(own, first.outside(), 1).ok()?];
    let mut reached = false;
    for e in rest {
        let last = e.inside() + (e.count() - 1);
        if e.inside() <= own {
            // inside() >= 1: the caller's own id is entry 0.
            let below = last.min(own) - e.inside() + 1;
            map.push(IdMapEntry::new(e.inside() - 1, e.outside(), below).ok()?);
            reached |= last >= own;
        }
        if last > own {
            let from = e.inside().max(own + 1);
            map.push(IdMapEntry::new(from, e.outside() + (from - e.inside()), last - from + 1).ok()?);
        }
    }
    (reached && map.len() <= ctr_core::idmap::MAX_MAP_ENTRIES).then_some(map)
}

/// The maps a `--userns keep-id` container gets; None when the caller's
/// subordinate ids do not reach its own uid or gid.
pub fn keep_id_maps() -> Option<(Vec<IdMapEntry>, Vec<IdMapEntry>)> {
    let (uid, gid) = id_maps();
    let own = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    Some((keep_id_map(&uid, own.0)?, keep_id_map(&gid, own.1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(triples: &[(u32, u32, u32)]) -> Vec<IdMapEntry> {
        triples.iter().map(|&(i, o, c)| IdMapEntry::new(i, o, c).unwrap()).collect()
    }

    #[test]
    fn keep_id_puts_the_own_id_at_its_place_and_shifts_the_ids_below() {
        let default = entries(&[(0, 1000, 1), (1, 100000, 65536)]);
        let keep = keep_id_map(&default, 1000).unwrap();
        assert_eq!(keep, entries(&[(1000, 1000, 1), (0, 100000, 1000), (1001, 101000, 64536)]));
        // Split across two ranges, the own id at the end of the first.
        let two = entries(&[(0, 1000, 1), (1, 100000, 10), (11, 200000, 10)]);
        assert_eq!(keep_id_map(&two, 10).unwrap(), entries(&[(10, 1000, 1), (0, 100000, 10), (11, 200000, 10)]));
        assert_eq!(keep_id_map(&default, 0).unwrap(), default, "root's keep-id is the default map");
        assert!(keep_id_map(&entries(&[(0, 1000, 1), (1, 100000, 10)]), 1000).is_none(), "too few ids");
        assert!(keep_id_map(&entries(&[(0, 1000, 1)]), 1000).is_none());
        assert_eq!(keep_id_map(&default, 65536).unwrap().len(), 2, "the last id: nothing above it");
    }
}
