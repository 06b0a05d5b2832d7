//! Subordinate id ranges in /etc/subuid and /etc/subgid (subuid(5)): the
//! helper maps a user's subordinate ids into their containers, so install and
//! the test driver give a user one range of [`RANGE_SIZE`] ids if they have
//! none. Finding the range is pure ([`free_range`]); writing is atomic.

use crate::host;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One container's worth of ids: 0..=65535 inside.
pub const RANGE_SIZE: u32 = 65536;

/// Ranges start at or above this, where distributions put subordinate ids
/// (login.defs SUB_UID_MIN), well clear of real users' ids.
const LOWEST_START: u32 = 100_000;

pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// Gives `user` (with id `id`) a range in both files unless it already has
/// one there; returns whether anything was added.
pub fn ensure_ranges(user: &str, id: u32) -> Result<bool> {
    let mut added = false;
    for file in [SUBUID, SUBGID] {
        added |= ensure_range_in(Path::new(file), user, id)?;
    }
    Ok(added)
}

fn ensure_range_in(file: &Path, user: &str, id: u32) -> Result<bool> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    if has_range(&text, user, id) {
        return Ok(false);
    }
    let Some(start) = free_range(&text) else {
        bail!("no free range of {RANGE_SIZE} ids left in {}: add one for {user} by hand", file.display());
    };
    let mut new_text = text;
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str(&format!("{user}:{start}:{RANGE_SIZE}\n"));
    host::write_root_file(file, new_text.as_bytes(), 0o644)?;
    eprintln!("xtask: gave {user} ids {start}..{} in {}", u64::from(start) + u64::from(RANGE_SIZE) - 1, file.display());
    Ok(true)
}

/// Whether a line of `text` grants ids to `user`, named or by numeric id.
pub fn has_range(text: &str, user: &str, id: u32) -> bool {
    let id = id.to_string();
    entries(text).any(|(owner, _, _)| owner == user || owner == id)
}

/// The first multiple of [`RANGE_SIZE`] at or above 100000 whose range
/// overlaps no line of `text`, whoever owns it.
pub fn free_range(text: &str) -> Option<u32> {
    let size = u64::from(RANGE_SIZE);
    let taken: Vec<(u64, u64)> = entries(text).map(|(_, start, count)| (start, start + count)).collect();
    let mut start = u64::from(LOWEST_START).div_ceil(size) * size;
    while start + size <= 1 << 32 {
        let end = start + size;
        match taken.iter().filter(|&&(s, e)| s < end && start < e).map(|&(_, e)| e).max() {
            // Skip past the farthest overlapping range, staying aligned.
            Some(blocked_until) => start = blocked_until.div_ceil(size) * size,
            None => return u32::try_from(start).ok(),
        }
    }
    None
}

/// `(owner, start, count)` of each well-formed line; comments and junk are skipped.
fn entries(text: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    text.lines().filter_map(|line| {
        let mut fields = line.trim().split(':');
        let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        if owner.is_empty() || owner.starts_with('#') || fields.next().is_some() {
            return None;
        }
        Some((owner, start.parse::<u32>().ok()?.into(), count.parse::<u32>().ok()?.into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gets_the_first_aligned_range_above_100000() {
        assert_eq!(free_range(""), Some(131072));
    }

    #[test]
    fn skips_ranges_that_overlap_even_partly() {
        // Debian's useradd hands out 100000:65536, which reaches into 131072.
        assert_eq!(free_range("alice:100000:65536\n"), Some(196608));
        assert_eq!(free_range("bob:131072:65536\n"), Some(196608));
        assert_eq!(free_range("bob:131072:1\n"), Some(196608));
        assert_eq!(free_range("a:100000:65536\nb:196608:65536\nc:300000:10\n"), Some(327680));
    }

    #[test]
    fn ranges_below_or_between_do_not_block() {
        assert_eq!(free_range("x:1000:5000\ny:262144:65536\n"), Some(131072));
        assert_eq!(free_range("x:131072:65536\ny:262144:65536\n"), Some(196608));
    }

    #[test]
    fn ignores_comments_and_malformed_lines() {
        assert_eq!(free_range("# a:131072:65536\nbroken\nz:131072\nq:1:2:3\n"), Some(131072));
    }

    #[test]
    fn none_when_the_id_space_is_full() {
        assert_eq!(free_range("all:0:4294967295\n"), None);
        // The last aligned range, 4294901760..=4294967295, still fits.
        assert_eq!(free_range("low:100000:4294800000\n"), Some(4294901760));
    }

    #[test]
    fn recognises_entries_by_name_or_id() {
        let text = "alice:100000:65536\n1001:200000:65536\n";
        assert!(has_range(text, "alice", 1000));
        assert!(has_range(text, "bob", 1001));
        assert!(!has_range(text, "carol", 1002));
        assert!(!has_range("# carol:1:2\n", "carol", 1002));
    }
}
