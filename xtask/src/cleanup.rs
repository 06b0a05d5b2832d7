//! Undoing a test or benchmark run, whatever happened: a guard that, when
//! dropped (after success, an error, a panic or Ctrl-C, see
//! [`crate::interrupt`]), leaves the run's cgroup scope, deletes its network
//! namespace, unmounts whatever is still mounted in its work directory and
//! the test user's runtime directory and removes both, and empties the
//! helper's records for the test user. What a test leaked is reported as a
//! warning.

use crate::cgroup_scope::CgroupScope;
use ctr_tests::procfs;
use nix::mount::{umount2, MntFlags};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Default)]
pub struct Cleanup {
    scope: Option<CgroupScope>,
    netns: Option<String>,
    /// Removed in this order: the test user's runtime dir, then the work root.
    trees: Vec<PathBuf>,
    /// Directories whose entries are removed (each one a leak), keeping the directory.
    emptied: Vec<PathBuf>,
}

impl Cleanup {
    /// Removes `dir` (after unmounting beneath it) when dropped; trees
    /// added later are removed first.
    pub fn tree(&mut self, dir: PathBuf) {
        self.trees.insert(0, dir);
    }

    /// Deletes network namespace `name` when dropped.
    pub fn netns(&mut self, name: String) {
        self.netns = Some(name);
    }

    /// Removes what is in `dir` when dropped, reporting each entry as a leak.
    pub fn empty(&mut self, dir: PathBuf) {
        self.emptied.push(dir);
    }

    /// Leaves `scope` (removing the cgroups left in it) when dropped.
    pub fn scope(&mut self, scope: CgroupScope) {
        self.scope = Some(scope);
    }

    fn run(&mut self) -> Vec<String> {
        let mut warnings = self.scope.take().map(CgroupScope::leave).unwrap_or_default();
        if let Some(name) = self.netns.take() {
            warnings.extend(delete_netns(&name));
        }
        for dir in std::mem::take(&mut self.emptied) {
            warnings.extend(empty_dir(&dir, "a test leaked"));
        }
        for dir in std::mem::take(&mut self.trees) {
            warnings.extend(remove_tree(&dir));
        }
        warnings
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for warning in self.run() {
            eprintln!("xtask: warning: {warning}");
        }
    }
}

fn delete_netns(name: &str) -> Option<String> {
    let status = Command::new("ip").args(["netns", "delete", name]).stdin(Stdio::null()).status();
    match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`ip netns delete {name}` failed ({s})")),
        Err(e) => Some(format!("cannot run `ip netns delete {name}`: {e}")),
    }
}

/// Unmounts everything beneath `dir`, deepest first (each is a leak: a
/// container's mounts belong in its own mount namespace), then removes it.
pub fn remove_tree(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = procfs::parse_mountinfo(&mountinfo);
    for mount in procfs::mounts_under(&mounts, dir).iter().rev() {
        warnings.push(format!("a test leaked mount {}", mount.mount_point.display()));
        // Detach: a busy mount still disappears from the tree we remove.
        if let Err(e) = umount2(&mount.mount_point, MntFlags::MNT_DETACH) {
            warnings.push(format!("cannot unmount {}: {e}", mount.mount_point.display()));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warnings.push(format!("cannot remove {}: {e}", dir.display()));
        }
    }
    warnings
}

/// Removes every entry of `dir` (not `dir` itself), with one warning per
/// entry: `"{why} {entry}"`.
pub fn empty_dir(dir: &Path, why: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut warnings = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        warnings.push(format!("{why} {}", path.display()));
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(e) = removed {
            warnings.push(format!("cannot remove {}: {e}", path.display()));
        }
    }
    warnings
}
