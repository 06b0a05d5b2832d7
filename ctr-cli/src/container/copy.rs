//! `cp`: files between a container and the host, both ways. A stopped
//! container's files are reached through its overlay, mounted in a user
//! and mount namespace of ctr's own (`image::layer_work`'s `cp-out` and
//! `cp-in`, under the container's lock); a running one's as follows.
//!
//! The container's side is handled by a re-exec of ctr, `ctr internal-cp
//! out|in|in-keep PID START PATH` (dispatched before argument parsing,
//! absent from `--help`, like `internal-userns`). It checks that PID is
//! still the container's init (its start time), joins the container's user
//! namespace through a pidfd (we own it, so no privilege is needed; a fresh
//! process is single-threaded, as setns to a user namespace requires),
//! where it may read and write files of every id the container maps, as
//! the container's root. It opens the container's root directory through
//! `/proc/PID/root`, checks the start time again (the pid was not reused
//! meanwhile), and from then on resolves nothing but beneath that
//! descriptor ([`super::tree`]): symlinks of the container resolve inside
//! it, never on the host. A tar stream goes between the two processes on a
//! pipe; the host side is the caller's own, written and read as the caller.

use super::record::Container;
use super::tree::{self, Copied, ExtractOptions, Owners, Scope, TreeError};
use crate::error::{IoContext, IoError};
use crate::image::userns::IdMaps;
use crate::paths::Paths;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `ctr internal-cp ...`: kept off the argument parser and out of `--help`.
pub const SUBCOMMAND: &str = "internal-cp";

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Record(#[from] super::RecordError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(transparent)]
    Layer(#[from] super::layer::LayerError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// A request ctr cannot carry out as given; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The process working in the container failed; its own words.
    #[error("{0}")]
    Container(String),
}

type Result<T, E = CopyError> = std::result::Result<T, E>;

/// One end of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on the host.
    Host(PathBuf),
    /// `-`: a tar stream on stdin (the source) or stdout (the destination).
    Stream,
    /// `CONTAINER:PATH` (a relative PATH is taken from the container's `/`).
    Container { container: String, path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct CopyRequest {
    pub source: Location,
    pub destination: Location,
    /// `-a`: the copies keep the uid and gid of their source (default:
    /// they belong to whoever writes them, the container's root or you).
    pub archive: bool,
    /// `-L`: a symlink at SRC is followed (inside the container's root for
    /// a container's path).
    pub follow_link: bool,
}

/// Copies as asked; returns what was copied.
pub fn copy(paths: &Paths, request: &CopyRequest) -> Result<Copied> {
    use Location::{Container as In, Host, Stream};
    match (&request.source, &request.destination) {
        // Docker refuses it too, in the same words.
        (In { .. }, In { .. }) => Err(CopyError::Invalid(
            "copying between containers is not supported: copy to the host, then into the other container".into(),
        )),
        (Host(_) | Stream, Host(_) | Stream) => {
            Err(CopyError::Invalid("one of SRC and DEST must be CONTAINER:PATH (a container's name or id)".into()))
        }
        (In { container, path }, destination) => copy_out(paths, container, path, destination, request.follow_link),
        (source, In { container, path }) => copy_in(paths, source, container, path, request),
    }
}

fn copy_out(paths: &Paths, key: &str, path: &Path, destination: &Location, follow: bool) -> Result<Copied> {
    let target = match destination {
        Location::Host(dest) => Some(tree::destination(Scope::Host, dest)?),
        _ => None,
    };
    if let Some((_lock, upper, lowers, maps)) = stopped(paths, key)? {
        let tmp = super::layer::scratch(paths)?;
        let mut args = vec![tmp.path().to_owned(), path.to_owned()];
        args.extend(lowers);
        let op = if follow { "cp-out-follow" } else { "cp-out" };
        crate::image::userns::container_layer(&maps, op, &upper, &args)?;
        let tar = tmp.path().join("copy.tar");
        let file = std::fs::File::open(&tar).with_io_context(|| format!("cannot open {}", tar.display()))?;
        let options = ExtractOptions { owners: Owners::Writer, owner_can_write: true };
        return Ok(match &target {
            Some((dir, rename)) => tree::extract(file, dir, rename.as_deref(), options)?,
            None => pass_through(file, io::stdout().lock())?,
        });
    }
    let mut child = start(paths, key, if follow { "out-follow" } else { "out" }, path)?;
    let stdout = child.process.stdout.take().expect("piped");
    let copied = match &target {
        Some((dir, rename)) => {
            let options = ExtractOptions { owners: Owners::Writer, owner_can_write: true };
            tree::extract(stdout, dir, rename.as_deref(), options)
        }
        None => pass_through(stdout, io::stdout().lock()),
    };
    child.finish(copied)
}

fn copy_in(paths: &Paths, source: &Location, key: &str, path: &Path, request: &CopyRequest) -> Result<Copied> {
    let keep_owners = request.archive;
    let host = match source {
        Location::Host(src) => Some(tree::open_source(Scope::Host, src, request.follow_link)?),
        _ => None,
    };
    if let Some((_lock, upper, lowers, maps)) = stopped(paths, key)? {
        let tmp = super::layer::scratch(paths)?;
        let tar = tmp.path().join("copy.tar");
        let file = std::fs::File::create(&tar).with_io_context(|| format!("cannot create {}", tar.display()))?;
        let mut copied = match &host {
            Some(source) => tree::archive_source(source, io::BufWriter::new(file))?,
            None => pass_through(io::stdin().lock(), io::BufWriter::new(file))?,
        };
        let work = upper.with_file_name("work");
        let mut args = vec![work, tmp.path().to_owned(), path.to_owned()];
        args.extend(lowers);
        let op = if keep_owners { "cp-in-keep" } else { "cp-in" };
        let answer = crate::image::userns::container_layer(&maps, op, &upper, &args)?;
        let inside: Copied = serde_json::from_value(answer).map_err(|e| CopyError::Container(e.to_string()))?;
        copied.entries = inside.entries;
        return Ok(copied);
    }
    let mut child = start(paths, key, if keep_owners { "in-keep" } else { "in" }, path)?;
    let stdin = child.process.stdin.take().expect("piped");
    let copied = match &host {
        Some(source) => tree::archive_source(source, stdin),
        None => pass_through(io::stdin().lock(), stdin),
    };
    child.finish(copied)
}

fn pass_through(mut from: impl Read, mut to: impl Write) -> Result<Copied, TreeError> {
    let bytes = io::copy(&mut from, &mut to).io_context("cannot pass the tar stream on")?;
    to.flush().io_context("cannot pass the tar stream on")?;
    Ok(Copied { bytes, entries: 0 })
}

/// A stopped container's lock (held so that no start mounts its layer
/// meanwhile), writable layer and image layers; None if it runs.
type Stopped = (crate::lock::ContainerLock, PathBuf, Vec<PathBuf>, IdMaps);

fn stopped(paths: &Paths, key: &str) -> Result<Option<Stopped>> {
    let (container, state) = Container::locate(paths, key)?;
    if state.is_up() {
        return Ok(None);
    }
    let (lock, state) = container.lock(key)?;
    if state.is_up() {
        return Ok(None);
    }
    let (upper, lowers, maps) = super::layer::layers_of(paths, key)?;
    Ok(Some((lock, upper, lowers, maps)))
}

/// The process working in the container, and what it says on stderr.
struct Worker {
    process: Child,
    stderr: std::thread::JoinHandle<String>,
}

fn start(paths: &Paths, key: &str, op: &str, path: &Path) -> Result<Worker> {
    let (_, state) = Container::locate(paths, key)?;
    let init = state.init.as_ref().filter(|_| state.is_up()).ok_or_else(|| CopyError::NotRunning(key.to_owned()))?;
    let mut process = Command::new("/proc/self/exe")
        .arg(SUBCOMMAND)
        .arg(op)
        .arg(init.pid.to_string())
        .arg(init.start_time.to_string())
        .arg(path)
        .stdin(if op.starts_with("out") { Stdio::null() } else { Stdio::piped() })
        .stdout(if op.starts_with("out") { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()
        .io_context("cannot start ctr again (/proc/self/exe) to work in the container")?;
    let mut stderr = process.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Ok(Worker { process, stderr })
}

impl Worker {
    /// Waits for the worker; its failure says more than ours (a stream cut
    /// short because it stopped), so it comes first.
    fn finish(mut self, ours: Result<Copied, TreeError>) -> Result<Copied> {
        drop(self.process.stdin.take());
        drop(self.process.stdout.take());
        let status = self.process.wait().io_context("cannot wait for the copying process")?;
        let said = self.stderr.join().unwrap_or_default();
        // Warnings (skipped devices) pass on; the last line is the error.
        let mut lines: Vec<&str> = said.lines().collect();
        let error = if status.success() { None } else { lines.pop() };
        for line in lines {
            eprintln!("{line}");
        }
        match error {
            Some(why) => Err(CopyError::Container(why.to_owned())),
            None if !status.success() => Err(CopyError::Container(format!("the copying process ended with {status}"))),
            None => Ok(ours?),
        }
    }
}

/// `ctr internal-cp OP PID START PATH`, before anything else in `main`.
/// Never returns.
pub fn child_main() -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    let code = match child(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", crate::error::chain(&e));
            1
        }
    };
    std::process::exit(code)
}

fn child(args: &[OsString]) -> Result<()> {
    let usage = || {
        CopyError::Invalid(format!(
            "usage: ctr {SUBCOMMAND} out|out-follow|in|in-keep PID START PATH (internal to ctr)"
        ))
    };
    let [op, pid, start, path] = args else { return Err(usage()) };
    let number = |s: &OsStr| std::str::from_utf8(s.as_bytes()).ok().and_then(|s| s.parse::<u64>().ok());
    let (pid, start) = (number(pid).ok_or_else(usage)?, number(start).ok_or_else(usage)?);
    let pid = i32::try_from(pid).map_err(|_| usage())?;
    let path = Path::new(path);
    let gone = || CopyError::Container(format!("the container stopped (its init, pid {pid}, is gone)"));
    let is_init = || crate::process::liveness::start_time(pid) == Some(start);
    let pidfd = crate::sys::pidfd::open(pid).map_err(|_| gone())?;
    if !is_init() {
        return Err(gone());
    }
    nix::sched::setns(&pidfd, nix::sched::CloneFlags::CLONE_NEWUSER)
        .io_context("cannot join the container's user namespace")?;
    let root = Scope::Host
        .open(Path::new(&format!("/proc/{pid}/root")), nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY)
        .io_context("cannot open the container's root directory")?;
    // The pid could have been reused between the pidfd and the open.
    if !is_init() {
        return Err(gone());
    }
    let scope = Scope::InRoot(root.as_fd());
    match op.as_bytes() {
        b"out" | b"out-follow" => {
            let source = tree::open_source(scope, path, op == "out-follow")?;
            tree::archive_source(&source, io::stdout().lock())?;
        }
        b"in" | b"in-keep" => {
            let (dir, rename) = tree::destination(scope, path)?;
            let owners = if op == "in-keep" { Owners::Archive } else { Owners::Writer };
            let options = ExtractOptions { owners, owner_can_write: false };
            tree::extract(io::stdin().lock(), &dir, rename.as_deref(), options)?;
        }
        _ => return Err(usage()),
    }
    Ok(())
}
