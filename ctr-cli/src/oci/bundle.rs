//! The runtime spec to engine translation: `config.json` read through the
//! oci-spec crate and checked whole before anything is made, so that an
//! unsupported field is an error of `create` naming it, never a setting
//! silently dropped. The result ([`Bundle`]) holds only what the container
//! side ([`super::init`]) and the cgroup manager need, already resolved:
//! clone flags, namespaces to join, cgroup limits as ctr-core's
//! [`ResourceLimits`], device rules, and the compiled seccomp program.

use super::{OciContext, Result};
use ctr_core::limits::{CpuList, CpuQuota, DeviceRate, ResourceLimits, SwapLimit, PIDS_UNLIMITED};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxNamespaceType, LinuxResources, Spec};
use std::path::{Path, PathBuf};

/// A bundle ready to be created.
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem, absolute and free of symlinks.
    pub rootfs: PathBuf,
    /// `CLONE_NEW*` flags of the namespaces made new (the cgroup namespace
    /// is entered later, once the process sits in its cgroup).
    pub clone_flags: libc::c_int,
    pub new_cgroup_namespace: bool,
    pub mount_namespace: MountNamespace,
    /// Namespaces joined by path, as (CLONE_NEW* flag, path).
    pub join: Vec<(libc::c_int, PathBuf)>,
    pub limits: ResourceLimits,
    /// `(allow, "TYPE MAJOR:MINOR ACCESS")` for the device cgroup (v1's files,
    /// or cgroup v2's BPF program).
    pub device_rules: Vec<(bool, String)>,
    /// v1 memory files beyond ctr-core's limits (swappiness, oom_control...).
    pub memory_v1: Vec<(&'static str, String)>,
    /// The compiled `linux.seccomp`, if any.
    pub seccomp: Option<Vec<u8>>,
}

/// Where the container's mounts are made and how its root is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountNamespace {
    /// A new one: made private, the rootfs pivoted into.
    New,
    /// One joined by path (never ctr-oci's own): the mounts are made there
    /// and the rootfs pivoted into, as runc and crun do.
    Joined,
    /// None listed: the runtime's own, shared ([`super::shared_mounts`]);
    /// nothing of it changes but the container's mounts beneath its
    /// rootfs, which is chrooted into.
    Shared,
}

fn flag_of(kind: LinuxNamespaceType) -> Result<libc::c_int> {
    Ok(match kind {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => refuse!("linux.namespaces: the time namespace is not supported yet"),
    })
}

/// Devices every container may use whatever its rules say, as runc and
/// crun allow them: null, zero, full, random, urandom, tty, console, ptmx
/// and the pty slaves.
const DEFAULT_ALLOWED_DEVICES: [&str; 9] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

impl Bundle {
    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(dir).with_context(|| format!("bundle {}", dir.display()))?;
        let config = dir.join("config.json");
        let text = std::fs::read(&config).with_context(|| format!("read {}", config.display()))?;
        let spec: Spec = serde_json::from_slice(&text).with_context(|| format!("parse {}", config.display()))?;
        let raw: serde_json::Value = serde_json::from_slice(&text)?;
        let root = spec.root().as_ref().context("config.json has no root")?;
        let rootfs = std::fs::canonicalize(dir.join(root.path()))
            .with_context(|| format!("root.path {}", root.path().display()))?;
        if !rootfs.is_dir() {
            refuse!("root.path {} is not a directory", rootfs.display());
        }
        let process = spec.process().as_ref().context("config.json has no process")?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            refuse!("process.args is empty: give the command to run");
        }
        if process.apparmor_profile().is_some() || process.selinux_label().is_some() {
            refuse!("process.apparmorProfile and process.selinuxLabel are not supported: ctr uses neither");
        }
        let linux = spec.linux().as_ref().context("config.json has no linux section")?;
        let mut clone_flags = 0;
        let mut new_cgroup_namespace = false;
        let mut join = Vec::new();
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = flag_of(ns.typ())?;
            match ns.path() {
                Some(path) => join.push((flag, path.clone())),
                None if flag == libc::CLONE_NEWCGROUP => new_cgroup_namespace = true,
                None => clone_flags |= flag,
            }
        }
        // A path naming ctr-oci's own mount namespace is the same as none.
        let own = |(flag, path): &(libc::c_int, PathBuf)| *flag == libc::CLONE_NEWNS && same_namespace(path, "mnt");
        if let Some(i) = join.iter().position(own) {
            join.remove(i);
        }
        let mount_namespace = if clone_flags & libc::CLONE_NEWNS != 0 {
            MountNamespace::New
        } else if join.iter().any(|(flag, _)| *flag == libc::CLONE_NEWNS) {
            MountNamespace::Joined
        } else {
            check_shared_mount_namespace(&spec, &rootfs, clone_flags, &join)?;
            MountNamespace::Shared
        };
        if clone_flags & libc::CLONE_NEWUSER == 0
            && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
        {
            refuse!("linux.uidMappings and gidMappings need a new user namespace in linux.namespaces");
        }
        let uts = clone_flags & libc::CLONE_NEWUTS != 0 || join.iter().any(|(flag, _)| *flag == libc::CLONE_NEWUTS);
        if spec.hostname().is_some() && !uts {
            refuse!("hostname needs a UTS namespace (new or joined by path) in linux.namespaces");
        }
        let limits = linux.resources().as_ref().map(translate_resources).transpose()?.unwrap_or_default();
        limits
            .validate(&ctr_core::limits::HostCpus::read(), |_, _| true)
            .map_err(|e| refused!("linux.resources: {e}"))?;
        let devices = linux.devices().as_deref().unwrap_or_default();
        let device_rules = linux.resources().as_ref().map(|r| device_rules(r, devices)).unwrap_or_default();
        let memory_v1 = linux.resources().as_ref().map(memory_v1_files).transpose()?.unwrap_or_default();
        let seccomp = match raw.pointer("/linux/seccomp") {
            None | Some(serde_json::Value::Null) => None,
            Some(profile) => Some(crate::seccomp::compile_oci(&serde_json::to_vec(profile)?)?),
        };
        Ok(Self {
            dir,
            rootfs,
            clone_flags,
            new_cgroup_namespace,
            mount_namespace,
            join,
            limits,
            device_rules,
            memory_v1,
            seccomp,
            spec,
        })
    }
}

/// Whether the namespace file at `path` is ctr-oci's own namespace `kind`.
fn same_namespace(path: &Path, kind: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), std::fs::metadata(format!("/proc/self/ns/{kind}"))) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// What a container sharing ctr-oci's mount namespace cannot ask for: each
/// would change mounts that are not the container's own.
fn check_shared_mount_namespace(
    spec: &Spec,
    rootfs: &Path,
    clone_flags: libc::c_int,
    join: &[(libc::c_int, PathBuf)],
) -> Result<()> {
    let shared = "without a mount namespace in linux.namespaces the container shares ctr-oci's";
    if clone_flags & libc::CLONE_NEWUSER != 0 || join.iter().any(|(flag, _)| *flag == libc::CLONE_NEWUSER) {
        refuse!("linux.namespaces: {shared}, where a user namespace of the container's may not mount; add a mount namespace");
    }
    if rootfs == Path::new("/") {
        refuse!(
            "root.path is /: {shared}, so its mounts would cover the host's own /proc and /dev; add a mount namespace"
        );
    }
    if spec.linux().as_ref().is_some_and(|l| l.rootfs_propagation().is_some()) {
        refuse!(
            "linux.rootfsPropagation would change ctr-oci's own mounts: {shared}; add a mount namespace or drop it"
        );
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        refuse!(
            "root.readonly would remount the host filesystem that holds the rootfs: {shared}; add a mount namespace"
        );
    }
    Ok(())
}

/// `linux.resources.devices` as the v1 devices controller's rules, then
/// the devices every container may use, then `linux.devices` (created in
/// the container, so the cgroup must let init mknod and the process use
/// them, as runc and crun allow them).
pub(super) fn device_rules(r: &LinuxResources, created: &[LinuxDevice]) -> Vec<(bool, String)> {
    let Some(devices) = r.devices().as_ref() else { return Vec::new() };
    let mut rules = Vec::new();
    for d in devices {
        let kind = d.typ().map_or("a".to_owned(), |t| t.as_str().to_owned());
        // A negative number (-1, as some callers write it) is a wildcard too.
        let number = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".to_owned(), |n| n.to_string());
        let rule = if kind == "a" {
            "a".to_owned()
        } else {
            format!("{kind} {}:{} {}", number(d.major()), number(d.minor()), d.access().as_deref().unwrap_or("rwm"))
        };
        rules.push((d.allow(), rule));
    }
    rules.extend(DEFAULT_ALLOWED_DEVICES.iter().map(|r| (true, (*r).to_owned())));
    for d in created {
        let kind = match d.typ() {
            LinuxDeviceType::B => "b",
            LinuxDeviceType::C | LinuxDeviceType::U => "c",
            // A fifo is no device to the cgroup.
            _ => continue,
        };
        rules.push((true, format!("{kind} {}:{} rwm", d.major(), d.minor())));
    }
    rules
}

/// The v1 memory controller's files that ctr-core's limits do not hold
/// (no cgroup v2 file matches them), as (file, value).
pub(super) fn memory_v1_files(r: &LinuxResources) -> Result<Vec<(&'static str, String)>> {
    let Some(m) = r.memory() else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    if let Some(swappiness) = m.swappiness() {
        if swappiness > 100 {
            refuse!("linux.resources.memory.swappiness {swappiness} is out of range: use 0 to 100");
        }
        files.push(("memory.swappiness", swappiness.to_string()));
    }
    if let Some(disable) = m.disable_oom_killer() {
        files.push(("memory.oom_control", u8::from(disable).to_string()));
    }
    if let Some(hierarchy) = m.use_hierarchy() {
        files.push(("memory.use_hierarchy", u8::from(hierarchy).to_string()));
    }
    if let Some(tcp) = m.kernel_tcp() {
        let value = if tcp < 0 { "-1".to_owned() } else { tcp.to_string() };
        files.push(("memory.kmem.tcp.limit_in_bytes", value));
    }
    Ok(files)
}

/// `linux.resources` as ctr-core's limits; anything else it can hold is an
/// error naming the field.
pub(super) fn translate_resources(r: &LinuxResources) -> Result<ResourceLimits> {
    let unsupported = |field: &str| refused!("linux.resources.{field} is not supported yet");
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(unsupported("hugepageLimits"));
    }
    if r.network().is_some() {
        return Err(unsupported("network"));
    }
    if r.rdma().is_some() {
        return Err(unsupported("rdma"));
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported("unified"));
    }
    let mut limits = ResourceLimits::default();
    if let Some(m) = r.memory() {
        // memory.kernel is deprecated by the spec and gone from the kernel
        // (5.16 ignores kmem.limit_in_bytes): ignored, as runc and crun do.
        // swappiness, disableOOMKiller, useHierarchy and kernelTCP are v1
        // files of their own: see memory_v1_files.
        let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        limits.memory = positive(m.limit());
        limits.memory_reservation = positive(m.reservation());
        limits.memory_swap = match m.swap() {
            Some(-1) => Some(SwapLimit::Unlimited),
            other => positive(other).map(SwapLimit::Total),
        };
    }
    if let Some(cpu) = r.cpu() {
        if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() || cpu.idle().is_some() {
            return Err(unsupported("cpu.realtimeRuntime, realtimePeriod and idle"));
        }
        limits.cpu_shares = cpu.shares().filter(|s| *s > 0);
        let quota = cpu.quota().and_then(|q| u64::try_from(q).ok()).filter(|q| *q > 0);
        if let Some(quota_us) = quota {
            let period_us = cpu.period().unwrap_or(ctr_core::limits::DEFAULT_CPU_PERIOD_US);
            limits.cpu_quota = Some(CpuQuota { quota_us, period_us });
        }
        let list = |field: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| CpuList::parse(field, s))
                .transpose()
                .map_err(|e| refused!("linux.resources.{e}"))
        };
        limits.cpuset_cpus = list("cpu.cpus", cpu.cpus())?;
        limits.cpuset_mems = list("cpu.mems", cpu.mems())?;
    }
    if let Some(pids) = r.pids() {
        limits.pids_limit = Some(u64::try_from(pids.limit()).ok().filter(|l| *l > 0).unwrap_or(PIDS_UNLIMITED));
    }
    if let Some(io) = r.block_io() {
        if io.leaf_weight().is_some()
            || io.weight_device().as_ref().is_some_and(|w| !w.is_empty())
            || io.throttle_read_iops_device().as_ref().is_some_and(|w| !w.is_empty())
            || io.throttle_write_iops_device().as_ref().is_some_and(|w| !w.is_empty())
        {
            return Err(unsupported("blockIO leafWeight, weightDevice and iops throttles"));
        }
        limits.blkio_weight = io.weight();
        let rates = |devices: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| -> Result<Vec<DeviceRate>> {
            devices
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    Ok(DeviceRate {
                        major: u32::try_from(d.major()).context("blockIO device major")?,
                        minor: u32::try_from(d.minor()).context("blockIO device minor")?,
                        bytes_per_second: d.rate(),
                    })
                })
                .collect()
        };
        limits.device_read_bps = rates(io.throttle_read_bps_device())?;
        limits.device_write_bps = rates(io.throttle_write_bps_device())?;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> Result<ResourceLimits> {
        translate_resources(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn resources_become_ctr_limits() {
        let l = resources(
            r#"{"memory":{"limit":33554432,"swap":-1},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":64}}"#,
        )
        .unwrap();
        assert_eq!(l.memory, Some(32 << 20));
        assert_eq!(l.memory_swap, Some(SwapLimit::Unlimited));
        assert_eq!(l.cpu_shares, Some(512));
        assert_eq!(l.cpu_quota, Some(CpuQuota { quota_us: 50000, period_us: 100000 }));
        assert!(l.cpuset_cpus.is_some_and(|c| c.contains(0)));
        assert_eq!(l.pids_limit, Some(64));
        assert_eq!(resources(r#"{"pids":{"limit":0}}"#).unwrap().pids_limit, Some(PIDS_UNLIMITED));
        assert!(resources("{}").unwrap().is_empty());
    }

    #[test]
    fn device_rules_read_as_the_kernel_writes_them_then_the_defaults() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":-1,"access":"r"}]}"#,
        )
        .unwrap();
        let rules = device_rules(&r, &[]);
        assert_eq!(rules[..2], [(false, "a".to_owned()), (true, "c 10:* r".to_owned())]);
        assert_eq!(rules.len(), 2 + DEFAULT_ALLOWED_DEVICES.len());
    }

    #[test]
    fn unsupported_resources_are_named() {
        for (json, field) in [
            (r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#, "hugepageLimits"),
            (r#"{"cpu":{"realtimeRuntime":1}}"#, "cpu.realtimeRuntime"),
            (r#"{"unified":{"memory.high":"1"}}"#, "unified"),
        ] {
            let err = resources(json).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains("not supported"), "{json}: {err}");
        }
    }
}
