//! Layers that keep their files' owners, for a caller who is not root.
//!
//! A container sees host ids through its id maps (`crate::idmap::id_maps`):
//! container root is the caller, and ids from 1 up are the caller's ranges
//! in /etc/subuid and /etc/subgid. To give a layer's files the owners the
//! image says, ctr unpacks it as podman does: in a re-exec of itself,
//! `ctr internal-userns unpack MODE PATH`, inside a new user namespace with
//! those same maps, written by shadow's setuid `newuidmap` and `newgidmap`
//! (which allow exactly the caller's own id and its subordinate ranges).
//! There, chown to a mapped id is allowed, and the unpacking is the usual one
//! ([`super::unpack`], every hostile-archive rule included). Such files can
//! then be deleted only from a namespace with the same maps, which
//! `ctr internal-userns remove PATH` does.
//!
//! The handshake: the child checks its path, calls unshare(CLONE_NEWUSER)
//! itself (a fresh process has a single thread, and unshare gives it every
//! capability in the new namespace, which an exec after it would drop),
//! writes `U` on its stdout and waits for `G` on its stdin, which the parent
//! sends once newuidmap and newgidmap have written its maps. It checks its
//! maps and capabilities and writes `R`; only then does it work (for
//! `unpack`, the tar stream follows on stdin), and it ends with one JSON line
//! on stdout, `{"Ok": ...}` or `{"Err": "why"}`, exiting 0 or 1. Warnings go
//! to the stderr it shares with the parent. A failure before `R` leaves the
//! layer untouched and unread, so the caller can unpack it without owners
//! instead (with one warning): a host where unprivileged user namespaces
//! are restricted still imports images.
//!
//! The child acts only beneath `<store>/layers/.tmp-*`, in the store of the
//! user it runs as: unpacking into `.tmp-*/rootfs`, removing `.tmp-*`
//! (a layer is renamed to such a name before it is removed).
//!
//! Without subordinate ranges, or without newuidmap and newgidmap, layers are
//! unpacked as before, every file the caller's ([`Owners::Caller`]); root
//! needs no namespace and chowns directly, through its own maps
//! ([`Owners::Direct`]).

use super::unpack::{self, Mode, OwnerMaps, Unpacked};
use super::{ImageContext, ImageError, Result};
use ctr_core::idmap::IdMapEntry;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

/// `ctr internal-userns ...`: kept off the argument parser and out of `--help`.
pub const SUBCOMMAND: &str = "internal-userns";
pub const NEWUIDMAP: &str = "/usr/bin/newuidmap";
pub const NEWGIDMAP: &str = "/usr/bin/newgidmap";

/// A container's id maps: what `ctr run` asks the helper for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<IdMapEntry>,
    pub gid: Vec<IdMapEntry>,
}

impl IdMaps {
    /// The maps a container of the caller gets now (from /etc/subuid and
    /// /etc/subgid, by the rule `ctr run` uses).
    pub fn current() -> IdMaps {
        let (uid, gid) = crate::idmap::id_maps();
        IdMaps { uid, gid }
    }

    /// The maps of a `--userns keep-id` container ([`crate::idmap::keep_id_map`]);
    /// None without enough subordinate ids.
    pub fn keep_id() -> Option<IdMaps> {
        crate::idmap::keep_id_maps().map(|(uid, gid)| IdMaps { uid, gid })
    }

    /// A container's maps: keep-id's or the default ones.
    pub fn of_container(keep_id: bool) -> Result<IdMaps> {
        if !keep_id {
            return Ok(IdMaps::current());
        }
        IdMaps::keep_id().ok_or_else(|| ImageError::Invalid(KEEP_ID_RANGES.to_owned()))
    }

    /// Whether they hold more than the caller's own ids.
    pub fn has_subordinate_ids(&self) -> bool {
        self.uid.len() > 1 || self.gid.len() > 1
    }
}

impl fmt::Display for IdMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |map: &[IdMapEntry]| {
            map.iter().map(|e| format!("{}:{}:{}", e.inside(), e.outside(), e.count())).collect::<Vec<_>>().join(" ")
        };
        write!(f, "uids {}, gids {}", show(&self.uid), show(&self.gid))
    }
}

/// How the files of an unpacked layer get their owners.
#[derive(Clone, Debug)]
pub enum Owners {
    /// Every file belongs to the caller (root in the container); `why`
    /// says why the image's owners are not kept.
    Caller { maps: IdMaps, why: &'static str },
    /// Root: chown directly, to the host ids the maps give.
    Direct(IdMaps),
    /// A child of ctr in a user namespace with the maps chowns.
    UserNamespace(IdMaps),
}

/// Why `--userns keep-id` is refused for want of subordinate ids.
pub const KEEP_ID_RANGES: &str = "--userns keep-id needs subordinate ids (/etc/subuid and /etc/subgid) that reach \
your own uid and gid: container ids below yours take subordinate ids; ask for a larger range (usermod --add-subuids, \
--add-subgids)";
const NO_RANGES: &str = "you have no subordinate ids in /etc/subuid and /etc/subgid";
pub const NO_TOOLS_WHY: &str = "/usr/bin/newuidmap or /usr/bin/newgidmap is missing (Debian package uidmap)";
const NO_USERNS: &str =
    "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone or user.max_user_namespaces)";

/// Why a user namespace could not be had in this process, once it failed:
/// later layers do not try again, and the warning is given once.
static UNAVAILABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether an earlier layer found user namespaces unusable here.
pub fn unavailable() -> bool {
    UNAVAILABLE.get().is_some()
}

/// Notes (and says, once) that layers are unpacked with every file the
/// caller's from now on, because `why`.
pub fn mark_unavailable(why: &ImageError) {
    let mut first = false;
    UNAVAILABLE.get_or_init(|| {
        first = true;
        crate::error::chain(&why)
    });
    if first {
        eprintln!(
            "warning: cannot keep the image's file owners ({}); unpacking with every file yours (root in the container)",
            crate::error::chain(why)
        );
    }
}

/// Why [`unpack`] failed.
pub enum UnpackError {
    /// The user namespace could not be set up; nothing of the layer was
    /// read or written, so it can be unpacked another way.
    Unavailable(ImageError),
    Failed(ImageError),
}

impl Owners {
    /// What this caller can do on this host.
    pub fn detect() -> Owners {
        let maps = IdMaps::current();
        let sysctl = |name: &str| std::fs::read_to_string(format!("/proc/sys/{name}")).ok();
        if !maps.has_subordinate_ids() {
            // Containers map only the caller's own id: every file is theirs.
            Owners::Caller { maps, why: NO_RANGES }
        } else if nix::unistd::getuid().is_root() {
            Owners::Direct(maps)
        } else if !(Path::new(NEWUIDMAP).is_file() && Path::new(NEWGIDMAP).is_file()) {
            Owners::Caller { maps, why: NO_TOOLS_WHY }
        } else if sysctl("kernel/unprivileged_userns_clone").is_some_and(|v| v.trim() == "0")
            || sysctl("user/max_user_namespaces").is_some_and(|v| v.trim() == "0")
        {
            Owners::Caller { maps, why: NO_USERNS }
        } else {
            Owners::UserNamespace(maps)
        }
    }

    /// Every file the caller's, whatever the image says (as in tests).
    pub fn caller_only() -> Owners {
        Owners::Caller { maps: IdMaps::current(), why: "the store was opened without them" }
    }

    /// The maps of the containers the layers are unpacked for.
    pub fn maps(&self) -> &IdMaps {
        match self {
            Owners::Caller { maps, .. } | Owners::Direct(maps) | Owners::UserNamespace(maps) => maps,
        }
    }

    /// What unpacking in this process applies (None: nothing, or it is
    /// done in a user namespace instead).
    pub fn in_process(&self) -> Option<OwnerMaps> {
        match self {
            Owners::Direct(maps) => Some(OwnerMaps::from_host(maps.uid.clone(), maps.gid.clone())),
            _ => None,
        }
    }

    /// One line for `ctr info`.
    pub fn summary(&self) -> String {
        match self {
            Owners::Caller { why, .. } => {
                format!("not kept: every file of an image belongs to you (root in the container), because {why}")
            }
            Owners::Direct(_) => "kept: root gives layer files their owners through the maps above".into(),
            Owners::UserNamespace(_) => {
                "kept: layers are unpacked in a user namespace with the maps above (newuidmap, newgidmap)".into()
            }
        }
    }
}

/// Unpacks the tar stream `tar` into `rootfs` (`<store>/layers/.tmp-*/rootfs`,
/// not existing yet) in a user namespace with `maps`, keeping owners. All of
/// `tar` is read, so that a digest over it covers its padding. On failure
/// the child has removed what it unpacked.
pub fn unpack(maps: &IdMaps, tar: &mut impl Read, rootfs: &Path, mode: Mode) -> Result<Unpacked, UnpackError> {
    let mode_arg = match mode {
        Mode::Rootfs => "rootfs",
        Mode::Layer => "layer",
    };
    let mut child = Namespaced::start(maps, &["unpack", mode_arg], rootfs).map_err(UnpackError::Unavailable)?;
    let mut stdin = child.stdin.take().expect("the child's stdin is piped");
    let copied = copy_all(tar, &mut stdin);
    drop(stdin);
    let result = child.finish::<Unpacked>();
    streamed(copied, result).map_err(UnpackError::Failed)
}

/// What an unpacking came to, from the copy to the child and its answer.
fn streamed(copied: io::Result<()>, result: Result<Unpacked>) -> Result<Unpacked> {
    match copied {
        Ok(()) => result,
        // The child stopped reading: it says why.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => match result {
            Err(child_error) => Err(child_error),
            Ok(_) => Err(refused!("the unpacking process stopped reading the layer before its end")),
        },
        // Reading the archive failed (a limit, a bad compression): that is
        // the reason, whatever the child made of the cut stream.
        Err(e) => Err(ImageError::from(e).context("cannot read the layer archive".to_owned())),
    }
}

/// Removes `path` (`<store>/layers/.tmp-*`) in a user namespace with `maps`.
pub fn remove(maps: &IdMaps, path: &Path) -> Result<()> {
    let mut child = Namespaced::start(maps, &["remove"], path)?;
    drop(child.stdin.take());
    child.finish::<()>()
}

fn copy_all(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// A running `ctr internal-userns` child, maps written, released.
struct Namespaced {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// What the child wrote before its handshake byte was expected, if it
    /// answered at once (a refusal before unsharing).
    early: Vec<u8>,
}

impl Namespaced {
    fn start(maps: &IdMaps, args: &[&str], path: &Path) -> Result<Namespaced> {
        let mut child = Command::new("/proc/self/exe")
            .arg(SUBCOMMAND)
            .args(args)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start ctr again (/proc/self/exe) to work in a user namespace")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("the child's stdout is piped"));
        let namespaced = Namespaced { child, stdin, stdout, early: Vec::new() }.expect(b'U')?;
        let pid = namespaced.child.id().to_string();
        for (tool, map) in [(NEWUIDMAP, &maps.uid), (NEWGIDMAP, &maps.gid)] {
            if let Err(e) = write_map(tool, &pid, map) {
                namespaced.abandon();
                return Err(e);
            }
        }
        let mut namespaced = namespaced;
        let released = namespaced.stdin.as_mut().expect("stdin is piped").write_all(b"G");
        if let Err(e) = released {
            namespaced.abandon();
            return Err(e).context("cannot release the user-namespace process of ctr");
        }
        // `R`: its maps are in place and it holds the capabilities it needs.
        namespaced.expect(b'R')
    }

    /// Reads the child's next handshake byte; anything else is its answer
    /// (a refusal, or it died), which says why.
    fn expect(mut self, expected: u8) -> Result<Namespaced> {
        let mut byte = [0u8; 1];
        match self.stdout.read_exact(&mut byte) {
            Ok(()) if byte[0] == expected => return Ok(self),
            Ok(()) => self.early.push(byte[0]),
            Err(_) => {}
        }
        match self.finish::<serde_json::Value>() {
            Err(e) => Err(e),
            Ok(_) => Err(refused!("the user-namespace process of ctr answered out of turn")),
        }
    }

    /// Kills and reaps the child (ours: started above, not yet waited for).
    fn abandon(mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child and reads its one-line answer.
    fn finish<T: DeserializeOwned>(mut self) -> Result<T> {
        drop(self.stdin.take());
        let mut out = std::mem::take(&mut self.early);
        let read = self.stdout.read_to_end(&mut out);
        let status = self.child.wait().context("cannot wait for the user-namespace process of ctr")?;
        read.context("cannot read the answer of the user-namespace process of ctr")?;
        let line = String::from_utf8_lossy(&out);
        let line = line.trim();
        match serde_json::from_str::<std::result::Result<T, String>>(line) {
            Ok(Ok(value)) if status.success() => Ok(value),
            Ok(Err(why)) => Err(ImageError::Invalid(why)),
            _ => Err(ended_badly(status, line)),
        }
    }
}

fn ended_badly(status: ExitStatus, output: &str) -> ImageError {
    let said = if output.is_empty() { String::new() } else { format!(" (it wrote {output:?})") };
    refused!("the user-namespace process of ctr ended with {status} without an answer{said}")
}

/// Runs `newuidmap PID inside outside count ...` (or newgidmap).
fn write_map(tool: &str, pid: &str, map: &[IdMapEntry]) -> Result<()> {
    let mut command = Command::new(tool);
    command.arg(pid);
    for e in map {
        command.args([e.inside().to_string(), e.outside().to_string(), e.count().to_string()]);
    }
    let out = command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {tool}"))?;
    if !out.status.success() {
        let mut lines = vec![tool.to_owned(), pid.to_owned()];
        lines.extend(map.iter().map(|e| format!("{} {} {}", e.inside(), e.outside(), e.count())));
        refuse!(
            "`{}` failed ({}): {}; the container id maps must be your own id and your ranges in /etc/subuid and /etc/subgid",
            lines.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `ctr internal-userns OP ARGS... PATH`, before anything else in `main`
/// (so that the process is still single-threaded for unshare). Never returns.
pub fn child_main() -> ! {
    // Dies with the ctr that started it: a work directory is removed as
    // stale once that ctr is gone ([`crate::container::layer`]), so nothing
    // may still write there. (The spawning thread waits for this process.)
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let args: Vec<PathBuf> = std::env::args_os().skip(2).map(PathBuf::from).collect();
    let mut stdout = io::stdout().lock();
    let result = child(&args, &mut stdout);
    let code = i32::from(result.is_err());
    let answer = match result {
        Ok(value) => serde_json::json!({ "Ok": value }),
        Err(e) => serde_json::json!({ "Err": crate::error::chain(&e) }),
    };
    let _ = writeln!(stdout, "{answer}");
    let _ = stdout.flush();
    std::process::exit(code)
}

fn child(args: &[PathBuf], stdout: &mut impl Write) -> Result<serde_json::Value> {
    let arg = |i: usize| args.get(i).and_then(|a| a.to_str());
    if let Some(op) = arg(0).filter(|op| super::layer_work::OPS.contains(op)) {
        super::layer_work::check(op, &args[1..])?;
        enter(stdout)?;
        return super::layer_work::run(op, &args[1..]);
    }
    let (op, path) = match (arg(0), args.len()) {
        (Some("unpack"), 3) => ("unpack", &args[2]),
        (Some("remove"), 2) => ("remove", &args[1]),
        _ => refuse!("usage: ctr {SUBCOMMAND} unpack rootfs|layer PATH | remove PATH (internal to ctr)"),
    };
    let mode = match (op, arg(1)) {
        ("remove", _) => None,
        (_, Some("rootfs")) => Some(Mode::Rootfs),
        (_, Some("layer")) => Some(Mode::Layer),
        _ => refuse!("unknown unpack mode {:?}", args[1]),
    };
    let layers = store_layers_dir()?;
    match mode {
        Some(_) => check_unpack_target(&layers, path)?,
        None => check_removable(&layers, path)?,
    }
    let (uid_map, gid_map) = enter(stdout)?;
    let mut stdin = io::stdin().lock();
    match mode {
        Some(mode) => {
            let owners = OwnerMaps::inside(uid_map, gid_map);
            let unpacked =
                unpack::unpack_with_owners(&mut stdin, path, &unpack::Limits::default(), mode, Some(&owners));
            let unpacked = match unpacked {
                Ok(unpacked) => unpacked,
                Err(e) => {
                    // Only a process with these maps can delete what it made.
                    let _ = std::fs::remove_dir_all(path);
                    return Err(e);
                }
            };
            // The rest of the stream (the padding after the end marker).
            io::copy(&mut stdin, &mut io::sink()).context("cannot read the end of the archive")?;
            Ok(serde_json::to_value(unpacked)?)
        }
        None => {
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => {}
            }
            Ok(serde_json::Value::Null)
        }
    }
}

/// The handshake (module docs): a new user namespace, its maps written by
/// the parent; returns them.
fn enter(stdout: &mut impl Write) -> Result<(Vec<IdMapEntry>, Vec<IdMapEntry>)> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).context(
        "cannot create a user namespace (unshare(CLONE_NEWUSER)); are unprivileged user namespaces disabled?",
    )?;
    stdout.write_all(b"U").and_then(|()| stdout.flush()).context("cannot reach ctr")?;
    let mut go = [0u8; 1];
    if io::stdin().lock().read_exact(&mut go).is_err() || go[0] != b'G' {
        refuse!("ctr did not write this process's id maps");
    }
    let (uid_map, gid_map) = (read_own_map("uid_map")?, read_own_map("gid_map")?);
    // Under keep-id's maps the caller is not root here: become it, so that
    // what is made without an owner of its own (a directory the archive
    // does not list) is container root's, as under the default maps.
    if !nix::unistd::getuid().is_root() {
        let (root_uid, root_gid) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        nix::unistd::setresgid(root_gid, root_gid, root_gid).context("cannot become root in the user namespace")?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid).context("cannot become root in the user namespace")?;
    }
    check_capabilities()?;
    stdout.write_all(b"R").and_then(|()| stdout.flush()).context("cannot reach ctr")?;
    Ok((uid_map, gid_map))
}

/// A container's writable layer `upper`, read in a user namespace with
/// `maps` ([`super::layer_work`]): `op` is `layer`, `diff` or `export`,
/// `args` the rest (OUT, LOWER...). Returns the child's answer.
pub fn container_layer(maps: &IdMaps, op: &str, upper: &Path, args: &[PathBuf]) -> Result<serde_json::Value> {
    let (last, middle) = match args.split_last() {
        Some((last, middle)) => (last.as_path(), middle),
        None => (upper, &args[..0]),
    };
    let mut all = vec![op];
    for path in (!args.is_empty()).then_some(upper).into_iter().chain(middle.iter().map(PathBuf::as_path)) {
        all.push(path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))?);
    }
    let mut child = Namespaced::start(maps, &all, last)?;
    drop(child.stdin.take());
    child.finish::<serde_json::Value>()
}

/// `<store>/layers` of the user this runs as, resolved.
fn store_layers_dir() -> Result<PathBuf> {
    let paths = crate::paths::Paths::discover()?;
    let layers = paths.storage.join("layers");
    std::fs::canonicalize(&layers).with_context(|| format!("cannot find the image store's {}", layers.display()))
}

fn is_temporary(name: Option<&std::ffi::OsStr>) -> bool {
    name.is_some_and(|n| n.as_encoded_bytes().starts_with(super::TMP_PREFIX.as_bytes()))
}

/// `path` must be `<layers>/.tmp-*/rootfs`, the `.tmp-*` a real directory.
fn check_unpack_target(layers: &Path, path: &Path) -> Result<()> {
    let refuse = || {
        refused!(
            "refusing to unpack into {}: not a new layer of your image store ({})",
            path.display(),
            layers.display()
        )
    };
    let scratch = path.parent().ok_or_else(refuse)?;
    if path.file_name() != Some("rootfs".as_ref()) || !is_temporary(scratch.file_name()) {
        return Err(refuse());
    }
    let scratch = std::fs::canonicalize(scratch).map_err(|_| refuse())?;
    if scratch.parent() != Some(layers) || !is_temporary(scratch.file_name()) {
        return Err(refuse());
    }
    Ok(())
}

/// `path` must be `<layers>/.tmp-*` (itself not resolved: removing a
/// symlink removes the link).
fn check_removable(layers: &Path, path: &Path) -> Result<()> {
    let refuse = || {
        refused!(
            "refusing to remove {}: only temporaries of your image store ({}/.tmp-*) are removed this way",
            path.display(),
            layers.display()
        )
    };
    let parent = path.parent().ok_or_else(refuse)?;
    if !is_temporary(path.file_name()) || std::fs::canonicalize(parent).ok().as_deref() != Some(layers) {
        return Err(refuse());
    }
    Ok(())
}

/// What the work needs in the namespace: chown, and reaching and changing
/// files of any mapped owner. unshare gave them all, unless a security
/// module took them (Ubuntu's AppArmor restriction of user namespaces).
fn check_capabilities() -> Result<()> {
    const NEEDED: [(u32, &str); 4] = [(0, "CAP_CHOWN"), (1, "CAP_DAC_OVERRIDE"), (3, "CAP_FOWNER"), (4, "CAP_FSETID")];
    let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .context("no CapEff line in /proc/self/status")?;
    let missing: Vec<&str> =
        NEEDED.iter().filter(|(bit, _)| effective & (1 << bit) == 0).map(|(_, name)| *name).collect();
    if !missing.is_empty() {
        refuse!(
            "the new user namespace gives no {} (a security module such as AppArmor restricts user namespaces)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// This process's uid_map or gid_map, as newuidmap/newgidmap wrote it.
fn read_own_map(file: &str) -> Result<Vec<IdMapEntry>> {
    let path = format!("/proc/self/{file}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let map = parse_proc_map(&text).with_context(|| format!("unexpected {path}: {text:?}"))?;
    if map.is_empty() {
        refuse!("{path} is empty: the id map was not written");
    }
    Ok(map)
}

fn parse_proc_map(text: &str) -> Result<Vec<IdMapEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<u32> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
            match fields[..] {
                [inside, outside, count] => Ok(IdMapEntry::new(inside, outside, count)?),
                _ => refuse!("{line:?} is not INSIDE OUTSIDE COUNT"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_maps() {
        let map = parse_proc_map("         0       1000          1\n         1     100000      65536\n").unwrap();
        assert_eq!(map, [IdMapEntry::new(0, 1000, 1).unwrap(), IdMapEntry::new(1, 100000, 65536).unwrap()]);
        assert!(parse_proc_map("0 1000\n").is_err());
    }

    #[test]
    fn only_temporaries_beneath_the_layers_dir_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        std::fs::create_dir_all(layers.join(".tmp-abc")).unwrap();
        std::fs::create_dir_all(layers.join("0123")).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere/.tmp-x")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere/.tmp-x"), layers.join(".tmp-link")).unwrap();
        let layers = std::fs::canonicalize(&layers).unwrap();
        assert!(check_unpack_target(&layers, &layers.join(".tmp-abc/rootfs")).is_ok());
        assert!(check_unpack_target(&layers, &layers.join(".tmp-abc/other")).is_err());
        assert!(check_unpack_target(&layers, &layers.join("0123/rootfs")).is_err());
        assert!(check_unpack_target(&layers, &layers.join(".tmp-link/rootfs")).is_err(), "not through a symlink");
        assert!(check_unpack_target(&layers, &dir.path().join("elsewhere/.tmp-x/rootfs")).is_err());
        assert!(check_unpack_target(&layers, Path::new("/")).is_err());
        assert!(check_removable(&layers, &layers.join(".tmp-abc")).is_ok());
        assert!(check_removable(&layers, &layers.join(".tmp-link")).is_ok(), "removes the link itself");
        assert!(check_removable(&layers, &layers.join("0123")).is_err());
        assert!(check_removable(&layers, &layers.join(".tmp-abc/rootfs")).is_err());
        assert!(check_removable(&layers, &dir.path().join("elsewhere/.tmp-x")).is_err());
        assert!(check_removable(&layers, &layers.join("..")).is_err());
        assert!(check_removable(&layers, Path::new("/")).is_err());
    }

    #[test]
    fn maps_show_as_triples() {
        let maps =
            IdMaps { uid: vec![IdMapEntry::new(0, 1000, 1).unwrap()], gid: vec![IdMapEntry::new(0, 1000, 1).unwrap()] };
        assert_eq!(maps.to_string(), "uids 0:1000:1, gids 0:1000:1");
        assert!(!maps.has_subordinate_ids());
    }
}
