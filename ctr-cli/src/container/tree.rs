//! Files beneath a directory descriptor, written to and read from tar
//! streams (`ctr cp`) without ever following a symlink out of the tree.
//!
//! A container's files are hostile: while ctr copies, a process inside can
//! swap a directory for a symlink to a host path (CVE-2018-15664), or leave
//! such a symlink for ctr to meet (CVE-2025-47290's class). So nothing here
//! resolves a container path as a host path:
//!
//! * the path the user names is resolved by `openat2` beneath the
//!   container's root with `RESOLVE_IN_ROOT` (an absolute symlink or a
//!   `..` stays inside, as the kernel resolves it in the container) and
//!   `RESOLVE_NO_MAGICLINKS` (no /proc/PID/fd jumps);
//! * below that, every step is one name relative to an open directory
//!   descriptor, opened with `O_NOFOLLOW`: a directory swapped for a
//!   symlink fails to open (ELOOP or ENOTDIR) instead of being followed;
//! * a file is first opened as `O_PATH` (no open of a device or FIFO), then
//!   opened again for reading and refused unless it is the same inode;
//! * a file written is created with `O_NOFOLLOW` beneath a descriptor, and
//!   checked to be a regular file after the open.
//!
//! The host side uses the same code with ordinary resolution of the path
//! the user typed ([`Scope::Host`]), and the same one-name steps below it.

use crate::error::{IoContext, IoError};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, futimens, mkdirat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why a copy of files failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// A path that cannot be copied as asked; the message says why.
    #[error("{0}")]
    Refused(String),
}

type Result<T, E = TreeError> = std::result::Result<T, E>;

/// Where the path a user names is resolved.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// Beneath a container's root directory: symlinks resolve as they do
    /// inside the container, never to a host path.
    InRoot(BorrowedFd<'a>),
    /// The caller's own file system, resolved as any program does.
    Host,
}

impl Scope<'_> {
    /// Opens `path` (relative to the root, or to the working directory on
    /// the host) with `flags`.
    pub fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let flags = flags | OFlag::O_CLOEXEC;
        let raw = match self {
            Scope::InRoot(root) => {
                let relative: PathBuf = path.components().filter(|c| !matches!(c, Component::RootDir)).collect();
                let relative = if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative };
                let how = OpenHow::new()
                    .flags(flags)
                    .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
                openat2(root.as_raw_fd(), &relative, how)?
            }
            Scope::Host => openat(None, path, flags, Mode::empty())?,
        };
        Ok(crate::sys::adopt(raw))
    }

    fn describe(&self, path: &Path) -> String {
        match self {
            Scope::InRoot(_) => format!("{} in the container", path.display()),
            Scope::Host => path.display().to_string(),
        }
    }
}

/// `path`'s directory and last name; no name for a path that ends in `/`,
/// `.` or `..` in a way that names no entry of a directory (`/`, `..`).
pub fn split(path: &Path) -> (PathBuf, Option<OsString>) {
    match path.components().next_back() {
        Some(Component::Normal(name)) => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            (parent.to_owned(), Some(name.to_owned()))
        }
        _ => (path.to_owned(), None),
    }
}

/// The directory holding `path`'s last name, opened, and that name.
pub fn open_parent(scope: Scope, path: &Path) -> Result<(OwnedFd, OsString)> {
    let (parent, name) = split(path);
    let Some(name) = name else {
        return Err(TreeError::Refused(format!(
            "cannot copy {}: name a file or directory in it (`{}/NAME`)",
            scope.describe(path),
            path.display().to_string().trim_end_matches('/')
        )));
    };
    let dir = scope
        .open(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .with_io_context(|| format!("cannot open the directory {}", scope.describe(&parent)))?;
    Ok((dir, name))
}

/// What a copy reads: the directory holding its top entry, that entry's
/// name there, and the name the archive gives it.
pub struct Source {
    pub dir: OwnedFd,
    pub name: OsString,
    pub archive_name: OsString,
}

/// How many symlinks `cp -L` follows before it calls it a loop (the
/// kernel's own limit).
const MAX_LINKS: usize = 40;

/// Whether `path` is docker's `SRC/.`: the directory's contents.
fn names_contents(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    bytes == b"." || bytes.ends_with(b"/.")
}

/// Opens a copy's source as docker reads it: `SRC/.` is the directory's
/// contents (archived as `.`, which the extraction merges into the
/// destination), and with `follow` (`cp -L`) a symlink at SRC is followed,
/// one link at a time, each step resolved in `scope` (beneath the
/// container's root: never out of it); the copy keeps the link's name.
pub fn open_source(scope: Scope, path: &Path, follow: bool) -> Result<Source> {
    let open_dir = |path: &Path| {
        scope.open(path, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|e| match e {
            Errno::ENOTDIR => TreeError::Refused(format!(
                "{} is not a directory (`SRC/.` copies a directory's contents)",
                scope.describe(path)
            )),
            e => IoError::new(format!("cannot open {}", scope.describe(path)), e).into(),
        })
    };
    if names_contents(path) {
        return Ok(Source { dir: open_dir(path)?, name: ".".into(), archive_name: ".".into() });
    }
    let (mut dir, archive_name) = open_parent(scope, path)?;
    let mut name = archive_name.clone();
    if !follow {
        return Ok(Source { dir, name, archive_name });
    }
    let mut at = path.to_owned();
    for _ in 0..MAX_LINKS {
        let target = match readlinkat(Some(dir.as_raw_fd()), name.as_os_str()) {
            Ok(target) => target,
            // Not a symlink (or missing: the archive says so).
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(Source { dir, name, archive_name }),
            Err(e) => return Err(IoError::new(format!("cannot read the symlink {}", scope.describe(&at)), e).into()),
        };
        // Relative to the link's directory; an absolute target replaces the
        // path, and InRoot resolves it beneath the container's root.
        at = split(&at).0.join(target);
        (dir, name) = match split(&at) {
            (_, Some(_)) => open_parent(scope, &at)?,
            // A link to `/` or `..`: that directory itself.
            (_, None) => (open_dir(&at)?, ".".into()),
        };
    }
    Err(TreeError::Refused(format!("{}: too many levels of symlinks", scope.describe(path))))
}

/// Writes `source` (and everything beneath it) to `out` as a tar stream
/// whose paths begin with its archive name.
pub fn archive_source(source: &Source, out: impl Write) -> Result<Copied> {
    let mut builder = tar::Builder::new(out);
    let mut copied = Copied::default();
    let archive_path = Path::new(&source.archive_name);
    add(&mut builder, source.dir.as_fd(), &source.name, archive_path, Form::Files, &mut copied)?;
    finish(builder)?;
    Ok(copied)
}

/// Where a copy lands: in `path` under its own name if `path` is a
/// directory, else as `path` (its directory must exist): that directory,
/// and the name the copy's top entry takes there.
pub fn destination(scope: Scope, path: &Path) -> Result<(OwnedFd, Option<OsString>)> {
    match scope.open(path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(dir) => Ok((dir, None)),
        Err(Errno::ENOENT | Errno::ENOTDIR) => {
            if path.as_os_str().as_bytes().ends_with(b"/") {
                return Err(TreeError::Refused(format!(
                    "the destination {} is not a directory (a destination ending in / must be an existing directory)",
                    scope.describe(path)
                )));
            }
            let (dir, name) = open_parent(scope, path)?;
            Ok((dir, Some(name)))
        }
        Err(e) => Err(IoError::new(format!("cannot open the destination {}", scope.describe(path)), e).into()),
    }
}

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Copied {
    /// Bytes of file content.
    pub bytes: u64,
    pub entries: u64,
}

/// Writes `name` in `dir`, and everything beneath it if it is a directory,
/// to `out` as a tar stream whose paths begin with `name`. Device nodes,
/// FIFOs and sockets are left out, with a warning.
pub fn archive(dir: BorrowedFd, name: &OsStr, out: impl Write) -> Result<Copied> {
    let mut builder = tar::Builder::new(out);
    let mut copied = Copied::default();
    add(&mut builder, dir, name, Path::new(name), Form::Files, &mut copied)?;
    finish(builder)?;
    Ok(copied)
}

/// Writes the end-of-archive marker and flushes the stream.
fn finish(builder: tar::Builder<impl Write>) -> Result<()> {
    builder
        .into_inner()
        .io_context("cannot write the tar stream")?
        .flush()
        .io_context("cannot write the tar stream")?;
    Ok(())
}

/// What an archive is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Files as they are.
    Files,
    /// An overlayfs upper directory (mounted with `userxattr`) as an image
    /// layer: its whiteouts (0/0 character devices) become `.wh.NAME`
    /// entries and its opaque directories (`user.overlay.opaque`) get a
    /// `.wh..wh..opq` entry.
    Layer,
}

/// Writes everything beneath the directory `dir` (not the directory
/// itself) to `out`, its paths relative to it.
pub fn archive_contents(dir: &OwnedFd, form: Form, out: impl Write) -> Result<Copied> {
    let mut builder = tar::Builder::new(out);
    let mut copied = Copied::default();
    for child in list(dir, ".")? {
        add(&mut builder, dir.as_fd(), &child, Path::new(&child), form, &mut copied)?;
    }
    finish(builder)?;
    Ok(copied)
}

/// The names in a directory (opened for reading), sorted.
fn list(fd: &OwnedFd, shown: &str) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    let listing = fd.try_clone().with_io_context(|| format!("cannot list {shown}"))?;
    let mut listing = nix::dir::Dir::from(listing).with_io_context(|| format!("cannot list {shown}"))?;
    for entry in listing.iter() {
        let entry = entry.with_io_context(|| format!("cannot list {shown}"))?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes());
        if child != "." && child != ".." {
            names.push(child.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A whiteout of overlayfs: a character device with device number 0/0.
fn is_whiteout(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFCHR && stat.st_rdev == 0
}

fn add<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: BorrowedFd,
    name: &OsStr,
    archive_path: &Path,
    form: Form,
    copied: &mut Copied,
) -> Result<()> {
    let shown = || archive_path.display().to_string();
    let at = |flags: OFlag| -> nix::Result<OwnedFd> {
        openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            .map(crate::sys::adopt)
    };
    let path_fd = at(OFlag::O_PATH).with_io_context(|| format!("cannot open {}", shown()))?;
    let stat = fstat(path_fd.as_raw_fd()).with_io_context(|| format!("cannot stat {}", shown()))?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(0);
    let write_error = |e| IoError::new(format!("cannot write {} to the tar stream", shown()), e);
    copied.entries += 1;
    match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => {
            let fd = at(OFlag::O_RDONLY | OFlag::O_DIRECTORY).with_io_context(|| format!("cannot open {}", shown()))?;
            same_inode(&fd, &stat, &shown())?;
            header.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut header, archive_path, io::empty()).map_err(write_error)?;
            if form == Form::Layer
                && crate::sys::fs::get_xattr(fd.as_fd(), c"user.overlay.opaque")
                    .with_io_context(|| format!("cannot read the attributes of {}", shown()))?
                    .is_some_and(|v| v == b"y")
            {
                let mut marker = tar::Header::new_gnu();
                marker.set_entry_type(tar::EntryType::Regular);
                marker.set_mode(0o644);
                marker.set_size(0);
                builder
                    .append_data(&mut marker, archive_path.join(".wh..wh..opq"), io::empty())
                    .map_err(write_error)?;
            }
            for child in list(&fd, &shown())? {
                add(builder, fd.as_fd(), &child, &archive_path.join(&child), form, copied)?;
            }
        }
        SFlag::S_IFREG => {
            let fd = at(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
                .with_io_context(|| format!("cannot open {}", shown()))?;
            same_inode(&fd, &stat, &shown())?;
            let size = u64::try_from(stat.st_size).unwrap_or(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            // Exactly `size` bytes, whatever the file does meanwhile: a
            // file that shrinks is padded with zeros, one that grows cut.
            let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
            builder.append_data(&mut header, archive_path, data).map_err(write_error)?;
            copied.bytes += size;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(path_fd.as_raw_fd()), "")
                .with_io_context(|| format!("cannot read the symlink {}", shown()))?;
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, archive_path, &target).map_err(write_error)?;
        }
        _ if form == Form::Layer && is_whiteout(&stat) => {
            let mut whiteout = OsString::from(".wh.");
            whiteout.push(name);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, archive_path.with_file_name(whiteout), io::empty())
                .map_err(write_error)?;
        }
        _ => {
            copied.entries -= 1;
            eprintln!("warning: {} is a device, FIFO or socket: not copied", shown());
        }
    }
    Ok(())
}

/// Refuses `fd` unless it is the inode first seen by `stat`: the name was
/// swapped between the two opens.
fn same_inode(fd: &OwnedFd, stat: &FileStat, shown: &str) -> Result<()> {
    let now = fstat(fd.as_raw_fd()).with_io_context(|| format!("cannot stat {shown}"))?;
    if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(TreeError::Refused(format!("{shown} changed while it was being copied")));
    }
    Ok(())
}

/// A change in a writable layer, as docker's `diff` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// `A` added, `C` changed (the name is in a lower layer too), `D` deleted.
    pub kind: char,
    /// Absolute, as the container sees it.
    pub path: String,
}

/// Every entry of the overlayfs upper directory `dir` (opened for
/// reading), walked one name at a time without following symlinks;
/// `in_lower` says whether a path exists in the image's layers.
pub fn changes(dir: &OwnedFd, in_lower: &dyn Fn(&Path) -> bool) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(dir, Path::new("/"), in_lower, &mut out)?;
    Ok(out)
}

fn walk_changes(dir: &OwnedFd, at: &Path, in_lower: &dyn Fn(&Path) -> bool, out: &mut Vec<Change>) -> Result<()> {
    for name in list(dir, &at.display().to_string())? {
        let path = at.join(&name);
        let shown = || path.display().to_string();
        let stat =
            nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .with_io_context(|| format!("cannot stat {}", shown()))?;
        let kind = if is_whiteout(&stat) {
            'D'
        } else if in_lower(&path) {
            'C'
        } else {
            'A'
        };
        out.push(Change { kind, path: shown() });
        if kind != 'D' && SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
            let sub = openat(
                Some(dir.as_raw_fd()),
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(crate::sys::adopt)
            .with_io_context(|| format!("cannot open {}", shown()))?;
            walk_changes(&sub, &path, in_lower, out)?;
        }
    }
    Ok(())
}

/// Whose the files written are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// The writer's (root of the container, or the caller on the host).
    Writer,
    /// The uid and gid the archive gives (`cp -a`).
    Archive,
}

/// How an extraction writes.
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    pub owners: Owners,
    /// Give every directory at least u+rwx (on the host, so that its owner
    /// can write into it and remove it later).
    pub owner_can_write: bool,
}

/// Writes the tar stream `input` beneath `dest`, its first path component
/// renamed to `rename` if given. A stream whose first entry is `.` holds a
/// directory's contents (docker's `SRC/.`): they go into `dest` itself, or
/// into a new directory `rename`. Nothing is written through a symlink:
/// each directory on the way is opened one name at a time with
/// `O_NOFOLLOW` (created if missing), and each file created there with
/// `O_NOFOLLOW`. An existing file or symlink is replaced, a directory never.
pub fn extract(input: impl Read, dest: &OwnedFd, rename: Option<&OsStr>, options: ExtractOptions) -> Result<Copied> {
    let mut archive = tar::Archive::new(input);
    let mut copied = Copied::default();
    let read_error = |e| IoError::new("cannot read the tar stream", e);
    let mut contents = None;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw = entry.path_bytes().into_owned();
        let mut names = components(&raw)?;
        let contents = *contents.get_or_insert_with(|| matches!(&raw[..], b"." | b"./"));
        match (rename, names.first_mut()) {
            (Some(rename), _) if contents => names.insert(0, rename.to_owned()),
            (Some(rename), Some(first)) => *first = rename.to_owned(),
            _ => {}
        }
        if names.is_empty() {
            continue;
        }
        let shown: PathBuf = names.iter().collect();
        let shown = shown.display().to_string();
        let (last, parents) = names.split_last().expect("not empty");
        let dir = walk(dest, parents, &shown)?;
        let dir = dir.as_ref().unwrap_or(dest).as_raw_fd();
        let header = entry.header();
        let mode = header.mode().map_err(read_error)? & 0o7777;
        let owner = match options.owners {
            Owners::Archive => Some((
                u32::try_from(header.uid().map_err(read_error)?).unwrap_or(0),
                u32::try_from(header.gid().map_err(read_error)?).unwrap_or(0),
            )),
            Owners::Writer => None,
        };
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        let failed = |what: &str| {
            let what = what.to_owned();
            let shown = shown.clone();
            move |e: Errno| IoError::new(format!("cannot {what} {shown}"), e)
        };
        copied.entries += 1;
        match kind {
            tar::EntryType::Directory => {
                match mkdirat(Some(dir), last.as_os_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(failed("create the directory")(e).into()),
                }
                let fd = openat(
                    Some(dir),
                    last.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(crate::sys::adopt)
                .map_err(|e| refuse_non_dir(e, &shown))?;
                let mode = if options.owner_can_write { mode | 0o700 } else { mode };
                set_owner_and_mode(&fd, owner, mode, &shown)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = create_file(dir, last, &shown)?;
                let mut file = File::from(fd);
                copied.bytes += io::copy(&mut entry, &mut file).with_io_context(|| format!("cannot write {shown}"))?;
                let fd = OwnedFd::from(file);
                set_owner_and_mode(&fd, owner, mode, &shown)?;
                let time = TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
                futimens(fd.as_raw_fd(), &time, &time).map_err(failed("set the time of"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                remove_non_dir(dir, last, &shown)?;
                symlinkat(OsStr::from_bytes(&target), Some(dir), last.as_os_str())
                    .map_err(failed("create the symlink"))?;
                if let Some((uid, gid)) = owner {
                    fchownat(
                        Some(dir),
                        last.as_os_str(),
                        Some(Uid::from_raw(uid)),
                        Some(Gid::from_raw(gid)),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(failed("set the owner of"))?;
                }
            }
            _ => {
                copied.entries -= 1;
                eprintln!("warning: {shown}: {kind:?} entries are not copied");
            }
        }
    }
    // Read to the end: tar writers pad past the end-of-archive marker, and
    // a writer whose reader has gone fails on a broken pipe.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_error)?;
    Ok(copied)
}

/// A tar path's names: `.` and empty ones dropped, absolute paths and
/// `..` refused.
fn components(raw: &[u8]) -> Result<Vec<OsString>> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name.to_owned()),
            Component::CurDir => {}
            _ => {
                return Err(TreeError::Refused(format!(
                    "the tar stream holds {:?}: absolute paths and `..` are refused",
                    path.display()
                )))
            }
        }
    }
    Ok(names)
}

/// Opens (creating if missing) each of `names` beneath `dest`, one at a
/// time without following a symlink; None for no names (`dest` itself).
fn walk(dest: &OwnedFd, names: &[OsString], shown: &str) -> Result<Option<OwnedFd>> {
    let mut current: Option<OwnedFd> = None;
    for name in names {
        let dir = current.as_ref().unwrap_or(dest).as_raw_fd();
        let open = || {
            openat(
                Some(dir),
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(crate::sys::adopt)
        };
        let fd = match open() {
            Err(Errno::ENOENT) => {
                match mkdirat(Some(dir), name.as_os_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(IoError::new(format!("cannot create a directory for {shown}"), e).into()),
                }
                open()
            }
            other => other,
        }
        .map_err(|e| refuse_non_dir(e, shown))?;
        current = Some(fd);
    }
    Ok(current)
}

fn refuse_non_dir(e: Errno, shown: &str) -> TreeError {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => TreeError::Refused(format!(
            "cannot write {shown}: a directory on its way is a symlink or not a directory (never followed)"
        )),
        e => IoError::new(format!("cannot open a directory for {shown}"), e).into(),
    }
}

/// A new regular file at `name` in `dir` (replacing a file or symlink).
fn create_file(dir: i32, name: &OsStr, shown: &str) -> Result<OwnedFd> {
    let open = |extra: OFlag| {
        openat(
            Some(dir),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | extra,
            Mode::from_bits_truncate(0o600),
        )
        .map(crate::sys::adopt)
    };
    let fd = match open(OFlag::O_TRUNC) {
        // A symlink, or something that will not open for writing (a FIFO
        // with no reader): replaced by a new file.
        Err(Errno::ELOOP | Errno::ENXIO) => {
            remove_non_dir(dir, name, shown)?;
            open(OFlag::O_EXCL)
        }
        other => other,
    };
    let fd = fd.map_err(|e| match e {
        Errno::EISDIR => TreeError::Refused(format!("cannot write the file {shown}: a directory is there")),
        e => IoError::new(format!("cannot create {shown}"), e).into(),
    })?;
    let stat = fstat(fd.as_raw_fd()).with_io_context(|| format!("cannot stat {shown}"))?;
    if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(TreeError::Refused(format!("cannot write {shown}: it is a device or FIFO, not a file")));
    }
    Ok(fd)
}

fn remove_non_dir(dir: i32, name: &OsStr, shown: &str) -> Result<()> {
    match unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(TreeError::Refused(format!("cannot replace the directory {shown}"))),
        Err(e) => Err(IoError::new(format!("cannot replace {shown}"), e).into()),
    }
}

/// Owner first (a chown clears setuid bits), then mode.
fn set_owner_and_mode(fd: &OwnedFd, owner: Option<(u32, u32)>, mode: u32, shown: &str) -> Result<()> {
    if let Some((uid, gid)) = owner {
        fchown(fd.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .with_io_context(|| format!("cannot set the owner of {shown}"))?;
    }
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))
        .with_io_context(|| format!("cannot set the mode of {shown}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ExtractOptions {
        ExtractOptions { owners: Owners::Writer, owner_can_write: true }
    }

    #[test]
    fn a_tree_round_trips_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let (parent, name) = open_parent(Scope::Host, &src).unwrap();
        let mut tar = Vec::new();
        let copied = archive(parent.as_fd(), &name, &mut tar).unwrap();
        assert_eq!((copied.bytes, copied.entries), (5, 4));

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (dest, rename) = destination(Scope::Host, &out).unwrap();
        assert!(rename.is_none());
        extract(&tar[..], &dest, None, options()).unwrap();
        assert_eq!(std::fs::read(out.join("src/sub/file")).unwrap(), b"hello");
        assert_eq!(std::fs::read_link(out.join("src/link")).unwrap(), Path::new("/etc/passwd"));

        let (dest, rename) = destination(Scope::Host, &dir.path().join("renamed")).unwrap();
        assert_eq!(rename.as_deref(), Some(OsStr::new("renamed")));
        extract(&tar[..], &dest, rename.as_deref(), options()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("renamed/sub/file")).unwrap(), b"hello");
        assert!(destination(Scope::Host, &dir.path().join("missing/x")).is_err());
        assert!(destination(Scope::Host, &dir.path().join("nodir/")).is_err());
    }

    #[test]
    fn nothing_is_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("d")).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        builder.append_data(&mut header, "d/file", &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let (fd, _) = destination(Scope::Host, &dest).unwrap();
        let err = extract(&tar[..], &fd, None, options()).unwrap_err();
        assert!(matches!(err, TreeError::Refused(_)), "{err}");
        assert!(!outside.join("file").exists());

        // A file named by a symlink is replaced, not written through.
        std::fs::write(outside.join("target"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.join("target"), dest.join("f")).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_data(&mut header, "f", &b"y"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        extract(&tar[..], &fd, None, options()).unwrap();
        assert_eq!(std::fs::read(outside.join("target")).unwrap(), b"keep");
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"y");

        for bad in ["../x", "/etc/x"] {
            let mut raw = tar::Header::new_gnu();
            raw.as_gnu_mut().unwrap().name[..bad.len()].copy_from_slice(bad.as_bytes());
            raw.set_size(0);
            raw.set_cksum();
            let mut tar = raw.as_bytes().to_vec();
            tar.extend([0u8; 1024]);
            assert!(extract(&tar[..], &fd, None, options()).is_err(), "{bad}");
        }
    }

    #[test]
    fn in_root_resolution_keeps_symlinks_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("inside")).unwrap();
        std::fs::write(root.join("inside/secret"), b"inside").unwrap();
        let outside = dir.path().join("inside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../inside", root.join("rel")).unwrap();
        let root_fd = Scope::Host.open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY).unwrap();
        let scope = Scope::InRoot(root_fd.as_fd());
        // The absolute link names a path that does not exist in the root.
        assert!(open_parent(scope, Path::new("/abs/secret")).is_err());
        // `..` stops at the root: ../../inside is the root's own /inside.
        let (parent, name) = open_parent(scope, Path::new("/rel/secret")).unwrap();
        let mut tar = Vec::new();
        archive(parent.as_fd(), &name, &mut tar).unwrap();
        let mut entries = tar::Archive::new(&tar[..]);
        let mut entry = entries.entries().unwrap().next().unwrap().unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        assert_eq!(text, "inside");
    }

    /// The first file of a tar stream: its name and content.
    fn first_file(tar: &[u8]) -> (PathBuf, String) {
        let mut entries = tar::Archive::new(tar);
        let mut entry = entries.entries().unwrap().find(|e| e.as_ref().unwrap().header().entry_type().is_file());
        let entry = entry.as_mut().unwrap().as_mut().unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        (entry.path().unwrap().into_owned(), text)
    }

    #[test]
    fn follow_link_resolves_each_link_inside_the_root_and_keeps_the_links_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/secret"), b"inside").unwrap();
        std::fs::write(dir.path().join("secret"), b"outside").unwrap();
        // A chain: /a -> ../../../b (clamped at the root), /b -> /etc/secret.
        std::os::unix::fs::symlink("../../../b", root.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc/secret", root.join("b")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let root_fd = Scope::Host.open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY).unwrap();
        let scope = Scope::InRoot(root_fd.as_fd());
        let source = open_source(scope, Path::new("/a"), true).unwrap();
        let mut tar = Vec::new();
        archive_source(&source, &mut tar).unwrap();
        assert_eq!(first_file(&tar), (PathBuf::from("a"), "inside".to_owned()));
        // Not followed without -L: the link itself.
        let source = open_source(scope, Path::new("/a"), false).unwrap();
        assert_eq!(source.name, OsStr::new("a"));
        // A host path as the target does not exist inside.
        let out = open_source(scope, Path::new("/out"), true).and_then(|s| archive_source(&s, Vec::new()));
        assert!(out.is_err());
        assert!(matches!(open_source(scope, Path::new("/loop"), true), Err(TreeError::Refused(_))));
    }

    #[test]
    fn a_directorys_contents_merge_into_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/file"), b"hello").unwrap();
        let source = open_source(Scope::Host, &dir.path().join("src/."), false).unwrap();
        let mut tar = Vec::new();
        archive_source(&source, &mut tar).unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        let (dest, rename) = destination(Scope::Host, &existing).unwrap();
        extract(&tar[..], &dest, rename.as_deref(), options()).unwrap();
        assert_eq!(std::fs::read(existing.join("sub/file")).unwrap(), b"hello");
        assert!(!existing.join("src").exists());
        let (dest, rename) = destination(Scope::Host, &dir.path().join("new")).unwrap();
        extract(&tar[..], &dest, rename.as_deref(), options()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("new/sub/file")).unwrap(), b"hello");
        let file = dir.path().join("src/sub/file/.");
        assert!(matches!(open_source(Scope::Host, &file, false), Err(TreeError::Refused(_))));
    }
}
