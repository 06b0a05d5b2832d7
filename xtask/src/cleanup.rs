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
use std::os::unix::fs::OpenOptionsExt;
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
    /// The uids whose networks are dropped from the helper's registry.
    network_owners: Vec<u32>,
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

    /// Drops the networks of `uid` from the helper's registry when dropped.
    pub fn networks_of(&mut self, uid: u32) {
        self.network_owners.push(uid);
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
        for uid in std::mem::take(&mut self.network_owners) {
            warnings.extend(forget_networks(uid, "a test leaked"));
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

/// The helper's registry of users' networks (ctr-setuid-helper's
/// `registry.rs`) and its lease files, named after each network's bridge.
const NETWORK_REGISTRY: &str = "/var/lib/ctr-helper/networks";
const LEASE_DIR: &str = "/run/ctr-helper/net";

/// Removes `uid`'s lines from the network registry, and their lease files,
/// then `uid`'s leases from every other lease file (a killed run leaves
/// them), with one warning per network or lease: `"{why} ..."`. Their
/// bridges and veths lived in the run's network namespace and went with it.
pub fn forget_networks(uid: u32, why: &str) -> Vec<String> {
    let mut warnings = forget_registered(uid, why);
    let Ok(entries) = std::fs::read_dir(LEASE_DIR) else { return warnings };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            warnings.extend(forget_leases(&path, uid, why));
        }
    }
    warnings
}

fn forget_registered(uid: u32, why: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(NETWORK_REGISTRY) else { return Vec::new() };
    let owner = format!("{uid}\t");
    let (theirs, kept): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with(&owner));
    if theirs.is_empty() {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for line in &theirs {
        let fields: Vec<&str> = line.split('\t').collect();
        warnings.push(format!("{why} network {}", fields.get(1).unwrap_or(&"?")));
        if let Some(bridge) = fields.get(2).filter(|b| b.chars().all(|c| c.is_ascii_alphanumeric())) {
            for ext in ["json", "lock"] {
                let _ = std::fs::remove_file(Path::new(LEASE_DIR).join(format!("{bridge}.{ext}")));
            }
        }
    }
    let rest: String = kept.iter().map(|l| format!("{l}\n")).collect();
    let tmp = format!("{NETWORK_REGISTRY}.xtask");
    if let Err(e) = std::fs::write(&tmp, rest).and_then(|()| std::fs::rename(&tmp, NETWORK_REGISTRY)) {
        warnings.push(format!("cannot rewrite {NETWORK_REGISTRY}: {e}"));
    }
    warnings
}

/// Drops `uid`'s entries from one lease file (ctr-net's `LeaseStore`
/// format), under its lock, as the helper would rewrite it.
fn forget_leases(path: &Path, uid: u32, why: &str) -> Vec<String> {
    let lock = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path.with_extension("lock"));
    let Ok(_lock) = lock.map(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read(path) else { return Vec::new() };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return vec![format!("cannot read lease file {}", path.display())];
    };
    let Some(leases) = value.get_mut("leases").and_then(|l| l.as_object_mut()) else { return Vec::new() };
    let theirs: Vec<String> = leases
        .iter()
        .filter(|(_, lease)| lease.get("owner_uid").and_then(serde_json::Value::as_u64) == Some(u64::from(uid)))
        .map(|(addr, _)| addr.clone())
        .collect();
    if theirs.is_empty() {
        return Vec::new();
    }
    let mut warnings: Vec<String> = theirs.iter().map(|a| format!("{why} lease {a} in {}", path.display())).collect();
    for addr in &theirs {
        leases.remove(addr);
    }
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(&value).unwrap_or_default();
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &json));
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        warnings.push(format!("cannot rewrite {}: {e}", path.display()));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_only_the_users_leases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.json");
        let lease = |uid: u32| serde_json::json!({"container_id": "a".repeat(64), "owner_uid": uid, "interface": "vethaaaaaaaaaaa"});
        let file = serde_json::json!({"subnet": "10.88.0.0/16", "leases": {"10.88.0.2": lease(999), "10.88.0.3": lease(1000)}});
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let warnings = forget_leases(&path, 999, "leaked");
        assert_eq!(warnings, [format!("leaked lease 10.88.0.2 in {}", path.display())]);
        let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(after["leases"].as_object().unwrap().keys().collect::<Vec<_>>(), ["10.88.0.3"]);
        assert_eq!(after["subnet"], "10.88.0.0/16");
        assert!(forget_leases(&path, 999, "leaked").is_empty());
    }
}
