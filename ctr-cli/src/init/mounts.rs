//! The container's filesystem view, built inside its mount namespace:
//! rootfs (overlay or bind), /proc, /sys, a minimal /dev, generated /etc
//! files, pivot_root, then docker's masked and read-only paths.
//!
//! Mount targets inside the rootfs are resolved one component at a time and
//! a symlink is refused: before pivot_root an absolute link would resolve
//! on the host, and a hostile image must not redirect a mount there.

use crate::mount_args::{MountSource, MountSpec};
use crate::spec::RootfsSpec;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
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

/// `openat(dir, name)` as an O_PATH descriptor that does not follow a
/// final symlink (it opens the link itself, which the caller then refuses).
fn open_path(dir: Option<&OwnedFd>, name: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let raw = openat(dir.map(|d| d.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The path through which mount(2) reaches exactly the inode `fd` holds,
/// whatever has happened to the names leading to it since.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Like [`secure_target`], but race-free: walks `dest` beneath `root` one
/// component at a time with O_PATH|O_NOFOLLOW descriptors, creating what
/// is missing, and refuses a symlink anywhere on the way (an absolute link
/// in the image, such as `/data -> /etc`, would otherwise lead the mount
/// out of the rootfs onto the host's tree), `..`, and non-directories
/// before the last component.
fn open_beneath(root: &Path, dest: &str, kind: Kind) -> Result<OwnedFd> {
    let mut fd = open_path(None, root).with_context(|| format!("open {}", root.display()))?;
    let components: Vec<_> = Path::new(dest).components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
    let mut shown = PathBuf::from("/");
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { bail!("mount destination {dest} may not contain '..'") };
        let name = Path::new(name);
        shown.push(name);
        let last = i + 1 == components.len();
        let next = match open_path(Some(&fd), name) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                let made = if last && kind == Kind::File {
                    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
                    openat(Some(fd.as_raw_fd()), name, flags, Mode::from_bits_truncate(0o644)).map(|raw| {
                        // SAFETY: openat just returned this descriptor; we own and close it.
                        drop(unsafe { OwnedFd::from_raw_fd(raw) })
                    })
                } else {
                    mkdirat(Some(fd.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).with_context(|| format!("mount destination {dest}: create {}", shown.display())),
                }
                open_path(Some(&fd), name).with_context(|| format!("mount destination {dest}: open {}", shown.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("mount destination {dest}: open {}", shown.display())),
        };
        let file_type = SFlag::from_bits_truncate(fstat(next.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
        if file_type == SFlag::S_IFLNK {
            let to = readlinkat(Some(fd.as_raw_fd()), name).unwrap_or_default();
            bail!(
                "mount destination {dest}: {} in the image is a symlink (to {}); ctr does not follow symlinks in mount \
destinations, so that an image cannot redirect a mount out of its root filesystem",
                shown.display(),
                Path::new(&to).display()
            );
        }
        if !last && file_type != SFlag::S_IFDIR {
            bail!("mount destination {dest}: {} in the image is not a directory", shown.display());
        }
        fd = next;
    }
    Ok(fd)
}

const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `struct mount_attr` of linux/mount.h (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the mount `fd` is the root of, and every mount beneath it,
/// read-only: `mount_setattr(fd, "", AT_EMPTY_PATH|AT_RECURSIVE)` (Linux
/// 5.12). A plain read-only remount would leave submounts of a recursive
/// bind writable. Setting MOUNT_ATTR_RDONLY leaves the flags the kernel
/// locked (nosuid, nodev...) alone, so it works in a user namespace.
fn make_read_only_recursive(fd: &OwnedFd) -> Result<()> {
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE;
    // SAFETY: the path is a NUL-terminated empty string, `attr` is a live
    // struct mount_attr of the size passed, and the call writes nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    match Errno::result(rc) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => bail!("read-only volumes need mount_setattr (Linux >= 5.12)"),
        Err(e) => Err(e).context("mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE)"),
    }
}

/// `-v` and `--tmpfs` mounts inside `root`, before pivot_root, parents
/// before children (`ctr` sorted them). Every destination is opened with
/// [`open_beneath`] and mounted through its descriptor.
pub fn mount_volumes(root: &Path, mounts: &[MountSpec]) -> Result<()> {
    for m in mounts {
        match &m.source {
            MountSource::Bind { path } => bind_volume(root, m, path, false)?,
            MountSource::Volume { path, copy_up, .. } => bind_volume(root, m, path, *copy_up)?,
            MountSource::Tmpfs(options) => {
                let target = open_beneath(root, &m.destination, Kind::Dir)?;
                let mut flags = MsFlags::empty();
                for (on, flag) in [
                    (options.noexec, MsFlags::MS_NOEXEC),
                    (options.nosuid, MsFlags::MS_NOSUID),
                    (options.nodev, MsFlags::MS_NODEV),
                    (m.read_only, MsFlags::MS_RDONLY),
                ] {
                    if on {
                        flags |= flag;
                    }
                }
                mount(Some("tmpfs"), &fd_path(&target), Some("tmpfs"), flags, Some(options.data().as_str()))
                    .with_context(|| format!("--tmpfs {}: mount ({})", m.destination, options.data()))?;
            }
        }
    }
    Ok(())
}

fn bind_volume(root: &Path, m: &MountSpec, source: &Path, copy_up: bool) -> Result<()> {
    let dest = &m.destination;
    let meta = std::fs::metadata(source).with_context(|| format!("-v {}:{dest}: the source", source.display()))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = open_beneath(root, dest, kind)?;
    if copy_up && kind == Kind::Dir && is_empty_dir(source)? {
        copy_image_content(&fd_path(&target), source).with_context(|| format!("copying the image's {dest} into the volume"))?;
    }
    mount(Some(source), &fd_path(&target), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .with_context(|| format!("-v {}:{dest}: bind mount", source.display()))?;
    if m.read_only {
        // The descriptor above holds the directory under the new mount;
        // walking again reaches the mount's root.
        let mounted = open_beneath(root, dest, kind)?;
        make_read_only_recursive(&mounted).with_context(|| format!("-v {}:{dest}:ro", source.display()))?;
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?.next().is_none())
}

/// Docker's first use of an empty named volume: the image's content at the
/// destination is copied in, with its owners and modes (and those of the
/// directory itself). Symlinks are copied as links and never followed;
/// devices, fifos and sockets are skipped; hard links become copies.
fn copy_image_content(from: &Path, to: &Path) -> Result<()> {
    // `from` is /proc/self/fd/N: follow that link (to the directory
    // open_beneath checked), never anything beneath it.
    let top = std::fs::metadata(from)?;
    copy_dir_entries(from, to)?;
    set_owner_and_mode(to, &top, false)
}

fn copy_dir_entries(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst).with_context(|| format!("symlink {}", dst.display()))?;
            set_owner_and_mode(&dst, &meta, true)?;
        } else if file_type.is_dir() {
            std::fs::create_dir(&dst).with_context(|| format!("create {}", dst.display()))?;
            copy_dir_entries(&src, &dst)?;
            set_owner_and_mode(&dst, &meta, false)?;
        } else if file_type.is_file() {
            std::fs::copy(&src, &dst).with_context(|| format!("copy {}", src.display()))?;
            set_owner_and_mode(&dst, &meta, false)?;
        }
    }
    Ok(())
}

/// Owner first (chown clears set-id bits), then the mode. An owner that is
/// not mapped in the user namespace cannot be given; the copy keeps ours.
fn set_owner_and_mode(path: &Path, like: &std::fs::Metadata, is_link: bool) -> Result<()> {
    match std::os::unix::fs::lchown(path, Some(like.uid()), Some(like.gid())) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EPERM)) => {}
        other => other.with_context(|| format!("chown {}", path.display()))?,
    }
    if !is_link {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(like.mode() & 0o7777))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    Ok(())
}

/// `--read-only`: after pivot_root and every other mount, the root mount
/// alone becomes read-only; /proc, /dev, tmpfs mounts, volumes and the
/// generated /etc files are mounts of their own and stay as they are.
pub fn read_only_root() -> Result<()> {
    remount_read_only(Path::new("/")).context("--read-only: remounting / read-only")
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

    #[test]
    fn open_beneath_refuses_symlinks_anywhere_and_creates_the_rest() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("data")).unwrap();
        std::fs::create_dir(root.path().join("srv")).unwrap();
        std::os::unix::fs::symlink("../..", root.path().join("srv/up")).unwrap();
        for dest in ["/data", "/data/x", "/srv/up/etc"] {
            let err = format!("{:#}", open_beneath(root.path(), dest, Kind::Dir).unwrap_err());
            assert!(err.contains("is a symlink"), "{dest}: {err}");
        }
        assert!(!Path::new("/etc/x").exists());
        std::fs::write(root.path().join("file"), b"").unwrap();
        assert!(format!("{:#}", open_beneath(root.path(), "/file/x", Kind::Dir).unwrap_err()).contains("not a directory"));
        open_beneath(root.path(), "/srv/a/b", Kind::Dir).unwrap();
        assert!(root.path().join("srv/a/b").is_dir());
        open_beneath(root.path(), "/srv/a/f", Kind::File).unwrap();
        assert!(root.path().join("srv/a/f").is_file());
        let fd = open_beneath(root.path(), "/srv/a/b", Kind::Dir).unwrap();
        assert_eq!(std::fs::canonicalize(fd_path(&fd)).unwrap(), std::fs::canonicalize(root.path().join("srv/a/b")).unwrap());
    }

    #[test]
    fn copy_up_keeps_links_as_links() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::create_dir(&to).unwrap();
        std::fs::write(from.join("sub/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o750)).unwrap();
        copy_image_content(&from, &to).unwrap();
        assert_eq!(std::fs::read(to.join("sub/f")).unwrap(), b"hello");
        assert_eq!(std::fs::read_link(to.join("link")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o7777, 0o750);
    }
}
