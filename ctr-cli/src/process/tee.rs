//! The log of a foreground container (`ctr run` without -d): its stdout
//! and stderr come through pipes, and a thread copies them to ours and to
//! its json-file log, so that `ctr logs` works for every container, as
//! docker's does. (Without a terminal, docker gives a container pipes too.)

use crate::error::{IoContext, IoError};
use crate::logs::{LogOptions, LogWriter, Stream};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why a foreground container's output could not be logged.
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    #[error("the log thread panicked")]
    Panicked,
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = TeeError> = std::result::Result<T, E>;

/// The copying thread; [`Tee::finish`] once the container has exited.
pub struct Tee {
    exited: Arc<AtomicBool>,
    thread: JoinHandle<Result<()>>,
}

/// Starts the copy; returns the write ends for the container's stdout and
/// stderr. Both go to the log; to ours only those `shown` (`-a`).
pub fn start(log: &Path, options: LogOptions, shown: crate::run_options::Streams) -> Result<(Tee, Stdio, Stdio)> {
    let mut writer = LogWriter::open(log, options)?;
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).io_context("pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).io_context("pipe")?;
    let exited = Arc::new(AtomicBool::new(false));
    let seen = exited.clone();
    let thread = std::thread::spawn(move || {
        copy(&mut writer, vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)], &seen, shown)
    });
    Ok((Tee { exited, thread }, Stdio::from(out_w), Stdio::from(err_w)))
}

impl Tee {
    /// Waits for the output still in flight (every writer gone, or at most
    /// two seconds after the exit: a process that escaped with a copy).
    pub fn finish(self) -> Result<()> {
        self.exited.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| TeeError::Panicked)?
    }
}

fn copy(
    log: &mut LogWriter,
    mut streams: Vec<(OwnedFd, Stream)>,
    exited: &AtomicBool,
    shown: crate::run_options::Streams,
) -> Result<()> {
    let mut buf = [0u8; 8192];
    let mut exited_at: Option<Instant> = None;
    while !streams.is_empty() {
        if exited_at.is_none() && exited.load(Ordering::Relaxed) {
            exited_at = Some(Instant::now());
        }
        if exited_at.is_some_and(|at| at.elapsed() > Duration::from_secs(2)) {
            break;
        }
        let mut fds: Vec<PollFd> = streams.iter().map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Err(nix::errno::Errno::EINTR) | Ok(0) => continue,
            Err(e) => return Err(IoError::new("poll the container's output", e).into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut closed = Vec::new();
        for (i, (fd, stream)) in streams.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    // Ours first: a full disk must not silence the terminal.
                    let _ = match stream {
                        Stream::Stdout if shown.stdout => std::io::stdout().lock().write_all(&buf[..n]),
                        Stream::Stderr if shown.stderr => std::io::stderr().lock().write_all(&buf[..n]),
                        _ => Ok(()),
                    };
                    log.write(*stream, &buf[..n]).io_context("write the log")?;
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
    }
    Ok(log.finish().io_context("write the log")?)
}
