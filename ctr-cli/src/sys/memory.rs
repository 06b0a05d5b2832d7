//! Giving memory back to the kernel, for the long-lived monitor.

/// Shrinks the monitor's resident set once the container runs: it lives as
/// long as its container, one per container. Freed heap goes back to the
/// kernel, and the pages of code and read-only data that starting the
/// container touched (most of ctr, mapped from the page cache) are dropped
/// from our page tables; the little the wait loop needs faults back in.
pub fn give_back_memory() {
    // SAFETY: malloc_trim only walks glibc's own heap under its lock.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    for (start, len) in clean_file_mappings(&smaps) {
        // SAFETY: the range is a read-only private file mapping with no
        // private (anonymous) page, so every page equals the file's and
        // nothing can write it: dropping it only unmaps page cache pages,
        // which fault back in unchanged on the next access.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// From /proc/self/smaps: read-only (r-xp, r--p) mappings of files that
/// hold no anonymous page (so not RELRO data, which the loader wrote).
fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((a, b)) =
            first.split_once('-').filter(|(a, _)| a.bytes().all(|c| c.is_ascii_hexdigit()) && !a.is_empty())
        {
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            let range = usize::from_str_radix(a, 16).ok().zip(usize::from_str_radix(b, 16).ok());
            current = match range {
                Some((start, end)) if matches!(perms, "r-xp" | "r--p") && path.starts_with('/') => {
                    Some((start, end - start))
                }
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let Some(mapping) = current.take() {
                if fields.next() == Some("0") {
                    out.push(mapping);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 123 /usr/local/bin/ctr
Rss:                 100 kB
Anonymous:             0 kB
55d0a0100000-55d0a0500000 r-xp 00100000 fe:01 123 /usr/local/bin/ctr
Anonymous:             0 kB
55d0a0500000-55d0a0600000 r--p 00500000 fe:01 123 /usr/local/bin/ctr
Anonymous:            64 kB
55d0a0600000-55d0a0610000 rw-p 00600000 fe:01 123 /usr/local/bin/ctr
Anonymous:            16 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:           132 kB
7ffc00100000-7ffc00102000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(clean_file_mappings(smaps), vec![(0x55d0a0000000, 0x100000), (0x55d0a0100000, 0x400000)]);
    }
}
