//! `ctr-oci spec`: a starting config.json. The oci-spec crate's default
//! (runc's shape: new pid, network, ipc, uts and mount namespaces, the
//! standard mounts, masked and read-only paths, a small capability set),
//! with no terminal (a console socket is not supported yet), every device
//! denied in the device cgroup but the standard ones (as runc's), and,
//! with `--rootless`, the crate's rootless variant.

use super::{OciContext, Result};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxResourcesBuilder, ProcessBuilder, Spec};
use std::path::Path;

pub fn default_spec(rootless: bool) -> Result<Spec> {
    let mut spec = if rootless {
        Spec::rootless(nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    } else {
        Spec::default()
    };
    let process = spec.process().clone().unwrap_or_else(|| ProcessBuilder::default().build().expect("defaults"));
    let mut process = process;
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    if !rootless {
        if let Some(linux) = spec.linux_mut() {
            let deny_all = LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?;
            linux.set_resources(Some(LinuxResourcesBuilder::default().devices(vec![deny_all]).build()?));
        }
    }
    Ok(spec)
}

/// Writes `bundle/config.json`, refusing to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        refuse!("{} exists: remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&default_spec(rootless)?)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_one_create_accepts() {
        let spec = default_spec(false).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(false));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount));
        assert!(spec.mounts().as_ref().unwrap().iter().any(|m| m.destination() == Path::new("/proc")));
        let devices = linux.resources().as_ref().unwrap().devices().as_ref().unwrap();
        assert!(!devices[0].allow() && devices[0].typ().is_none());
    }
}
