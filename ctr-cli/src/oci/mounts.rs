//! `mounts` of config.json, made beneath the bundle's root before
//! pivot_root. Options follow mount(8) as runc reads them: known words
//! become flags, propagation words a change after the mount, anything else
//! the filesystem's data. Destinations are walked beneath the root with the
//! engine's `open_beneath` (a symlink on the way is refused), and every
//! mount is made through the destination's descriptor.

use super::{OciContext, Result};
use crate::init::mounts::{fd_path, open_beneath, remount_read_only, Kind};
use ctr_core::cgroup::ContainerCgroups;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

const NONE: Option<&str> = None;

/// A mount's options, sorted out.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub bind: bool,
    pub recursive: bool,
    pub data: Vec<String>,
}

pub fn parse_options(options: &[String]) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for option in options {
        let (set, clear) = match option.as_str() {
            "defaults" | "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "mand" | "nomand" => (MsFlags::empty(), MsFlags::empty()),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                (o.bind, o.recursive) = (true, true);
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                o.propagation = propagation(option).expect("listed");
                continue;
            }
            "tmpcopyup" | "copy-symlink" | "idmap" | "ridmap" | "rro" | "rrw" => {
                refuse!("mount option {option:?} is not supported yet")
            }
            data => {
                o.data.push(data.to_owned());
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    Ok(o)
}

/// The propagation flags of `private`, `rshared`, ...
pub fn propagation(word: &str) -> Option<MsFlags> {
    let (recursive, kind) = match word.strip_prefix('r') {
        Some(rest) if !rest.is_empty() && word != "ro" => (MsFlags::MS_REC, rest),
        _ => (MsFlags::empty(), word),
    };
    let kind = match kind {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(kind | recursive)
}

/// Makes every mount of the spec beneath `root`, in order.
pub fn mount_all(root: &OwnedFd, bundle: &Path, mounts: &[Mount], cgroups: &ContainerCgroups) -> Result<()> {
    for m in mounts {
        let dest = m.destination().to_str().context("mount destination is not UTF-8")?;
        mount_one(root, bundle, m, dest, cgroups).with_context(|| format!("mount {dest}"))?;
    }
    Ok(())
}

fn mount_one(root: &OwnedFd, bundle: &Path, m: &Mount, dest: &str, cgroups: &ContainerCgroups) -> Result<()> {
    let options = parse_options(m.options().as_deref().unwrap_or_default())?;
    let kind = m.typ().as_deref().unwrap_or(if options.bind { "bind" } else { "none" });
    let data = options.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    if kind == "cgroup" || kind == "cgroup2" {
        return mount_cgroups(root, dest, &options, cgroups);
    }
    if options.bind || kind == "bind" {
        let source = m.source().as_ref().context("a bind mount needs a source")?;
        let source = if source.is_absolute() { source.clone() } else { bundle.join(source) };
        let meta = std::fs::metadata(&source).with_context(|| format!("bind source {}", source.display()))?;
        let target = open_beneath(root, dest, if meta.is_dir() { Kind::Dir } else { Kind::File })?;
        let mut flags = MsFlags::MS_BIND;
        if options.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(&source), &fd_path(&target), NONE, flags, NONE)
            .with_context(|| format!("bind {}", source.display()))?;
        // The flags of a bind apply only through a remount of it.
        let mounted = open_beneath(root, dest, if meta.is_dir() { Kind::Dir } else { Kind::File })?;
        if options.flags.contains(MsFlags::MS_RDONLY) {
            remount_read_only(&fd_path(&mounted))?;
        } else if !options.flags.is_empty() {
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | options.flags;
            mount(NONE, &fd_path(&mounted), NONE, flags, NONE).context("remount with the bind's flags")?;
        }
        return set_propagation(&mounted, options.propagation);
    }
    let target = open_beneath(root, dest, Kind::Dir)?;
    let source = m.source().as_ref().and_then(|s| s.to_str()).unwrap_or(kind);
    mount(Some(source), &fd_path(&target), Some(kind), options.flags, data)
        .with_context(|| format!("mount type {kind} (data {})", data.unwrap_or("none")))?;
    let mounted = open_beneath(root, dest, Kind::Dir)?;
    set_propagation(&mounted, options.propagation)
}

fn set_propagation(target: &OwnedFd, flags: MsFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    mount(NONE, &fd_path(target), NONE, flags, NONE).context("set mount propagation")
}

/// `/sys/fs/cgroup`: the container's own cgroup directories, bound in. On
/// a v1 or hybrid host a tmpfs holds one bind per hierarchy (named as on
/// the host, with links for joined controllers such as `cpu,cpuacct`); on
/// a pure v2 host the one directory is bound at `dest`.
fn mount_cgroups(root: &OwnedFd, dest: &str, options: &Options, cgroups: &ContainerCgroups) -> Result<()> {
    let read_only = options.flags.contains(MsFlags::MS_RDONLY);
    let bind_dir = |from: &str, to: &str| -> Result<()> {
        let target = open_beneath(root, to, Kind::Dir)?;
        mount(Some(from), &fd_path(&target), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
            .with_context(|| format!("bind {from}"))?;
        if read_only {
            remount_read_only(&fd_path(&open_beneath(root, to, Kind::Dir)?))?;
        }
        Ok(())
    };
    if let [only] = cgroups.dirs.as_slice() {
        return bind_dir(&only.path, dest);
    }
    let target = open_beneath(root, dest, Kind::Dir)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), &fd_path(&target), Some("tmpfs"), flags, Some("mode=755")).context("tmpfs for cgroups")?;
    let tmpfs = open_beneath(root, dest, Kind::Dir)?;
    for dir in &cgroups.dirs {
        let name = if dir.v2 { "unified".to_owned() } else { dir.controllers.join(",") };
        let name = name.strip_prefix("name=").unwrap_or(&name).to_owned();
        bind_dir(&dir.path, &format!("{dest}/{name}"))?;
        if dir.controllers.len() > 1 {
            for controller in &dir.controllers {
                nix::unistd::symlinkat(name.as_str(), Some(tmpfs.as_raw_fd()), controller.as_str())
                    .with_context(|| format!("link {controller} to {name}"))?;
            }
        }
    }
    if read_only {
        remount_read_only(&fd_path(&tmpfs))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&words(&["nosuid", "strictatime", "mode=755", "size=65536k", "rprivate"])).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = parse_options(&words(&["rbind", "ro", "rw", "nodev"])).unwrap();
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_NODEV);
        assert!(parse_options(&words(&["tmpcopyup"])).unwrap_err().to_string().contains("not supported"));
        assert_eq!(propagation("slave"), Some(MsFlags::MS_SLAVE));
        assert_eq!(propagation("ro"), None);
    }
}
