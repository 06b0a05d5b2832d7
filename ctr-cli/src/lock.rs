//! Serialising commands that change one container (`stop`, `kill`, `rm`,
//! `exec`'s start, the monitor's final record): an exclusive flock on the
//! container's state directory. The lock dies with its holder, so a killed
//! command never leaves a container locked.

use crate::error::{IoContext, IoError};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::path::Path;

/// Held until dropped.
pub struct ContainerLock {
    _lock: Flock<File>,
}

impl ContainerLock {
    /// Waits for the lock. `None` if the container's state directory is
    /// gone (removed meanwhile): there is nothing left to change.
    pub fn acquire(state_dir: &Path) -> Result<Option<Self>, IoError> {
        let mut dir = match File::open(state_dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(IoError::new(format!("open {}", state_dir.display()), e)),
        };
        let lock = loop {
            match Flock::lock(dir, FlockArg::LockExclusive) {
                Ok(lock) => break lock,
                Err((d, nix::errno::Errno::EINTR)) => dir = d,
                Err((_, e)) => return Err(e).with_io_context(|| format!("lock {}", state_dir.display())),
            }
        };
        // Someone may have removed the container while we waited.
        if !state_dir.join("state.json").exists() {
            return Ok(None);
        }
        Ok(Some(Self { _lock: lock }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_removed_container_gives_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ContainerLock::acquire(&dir.path().join("nope")).unwrap().is_none());
        assert!(ContainerLock::acquire(dir.path()).unwrap().is_none(), "no state.json: removed");
        std::fs::write(dir.path().join("state.json"), "{}").unwrap();
        let held = ContainerLock::acquire(dir.path()).unwrap();
        assert!(held.is_some());
        // A second, independent open file description must wait: try non-blocking.
        let other = File::open(dir.path()).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        assert!(ContainerLock::acquire(dir.path()).unwrap().is_some());
    }
}
