//! User-namespace id maps and the subordinate-id policy behind them.
//!
//! The helper writes `uid_map`/`gid_map` as root, so it alone decides what
//! may be mapped: the caller's own id plus the ranges that `/etc/subuid` and
//! `/etc/subgid` (root-owned) grant the caller — the same policy that
//! shadow's `newuidmap`/`newgidmap` enforce. Host id 0 is never mapped for a
//! caller other than root.

use serde::{Deserialize, Serialize};

/// The kernel accepts at most this many lines in one id map (user_namespaces(7)).
pub const MAX_MAP_ENTRIES: usize = 340;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum IdMapError {
    #[error("id map entry {inside} {outside} {count} is empty or overflows 32 bits")]
    BadEntry { inside: u32, outside: u32, count: u32 },
    #[error("id map has {0} entries; the kernel allows at most {MAX_MAP_ENTRIES}")]
    TooManyEntries(usize),
    #[error("id map is empty")]
    Empty,
    #[error("host {kind}s {first}..={last} are not yours: map only your own {kind} and the ranges /etc/sub{kind} grants you")]
    NotOwned { kind: IdKind, first: u32, last: u32 },
    #[error("id map entries overlap inside the container at {kind} {inside}")]
    OverlapInside { kind: IdKind, inside: u32 },
    #[error("id map entries overlap on the host at {kind} {outside}")]
    OverlapOutside { kind: IdKind, outside: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdKind {
    Uid,
    Gid,
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        })
    }
}

/// One line of an id map: `count` ids from `inside` map to `outside` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "(u32, u32, u32)", into = "(u32, u32, u32)")]
pub struct IdMapEntry {
    inside: u32,
    outside: u32,
    count: u32,
}

impl IdMapEntry {
    pub fn new(inside: u32, outside: u32, count: u32) -> Result<Self, IdMapError> {
        let fits = |start: u32| start.checked_add(count - 1).is_some();
        if count == 0 || !fits(inside) || !fits(outside) {
            return Err(IdMapError::BadEntry { inside, outside, count });
        }
        Ok(Self { inside, outside, count })
    }
    pub fn inside(&self) -> u32 {
        self.inside
    }
    pub fn outside(&self) -> u32 {
        self.outside
    }
    pub fn count(&self) -> u32 {
        self.count
    }
    fn outside_last(&self) -> u32 {
        self.outside + (self.count - 1)
    }
    fn inside_last(&self) -> u32 {
        self.inside + (self.count - 1)
    }
}

impl TryFrom<(u32, u32, u32)> for IdMapEntry {
    type Error = IdMapError;
    fn try_from((inside, outside, count): (u32, u32, u32)) -> Result<Self, IdMapError> {
        Self::new(inside, outside, count)
    }
}

impl From<IdMapEntry> for (u32, u32, u32) {
    fn from(e: IdMapEntry) -> Self {
        (e.inside, e.outside, e.count)
    }
}

/// A subordinate range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubIdRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges granted to a user in a subuid/subgid file's text. Lines name
/// the user by name or by numeric id (subuid(5)); malformed lines are skipped.
pub fn parse_subid_file(text: &str, user_name: Option<&str>, id: u32) -> Vec<SubIdRange> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() {
                return None;
            }
            if owner != id_text && Some(owner) != user_name {
                return None;
            }
            let start: u32 = start.parse().ok()?;
            let count: u32 = count.parse().ok()?;
            (count > 0 && start.checked_add(count - 1).is_some()).then_some(SubIdRange { start, count })
        })
        .collect()
}

/// The map `ctr` asks for by default: 0 to the caller's own id, then the
/// subordinate ranges in order from 1. With no ranges, a single-id map.
pub fn default_map(own_id: u32, ranges: &[SubIdRange]) -> Vec<IdMapEntry> {
    let mut map = vec![IdMapEntry { inside: 0, outside: own_id, count: 1 }];
    let mut next_inside: u32 = 1;
    for r in ranges {
        if map.len() == MAX_MAP_ENTRIES || r.start == 0 {
            break;
        }
        let count = r.count.min(u32::MAX - next_inside);
        if count == 0 {
            break;
        }
        map.push(IdMapEntry { inside: next_inside, outside: r.start, count });
        next_inside += count;
    }
    map
}

/// Checks that a requested map is well formed and maps only ids the caller
/// owns: its own id, ids in its subordinate ranges, and never host id 0
/// unless the caller is root.
pub fn check_map(kind: IdKind, map: &[IdMapEntry], own_id: u32, ranges: &[SubIdRange]) -> Result<(), IdMapError> {
    if map.is_empty() {
        return Err(IdMapError::Empty);
    }
    if map.len() > MAX_MAP_ENTRIES {
        return Err(IdMapError::TooManyEntries(map.len()));
    }
    for e in map {
        let owned_by_self = e.count == 1 && e.outside == own_id;
        // In u64: a range is public data (`SubIdRange` has public fields), and
        // one of count 0 or reaching past u32::MAX must not wrap into a grant.
        let in_a_range = ranges.iter().any(|r| {
            let last = u64::from(r.start) + u64::from(r.count);
            r.count > 0 && e.outside >= r.start && u64::from(e.outside_last()) < last
        });
        let touches_host_root = e.outside == 0 && own_id != 0;
        if touches_host_root || !(owned_by_self || in_a_range) {
            return Err(IdMapError::NotOwned { kind, first: e.outside, last: e.outside_last() });
        }
    }
    for (i, a) in map.iter().enumerate() {
        for b in &map[i + 1..] {
            if a.inside <= b.inside_last() && b.inside <= a.inside_last() {
                return Err(IdMapError::OverlapInside { kind, inside: a.inside.max(b.inside) });
            }
            if a.outside <= b.outside_last() && b.outside <= a.outside_last() {
                return Err(IdMapError::OverlapOutside { kind, outside: a.outside.max(b.outside) });
            }
        }
    }
    Ok(())
}

/// The text written to /proc/PID/uid_map or gid_map.
pub fn to_proc_format(map: &[IdMapEntry]) -> String {
    map.iter().map(|e| format!("{} {} {}\n", e.inside, e.outside, e.count)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str = "alice:100000:65536\n# comment\n1001:200000:1000\nbob:300000:65536\nbroken line\nx:1:2:3\n";

    #[test]
    fn parses_by_name_and_by_id() {
        assert_eq!(parse_subid_file(SUBUID, Some("alice"), 1000), vec![SubIdRange { start: 100000, count: 65536 }]);
        assert_eq!(parse_subid_file(SUBUID, Some("carol"), 1001), vec![SubIdRange { start: 200000, count: 1000 }]);
        assert!(parse_subid_file(SUBUID, None, 4242).is_empty());
    }

    #[test]
    fn default_map_is_own_id_then_ranges() {
        let ranges = parse_subid_file(SUBUID, Some("alice"), 1000);
        let map = default_map(1000, &ranges);
        assert_eq!(to_proc_format(&map), "0 1000 1\n1 100000 65536\n");
        assert!(check_map(IdKind::Uid, &map, 1000, &ranges).is_ok());
        assert_eq!(to_proc_format(&default_map(1000, &[])), "0 1000 1\n");
    }

    #[test]
    fn refuses_ids_the_caller_does_not_own() {
        let ranges = parse_subid_file(SUBUID, Some("alice"), 1000);
        let bob = [IdMapEntry::new(0, 300000, 10).unwrap()];
        assert!(matches!(check_map(IdKind::Uid, &bob, 1000, &ranges), Err(IdMapError::NotOwned { .. })));
        let host_root = [IdMapEntry::new(0, 0, 1).unwrap()];
        assert!(check_map(IdKind::Uid, &host_root, 1000, &ranges).is_err());
        let past_end = [IdMapEntry::new(1, 100000, 65537).unwrap()];
        assert!(check_map(IdKind::Uid, &past_end, 1000, &ranges).is_err());
        let own_plus_one = [IdMapEntry::new(0, 1000, 2).unwrap()];
        assert!(check_map(IdKind::Uid, &own_plus_one, 1000, &ranges).is_err());
    }

    #[test]
    fn malformed_ranges_grant_nothing() {
        let entry = [IdMapEntry::new(0, 100, 1).unwrap()];
        let empty = [SubIdRange { start: 100, count: 0 }];
        assert!(check_map(IdKind::Uid, &entry, 1000, &empty).is_err());
        let wrapping = [SubIdRange { start: u32::MAX, count: 2 }];
        assert!(check_map(IdKind::Uid, &[IdMapEntry::new(0, 0, 1).unwrap()], 1000, &wrapping).is_err());
        let top = [IdMapEntry::new(0, u32::MAX, 1).unwrap()];
        assert!(check_map(IdKind::Uid, &top, 1000, &wrapping).is_ok());
    }

    #[test]
    fn root_may_map_itself() {
        assert!(check_map(IdKind::Uid, &default_map(0, &[]), 0, &[]).is_ok());
    }

    #[test]
    fn refuses_overlaps_and_bad_entries() {
        let ranges = [SubIdRange { start: 100000, count: 100 }];
        let overlap_in = [IdMapEntry::new(0, 1000, 1).unwrap(), IdMapEntry::new(0, 100000, 5).unwrap()];
        assert!(matches!(check_map(IdKind::Gid, &overlap_in, 1000, &ranges), Err(IdMapError::OverlapInside { .. })));
        let overlap_out = [IdMapEntry::new(1, 100000, 5).unwrap(), IdMapEntry::new(10, 100004, 5).unwrap()];
        assert!(matches!(check_map(IdKind::Gid, &overlap_out, 1000, &ranges), Err(IdMapError::OverlapOutside { .. })));
        assert!(IdMapEntry::new(0, 1, 0).is_err());
        assert!(IdMapEntry::new(u32::MAX, 1, 2).is_err());
        assert!(check_map(IdKind::Uid, &[], 1000, &ranges).is_err());
    }
}
