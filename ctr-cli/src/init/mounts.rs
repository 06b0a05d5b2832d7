//! The container's filesystem view, built inside its mount namespace:
//! rootfs (overlay or bind), /proc, /sys, a minimal /dev, generated /etc
//! files, pivot_root, then docker's masked and read-only paths.
//!
//! Mount targets inside the rootfs are resolved one component at a time and
//! a symlink is refused: before pivot_root an absolute link would resolve
//! on the host, and a hostile image must not redirect a mount there.

use crate::spec::RootfsSpec;
use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::path::{Component, Path, PathBuf};

const NONE: Option<&str> = None;

fn do_mount(source: Option<&str>, target: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(source, target, fstype, flags, data).with_context(|| {
        format!("mount {} on {} (type {})", source.unwrap_or("none"), target.display(), fstype.unwrap_or("bind"))
    })
}

/// Our mounts must never propagate back to the host's namespace.
pub fn make_private() -> Result<()> {
    do_mount(NONE, Path::new("/"), NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
}

fn overlay_path(p: &Path) -> Result<&str> {
    let s = p.to_str().context("overlay paths must be UTF-8")?;
    if s.contains([',', ':', '\\']) {
        bail!("path {s} contains ',', ':' or '\\', which overlayfs options cannot carry; move the ctr storage elsewhere");
    }
    Ok(s)
}

/// Mounts the rootfs and returns where it is.
pub fn mount_rootfs(rootfs: &RootfsSpec) -> Result<PathBuf> {
    match rootfs {
        RootfsSpec::Overlay { lower, upper, work, target } => {
            let lower = lower.iter().map(|l| overlay_path(l)).collect::<Result<Vec<_>>>()?.join(":");
            // userxattr: overlayfs mounted in a user namespace keeps its
            // metadata in user.* xattrs (kernel >= 5.11).
            let data = format!("lowerdir={lower},upperdir={},workdir={},userxattr", overlay_path(upper)?, overlay_path(work)?);
            do_mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(&data))
                .context("the kernel refused an overlay mount in the user namespace (needs Linux >= 5.11)")?;
            Ok(target.clone())
        }
        RootfsSpec::Bind { path } => {
            do_mount(Some(path.to_str().context("rootfs path must be UTF-8")?), path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
            Ok(path.clone())
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
}

/// Resolves `rel` under `root` without following any symlink, creating what
/// is missing (directories, and the last component as `kind`).
pub fn secure_target(root: &Path, rel: &str, kind: Kind) -> Result<PathBuf> {
    let rel = Path::new(rel);
    let mut path = root.to_path_buf();
    let components: Vec<_> = rel.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { bail!("mount destination {} may not contain '..'", rel.display()) };
        path.push(name);
        let last = i + 1 == components.len();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                bail!("mount destination {} goes through a symlink in the image ({}); refusing", rel.display(), path.display())
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if last && kind == Kind::File {
                    std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
                } else {
                    std::fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("inspect {}", path.display())),
        }
    }
    Ok(path)
}

/// Bind-mounts `source` (a host path) onto `rel` inside the rootfs.
pub fn bind_into(root: &Path, source: &Path, rel: &str, read_only: bool) -> Result<()> {
    let kind = if source.is_dir() { Kind::Dir } else { Kind::File };
    let target = secure_target(root, rel, kind)?;
    let src = source.to_str().context("bind source must be UTF-8")?;
    do_mount(Some(src), &target, NONE, MsFlags::MS_BIND, NONE)?;
    if read_only {
        remount_read_only(&target)?;
    }
    Ok(())
}

/// A read-only remount of a bind mount must repeat the flags the kernel
/// locked on it (nosuid, nodev, noexec...), or a user namespace gets EPERM.
pub fn remount_read_only(target: &Path) -> Result<()> {
    let current = statvfs(target).with_context(|| format!("statvfs {}", target.display()))?.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(fs) {
            flags |= ms;
        }
    }
    do_mount(NONE, target, NONE, flags, NONE)
}

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// /proc, /sys, /dev and friends inside `root`, before pivot_root.
pub fn mount_system(root: &Path) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    do_mount(Some("proc"), &secure_target(root, "proc", Kind::Dir)?, Some("proc"), nosuid_nodev_noexec, NONE)?;

    let sys = secure_target(root, "sys", Kind::Dir)?;
    // sysfs can only be mounted by the owner of the network namespace; with
    // the host's network (--network host) bind the host's read-only instead.
    if do_mount(Some("sysfs"), &sys, Some("sysfs"), nosuid_nodev_noexec | MsFlags::MS_RDONLY, NONE).is_err() {
        do_mount(Some("/sys"), &sys, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
        remount_read_only(&sys)?;
    }

    let dev = secure_target(root, "dev", Kind::Dir)?;
    do_mount(Some("tmpfs"), &dev, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536k"))?;
    // A user namespace cannot mknod: bind the host's harmless devices.
    for name in DEVICES {
        bind_into(root, &Path::new("/dev").join(name), &format!("dev/{name}"), false)?;
    }
    let pts = secure_target(root, "dev/pts", Kind::Dir)?;
    do_mount(Some("devpts"), &pts, Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620"))?;
    let shm = secure_target(root, "dev/shm", Kind::Dir)?;
    do_mount(Some("shm"), &shm, Some("tmpfs"), nosuid_nodev_noexec, Some("mode=1777,size=65536k"))?;
    let mqueue = secure_target(root, "dev/mqueue", Kind::Dir)?;
    do_mount(Some("mqueue"), &mqueue, Some("mqueue"), nosuid_nodev_noexec, NONE)?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).with_context(|| format!("symlink /dev/{link}"))?;
    }
    Ok(())
}

/// Makes `root` the new `/` and detaches the host's tree.
pub fn pivot(root: &Path) -> Result<()> {
    std::env::set_current_dir(root).with_context(|| format!("chdir {}", root.display()))?;
    // pivot_root(".", "."): the old root ends up stacked on the new one and
    // is then lazily unmounted, with no directory needed for it.
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    std::env::set_current_dir("/").context("chdir /")?;
    Ok(())
}

/// Docker's masked paths: kernel data a container should not read.
const MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Docker's read-only paths: kernel knobs a container should not turn.
const READ_ONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// After pivot_root: masks and read-only binds over /proc and /sys.
pub fn restrict_kernel_paths() -> Result<()> {
    for path in MASKED.map(Path::new) {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                do_mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))?;
            }
            Ok(_) => do_mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE)?,
            Err(_) => {}
        }
    }
    for path in READ_ONLY.map(Path::new) {
        if path.exists() {
            do_mount(Some(path.to_str().expect("literal")), path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
            remount_read_only(path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_target_refuses_symlinks_and_dotdot() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
        assert!(secure_target(root.path(), "etc/hosts", Kind::File).is_err());
        assert!(secure_target(root.path(), "a/../../x", Kind::Dir).is_err());
        let made = secure_target(root.path(), "/srv/data/file", Kind::File).unwrap();
        assert!(made.is_file() && made.starts_with(root.path()));
        assert!(!Path::new("/etc/hosts").starts_with(root.path()));
    }
}
