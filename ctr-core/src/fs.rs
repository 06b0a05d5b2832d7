//! Files replaced whole: written under a temporary name beside the target,
//! then renamed over it, so a reader sees the old file or the new one and
//! never half of either. The one writer for the helper's records, network
//! registry and leases, and for `ctr`'s state files.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `tmp`, created with mode 0600 (or truncated), never
/// through a symlink, then renames it over `path`. With `durable`, the file
/// is fsynced first and the directory after, so that the rename itself
/// survives a crash. `tmp` must be a name no other writer uses at the same
/// time.
pub fn replace(tmp: &Path, path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(tmp, path)?;
    match path.parent() {
        Some(dir) if durable => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_and_private_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, path) = (dir.path().join("f.tmp"), dir.path().join("f"));
        std::fs::write(&path, "old").unwrap();
        replace(&tmp, &path, b"new", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!tmp.exists());
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        assert!(replace(&tmp, &path, b"newer", false).is_err(), "wrote through a symlink");
        assert!(!target.exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
