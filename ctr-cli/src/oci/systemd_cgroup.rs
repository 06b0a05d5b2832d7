//! The systemd form of `linux.cgroupsPath`, `slice:prefix:name`, which
//! containerd (`SystemdCgroup = true`), podman (`--cgroup-manager
//! systemd`) and the kubelet (`cgroupDriver: systemd`) send with runc's
//! `--systemd-cgroup`. It names the cgroup as runc's systemd driver does:
//! the slice `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice` below the
//! root (no slice: `system.slice`, `user.slice` rootless), the unit
//! `prefix-name.scope` (a name ending in `.slice` is the unit itself).
//!
//! Where systemd manages the host's cgroups (it is PID 1), the cgroup is
//! made by systemd as a transient scope unit over D-Bus
//! ([`super::systemd_dbus`]): a cgroup made behind its back would be one
//! it does not know of (and may move or remove). Where no systemd runs,
//! the same path is made through the cgroupfs manager like any other.

use super::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The scope unit systemd makes for a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeUnit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The slice it goes in, e.g. `system.slice`.
    pub slice: String,
    /// In the caller's own (user) manager, over its session bus.
    pub user: bool,
}

/// Where a container's cgroup goes: the path (as
/// [`super::cgroups::plan_path`] takes it) and, where systemd manages the
/// cgroups, the scope unit systemd is asked to make there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub path: String,
    pub scope: Option<ScopeUnit>,
}

/// sd_booted(3)'s test, plus pid 1's name: systemd manages the cgroups.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && std::fs::read_to_string("/proc/1/comm").is_ok_and(|comm| comm.trim() == "systemd")
}

/// Where the cgroup of container `id` goes, for `spec_path`
/// (`linux.cgroupsPath`, if any). The systemd form is used with
/// `--systemd-cgroup` or when the path has a colon; otherwise the path is
/// the cgroupfs one, the id when absent. `manager_root` is asked only
/// where systemd runs: the cgroup of the manager that makes the scope
/// ("" for the system's; the user manager's own, rootless).
pub fn placement(
    spec_path: Option<&str>,
    id: &str,
    systemd: bool,
    rootless: bool,
    manager_root: impl FnOnce() -> Result<String>,
) -> Result<Placement> {
    placement_where(spec_path, id, systemd, rootless, systemd_running().then_some(manager_root))
}

/// [`placement`], with the manager's root asked for where systemd runs
/// (`None`: it does not).
fn placement_where(
    spec_path: Option<&str>,
    id: &str,
    systemd: bool,
    rootless: bool,
    manager_root: Option<impl FnOnce() -> Result<String>>,
) -> Result<Placement> {
    let colon = spec_path.is_some_and(|p| p.contains(':'));
    if !systemd && !colon {
        return Ok(Placement { path: spec_path.unwrap_or(id).to_owned(), scope: None });
    }
    let what = match spec_path {
        Some(path) => format!("linux.cgroupsPath {path:?}"),
        None => "--systemd-cgroup".to_owned(),
    };
    // runc's default where the config names no cgroup.
    let default = format!(":ctr-oci:{id}");
    let text = spec_path.unwrap_or(&default);
    let parts: Vec<&str> = text.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        refuse!("{what}: the systemd cgroup driver takes slice:prefix:name (e.g. system.slice:ctr:ID)");
    };
    if name.is_empty() || [slice, prefix, name].iter().any(|p| p.contains('/')) {
        refuse!("{what}: slice:prefix:name needs a name, and none of them may contain /");
    }
    let slice = match slice {
        "" if rootless => "user.slice",
        "" => "system.slice",
        slice => slice,
    };
    let unit = if name.ends_with(".slice") { name.to_owned() } else { format!("{prefix}-{name}.scope") };
    let below = expand_slice(slice).map_err(|why| refused!("{what}: slice {slice:?} {why}"))?;
    let Some(manager_root) = manager_root else {
        return Ok(Placement { path: format!("{below}/{unit}"), scope: None });
    };
    if name.ends_with(".slice") {
        refuse!(
            "{what}: a slice as the container's own unit is not supported where systemd runs (a scope holds \
its processes): name a scope, slice:prefix:ID"
        );
    }
    let root = manager_root()?;
    let scope = ScopeUnit { name: unit.clone(), slice: slice.to_owned(), user: rootless };
    Ok(Placement { path: format!("{root}{below}/{unit}"), scope: Some(scope) })
}

/// `a-b-c.slice` as `/a.slice/a-b.slice/a-b-c.slice` (`-.slice`, the root
/// slice, as the empty path).
fn expand_slice(slice: &str) -> std::result::Result<String, &'static str> {
    let stem = slice.strip_suffix(".slice").ok_or("does not end in .slice")?;
    if stem == "-" {
        return Ok(String::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err("is not a slice name (dash-separated, non-empty parts)");
    }
    let mut path = String::new();
    let mut end = 0;
    for part in stem.split('-') {
        end += part.len();
        path.push_str(&format!("/{}.slice", &stem[..end]));
        end += 1;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_nests_them() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), "/a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(
            expand_slice("kubepods-besteffort-pod1.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        for bad in ["system", "a--b.slice", "-a.slice", "a-.slice", ".slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    type Root = fn() -> Result<String>;

    #[test]
    fn where_systemd_runs_the_scope_is_asked_for_below_its_manager() {
        let user = || Ok("/user.slice/user-1000.slice/user@1000.service".to_owned());
        let placed = placement_where(Some("machine.slice:libpod:abc"), "abc", true, false, Some(|| Ok(String::new())));
        let scope = ScopeUnit { name: "libpod-abc.scope".into(), slice: "machine.slice".into(), user: false };
        assert_eq!(placed.unwrap(), Placement { path: "/machine.slice/libpod-abc.scope".into(), scope: Some(scope) });
        let placed = placement_where(Some(":x:abc"), "abc", true, true, Some(user)).unwrap();
        assert_eq!(placed.path, "/user.slice/user-1000.slice/user@1000.service/user.slice/x-abc.scope");
        assert!(placed.scope.is_some_and(|s| s.user && s.slice == "user.slice"));
        let slice = placement_where(Some("kubepods.slice:p:kubepods-pod1.slice"), "abc", true, false, Some(user));
        assert!(slice.unwrap_err().to_string().contains("a slice as the container's own unit"));
        let plain =
            placement_where(Some("plain/path"), "abc", false, false, Some(|| -> Result<String> { unreachable!() }));
        assert_eq!(plain.unwrap(), Placement { path: "plain/path".into(), scope: None });
    }

    #[test]
    fn systemd_paths_become_cgroupfs_paths() {
        let path = |p: Option<&str>, systemd, rootless| {
            placement_where(p, "abc", systemd, rootless, None::<Root>).map(|p| p.path)
        };
        assert_eq!(path(Some("system.slice:ctr:abc"), false, false).unwrap(), "/system.slice/ctr-abc.scope");
        assert_eq!(
            path(Some("machine-libpod.slice:libpod:abc"), true, false).unwrap(),
            "/machine.slice/machine-libpod.slice/libpod-abc.scope"
        );
        assert_eq!(path(Some(":cri-containerd:abc"), true, false).unwrap(), "/system.slice/cri-containerd-abc.scope");
        assert_eq!(path(Some(":x:abc"), true, true).unwrap(), "/user.slice/x-abc.scope");
        assert_eq!(
            path(Some("kubepods.slice:p:kubepods-pod1.slice"), true, false).unwrap(),
            "/kubepods.slice/kubepods-pod1.slice"
        );
        assert_eq!(path(Some("-.slice:p:abc"), true, false).unwrap(), "/p-abc.scope");
        assert_eq!(path(None, true, false).unwrap(), "/system.slice/ctr-oci-abc.scope");
        assert_eq!(path(Some("plain/path"), false, false).unwrap(), "plain/path");
        assert_eq!(path(None, false, false).unwrap(), "abc");
        for (bad, systemd) in [
            ("plain/path", true),
            ("a:b", false),
            ("system:ctr:abc", false),
            ("system.slice:ctr:", false),
            ("system.slice:ctr:a/b", false),
            ("a:b:c:d", true),
        ] {
            let err = path(Some(bad), systemd, false).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
