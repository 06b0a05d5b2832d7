//! Unpacks one layer's tar stream into a fresh directory, treating the archive
//! as hostile. `tar::Archive` is used only to parse headers, in raw mode, so
//! that every rule below is applied here, explicitly, and tested:
//!
//! * paths are normalised (`.` and empty components dropped); absolute paths
//!   and `..` components are refused;
//! * nothing is created through a symlink: each parent directory must be a
//!   real directory that this unpacking created (checked with `lstat`), and
//!   files are opened with `O_CREAT|O_EXCL|O_NOFOLLOW`. A symlink's target is
//!   stored verbatim and never followed here: it only means something inside
//!   the container;
//! * an entry may replace an earlier file or symlink of the same name, but
//!   never a directory, so a directory, once checked, stays one;
//! * hard links must name a regular file already unpacked in this layer;
//! * device nodes and FIFOs are skipped with a warning (an unprivileged user
//!   cannot mknod; the container gets its own /dev);
//! * whiteouts (`.wh.NAME`, `.wh..wh..opq`) are skipped with a warning in a
//!   root filesystem archive ([`Mode::Rootfs`]), where they mean nothing. In
//!   an image layer ([`Mode::Layer`]) they become overlayfs's own format: a
//!   `.wh.NAME` becomes a 0/0 character device at NAME (which the kernel
//!   lets any user create, since Linux 5.8), and `.wh..wh..opq` marks its
//!   directory opaque with the `user.overlay.opaque` xattr that an overlay
//!   mounted with `userxattr` in a user namespace reads. A whiteout's parent
//!   obeys the same rules as any entry's (a real directory of this layer),
//!   and its target name may not be `.` or `..`;
//! * modes are kept, setuid/setgid included (the container runs in a user
//!   namespace with no_new_privs), but every directory gets at least u+rwx so
//!   its owner can always delete the layer;
//! * owners are kept only when the caller asks ([`unpack_with_owners`]),
//!   with the id maps of its containers: each entry's uid and gid (pax
//!   `uid`/`gid` records included) are given with `lchown` when the map
//!   covers them, and any other id becomes root of the container, with one
//!   warning per layer. `userns` runs that inside a user namespace with the
//!   containers' maps; root does it directly, through the maps. Otherwise
//!   everything belongs to the calling user, who is root inside the
//!   container. Owners are set before modes (chown clears setuid bits).
//!   xattrs (file capabilities) are dropped;
//! * the size of the content, the number of entries and the size of each
//!   metadata header (pax, GNU long names) are limited.
//!
//! Writing by path after `lstat` checks is race-free only because nobody else
//! writes in the store: it lives in a 0700 directory of the calling user, and
//! the threat here is the archive, not a concurrent local attacker.

use super::{ImageContext, Result};
use ctr_core::idmap::IdMapEntry;
use filetime::FileTime;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Bounds on what one layer may contain.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of file content (and of the uncompressed tar stream).
    pub max_bytes: u64,
    /// Entries: files, directories, links and skipped entries alike.
    pub max_entries: u64,
    /// One pax or GNU long-name header; these are read into memory.
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 20 << 30, max_entries: 1_000_000, max_header_bytes: 1 << 20 }
    }
}

/// What an unpacking produced.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Unpacked {
    /// Bytes of regular file content (hard links counted once).
    pub size: u64,
    pub entries: u64,
    /// Archive paths of the entries skipped with a warning.
    pub skipped: Vec<String>,
    /// Whether some entry was given an owner other than the container's
    /// root (only when owners are kept).
    #[serde(default)]
    pub other_owners: bool,
}

/// The owners an unpacking gives: the archive's ids that the container's
/// id maps cover, as the container sees them.
#[derive(Debug, Clone)]
pub struct OwnerMaps {
    uid: Vec<IdMapEntry>,
    gid: Vec<IdMapEntry>,
    /// Give `lchown` the host id a container id maps to (root, writing from
    /// outside the user namespace), not the container id itself (a process
    /// inside a user namespace with these maps).
    to_host: bool,
}

impl OwnerMaps {
    /// For a process inside a user namespace with these maps.
    pub fn inside(uid: Vec<IdMapEntry>, gid: Vec<IdMapEntry>) -> OwnerMaps {
        OwnerMaps { uid, gid, to_host: false }
    }

    /// For root on the host, writing what a container with these maps sees.
    pub fn from_host(uid: Vec<IdMapEntry>, gid: Vec<IdMapEntry>) -> OwnerMaps {
        OwnerMaps { uid, gid, to_host: true }
    }

    /// The id to give `lchown` for container id `id`; None if the map
    /// does not cover it.
    fn translate(map: &[IdMapEntry], id: u64, to_host: bool) -> Option<u32> {
        map.iter().find_map(|e| {
            let offset = id.checked_sub(u64::from(e.inside()))?;
            (offset < u64::from(e.count())).then(|| {
                // Both fit in u32: the entry was checked not to overflow.
                let base = if to_host { e.outside() } else { e.inside() };
                base + offset as u32
            })
        })
    }
}

/// What the archive is: a whole root filesystem, or one layer of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `ctr image import`: whiteouts are skipped.
    Rootfs,
    /// A layer of a pulled or loaded image: whiteouts become overlayfs whiteouts.
    Layer,
}

/// The xattr that marks a directory opaque in an overlay mounted with `userxattr`.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_NAME: &[u8] = b".wh..wh..opq";

/// Unpacks the tar stream `reader` into `root`, which must not exist yet.
/// On error `root` is left half-filled: the caller unpacks into a temporary
/// directory and removes it. Owners are not kept.
#[cfg(test)]
pub fn unpack(reader: impl Read, root: &Path, limits: &Limits, mode: Mode) -> Result<Unpacked> {
    unpack_with_owners(reader, root, limits, mode, None)
}

/// [`unpack`], giving entries their archive owners through `owners` (when
/// given; the process must be allowed to chown to the ids it names).
pub fn unpack_with_owners(
    reader: impl Read,
    root: &Path,
    limits: &Limits,
    mode: Mode,
    owners: Option<&OwnerMaps>,
) -> Result<Unpacked> {
    let mut extractor = Extractor::new(root, mode, owners.cloned())?;
    let mut archive = tar::Archive::new(reader);
    let mut pending = Pending::default();
    let entries = archive.entries().context("cannot read the tar archive")?.raw(true);
    for entry in entries {
        let mut entry = entry.context("cannot read the tar archive (is the input a tar file, plain or compressed?)")?;
        let kind = entry.header().entry_type();
        if is_local_extension(kind) {
            pending.absorb(kind, &mut entry, limits)?;
            continue;
        }
        extractor.count_entry(limits)?;
        if kind.is_pax_global_extensions() {
            // Global pax records carry comments and defaults for fields we
            // do not keep (owners, times of access); read past them.
            read_extension(kind, &mut entry, limits)?;
            continue;
        }
        let meta = EntryMeta::read(&entry, std::mem::take(&mut pending))?;
        extractor.extract(&meta, &mut entry, limits)?;
    }
    if !pending.is_empty() {
        refuse!("malformed archive: it ends with an extension header that describes no entry");
    }
    // A whole root filesystem cannot be empty; a layer can (OCI allows
    // empty layers, and a commit of a container that changed nothing is one).
    if mode == Mode::Rootfs && extractor.unpacked.entries == 0 {
        refuse!("the archive has no entries: an image needs a root filesystem (create it with `tar -C ROOT -c .`)");
    }
    extractor.finish()
}

fn is_local_extension(kind: EntryType) -> bool {
    kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions()
}

/// Extension headers seen since the last real entry; they describe the next one.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn absorb<R: Read>(&mut self, kind: EntryType, entry: &mut tar::Entry<R>, limits: &Limits) -> Result<()> {
        let data = read_extension(kind, entry, limits)?;
        let slot = if kind.is_gnu_longname() {
            &mut self.long_name
        } else if kind.is_gnu_longlink() {
            &mut self.long_link
        } else {
            &mut self.pax
        };
        if slot.replace(data).is_some() {
            refuse!("malformed archive: two {} headers in a row describe the same entry", describe(kind));
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// Reads an extension header's data into memory, which is why its size is
/// checked first: the tar crate's own (non-raw) iteration has no bound.
fn read_extension<R: Read>(kind: EntryType, entry: &mut tar::Entry<R>, limits: &Limits) -> Result<Vec<u8>> {
    let size = entry.size();
    if size > limits.max_header_bytes {
        refuse!(
            "refusing the archive: a {} header of {size} bytes is over the {} KiB limit (no real archive needs one this big)",
            describe(kind),
            limits.max_header_bytes >> 10
        );
    }
    let mut data = Vec::with_capacity(size as usize);
    entry.read_to_end(&mut data).with_context(|| format!("cannot read a {} header", describe(kind)))?;
    Ok(data)
}

/// The fields of a pax header that unpacking uses. Others (uid, gid, uname,
/// gname, atime, ctime, SCHILY.xattr.*, comment) describe what is not kept.
#[derive(Default)]
struct PaxFields {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    mtime: Option<FileTime>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

impl PaxFields {
    fn parse(data: &[u8]) -> Result<PaxFields> {
        let mut fields = PaxFields::default();
        for record in tar::PaxExtensions::new(data) {
            let record = record.context("malformed pax header")?;
            let (key, value) = (record.key_bytes(), record.value_bytes());
            match key {
                b"path" => fields.path = Some(value.to_vec()),
                b"linkpath" => fields.linkpath = Some(value.to_vec()),
                b"mtime" => fields.mtime = Some(parse_pax_time(value)?),
                b"size" => fields.size = Some(parse_decimal(value).context("malformed pax size")?),
                b"uid" => fields.uid = parse_decimal(value).ok(),
                b"gid" => fields.gid = parse_decimal(value).ok(),
                _ if key.starts_with(b"GNU.sparse.") => refuse!("{}", SPARSE_UNSUPPORTED),
                _ => {}
            }
        }
        Ok(fields)
    }
}

const SPARSE_UNSUPPORTED: &str = "sparse files are not supported: re-create the archive without --sparse (-S)";

fn parse_decimal(value: &[u8]) -> Result<u64> {
    std::str::from_utf8(value)?.parse().map_err(|_| refused!("{:?} is not a number", String::from_utf8_lossy(value)))
}

/// A pax time: decimal seconds since the epoch, maybe negative, maybe with
/// a fraction (`1700000000.123456789`).
fn parse_pax_time(value: &[u8]) -> Result<FileTime> {
    let text = std::str::from_utf8(value).context("malformed pax mtime")?;
    let bad = || refused!("malformed pax mtime {text:?}");
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut secs: i64 = secs.parse().map_err(|_| bad())?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut nanos: u32 = digits.parse().map_err(|_| bad())?;
    if text.starts_with('-') && nanos > 0 {
        // -1.25 is 1.25 s before the epoch: -2 s plus 0.75 s.
        secs -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Ok(FileTime::from_unix_time(secs, nanos))
}

/// One real entry's metadata, with its extension headers applied.
struct EntryMeta {
    /// The path as written in the archive, for messages.
    shown: String,
    /// Normalised, relative to the layer root; empty for the root itself.
    path: PathBuf,
    kind: EntryType,
    mode: u32,
    mtime: FileTime,
    /// Bytes of data that follow the header.
    size: u64,
    /// Symlink target or hard link name, raw.
    link: Option<Vec<u8>>,
    /// Owner in the archive; None where a header's field is unreadable.
    uid: Option<u64>,
    gid: Option<u64>,
}

impl EntryMeta {
    fn read<R: Read>(entry: &tar::Entry<R>, pending: Pending) -> Result<EntryMeta> {
        let header = entry.header();
        let pax = match &pending.pax {
            Some(data) => PaxFields::parse(data)?,
            None => PaxFields::default(),
        };
        let raw_path =
            pax.path.or(pending.long_name.map(trim_nuls)).unwrap_or_else(|| header.path_bytes().into_owned());
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let path = normalise(&raw_path).map_err(|why| refused!("refusing {shown:?}: {why}"))?;
        let size = header.entry_size()?;
        if let Some(pax_size) = pax.size {
            if pax_size != size {
                refuse!("refusing {shown:?}: its pax size ({pax_size}) and header size ({size}) disagree; tar readers would disagree on what it contains");
            }
        }
        let link = pax
            .linkpath
            .or(pending.long_link.map(trim_nuls))
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let mtime = match pax.mtime {
            Some(mtime) => mtime,
            None => {
                let secs =
                    i64::try_from(header.mtime()?).map_err(|_| refused!("refusing {shown:?}: mtime out of range"))?;
                FileTime::from_unix_time(secs, 0)
            }
        };
        let mode = header.mode().with_context(|| format!("bad mode in {shown:?}"))? & 0o7777;
        let uid = pax.uid.or_else(|| header.uid().ok());
        let gid = pax.gid.or_else(|| header.gid().ok());
        Ok(EntryMeta { shown, path, kind: header.entry_type(), mode, mtime, size, link, uid, gid })
    }
}

/// GNU long names end with a NUL.
fn trim_nuls(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// An archive path made relative to the layer root: `.` and empty
/// components dropped, absolute paths and `..` refused (even `a/../b`: the
/// lexical meaning of `..` differs from the file system's once `a` is a
/// symlink, so no well-formed rootfs archive contains one).
fn normalise(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("the path contains a NUL byte".into());
    }
    if raw.starts_with(b"/") {
        return Err("absolute paths are not allowed in an image archive; create it relative to the root, e.g. `tar -C ROOT -c .`".into());
    }
    let mut path = PathBuf::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("\"..\" path components are not allowed in an image archive".into()),
            name => path.push(OsStr::from_bytes(name)),
        }
    }
    Ok(path)
}

fn describe(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::GNULongName => "GNU long name",
        EntryType::GNULongLink => "GNU long link name",
        EntryType::XHeader => "pax",
        EntryType::XGlobalHeader => "pax global",
        _ => "tar",
    }
}

/// The unpacking state: what has been created so far and what is left to
/// do at the end.
struct Extractor {
    root: PathBuf,
    /// Relative paths of the directories created so far (the root is "").
    /// Directories are never removed or replaced, so each is still a real
    /// directory, and none other exists in the layer.
    dirs: HashSet<PathBuf>,
    /// Mode, mtime and owner to give each directory at the end, once
    /// nothing more is written into it (writing would change its mtime, and
    /// a read-only mode or another owner would stop the writing).
    dir_meta: HashMap<PathBuf, DirMeta>,
    buf: Vec<u8>,
    unpacked: Unpacked,
    mode: Mode,
    /// Paths whited out in this layer: a directory created there later
    /// replaces the lower one, so it is made opaque.
    whiteouts: HashSet<PathBuf>,
    /// Kept owners, if asked for; and the entries whose owners the maps do
    /// not cover (counted, with the first, for one warning).
    owners: Option<OwnerMaps>,
    unmapped: u64,
    first_unmapped: Option<String>,
}

/// What a directory gets in [`Extractor::finish`].
struct DirMeta {
    mode: u32,
    mtime: Option<FileTime>,
    /// The ids to lchown to (already translated), if not the creator's.
    owner: Option<(u32, u32)>,
}

impl DirMeta {
    fn implicit() -> DirMeta {
        DirMeta { mode: DEFAULT_DIR_MODE, mtime: None, owner: None }
    }
}

const DEFAULT_DIR_MODE: u32 = 0o755;
const COPY_BUFFER: usize = 128 << 10;

impl Extractor {
    fn new(root: &Path, mode: Mode, owners: Option<OwnerMaps>) -> Result<Extractor> {
        create_private_dir(root)?;
        let top = PathBuf::new();
        Ok(Extractor {
            root: root.to_path_buf(),
            dirs: HashSet::from([top.clone()]),
            dir_meta: HashMap::from([(top, DirMeta::implicit())]),
            buf: vec![0; COPY_BUFFER],
            unpacked: Unpacked::default(),
            mode,
            whiteouts: HashSet::new(),
            owners,
            unmapped: 0,
            first_unmapped: None,
        })
    }

    /// The ids to lchown an entry to, or None to leave it the creator's
    /// (owners not kept, or the container's root). An id the maps do not
    /// cover becomes root's, and is counted for the warning.
    fn owner(&mut self, meta: &EntryMeta) -> Option<(u32, u32)> {
        let owners = self.owners.as_ref()?;
        let (uid, gid) = (meta.uid.unwrap_or(0), meta.gid.unwrap_or(0));
        if uid == 0 && gid == 0 {
            return None;
        }
        let mapped_uid = OwnerMaps::translate(&owners.uid, uid, owners.to_host);
        let mapped_gid = OwnerMaps::translate(&owners.gid, gid, owners.to_host);
        let root_uid = OwnerMaps::translate(&owners.uid, 0, owners.to_host);
        let root_gid = OwnerMaps::translate(&owners.gid, 0, owners.to_host);
        if mapped_uid.is_none() || mapped_gid.is_none() {
            self.unmapped += 1;
            if self.first_unmapped.is_none() {
                self.first_unmapped = Some(format!("{:?} owned by {uid}:{gid}", meta.shown));
            }
        }
        let (Some(new_uid), Some(new_gid)) = (mapped_uid.or(root_uid), mapped_gid.or(root_gid)) else {
            // A map without the container's root: nothing sensible to give.
            return None;
        };
        if (new_uid, new_gid) == (root_uid?, root_gid?) {
            return None;
        }
        self.unpacked.other_owners = true;
        Some((new_uid, new_gid))
    }

    fn count_entry(&mut self, limits: &Limits) -> Result<()> {
        self.unpacked.entries += 1;
        if self.unpacked.entries > limits.max_entries {
            refuse!("refusing the archive: it has more than {} entries", limits.max_entries);
        }
        Ok(())
    }

    fn extract(&mut self, meta: &EntryMeta, data: &mut impl Read, limits: &Limits) -> Result<()> {
        if let Some(whiteout) = Whiteout::of(&meta.path) {
            if self.mode == Mode::Rootfs {
                self.skip(meta, "whiteouts only mean something in layered images, not in a root filesystem archive");
                return Ok(());
            }
            return self.whiteout(meta, whiteout);
        }
        if meta.path.as_os_str().is_empty() {
            return self.root_entry(meta);
        }
        match meta.kind {
            EntryType::Directory => self.directory(meta),
            EntryType::Regular | EntryType::Continuous => self.file(meta, data, limits),
            EntryType::Symlink => self.symlink(meta),
            EntryType::Link => self.hard_link(meta),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let why = format!("{}s are not unpacked (the container gets its own /dev)", describe(meta.kind));
                self.skip(meta, &why);
                Ok(())
            }
            EntryType::GNUSparse => refuse!("{}", SPARSE_UNSUPPORTED),
            other => refuse!("refusing {:?}: unsupported tar entry type {other:?}", meta.shown),
        }
    }

    fn skip(&mut self, meta: &EntryMeta, why: &str) {
        eprintln!("warning: skipping {:?}: {why}", meta.shown);
        self.unpacked.skipped.push(meta.shown.clone());
    }

    /// `./` in the archive: gives the layer root its mode and mtime.
    fn root_entry(&mut self, meta: &EntryMeta) -> Result<()> {
        if meta.kind != EntryType::Directory {
            refuse!("refusing {:?}: it names the root, which must be a directory", meta.shown);
        }
        let owner = self.owner(meta);
        self.dir_meta.insert(PathBuf::new(), DirMeta { mode: meta.mode, mtime: Some(meta.mtime), owner });
        Ok(())
    }

    fn directory(&mut self, meta: &EntryMeta) -> Result<()> {
        let abs = self.prepare_parent(meta)?;
        if !self.dirs.contains(&meta.path) {
            self.remove_existing(meta, &abs)?;
            create_private_dir(&abs)?;
            self.dirs.insert(meta.path.clone());
            if self.whiteouts.contains(&meta.path) {
                set_opaque(&abs)?;
            }
        }
        let owner = self.owner(meta);
        self.dir_meta.insert(meta.path.clone(), DirMeta { mode: meta.mode, mtime: Some(meta.mtime), owner });
        Ok(())
    }

    fn file(&mut self, meta: &EntryMeta, data: &mut impl Read, limits: &Limits) -> Result<()> {
        self.unpacked.size += meta.size;
        if self.unpacked.size > limits.max_bytes {
            refuse!(
                "refusing the archive: its files hold more than the {} GiB limit for an image layer",
                limits.max_bytes >> 30
            );
        }
        let abs = self.prepare_parent(meta)?;
        self.remove_existing(meta, &abs)?;
        // O_EXCL never follows a symlink at the last component; O_NOFOLLOW
        // says so explicitly.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&abs)
            .with_context(|| format!("cannot create {}", abs.display()))?;
        let unpack_error = || format!("cannot unpack {:?}", meta.shown);
        copy(data, &mut file, &mut self.buf).with_context(unpack_error)?;
        // Owner, then mode, after writing: writing and chown both clear
        // setuid/setgid bits.
        if let Some((uid, gid)) = self.owner(meta) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).with_context(|| chown_error(meta, uid, gid))?;
        }
        file.set_permissions(Permissions::from_mode(meta.mode)).with_context(unpack_error)?;
        filetime::set_file_handle_times(&file, Some(meta.mtime), Some(meta.mtime)).with_context(unpack_error)?;
        Ok(())
    }

    /// A whiteout entry of a layer (see the module's documentation).
    fn whiteout(&mut self, meta: &EntryMeta, whiteout: Whiteout) -> Result<()> {
        if meta.kind == EntryType::Directory {
            refuse!("refusing {:?}: a whiteout must not be a directory", meta.shown);
        }
        let abs = self.prepare_parent(meta)?;
        let parent = meta.path.parent().unwrap_or(Path::new("")).to_path_buf();
        match whiteout {
            Whiteout::Opaque => set_opaque(&self.root.join(&parent)),
            Whiteout::Unknown => {
                self.skip(meta, "unknown whiteout metadata (`.wh..wh.*`) is ignored");
                Ok(())
            }
            Whiteout::Name(name) => {
                if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                    refuse!("refusing {:?}: a whiteout must name an entry of its own directory", meta.shown);
                }
                let rel = parent.join(OsStr::from_bytes(&name));
                let target = self.root.join(&rel);
                debug_assert_eq!(abs.parent(), target.parent());
                match lstat(&target)? {
                    // The directory is this layer's own: hide the lower one's content.
                    Some(t) if t.is_dir() => set_opaque(&target),
                    // This layer's own entry already hides the lower one.
                    Some(_) => Ok(()),
                    None => {
                        nix::sys::stat::mknod(
                            &target,
                            nix::sys::stat::SFlag::S_IFCHR,
                            nix::sys::stat::Mode::empty(),
                            nix::sys::stat::makedev(0, 0),
                        )
                        .with_context(|| {
                            format!("cannot create the overlay whiteout {} (needs Linux >= 5.8)", target.display())
                        })?;
                        self.whiteouts.insert(rel);
                        Ok(())
                    }
                }
            }
        }
    }

    fn symlink(&mut self, meta: &EntryMeta) -> Result<()> {
        let target = match meta.link.as_deref() {
            Some(target) if !target.is_empty() && !target.contains(&0) => target,
            _ => refuse!("refusing {:?}: a symlink needs a non-empty target without NUL bytes", meta.shown),
        };
        let abs = self.prepare_parent(meta)?;
        self.remove_existing(meta, &abs)?;
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &abs)
            .with_context(|| format!("cannot create symlink {}", abs.display()))?;
        if let Some((uid, gid)) = self.owner(meta) {
            // lchown: the link itself, never its target.
            std::os::unix::fs::lchown(&abs, Some(uid), Some(gid)).with_context(|| chown_error(meta, uid, gid))?;
        }
        filetime::set_symlink_file_times(&abs, meta.mtime, meta.mtime)
            .with_context(|| format!("cannot set the mtime of {}", abs.display()))?;
        Ok(())
    }

    fn hard_link(&mut self, meta: &EntryMeta) -> Result<()> {
        let raw = meta.link.as_deref().unwrap_or_default();
        let shown_target = String::from_utf8_lossy(raw);
        let refuse = |why: &str| refused!("refusing hard link {:?} -> {shown_target:?}: {why}", meta.shown);
        let target = normalise(raw).map_err(|why| refuse(&why))?;
        if target.as_os_str().is_empty() || target == meta.path {
            return Err(refuse("a hard link must name another file"));
        }
        // Every directory in the layer is in `dirs`, so a parent outside it
        // is missing, a file or a symlink, none of which may be traversed.
        let target_parent = target.parent().unwrap_or(Path::new(""));
        let target_abs = self.root.join(&target);
        let is_unpacked_file =
            self.dirs.contains(target_parent) && lstat(&target_abs)?.is_some_and(|file_type| file_type.is_file());
        if !is_unpacked_file {
            return Err(refuse("the target must be a regular file that comes earlier in the archive"));
        }
        let abs = self.prepare_parent(meta)?;
        self.remove_existing(meta, &abs)?;
        fs::hard_link(&target_abs, &abs).with_context(|| format!("cannot create hard link {}", abs.display()))?;
        Ok(())
    }

    /// Makes sure every parent of `meta.path` is a real directory, creating
    /// missing ones as tar does, and returns the entry's absolute path.
    fn prepare_parent(&mut self, meta: &EntryMeta) -> Result<PathBuf> {
        let parent = meta.path.parent().unwrap_or(Path::new(""));
        if !self.dirs.contains(parent) {
            let mut rel = PathBuf::new();
            for component in parent.components() {
                rel.push(component);
                if !self.dirs.contains(&rel) {
                    self.create_parent(meta, &rel)?;
                }
            }
        }
        Ok(self.root.join(&meta.path))
    }

    fn create_parent(&mut self, meta: &EntryMeta, rel: &Path) -> Result<()> {
        let abs = self.root.join(rel);
        match lstat(&abs)? {
            None => create_private_dir(&abs)?,
            Some(t) if t.is_symlink() => refuse!(
                "refusing {:?}: its parent {:?} is a symlink, and unpacking never writes through a symlink",
                meta.shown,
                rel
            ),
            Some(_) => refuse!("refusing {:?}: its parent {:?} is not a directory", meta.shown, rel),
        }
        self.dirs.insert(rel.to_path_buf());
        self.dir_meta.entry(rel.to_path_buf()).or_insert_with(DirMeta::implicit);
        Ok(())
    }

    /// Clears the way for an entry that repeats an earlier one's name. The
    /// earlier file or symlink is unlinked (never followed); a directory is
    /// kept, because `dirs` relies on directories staying.
    fn remove_existing(&self, meta: &EntryMeta, abs: &Path) -> Result<()> {
        match lstat(abs)? {
            None => Ok(()),
            Some(t) if t.is_dir() => {
                refuse!("refusing {:?}: it would replace a directory of the same name", meta.shown)
            }
            Some(_) => fs::remove_file(abs).with_context(|| format!("cannot replace {}", abs.display())),
        }
    }

    /// Gives directories their owners, modes (at least u+rwx) and mtimes,
    /// deepest first so that no change to a child touches a parent already
    /// done; and warns once about owners the maps do not cover.
    fn finish(self) -> Result<Unpacked> {
        if let Some(first) = &self.first_unmapped {
            eprintln!(
                "warning: this layer has {} entr{} owned by ids outside your id map (the first: {first}): in the container they belong to root (a larger range for you in /etc/subuid and /etc/subgid would keep them)",
                self.unmapped,
                if self.unmapped == 1 { "y" } else { "ies" }
            );
        }
        let mut dirs: Vec<_> = self.dir_meta.into_iter().collect();
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (rel, DirMeta { mode, mtime, owner }) in dirs {
            let abs = self.root.join(&rel);
            if let Some((uid, gid)) = owner {
                // Every path in dir_meta is a directory this unpacking made.
                std::os::unix::fs::lchown(&abs, Some(uid), Some(gid))
                    .with_context(|| format!("cannot give {} to {uid}:{gid}", abs.display()))?;
            }
            fs::set_permissions(&abs, Permissions::from_mode(mode | 0o700))
                .with_context(|| format!("cannot set the mode of {}", abs.display()))?;
            if let Some(mtime) = mtime {
                filetime::set_file_times(&abs, mtime, mtime)
                    .with_context(|| format!("cannot set the mtime of {}", abs.display()))?;
            }
        }
        Ok(self.unpacked)
    }
}

/// What a `.wh.`-prefixed name means.
#[derive(Debug, PartialEq, Eq)]
enum Whiteout {
    /// `.wh..wh..opq`: the directory hides the lower layers' content.
    Opaque,
    /// Other `.wh..wh.*` names: aufs bookkeeping, meaningless here.
    Unknown,
    /// `.wh.NAME`: NAME is deleted.
    Name(Vec<u8>),
}

impl Whiteout {
    fn of(path: &Path) -> Option<Whiteout> {
        let name = path.file_name()?.as_bytes();
        let rest = name.strip_prefix(WHITEOUT_PREFIX)?;
        Some(if name == OPAQUE_NAME {
            Whiteout::Opaque
        } else if rest.starts_with(WHITEOUT_PREFIX) {
            Whiteout::Unknown
        } else {
            Whiteout::Name(rest.to_vec())
        })
    }
}

/// Marks a directory of the layer opaque for overlayfs (`userxattr` format).
fn set_opaque(dir: &Path) -> Result<()> {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).context("a path with a NUL byte")?;
    let name = std::ffi::CString::new(OPAQUE_XATTR).expect("no NUL");
    if let Err(e) = crate::sys::fs::set_xattr_nofollow(&path, &name, b"y") {
        return Err(e).with_context(|| {
            format!(
                "cannot mark {} opaque with the {OPAQUE_XATTR} xattr: the image store's filesystem must support user extended attributes",
                dir.display()
            )
        });
    }
    Ok(())
}

fn chown_error(meta: &EntryMeta, uid: u32, gid: u32) -> String {
    format!("cannot give {:?} its owner {uid}:{gid}", meta.shown)
}

/// The type of what is at `path`, without following a symlink; None if nothing is.
fn lstat(path: &Path) -> Result<Option<fs::FileType>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta.file_type())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }
}

/// Directories start owner-only; `finish` gives them their real modes.
fn create_private_dir(path: &Path) -> Result<()> {
    DirBuilder::new().mode(0o700).create(path).with_context(|| format!("cannot create directory {}", path.display()))
}

/// Like io::copy, with a reused buffer large enough to keep write calls few.
fn copy(from: &mut impl Read, to: &mut impl Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Builds tar archives byte by byte, so that tests can write what
    /// `tar::Builder` would refuse to.
    #[derive(Default)]
    pub struct RawTar(Vec<u8>);

    impl RawTar {
        pub fn entry(self, name: &[u8], kind: EntryType, link: &[u8], mode: u32, data: &[u8]) -> Self {
            self.entry_owned(name, kind, link, mode, (0, 0), data)
        }
        fn entry_owned(
            mut self,
            name: &[u8],
            kind: EntryType,
            link: &[u8],
            mode: u32,
            owner: (u64, u64),
            data: &[u8],
        ) -> Self {
            let mut header = tar::Header::new_ustar();
            header.set_uid(owner.0);
            header.set_gid(owner.1);
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            header.set_mtime(1_600_000_000);
            header.set_cksum();
            self.0.extend_from_slice(header.as_bytes());
            self.0.extend_from_slice(data);
            self.0.resize(self.0.len().next_multiple_of(512), 0);
            self
        }
        /// An entry with an owner (`entry`'s are 0:0).
        pub fn owned(self, name: &str, kind: EntryType, link: &str, mode: u32, owner: (u64, u64), data: &[u8]) -> Self {
            self.entry_owned(name.as_bytes(), kind, link.as_bytes(), mode, owner, data)
        }
        pub fn file(self, name: &str, data: &[u8]) -> Self {
            self.entry(name.as_bytes(), EntryType::Regular, b"", 0o644, data)
        }
        pub fn dir(self, name: &str, mode: u32) -> Self {
            self.entry(name.as_bytes(), EntryType::Directory, b"", mode, b"")
        }
        pub fn symlink(self, name: &str, target: &str) -> Self {
            self.entry(name.as_bytes(), EntryType::Symlink, target.as_bytes(), 0o777, b"")
        }
        pub fn hard_link(self, name: &str, target: &str) -> Self {
            self.entry(name.as_bytes(), EntryType::Link, target.as_bytes(), 0o644, b"")
        }
        pub fn pax(self, records: &[(&str, &str)]) -> Self {
            let mut data = Vec::new();
            for (key, value) in records {
                let body = format!(" {key}={value}\n");
                // The length prefix counts itself.
                let mut len = body.len() + 1;
                while (len.to_string().len() + body.len()) != len {
                    len += 1;
                }
                data.extend(format!("{len}{body}").bytes());
            }
            self.entry(b"PaxHeader", EntryType::XHeader, b"", 0o644, &data)
        }
        pub fn finish(mut self) -> Vec<u8> {
            self.0.extend_from_slice(&[0; 1024]);
            self.0
        }
    }

    fn try_unpack(tar: RawTar) -> (tempfile::TempDir, Result<Unpacked>) {
        try_unpack_with(tar, &Limits::default())
    }

    fn try_unpack_with(tar: RawTar, limits: &Limits) -> (tempfile::TempDir, Result<Unpacked>) {
        let dir = tempfile::tempdir().unwrap();
        let result = unpack(&tar.finish()[..], &dir.path().join("rootfs"), limits, Mode::Rootfs);
        (dir, result)
    }

    fn refused(tar: RawTar, expected: &str) {
        let (dir, result) = try_unpack(tar);
        let err = crate::error::chain(&result.expect_err("the archive should be refused"));
        assert!(err.contains(expected), "error {err:?} should mention {expected:?}");
        assert_nothing_escaped(dir.path());
    }

    /// Tests aim their attacks at `<tmp>/outside`; it must stay empty.
    fn assert_nothing_escaped(tmp: &Path) {
        let outside = tmp.join("outside");
        if outside.exists() {
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "something was written outside the layer");
        }
    }

    #[test]
    fn unpacks_files_dirs_and_links() {
        let tar = RawTar::default()
            .dir("./", 0o755)
            .dir("etc/", 0o755)
            .file("etc/hostname", b"box\n")
            .file("deep/implicit/parent", b"x")
            .symlink("etc/link", "/etc/hostname")
            .hard_link("etc/again", "etc/hostname");
        let (dir, result) = try_unpack(tar);
        let unpacked = result.unwrap();
        let root = dir.path().join("rootfs");
        assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"box\n");
        assert_eq!(fs::read(root.join("deep/implicit/parent")).unwrap(), b"x");
        assert_eq!(fs::read_link(root.join("etc/link")).unwrap(), Path::new("/etc/hostname"));
        let (a, b) = (fs::metadata(root.join("etc/hostname")).unwrap(), fs::metadata(root.join("etc/again")).unwrap());
        assert_eq!(a.ino(), b.ino());
        assert_eq!(fs::metadata(root.join("deep")).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(unpacked.size, 5);
        assert_eq!(unpacked.entries, 6);
    }

    #[test]
    fn keeps_modes_and_mtimes_but_directories_stay_owner_writable() {
        let tar = RawTar::default()
            .entry(b"bin/", EntryType::Directory, b"", 0o555, b"")
            .entry(b"bin/su", EntryType::Regular, b"", 0o4755, b"suid")
            .entry(b"bin/ro", EntryType::Regular, b"", 0o444, b"ro");
        let (dir, result) = try_unpack(tar);
        result.unwrap();
        let root = dir.path().join("rootfs");
        let mode = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("bin"), 0o755);
        assert_eq!(mode("bin/su"), 0o4755);
        assert_eq!(mode("bin/ro"), 0o444);
        assert_eq!(fs::metadata(root.join("bin/su")).unwrap().mtime(), 1_600_000_000);
        assert_eq!(fs::metadata(root.join("bin")).unwrap().mtime(), 1_600_000_000);
    }

    #[test]
    fn long_names_via_gnu_and_pax_headers() {
        let long = format!("{}/file", "d".repeat(150));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        builder.append_data(&mut header, &long, &b"hi"[..]).unwrap();
        let gnu = RawTar(builder.into_inner().unwrap());
        let (dir, result) = try_unpack(gnu);
        result.unwrap();
        assert_eq!(fs::read(dir.path().join("rootfs").join(&long)).unwrap(), b"hi");

        let pax =
            RawTar::default().pax(&[("path", &long), ("mtime", "1700000000.5"), ("uid", "1000")]).file("short", b"hi");
        let (dir, result) = try_unpack(pax);
        result.unwrap();
        let meta = fs::metadata(dir.path().join("rootfs").join(&long)).unwrap();
        assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_700_000_000, 500_000_000));
        assert!(!dir.path().join("rootfs/short").exists());
    }

    #[test]
    fn refuses_parent_components() {
        refused(RawTar::default().file("../outside/x", b"x"), "\"..\" path components are not allowed");
        refused(RawTar::default().file("a/../../outside/x", b"x"), "\"..\"");
    }

    #[test]
    fn refuses_absolute_paths() {
        refused(RawTar::default().file("/etc/passwd", b"x"), "absolute paths are not allowed");
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let tar = RawTar::default().symlink("a", outside.to_str().unwrap()).file("a/passwd", b"pwned");
        let err = unpack(&tar.finish()[..], &dir.path().join("rootfs"), &Limits::default(), Mode::Rootfs).unwrap_err();
        assert!(crate::error::chain(&err).contains("is a symlink"), "{err:?}");
        assert_nothing_escaped(dir.path());

        // Relative targets and directories are refused the same way.
        let tar = RawTar::default().symlink("a", "../outside").dir("a/sub/", 0o755);
        let err = unpack(&tar.finish()[..], &dir.path().join("rootfs2"), &Limits::default(), Mode::Rootfs).unwrap_err();
        assert!(crate::error::chain(&err).contains("is a symlink"), "{err:?}");
        assert_nothing_escaped(dir.path());
    }

    #[test]
    fn a_file_replacing_a_symlink_replaces_the_link_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim");
        let tar = RawTar::default().symlink("f", victim.to_str().unwrap()).file("f", b"inside");
        unpack(&tar.finish()[..], &dir.path().join("rootfs"), &Limits::default(), Mode::Rootfs).unwrap();
        assert!(!victim.exists());
        assert_eq!(fs::read(dir.path().join("rootfs/f")).unwrap(), b"inside");
    }

    #[test]
    fn refuses_replacing_a_directory() {
        refused(RawTar::default().dir("d/", 0o755).file("d/x", b"").symlink("d", "/"), "would replace a directory");
    }

    #[test]
    fn refuses_bad_hard_links() {
        refused(RawTar::default().hard_link("x", "../outside/secret"), "\"..\"");
        refused(RawTar::default().hard_link("x", "/etc/passwd"), "absolute paths");
        refused(RawTar::default().hard_link("x", "missing"), "must be a regular file that comes earlier");
        refused(RawTar::default().dir("d/", 0o755).hard_link("x", "d"), "must be a regular file");
        refused(RawTar::default().file("x", b"").hard_link("x", "x"), "must name another file");
        // Through a symlinked directory, to a file that does exist.
        refused(
            RawTar::default().dir("real/", 0o755).file("real/f", b"").symlink("l", "real").hard_link("x", "l/f"),
            "must be a regular file",
        );
        // To a symlink (which could point anywhere).
        refused(RawTar::default().symlink("s", "/etc/shadow").hard_link("x", "s"), "must be a regular file");
    }

    #[test]
    fn refuses_oversized_extension_headers() {
        let big = "p".repeat(2 << 20);
        refused(RawTar::default().pax(&[("comment", &big)]).file("f", b""), "over the 1024 KiB limit");
        let gnu_long_name = vec![b'n'; 2 << 20];
        refused(
            RawTar::default()
                .entry(b"././@LongLink", EntryType::GNULongName, b"", 0o644, &gnu_long_name)
                .file("f", b""),
            "GNU long name header",
        );
    }

    #[test]
    fn refuses_ambiguous_and_sparse_entries() {
        refused(RawTar::default().pax(&[("size", "99")]).file("f", b"x"), "disagree");
        refused(RawTar::default().pax(&[("GNU.sparse.major", "1")]).file("f", b""), "sparse files are not supported");
        refused(RawTar::default().pax(&[("path", "a")]).pax(&[("path", "b")]).file("f", b""), "two pax headers");
        refused(RawTar::default().pax(&[("path", "a")]), "describes no entry");
    }

    #[test]
    fn skips_devices_fifos_and_whiteouts() {
        let tar = RawTar::default()
            .dir("dev/", 0o755)
            .entry(b"dev/null", EntryType::Char, b"", 0o666, b"")
            .entry(b"dev/sda", EntryType::Block, b"", 0o660, b"")
            .entry(b"run/fifo", EntryType::Fifo, b"", 0o600, b"")
            .file("etc/.wh.passwd", b"")
            .file("etc/.wh..wh..opq", b"")
            .file("etc/kept", b"k");
        let (dir, result) = try_unpack(tar);
        let unpacked = result.unwrap();
        assert_eq!(unpacked.skipped, ["dev/null", "dev/sda", "run/fifo", "etc/.wh.passwd", "etc/.wh..wh..opq"]);
        let root = dir.path().join("rootfs");
        assert!(!root.join("dev/null").exists() && !root.join("etc/.wh.passwd").exists());
        assert!(root.join("etc/kept").exists());
    }

    fn unpack_layer(tar: RawTar) -> (tempfile::TempDir, Result<Unpacked>) {
        let dir = tempfile::tempdir().unwrap();
        let result = unpack(&tar.finish()[..], &dir.path().join("rootfs"), &Limits::default(), Mode::Layer);
        (dir, result)
    }

    #[test]
    fn layer_whiteouts_become_overlay_whiteouts() {
        use std::os::unix::fs::FileTypeExt;
        let tar = RawTar::default()
            .file("etc/.wh.passwd", b"")
            .file("etc/.wh..wh..opq", b"")
            .file("keep", b"k")
            .file(".wh.keep", b"")
            .file(".wh.dir", b"")
            .dir("dir/", 0o755)
            .file(".wh..wh.plnk", b"");
        let (dir, result) = unpack_layer(tar);
        let unpacked = result.unwrap();
        let root = dir.path().join("rootfs");
        let meta = fs::symlink_metadata(root.join("etc/passwd")).unwrap();
        assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
        assert!(!root.join("etc/.wh.passwd").exists() && !root.join("etc/.wh..wh..opq").exists());
        assert_eq!(fs::read(root.join("keep")).unwrap(), b"k", "a whiteout does not delete its own layer's file");
        assert!(root.join("dir").is_dir(), "a directory after its whiteout replaces it");
        assert_eq!(unpacked.skipped, [".wh..wh.plnk"]);
    }

    #[test]
    fn refuses_whiteouts_aimed_outside_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"v").unwrap();
        let cases = [
            RawTar::default().file("../outside/.wh.victim", b""),
            RawTar::default().file("/outside/.wh.victim", b""),
            RawTar::default().symlink("l", outside.to_str().unwrap()).file("l/.wh.victim", b""),
            RawTar::default().symlink("l", outside.to_str().unwrap()).file("l/.wh..wh..opq", b""),
            RawTar::default().file("etc/.wh...", b""),
            RawTar::default().file(".wh..", b""),
        ];
        for (i, tar) in cases.into_iter().enumerate() {
            let result =
                unpack(&tar.finish()[..], &dir.path().join(format!("rootfs{i}")), &Limits::default(), Mode::Layer);
            assert!(result.is_err(), "case {i} should be refused");
            assert_eq!(fs::read(outside.join("victim")).unwrap(), b"v");
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 1, "case {i}");
        }
    }

    #[test]
    fn enforces_entry_and_size_limits() {
        let limits = Limits { max_entries: 2, ..Limits::default() };
        let (_dir, result) = try_unpack_with(RawTar::default().file("a", b"").file("b", b"").file("c", b""), &limits);
        assert!(crate::error::chain(&result.unwrap_err()).contains("more than 2 entries"));

        let limits = Limits { max_bytes: 4, ..Limits::default() };
        let (_dir, result) = try_unpack_with(RawTar::default().file("a", b"123").file("b", b"45"), &limits);
        assert!(crate::error::chain(&result.unwrap_err()).contains("limit for an image layer"));
    }

    #[test]
    fn rejects_an_empty_archive() {
        let (_dir, result) = try_unpack(RawTar::default());
        assert!(crate::error::chain(&result.unwrap_err()).contains("no entries"));
    }

    #[test]
    fn takes_an_empty_layer() {
        let (dir, result) = unpack_layer(RawTar::default());
        assert_eq!(result.unwrap().entries, 0);
        assert!(dir.path().join("rootfs").is_dir());
    }

    #[test]
    fn rejects_garbage() {
        let garbage = RawTar(vec![b'x'; 1024]);
        let (_dir, result) = try_unpack(garbage);
        assert!(crate::error::chain(&result.unwrap_err()).contains("cannot read the tar archive"));
    }

    #[test]
    fn keeps_mapped_owners_and_gives_root_the_rest() {
        if !nix::unistd::getuid().is_root() {
            eprintln!("skipped: chown to other ids needs root");
            return;
        }
        let entry = |i, o, c| IdMapEntry::new(i, o, c).unwrap();
        // As root with a subordinate range: container id N is host 100000+N-1.
        let owners = OwnerMaps::from_host(
            vec![entry(0, 0, 1), entry(1, 100_000, 65536)],
            vec![entry(0, 0, 1), entry(1, 200_000, 65536)],
        );
        let tar = RawTar::default()
            .owned("home/", EntryType::Directory, "", 0o755, (0, 0), b"")
            .owned("home/user/", EntryType::Directory, "", 0o700, (1000, 1000), b"")
            .owned("home/user/notes", EntryType::Regular, "", 0o600, (1000, 1000), b"n")
            .owned("etc/shadow", EntryType::Regular, "", 0o640, (0, 42), b"s")
            .owned("bin/suid", EntryType::Regular, "", 0o6755, (1000, 42), b"x")
            .owned("bin/link", EntryType::Symlink, "suid", 0o777, (7, 7), b"")
            .owned("far", EntryType::Regular, "", 0o644, (70_000, 5), b"f")
            .pax(&[("uid", "65536"), ("gid", "3")])
            .owned("pax", EntryType::Regular, "", 0o644, (1, 1), b"p");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let unpacked =
            unpack_with_owners(&tar.finish()[..], &root, &Limits::default(), Mode::Layer, Some(&owners)).unwrap();
        assert!(unpacked.other_owners);
        let show = |p: &str| {
            let m = fs::symlink_metadata(root.join(p)).unwrap();
            format!("{}:{} {:o}", m.uid(), m.gid(), m.mode() & 0o7777)
        };
        assert_eq!(show("home"), "0:0 755");
        assert_eq!(show("home/user"), "100999:200999 700");
        assert_eq!(show("home/user/notes"), "100999:200999 600");
        assert_eq!(show("etc/shadow"), "0:200041 640");
        assert_eq!(show("bin/suid"), "100999:200041 6755", "owners first, then the mode with its setuid bits");
        assert_eq!(show("bin/link").split(' ').next(), Some("100006:200006"));
        assert_eq!(show("far"), "0:200004 644", "an unmapped uid becomes root; the mapped gid stays");
        assert_eq!(show("pax"), "165535:200002 644", "pax uid and gid win over the header's");

        // Without owners, everything is the caller's.
        let tar = RawTar::default().owned("f", EntryType::Regular, "", 0o644, (1000, 1000), b"f");
        let (dir, result) = unpack_layer(tar);
        assert!(!result.unwrap().other_owners);
        assert_eq!(fs::metadata(dir.path().join("rootfs/f")).unwrap().uid(), 0);
    }

    #[test]
    fn parses_pax_times() {
        assert_eq!(parse_pax_time(b"12").unwrap(), FileTime::from_unix_time(12, 0));
        assert_eq!(parse_pax_time(b"12.000000001").unwrap(), FileTime::from_unix_time(12, 1));
        assert_eq!(parse_pax_time(b"-1.25").unwrap(), FileTime::from_unix_time(-2, 750_000_000));
        assert!(parse_pax_time(b"1.x").is_err());
        assert!(parse_pax_time(b"").is_err());
    }
}
