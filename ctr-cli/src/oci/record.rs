//! What ctr-oci keeps of a container: `<root>/<id>/state.json` (written
//! once the container is created) and `<root>/<id>/exec.fifo`, the fifo its
//! first process blocks on until `start` opens it, as runc's does. The
//! status is never stored: it is read from the process (its liveness key,
//! pid and start time), the fifo and the freezer each time.

use super::{OciContext, Result};
use ctr_core::cgroup::ContainerCgroups;
use ctr_core::liveness::Liveness;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// The container's compiled seccomp filter, for `exec`.
pub const SECCOMP_FILE: &str = "seccomp.bpf";
pub const OCI_VERSION: &str = "1.2.0";

/// A container's record in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The container's first process, as seen from the host.
    pub init: Liveness,
    /// RFC 3339.
    pub created: String,
    pub cgroups: ContainerCgroups,
    /// The scope systemd made for the cgroup, where systemd runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<super::systemd_cgroup::ScopeUnit>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// `linux.devices` as create read them: `update` allows them again
    /// after a new device list (config.json may have changed since).
    #[serde(default)]
    pub devices: Vec<oci_spec::runtime::LinuxDevice>,
    /// Without a mount namespace of its own, the mounts the container
    /// made in ctr-oci's, for `delete` to undo.
    #[serde(default)]
    pub shared_mounts: Vec<super::shared_mounts::MountPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// runc's rule for ids: letters, digits, `_`, `+`, `-` and `.`, and not `.`
/// or `..`, so an id is always one directory name under the root.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        refuse!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

/// Whether this process runs in a user namespace other than the host's
/// (whose uid_map is the identity over all ids).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// `id`'s value outside the user namespace whose `uid_map` or `gid_map`
/// (as /proc shows it) is `map`.
pub fn outer_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let [inside, outside, count] = line.split_whitespace().collect::<Vec<_>>()[..] else { return None };
        let (inside, outside, count): (u32, u32, u32) =
            (inside.parse().ok()?, outside.parse().ok()?, count.parse().ok()?);
        (id >= inside && id - inside < count).then(|| outside.checked_add(id - inside)).flatten()
    })
}

/// The root directory of every container's state.
#[derive(Debug, Clone)]
pub struct Root(pub PathBuf);

impl Root {
    /// `--root`, else /run/ctr-oci for root and $XDG_RUNTIME_DIR/ctr-oci
    /// otherwise, as runc chooses. Root of a user namespace (rootless
    /// podman runs its runtime so) is "otherwise" when XDG_RUNTIME_DIR is
    /// set and USER is not root: /run is not its to write.
    pub fn choose(given: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = given {
            return Ok(Self(dir));
        }
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
        let rootless_root =
            xdg.is_some() && in_user_namespace() && std::env::var_os("USER").is_none_or(|u| u != "root");
        if nix::unistd::geteuid().is_root() && !rootless_root {
            return Ok(Self(PathBuf::from("/run/ctr-oci")));
        }
        match xdg {
            Some(dir) if !dir.is_empty() => Ok(Self(PathBuf::from(dir).join("ctr-oci"))),
            _ => refuse!("XDG_RUNTIME_DIR is not set: give --root DIR"),
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.0.join(id)
    }

    /// Makes the state directory of a new container (refusing an existing
    /// one). Both levels are 0700, as runc's root is: `exec.fifo` must be
    /// writable by the container's user, who reopens it through its own
    /// descriptor, and by no one else, who would have to walk the path.
    pub fn make_dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .with_context(|| format!("create the state root {}", self.0.display()))?;
        let dir = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => refuse!("container {id:?} already exists"),
            Err(e) => Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }

    /// The record of `id`; "does not exist" is the error callers look for.
    pub fn load(&self, id: &str) -> Result<Record> {
        check_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => refuse!("container \"{id}\" does not exist"),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let path = self.dir(&record.id).join(STATE_FILE);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(record)?).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("rename {}", tmp.display()))
    }

    /// Every container id with a record, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.0) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("read {}", self.0.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The status of a recorded container, read now.
    pub fn status(&self, record: &Record) -> Status {
        if !record.init.is_alive() {
            Status::Stopped
        } else if self.dir(&record.id).join(EXEC_FIFO).exists() {
            Status::Created
        } else if is_frozen(&record.cgroups) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The runtime spec's state object, with runc's extra fields.
    pub fn state_json(&self, record: &Record) -> serde_json::Value {
        let status = self.status(record);
        let pid = if status == Status::Stopped { 0 } else { record.init.pid };
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": record.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": record.bundle,
            "rootfs": record.rootfs,
            "created": record.created,
            "owner": "",
            "annotations": record.annotations,
        })
    }
}

fn is_frozen(cgroups: &ContainerCgroups) -> bool {
    cgroups.dirs.iter().any(|d| {
        let dir = Path::new(&d.path);
        if !d.v2 && d.controllers.iter().any(|c| c == "freezer") {
            std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        } else if d.v2 {
            std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        } else {
            false
        }
    })
}

/// Now, as RFC 3339 with nanoseconds, as runc writes `created`.
pub use crate::units::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_mapped_to_the_outside() {
        assert_eq!(outer_id("0 0 4294967295\n", 1000), Some(1000));
        assert_eq!(outer_id("0 1000 1\n1 100000 65536\n", 0), Some(1000));
        assert_eq!(outer_id("0 1000 1\n1 100000 65536\n", 2), Some(100001));
        assert_eq!(outer_id("0 1000 1\n", 5), None);
        assert_eq!(outer_id("         0     100000      65536\n", 0), Some(100000));
        assert_eq!(outer_id("      1000       2000          1\n         0     300000       1000\n", 0), Some(300000));
        assert_eq!(outer_id("      1000       2000          1\n", 0), None);
        assert_eq!(outer_id("", 0), None);
    }

    #[test]
    fn ids_are_one_plain_name() {
        for good in ["abc", "a.b-c_d+1", "0123456789abcdef"] {
            check_id(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\nb"] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_missing_container_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root(dir.path().to_owned());
        let err = root.load("nope").unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(root.ids().unwrap().is_empty());
        root.make_dir("x").unwrap();
        assert!(root.make_dir("x").unwrap_err().to_string().contains("already exists"));
    }
}
