//! The parts of the cgroup manager that only `ctr-oci` uses, on top of
//! ctr-core's ([`ctr_core::cgroup`], which the setuid helper shares): the
//! cgroup an OCI `cgroupsPath` names, device rules and the pids in a
//! container's cgroups. Kept here so that the helper, which runs as root
//! for any user, carries none of it.

use ctr_core::cgroup::{hierarchies, parent_components, write_file, ContainerCgroups};
use ctr_core::config::CgroupParent;
use ctr_core::protocol::{CgroupDir, HelperError};
use std::path::Path;

fn cgroup_error(what: impl std::fmt::Display) -> HelperError {
    HelperError::Cgroup(what.to_string())
}

/// Where the cgroup an OCI `cgroupsPath` names goes in every hierarchy: an
/// absolute path is taken from each hierarchy's root, a relative one from
/// this process's own cgroup there (runc leaves the relative form to the
/// runtime). Components are checked as for a caller's own cgroup: no empty
/// name, `.`, `..` or control character. Nothing is made.
pub fn plan_path(path: &str) -> Result<ContainerCgroups, HelperError> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if components.is_empty() {
        return Err(cgroup_error(format!("cgroupsPath {path:?} names no cgroup")));
    }
    if let Some(bad) = components.iter().find(|c| **c == "." || **c == ".." || c.chars().any(char::is_control)) {
        return Err(cgroup_error(format!("cgroupsPath {path:?}: component {bad:?} is not allowed")));
    }
    let mut cgroups = ContainerCgroups::default();
    for h in hierarchies()? {
        let mut dir = h.mount_point.clone();
        if !path.starts_with('/') {
            dir.extend(parent_components(&h, &CgroupParent::CallerOwn)?);
        }
        dir.extend(&components);
        let path = dir.to_str().ok_or_else(|| cgroup_error("cgroup path is not UTF-8"))?.to_owned();
        cgroups.dirs.push(CgroupDir { v2: h.v2, controllers: h.controllers.clone(), path });
    }
    Ok(cgroups)
}

/// Rootless (`--rootless`, or in a user namespace, or not root): the
/// cgroup goes only where this process may write, a cgroup v2 subtree
/// delegated to its user; v1 hierarchies and a v2 tree not delegated are
/// left out. With nothing left, the container stays in the caller's
/// cgroup, as runc's rootless containers do, unless it asks for limits:
/// those are refused, since nothing here could enforce them.
pub fn plan_rootless(path: &str, limits: bool) -> Result<ContainerCgroups, HelperError> {
    let mut planned = plan_path(path)?;
    planned.dirs.retain(|d| d.v2 && delegated(Path::new(&d.path)));
    if planned.dirs.is_empty() && limits {
        return Err(cgroup_error(
            "linux.resources needs a cgroup, and rootless ctr-oci only uses a cgroup v2 subtree delegated to its \
user: there is none it may write here (cgroup v1 or a hybrid host without delegation); run without limits \
(podman: no --memory, --pids-limit or --cpus) or as root",
        ));
    }
    Ok(planned)
}

/// Whether the nearest existing directory on the way to `dir` is ours to
/// write, with its cgroup.procs: a subtree delegated to this user.
fn delegated(dir: &Path) -> bool {
    let Some(at) = dir.ancestors().find(|a| a.exists()) else { return false };
    let writable = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    writable(at) && writable(&at.join("cgroup.procs"))
}

/// The pids in every directory of `cgroups` (each listed once).
pub fn pids(cgroups: &ContainerCgroups) -> Vec<i32> {
    let mut found: Vec<i32> = Vec::new();
    for dir in cgroups.paths() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
            if !found.contains(&pid) {
                found.push(pid);
            }
        }
    }
    found
}

/// The device cgroup's rules, in order: `(allow, "TYPE MAJOR:MINOR
/// ACCESS")` (ctr-oci's `linux.resources.devices`; the helper never writes
/// these). Each goes to `devices.allow` or `devices.deny` where there is a
/// v1 devices hierarchy; on pure cgroup v2 they become the cgroup's BPF
/// device program ([`super::device_filter`]), which replaces any before it.
pub fn set_devices(cgroups: &ContainerCgroups, rules: &[(bool, String)]) -> Result<(), HelperError> {
    if rules.is_empty() {
        return Ok(());
    }
    if let Some(rule) = rules.iter().find(|(_, rule)| rule.chars().any(|c| c.is_control())) {
        return Err(cgroup_error(format!("device rule {:?} has a control character", rule.1)));
    }
    let Some(dir) = cgroups.dir_for("devices") else {
        let v2 = cgroups.dirs.iter().find(|d| d.v2).ok_or_else(|| {
            cgroup_error("device rules need the v1 devices controller or cgroup v2, and neither is mounted")
        })?;
        return super::device_filter::install(Path::new(&v2.path), rules).map_err(cgroup_error);
    };
    for (allow, rule) in rules {
        let file = if *allow { "devices.allow" } else { "devices.deny" };
        write_file(&Path::new(&dir.path).join(file), rule)?;
    }
    Ok(())
}

/// The v1 memory controller's files that ctr-core's limits do not hold
/// (`memory.swappiness`, `memory.oom_control`...); cgroup v2 has none of
/// them, so there they are refused by name.
pub fn set_memory_v1(cgroups: &ContainerCgroups, files: &[(&str, String)]) -> Result<(), HelperError> {
    if files.is_empty() {
        return Ok(());
    }
    let Some(dir) = cgroups.dir_for("memory") else {
        let names: Vec<&str> = files.iter().map(|(file, _)| *file).collect();
        return Err(cgroup_error(format!(
            "{} need the v1 memory controller, and this host has none (cgroup v2 has no such files): \
drop linux.resources.memory's swappiness, disableOOMKiller, useHierarchy and kernelTCP",
            names.join(", ")
        )));
    };
    for (file, value) in files {
        let path = Path::new(&dir.path).join(file);
        if !path.exists() {
            return Err(cgroup_error(format!("{} is missing: this kernel does not support it", path.display())));
        }
        write_file(&path, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oci_cgroups_path_is_checked_and_placed() {
        for bad in ["", "/", "a/../b", "./x", "a/\u{1b}[2J"] {
            assert!(plan_path(bad).is_err(), "{bad:?} accepted");
        }
        let absolute = plan_path("/ctr-oci-test/x").unwrap();
        let relative = plan_path("ctr-oci-test/x").unwrap();
        let own = hierarchies().unwrap();
        assert_eq!(absolute.dirs.len(), own.len());
        for ((a, r), h) in absolute.dirs.iter().zip(&relative.dirs).zip(&own) {
            assert_eq!(Path::new(&a.path), h.mount_point.join("ctr-oci-test/x"));
            let mut beneath = h.mount_point.clone();
            beneath.extend(h.own_path.split('/').filter(|c| !c.is_empty()));
            assert_eq!(Path::new(&r.path), beneath.join("ctr-oci-test/x"));
        }
    }
}
