//! The container's filesystem view, built inside its mount namespace:
//! rootfs (overlay or bind), /proc, /sys, a minimal /dev, generated /etc
//! files, pivot_root, then docker's masked and read-only paths.
//!
//! No path that crosses between host and container is resolved twice.
//! - Mount targets inside the rootfs are walked one component at a time
//!   from a descriptor of the mounted root, and a symlink is refused
//!   ([`open_beneath`]): a hostile image or container must not redirect a
//!   mount (CVE-2021-30465).
//! - Host sources (`-v` paths, named volumes, `--rootfs`) are opened once,
//!   here in our own mount namespace (a mount from a descriptor of another
//!   namespace fails, see check_mnt in fs/namespace.c), with
//!   RESOLVE_NO_SYMLINKS: `ctr` canonicalised them, so a symlink now means
//!   someone swapped one in. `-v` sources must also still be the inode
//!   `ctr` checked. Every mount is then made from that descriptor.
//! - The rootfs is mounted detached (fsmount/open_tree) and attached with
//!   move_mount, so that the descriptor we pivot into is the mount itself.

use super::{InitContext, InitError, Result};
use crate::mounts::{self, MountSource, MountSpec, SourceId};
use crate::spec::RootfsSpec;
use crate::sys::mount::{clone_tree, move_mount};
use crate::sys::{self, mount::FsContext};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

const NONE: Option<&str> = None;

fn do_mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(source, target, fstype, flags, data).with_context(|| {
        format!("mount {} on {} (type {})", source.unwrap_or("none"), target.display(), fstype.unwrap_or("bind"))
    })
}

/// Our mounts must never propagate back to the host's namespace.
pub fn make_private() -> Result<()> {
    do_mount(NONE, Path::new("/"), NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
}

fn overlay_path(p: &Path) -> Result<&str> {
    let Some(s) = p.to_str() else { refuse!("overlay paths must be UTF-8: {}", p.display()) };
    if s.contains([',', ':', '\\']) {
        refuse!(
            "path {s} contains ',', ':' or '\\', which overlayfs options cannot carry; move the ctr storage elsewhere"
        );
    }
    Ok(s)
}

/// `fsconfig(FSCONFIG_SET_STRING, key, value)` on the overlay's context.
fn set_option(fs: &FsContext, key: &str, value: &str) -> Result<()> {
    let (c_key, c_value) = (CString::new(key)?, CString::new(value)?);
    fs.set_string(&c_key, &c_value).with_context(|| format!("overlay option {key}"))
}

/// The directory at `path`, as an O_PATH descriptor, where the path's
/// last component must not be a symlink.
fn open_dir_nofollow(path: &Path) -> Result<OwnedFd> {
    let fd = open_path(None, path).with_context(|| format!("open {}", path.display()))?;
    expect_kind(&fd, Some(Kind::Dir)).with_context(|| format!("open {}", path.display()))?;
    Ok(fd)
}

/// fsconfig copies at most 256 bytes of a string value, so a colon-joined
/// `lowerdir` of a few layers does not fit: each layer is appended with
/// `lowerdir+` (Linux >= 6.8), topmost first.
fn set_lower_layers(fs: &FsContext, lower: &[&str]) -> Result<()> {
    let mut layers = lower.iter();
    let Some(first) = layers.next() else { refuse!("an overlay needs at least one lower layer") };
    set_option(fs, "lowerdir+", first)?;
    for layer in layers {
        set_option(fs, "lowerdir+", layer)?;
    }
    Ok(())
}

/// An overlay built with the mount API (Linux >= 6.8 for `lowerdir+`),
/// not yet attached anywhere.
fn detached_overlay(lower: &[&str], upper: &str, work: &str) -> Result<OwnedFd> {
    let fs = FsContext::open(c"overlay").context("fsopen(overlay)")?;
    set_lower_layers(&fs, lower)?;
    set_option(&fs, "upperdir", upper)?;
    set_option(&fs, "workdir", work)?;
    // userxattr: overlayfs mounted in a user namespace keeps its metadata
    // in user.* xattrs (kernel >= 5.11).
    fs.set_flag(c"userxattr").context("overlay option userxattr")?;
    fs.create_and_mount().context("overlay option (create)")
}

/// The container's `/` is its upper directory, which ctr made as the
/// caller: under keep-id's maps the caller is not container root, so the
/// upper directory takes the owner of the top layer's root instead (a
/// no-op under the default maps, where both are container root).
fn upper_owned_as_lower(upper: &str, top_lower: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (up, low) = (std::fs::symlink_metadata(upper)?, std::fs::symlink_metadata(top_lower)?);
    if (up.uid(), up.gid()) != (low.uid(), low.gid()) {
        std::os::unix::fs::lchown(upper, Some(low.uid()), Some(low.gid()))
            .with_context(|| format!("chown {upper} to its image's root owner"))?;
    }
    Ok(())
}

/// Mounts the rootfs and returns a descriptor of the mount's root: every
/// later step works beneath it, and pivot_root goes into it.
pub fn mount_rootfs(rootfs: &RootfsSpec) -> Result<OwnedFd> {
    match rootfs {
        RootfsSpec::Overlay { lower, upper, work, target } => {
            let lower = lower.iter().map(|l| overlay_path(l)).collect::<Result<Vec<_>>>()?;
            let (upper, work) = (overlay_path(upper)?, overlay_path(work)?);
            let refused = "the kernel refused an overlay mount in the user namespace (needs Linux >= 5.11)";
            let target_fd = open_dir_nofollow(target)?;
            upper_owned_as_lower(upper, lower[0])?;
            match detached_overlay(&lower, upper, work) {
                Ok(mounted) => {
                    move_mount(&mounted, &target_fd)
                        .with_context(|| format!("attach the overlay on {}", target.display()))?;
                    Ok(mounted)
                }
                // Before 6.8 there is no lowerdir+, and before 6.5 overlayfs
                // took fsconfig keys unchecked and parsed them only at create:
                // mount(2), whose options may fill a page, onto the target
                // descriptor opened above.
                Err(_) => {
                    let data = format!("lowerdir={},upperdir={upper},workdir={work},userxattr", lower.join(":"));
                    do_mount(Some("overlay"), &fd_path(&target_fd), Some("overlay"), MsFlags::empty(), Some(&data))
                        .context(refused)?;
                    open_dir_nofollow(target)
                }
            }
        }
        RootfsSpec::Bind { path } => {
            let dir = mounts::open_no_symlinks(path)
                .map_err(|e| source_error(e, path))
                .with_context(|| format!("--rootfs {}", path.display()))?;
            expect_kind(&dir, Some(Kind::Dir)).with_context(|| format!("--rootfs {}", path.display()))?;
            // Bound onto itself: pivot_root wants a mount point.
            let tree = clone_tree(&dir).with_context(|| format!("--rootfs {}: bind mount", path.display()))?;
            move_mount(&tree, &dir).with_context(|| format!("--rootfs {}: bind mount", path.display()))?;
            Ok(tree)
        }
    }
}

/// Why a host source could not be opened, in words a user can act on.
fn source_error(e: Errno, path: &Path) -> InitError {
    match e {
        Errno::ELOOP => refused!(
            "{} now goes through a symlink, which it did not when ctr checked it: something replaced part of the path \
meanwhile; ctr refuses to follow it",
            path.display()
        ),
        e => refused!("open {}: {}", path.display(), e.desc()),
    }
}

/// Refuses a descriptor that is not a `kind` (any kind but a symlink when
/// `None`).
fn expect_kind(fd: &OwnedFd, kind: Option<Kind>) -> Result<()> {
    let file_type = SFlag::from_bits_truncate(fstat(fd.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
    match (kind, file_type) {
        (_, SFlag::S_IFLNK) => refuse!("it is a symlink"),
        (Some(Kind::Dir), t) if t != SFlag::S_IFDIR => refuse!("it is not a directory"),
        (Some(Kind::File), SFlag::S_IFDIR) => refuse!("it is a directory"),
        _ => Ok(()),
    }
}

/// The kind of mount target a source needs.
fn kind_of(fd: &OwnedFd) -> Result<Kind> {
    let file_type = SFlag::from_bits_truncate(fstat(fd.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
    Ok(if file_type == SFlag::S_IFDIR { Kind::Dir } else { Kind::File })
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
    let components: Vec<_> =
        rel.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { refuse!("mount destination {} may not contain '..'", rel.display()) };
        path.push(name);
        let last = i + 1 == components.len();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                refuse!(
                    "mount destination {} goes through a symlink in the image ({}); refusing",
                    rel.display(),
                    path.display()
                )
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

/// Bind-mounts `source` (a host file or device that ctr or root owns:
/// the generated /etc files, /dev/null...) onto `rel` inside the rootfs,
/// from a descriptor opened without following a final symlink.
pub fn bind_into(root: &OwnedFd, source: &Path, rel: &str) -> Result<()> {
    let src = open_path(None, source).with_context(|| format!("open {}", source.display()))?;
    expect_kind(&src, None).with_context(|| format!("bind {}", source.display()))?;
    let target = open_beneath(root, rel, kind_of(&src)?)?;
    mount(Some(&fd_path(&src)), &fd_path(&target), NONE, MsFlags::MS_BIND, NONE)
        .with_context(|| format!("bind {} on /{rel}", source.display()))
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
    Ok(sys::adopt(raw))
}

/// The path through which mount(2) reaches exactly the inode `fd` holds,
/// whatever has happened to the names leading to it since.
pub(crate) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Like [`secure_target`], but race-free: walks `dest` beneath `root` one
/// component at a time with O_PATH|O_NOFOLLOW descriptors, creating what
/// is missing, and refuses a symlink anywhere on the way (an absolute link
/// in the image, such as `/data -> /etc`, would otherwise lead the mount
/// out of the rootfs onto the host's tree), `..`, and non-directories
/// before the last component.
pub(crate) fn open_beneath(root: &OwnedFd, dest: &str, kind: Kind) -> Result<OwnedFd> {
    let mut fd = root.try_clone().context("dup the rootfs descriptor")?;
    let components: Vec<_> =
        Path::new(dest).components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
    let mut shown = PathBuf::from("/");
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { refuse!("mount destination {dest} may not contain '..'") };
        let name = Path::new(name);
        shown.push(name);
        let last = i + 1 == components.len();
        let next = match open_path(Some(&fd), name) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                let made = if last && kind == Kind::File {
                    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
                    openat(Some(fd.as_raw_fd()), name, flags, Mode::from_bits_truncate(0o644))
                        .map(|raw| drop(sys::adopt(raw)))
                } else {
                    mkdirat(Some(fd.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("mount destination {dest}: create {}", shown.display()))
                    }
                }
                open_path(Some(&fd), name)
                    .with_context(|| format!("mount destination {dest}: open {}", shown.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("mount destination {dest}: open {}", shown.display())),
        };
        let file_type = SFlag::from_bits_truncate(fstat(next.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
        if file_type == SFlag::S_IFLNK {
            let to = readlinkat(Some(fd.as_raw_fd()), name).unwrap_or_default();
            refuse!(
                "mount destination {dest}: {} in the image is a symlink (to {}); ctr does not follow symlinks in mount \
destinations, so that an image cannot redirect a mount out of its root filesystem",
                shown.display(),
                Path::new(&to).display()
            );
        }
        if !last && file_type != SFlag::S_IFDIR {
            refuse!("mount destination {dest}: {} in the image is not a directory", shown.display());
        }
        fd = next;
    }
    Ok(fd)
}

/// Makes the mount `fd` is the root of, and every mount beneath it,
/// read-only: `mount_setattr(fd, "", AT_EMPTY_PATH|AT_RECURSIVE)` (Linux
/// 5.12). A plain read-only remount would leave submounts of a recursive
/// bind writable. Setting MOUNT_ATTR_RDONLY leaves the flags the kernel
/// locked (nosuid, nodev...) alone, so it works in a user namespace.
pub(crate) fn make_read_only_recursive(fd: &OwnedFd) -> Result<()> {
    match sys::mount::set_read_only_recursive(fd) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => refuse!("read-only volumes need mount_setattr (Linux >= 5.12)"),
        Err(e) => Err(e).context("mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE)"),
    }
}

/// `-v` and `--tmpfs` mounts inside `root`, before pivot_root, parents
/// before children (`ctr` sorted them). Every destination is opened with
/// [`open_beneath`] and mounted through its descriptor.
pub fn mount_volumes(root: &OwnedFd, mounts: &[MountSpec]) -> Result<()> {
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

/// Opens a `-v` source once, in this mount namespace, refusing any symlink
/// on its (canonical) path, and checks that it is still the inode `ctr`
/// validated; the mount is then made from this descriptor alone.
fn open_volume_source(source: &Path, expected: Option<SourceId>) -> Result<OwnedFd> {
    let fd = mounts::open_no_symlinks(source).map_err(|e| source_error(e, source))?;
    if let Some(expected) = expected {
        let found = SourceId::of(&fd)?;
        if found != expected {
            refuse!(
                "{} is no longer the {} ctr checked (something replaced it meanwhile); refusing to mount it",
                source.display(),
                if expected.dir { "directory" } else { "file" }
            );
        }
    }
    Ok(fd)
}

fn bind_volume(root: &OwnedFd, m: &MountSpec, source: &Path, copy_up: bool) -> Result<()> {
    let dest = &m.destination;
    let what = || format!("-v {}:{dest}", source.display());
    let src = open_volume_source(source, m.source_id).with_context(what)?;
    let kind = kind_of(&src)?;
    let target = open_beneath(root, dest, kind)?;
    if copy_up && kind == Kind::Dir && is_empty_dir(&fd_path(&src))? {
        copy_image_content(&fd_path(&target), &fd_path(&src))
            .with_context(|| format!("copying the image's {dest} into the volume"))?;
    }
    mount(Some(&fd_path(&src)), &fd_path(&target), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .with_context(|| format!("{}: bind mount", what()))?;
    if m.read_only {
        // The descriptor above holds the directory under the new mount;
        // walking again reaches the mount's root.
        let mounted = open_beneath(root, dest, kind)?;
        make_read_only_recursive(&mounted).with_context(|| format!("{}:ro", what()))?;
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
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)
                .with_context(|| format!("symlink {}", dst.display()))?;
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

/// Host devices bound into every container's /dev. Not `tty`: that node
/// means "my controlling terminal", and only a container with `-t` has one
/// (its own pty); without `-t` it gets no /dev/tty at all.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// /proc, /sys, /dev and friends inside `root`, before pivot_root.
/// `shm_size`: /dev/shm's size in bytes (`--shm-size`; default 64 MiB, as docker's).
pub fn mount_system(root: &OwnedFd, terminal: bool, shm_size: Option<u64>) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // The descriptor behind each path must stay open until its mount is made.
    let proc = open_beneath(root, "proc", Kind::Dir)?;
    do_mount(Some("proc"), &fd_path(&proc), Some("proc"), nosuid_nodev_noexec, NONE)?;

    let sys = open_beneath(root, "sys", Kind::Dir)?;
    // sysfs can only be mounted by the owner of the network namespace; with
    // the host's network (--network host) bind the host's read-only instead.
    if do_mount(Some("sysfs"), &fd_path(&sys), Some("sysfs"), nosuid_nodev_noexec | MsFlags::MS_RDONLY, NONE).is_err() {
        do_mount(Some("/sys"), &fd_path(&sys), NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
        make_read_only_recursive(&open_beneath(root, "sys", Kind::Dir)?).context("make the host's /sys read-only")?;
    }

    let dev = open_beneath(root, "dev", Kind::Dir)?;
    do_mount(
        Some("tmpfs"),
        &fd_path(&dev),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // The tmpfs's root, not the image's /dev beneath it.
    let dev = open_beneath(root, "dev", Kind::Dir)?;
    // A user namespace cannot mknod: bind the host's harmless devices.
    for name in DEVICES {
        bind_into(root, &Path::new("/dev").join(name), &format!("dev/{name}"))?;
    }
    if terminal {
        // The host's 5:0 node opens the opener's controlling terminal,
        // whichever node it is: here the container's own pty.
        bind_into(root, Path::new("/dev/tty"), "dev/tty")?;
    }
    let pts = open_beneath(root, "dev/pts", Kind::Dir)?;
    do_mount(
        Some("devpts"),
        &fd_path(&pts),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = open_beneath(root, "dev/shm", Kind::Dir)?;
    let shm_options = format!("mode=1777,size={}", shm_size.unwrap_or(64 << 20));
    do_mount(Some("shm"), &fd_path(&shm), Some("tmpfs"), nosuid_nodev_noexec, Some(shm_options.as_str()))?;
    let mqueue = open_beneath(root, "dev/mqueue", Kind::Dir)?;
    do_mount(Some("mqueue"), &fd_path(&mqueue), Some("mqueue"), nosuid_nodev_noexec, NONE)?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        nix::unistd::symlinkat(to, Some(dev.as_raw_fd()), link).with_context(|| format!("symlink /dev/{link}"))?;
    }
    Ok(())
}

/// `--device` nodes, each the very node `ctr` checked as the caller
/// ([`crate::devices`]): opened without following a symlink and compared
/// by identity and device number, then bound from that descriptor.
pub fn bind_devices(root: &OwnedFd, devices: &[crate::devices::DeviceSpec]) -> Result<()> {
    for device in devices {
        let what = || format!("--device {}", device.given);
        let src =
            mounts::open_no_symlinks(&device.host).map_err(|e| source_error(e, &device.host)).with_context(what)?;
        if !crate::devices::still_the_same(device, &src).with_context(what)? {
            refuse!(
                "--device {}: {} is no longer the device node ctr checked (it was replaced meanwhile); refusing to bind it",
                device.given,
                device.host.display()
            );
        }
        let target = open_beneath(root, &device.container, Kind::File)?;
        mount(Some(&fd_path(&src)), &fd_path(&target), NONE, MsFlags::MS_BIND, NONE).with_context(what)?;
    }
    Ok(())
}

/// The container's /dev/null (the host's node bound in by
/// [`mount_system`]), checked to be the 1:3 character device. The masks
/// of [`restrict_kernel_paths`] bind this descriptor, so that a volume
/// over /dev or /dev/null, or a symlink in its place, cannot choose what
/// is bound over the masked paths (CVE-2025-31133).
pub fn open_dev_null(root: &OwnedFd) -> Result<OwnedFd> {
    let null = open_beneath(root, "dev/null", Kind::File)?;
    let stat = fstat(null.as_raw_fd()).context("stat /dev/null")?;
    let is_char = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || stat.st_rdev != libc::makedev(1, 3) {
        refuse!("the container's /dev/null is not the null device; refusing to mask paths with it");
    }
    Ok(null)
}

/// Makes `root` the new `/` and detaches the host's tree.
pub fn pivot(root: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir into the rootfs")?;
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

/// After pivot_root: masks and read-only binds over /proc and /sys. `null`
/// comes from [`open_dev_null`].
pub fn restrict_kernel_paths(null: &OwnedFd) -> Result<()> {
    restrict_paths(null, &MASKED, &READ_ONLY)
}

/// Masks each of `masked` (a read-only empty tmpfs over a directory, `null`
/// over anything else) and makes each of `read_only` a read-only bind of
/// itself; paths that do not exist are skipped. After pivot_root.
pub(crate) fn restrict_paths<S: AsRef<str>>(null: &OwnedFd, masked: &[S], read_only: &[S]) -> Result<()> {
    for path in masked.iter().map(|p| Path::new(p.as_ref())) {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                do_mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))?;
            }
            Ok(_) => mount(Some(&fd_path(null)), path, NONE, MsFlags::MS_BIND, NONE)
                .with_context(|| format!("mask {} with /dev/null", path.display()))?,
            Err(_) => {}
        }
    }
    for path in read_only.iter().map(|p| Path::new(p.as_ref())) {
        if path.exists() {
            do_mount(Some(path.to_str().expect("from a str")), path, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)?;
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

    fn open_dir(path: &Path) -> OwnedFd {
        open_dir_nofollow(path).unwrap()
    }

    #[test]
    fn open_beneath_refuses_symlinks_anywhere_and_creates_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let root_fd = open_dir(root.path());
        std::os::unix::fs::symlink("/etc", root.path().join("data")).unwrap();
        std::fs::create_dir(root.path().join("srv")).unwrap();
        std::os::unix::fs::symlink("../..", root.path().join("srv/up")).unwrap();
        for dest in ["/data", "/data/x", "/srv/up/etc"] {
            let err = crate::error::chain(&open_beneath(&root_fd, dest, Kind::Dir).unwrap_err());
            assert!(err.contains("is a symlink"), "{dest}: {err}");
        }
        assert!(!Path::new("/etc/x").exists());
        std::fs::write(root.path().join("file"), b"").unwrap();
        assert!(
            crate::error::chain(&open_beneath(&root_fd, "/file/x", Kind::Dir).unwrap_err()).contains("not a directory")
        );
        open_beneath(&root_fd, "/srv/a/b", Kind::Dir).unwrap();
        assert!(root.path().join("srv/a/b").is_dir());
        open_beneath(&root_fd, "/srv/a/f", Kind::File).unwrap();
        assert!(root.path().join("srv/a/f").is_file());
        let fd = open_beneath(&root_fd, "/srv/a/b", Kind::Dir).unwrap();
        assert_eq!(
            std::fs::canonicalize(fd_path(&fd)).unwrap(),
            std::fs::canonicalize(root.path().join("srv/a/b")).unwrap()
        );
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
