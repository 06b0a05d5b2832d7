//! The monitor of a detached container (`ctr run -d`): a small
//! unprivileged re-exec of `ctr` (`ctr monitor ID`, in its own session,
//! one per container, no daemon). It must be the one that asks the helper
//! for the container's first process: that process is re-parented to the
//! nearest child subreaper when the helper exits, and the monitor is it.
//! It then writes the container's stdout and stderr (or terminal) to the
//! json-file log and to `ctr attach` clients (whose input goes to the
//! container's stdin or terminal), waits for the container, records the
//! exit code, finish time and OOM kill, and asks the helper to remove the
//! cgroup. Then its restart policy ([`crate::process::restart_policy`])
//! decides: after the back-off it starts the container again (a new helper
//! `Spawn`, the same writable layer), or it exits.
//!
//! `ctr run -d` and `ctr start` talk to it over a socketpair on fd 3: the
//! container and its spec go in (JSON), "started" or the error comes back,
//! and they return. On fd 4 it gets the listening socket for `ctr attach`,
//! made by the starter (in the runtime directory), so that `start -a`
//! (and a foreground `run -it`) can connect before the container starts.
//! Attached clients speak [`attach_stream`]'s frames: their input and
//! terminal sizes in, the output and finally the exit code out. Its own
//! stdio is /dev/null.

use crate::container::record::RecordError;
use crate::container::record::{Container, State};
use crate::error::{IoContext, IoError};
use crate::helper_client::{Helper, ProcessStdio};
use crate::launch::LaunchError;
use crate::launch::{self, Launch};
use crate::lock::ContainerLock;
use crate::logs::{LogWriter, Stream};
use crate::paths::Paths;
use crate::process::attach_stream::{Decoder, Frame};
use crate::process::liveness::ProcessRef;
use crate::process::restart_policy::Backoff;
use crate::process::wait::InitReport;
use crate::sys::{self, memory::give_back_memory};
use ctr_core::ids::ContainerId;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHANNEL_FD: i32 = 3;
/// The listening socket of `ctr attach` (made by whoever starts us).
const ATTACH_FD: i32 = 4;

/// Why a detached container's monitor could not start it or see it through.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("the container's monitor died before starting it (see `ctr ps -a`)")]
    Died,
    #[error("bad request from ctr run -d")]
    BadRequest(#[source] serde_json::Error),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = MonitorError> = std::result::Result<T, E>;

#[derive(Serialize, Deserialize)]
struct Request {
    state_root: PathBuf,
    storage: PathBuf,
    prefix: PathBuf,
    state: State,
    launch: Launch,
    interactive: bool,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Started,
    Failed { exit_code: i32, message: String },
}

/// How the start of a detached container went.
#[derive(Debug, PartialEq, Eq)]
pub enum Detached {
    /// Its command runs.
    Started,
    /// It could not start: docker's status and why.
    Failed { exit_code: i32, message: String },
}

/// Where a container's monitor listens for `ctr attach`: live-process
/// state, so in the runtime directory. Named by 16 hex digits of the id,
/// not 64: a socket's path must fit in 108 bytes.
pub fn attach_socket(paths: &Paths, id: &ContainerId) -> PathBuf {
    paths.state.join("attach").join(&id.as_str()[..16])
}

/// Starts the monitor, hands it the container and returns once the
/// command runs or could not start. With `attach`, also a connection to
/// the monitor made before the container starts, so it misses no output.
pub fn start_detached(
    paths: &Paths,
    container: &Container,
    state: State,
    launch: Launch,
    interactive: bool,
    attach: bool,
) -> Result<(Detached, Option<UnixStream>)> {
    let socket = attach_socket(paths, &container.id);
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_io_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).with_io_context(|| format!("listen on {}", socket.display()))?;
    // Queued in the backlog until the monitor accepts it, before it starts
    // the container.
    let connection = attach.then(|| UnixStream::connect(&socket)).transpose().io_context("attach to the monitor")?;
    let (mut ours, theirs) = UnixStream::pair().io_context("socketpair for the monitor")?;
    let theirs_fd = theirs.as_raw_fd();
    let listener_fd = listener.as_raw_fd();
    let mut command = Command::new("/proc/self/exe");
    command.arg0("ctr").args(["monitor", container.id.as_str()]).current_dir("/");
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: runs in the forked child before exec and only makes
    // async-signal-safe system calls (dup, dup2, fcntl, setsid); no
    // allocation.
    unsafe {
        command.pre_exec(move || {
            // Out of the way of the dup2s below (fds 3 and 4 may be taken).
            let channel = nix::fcntl::fcntl(theirs_fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
            let listener = nix::fcntl::fcntl(listener_fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
            nix::unistd::dup2(channel, CHANNEL_FD)?;
            nix::unistd::dup2(listener, ATTACH_FD)?;
            // Its own session: no terminal, and the caller's Ctrl-C or
            // hangup never reaches it.
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    let child = command.spawn().io_context("start the container's monitor")?;
    drop(theirs);
    drop(listener);
    let request = Request {
        state_root: paths.state.clone(),
        storage: paths.storage.clone(),
        prefix: paths.prefix.clone(),
        state,
        launch,
        interactive,
    };
    // One write: serde_json writes a token at a time, and the seccomp
    // program alone is thousands of tokens (a system call each, unbuffered).
    serde_json::to_vec(&request)
        .map_err(std::io::Error::from)
        .and_then(|bytes| ours.write_all(&bytes))
        .and_then(|()| ours.shutdown(std::net::Shutdown::Write))
        .io_context("send the container to its monitor")?;
    let mut answer = Vec::new();
    ours.read_to_end(&mut answer).io_context("read the monitor's answer")?;
    // It carries on alone; whoever adopts it once we exit reaps it.
    drop(child);
    match serde_json::from_slice::<Reply>(&answer) {
        Ok(Reply::Started) => Ok((Detached::Started, connection)),
        // The connection still ends when the monitor is done (a `--rm`
        // container removed).
        Ok(Reply::Failed { exit_code, message }) => Ok((Detached::Failed { exit_code, message }, connection)),
        Err(_) => Err(MonitorError::Died),
    }
}

/// `ctr monitor ID` (hidden; started only by [`start_detached`]).
pub fn main() -> ! {
    // Fds 3 and 4 are the socket and the listener `start_detached` placed
    // there before exec.
    let (channel, listener) = (UnixStream::from(sys::adopt(CHANNEL_FD)), UnixListener::from(sys::adopt(ATTACH_FD)));
    let code = match monitor(channel, listener) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}

fn reply(channel: &mut UnixStream, reply: &Reply) {
    if let Ok(bytes) = serde_json::to_vec(reply) {
        let _ = channel.write_all(&bytes);
    }
    let _ = channel.flush();
    let _ = channel.shutdown(std::net::Shutdown::Both);
}

/// The ends of the container's output that we read.
enum Output {
    Pipes { stdout: Option<OwnedFd>, stderr: Option<OwnedFd> },
    Terminal(Option<OwnedFd>),
}

/// What the monitor serves for its whole life, across restarts.
struct Monitor {
    paths: Paths,
    helper: Helper,
    container: Container,
    interactive: bool,
    listener: UnixListener,
}

fn monitor(channel: UnixStream, listener: UnixListener) -> Result<()> {
    let mut channel = channel;
    let mut bytes = Vec::new();
    channel.read_to_end(&mut bytes).io_context("read the request")?;
    let request: Request = serde_json::from_slice(&bytes).map_err(MonitorError::BadRequest)?;
    drop(bytes);
    let paths = Paths { state: request.state_root, storage: request.storage, prefix: request.prefix };
    let mut state = request.state;
    let container = Container::from_state(&paths, &state)?;
    let socket = attach_socket(&paths, &container.id);
    listener.set_nonblocking(true).io_context("make the attach socket non-blocking")?;
    let monitor =
        Monitor { helper: Helper::new(&paths.helper()), container, interactive: request.interactive, listener, paths };
    let mut launch = request.launch;
    let mut channel = Some(channel);
    let mut backoff = Backoff::default();
    let mut guard = None;
    let result = loop {
        let began = Instant::now();
        let exit_code = match monitor.run_once(&mut state, launch, channel.take(), guard.take()) {
            Ok(code) => code,
            Err(e) => break Err(e),
        };
        let delay = backoff.after_run(began.elapsed());
        match monitor.await_restart(exit_code, delay) {
            Ok(Some((lock, next_state, next_launch))) => (guard, state, launch) = (Some(lock), next_state, next_launch),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = std::fs::remove_file(socket);
    result
}

impl Monitor {
    /// Starts the container once, logs its output and serves attached
    /// clients until it exits, then records the exit. `lock` (held by a
    /// restart) is let go once the container's start is recorded.
    fn run_once(
        &self,
        state: &mut State,
        launch: Launch,
        mut channel: Option<UnixStream>,
        lock: Option<ContainerLock>,
    ) -> Result<Option<i32>> {
        let (paths, helper, container) = (&self.paths, &self.helper, &self.container);
        let rm = state.auto_remove;
        let tty = launch.spec.terminal.is_some();
        let mut clients = Vec::new();
        // Clients that connected before the start see all of its output.
        accept_clients(&self.listener, &mut clients);
        let started = (|| -> Result<_, LaunchError> {
            nix::sys::prctl::set_child_subreaper(true).io_context("PR_SET_CHILD_SUBREAPER")?;
            state.monitor = Some(ProcessRef::current()?);
            // With -i the container's stdin is a pipe that we hold open and
            // write only what attached clients send: it sees no end of
            // file (docker's `run -di`).
            let (stdin_keep, stdin) = if self.interactive && !tty {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).io_context("pipe")?;
                (Some(w), Stdio::from(r))
            } else {
                (None, Stdio::null())
            };
            let (output, stdout, stderr) = if tty {
                (Output::Terminal(None), Stdio::null(), Stdio::null())
            } else {
                let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).io_context("pipe")?;
                let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).io_context("pipe")?;
                (Output::Pipes { stdout: Some(out_r), stderr: Some(err_r) }, Stdio::from(out_w), Stdio::from(err_w))
            };
            let stdio = ProcessStdio { stdin: Some(stdin), stdout: Some(stdout), stderr: Some(stderr) };
            // Each start begins "starting" (the record gets it with the pid).
            state.health = state.options.health.as_ref().map(|_| crate::health::HealthState::default());
            let started = launch::start(paths, helper, container, state, launch, stdio)?;
            Ok((started, output, stdin_keep))
        })();
        drop(lock);
        let (started, output, stdin_keep) = match started {
            Ok(s) => s,
            Err(e) => {
                let message = crate::error::chain(&e);
                if let Some(channel) = channel.as_mut() {
                    reply(channel, &Reply::Failed { exit_code: 125, message: message.clone() });
                }
                state.error = Some(message);
                launch::finish(paths, helper, container, state, None, false, rm)?;
                return Err(e.into());
            }
        };
        // `ports` lives until the end: held until finish has removed the rules.
        let launch::Started { pid, pidfd, report: InitReport { console, failure, .. }, ports } = started;
        if let Some(channel) = channel.as_mut() {
            match &failure {
                Some(f) => reply(channel, &Reply::Failed { exit_code: f.exit_code, message: f.message.clone() }),
                None => reply(channel, &Reply::Started),
            }
        }
        drop(channel);
        let (output, input) = match output {
            Output::Terminal(_) => {
                let input = console.as_ref().map(|m| m.try_clone()).transpose().io_context("dup the terminal")?;
                (Output::Terminal(console), input)
            }
            pipes => (pipes, stdin_keep),
        };
        if let Some(fd) = &input {
            set_nonblocking(fd)?;
        }
        let checker = state.options.health.clone().zip(state.init.clone());
        let checker =
            checker.and_then(|(config, init)| crate::process::health_check::Checker::start(container, init, config));
        let mut attached = Attached { listener: &self.listener, clients, input, terminal: tty };
        let log_result = LogWriter::open(&container.log_path(), state.log_options)
            .and_then(|mut log| copy_output(&mut log, output, &pidfd, &mut attached));
        // The clients stay until the exit is recorded, to be told its code.
        let Attached { clients, input, .. } = attached;
        drop(input);
        // Before the reap below, which would take its probes' statuses too.
        if let Some(checker) = checker {
            checker.stop();
        }
        let exit_code = reap(pid);
        if let Err(e) = &log_result {
            state.error = Some(format!("writing the log: {}", crate::error::chain(e)));
        }
        // Only for a monitor that may live on through a restart's back-off;
        // otherwise it exits after finish, and an attached `run -it` waits.
        if state.restart_policy != crate::process::restart_policy::RestartPolicy::No {
            give_back_memory();
        }
        let finished = launch::finish(paths, helper, container, state, exit_code, true, rm);
        drop(ports);
        if let Some(code) = exit_code {
            let frame = Frame::Exit(code).encode();
            for mut client in clients {
                let _ = client.stream.write_all(&frame);
            }
        }
        Ok(finished.map(|()| exit_code)?)
    }

    /// After an exit: whether the restart policy starts the container
    /// again. Sleeps the back-off first (giving up early if the container
    /// is stopped or removed meanwhile), then re-reads the record under the
    /// container's lock, which it returns held, so that a `ctr stop` either
    /// comes first (and no restart happens) or finds the restarted process.
    fn await_restart(&self, exit_code: Option<i32>, delay: Duration) -> Result<Option<(ContainerLock, State, Launch)>> {
        let wanted =
            |state: &State| state.restart_policy.should_restart(exit_code, state.restart_count, state.stopped_by_user);
        let deadline = Instant::now() + delay;
        loop {
            let Some(state) = self.container.read_state()? else { return Ok(None) };
            if !wanted(&state) {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
        }
        let Some(lock) = ContainerLock::acquire(&self.container.state_dir)? else { return Ok(None) };
        let Some(mut state) = self.container.read_state()? else { return Ok(None) };
        if !wanted(&state) {
            return Ok(None);
        }
        state.restart_count += 1;
        let (launch, _) = crate::container::saved_launch::load_launch(&self.container)?;
        Ok(Some((lock, state, launch)))
    }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), IoError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).io_context("F_GETFL")?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).io_context("F_SETFL O_NONBLOCK")?;
    Ok(())
}

/// An attached client, and what it sent of a frame not yet complete.
struct Client {
    stream: UnixStream,
    received: Decoder,
}

/// Clients of `ctr attach` and where their input goes.
struct Attached<'a> {
    listener: &'a UnixListener,
    clients: Vec<Client>,
    /// The container's stdin (with -i) or its terminal (with -t).
    input: Option<OwnedFd>,
    /// `input` is the container's terminal, whose size clients set.
    terminal: bool,
}

fn accept_clients(listener: &UnixListener, clients: &mut Vec<Client>) {
    while let Ok((stream, _)) = listener.accept() {
        // A client that stops reading is dropped rather than stalling the log.
        if stream.set_nonblocking(false).is_ok() && stream.set_write_timeout(Some(Duration::from_secs(1))).is_ok() {
            clients.push(Client { stream, received: Decoder::default() });
        }
    }
}

impl Attached<'_> {
    fn send(&mut self, stream: Stream, bytes: &[u8]) {
        let frame = match stream {
            Stream::Stdout => Frame::Stdout(bytes.to_vec()),
            Stream::Stderr => Frame::Stderr(bytes.to_vec()),
        }
        .encode();
        self.clients.retain_mut(|c| c.stream.write_all(&frame).is_ok());
    }

    /// Input and sizes from client `i` to the container; false once it is
    /// gone (or sent what is not a frame).
    fn forward(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let client = &mut self.clients[i];
        match client.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => client.received.push(&buf[..n]),
            Err(e) => return e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::WouldBlock,
        }
        loop {
            match client.received.next_frame() {
                Ok(Some(Frame::Input(bytes))) => {
                    if let Some(input) = &self.input {
                        // Input the container does not read in time is dropped.
                        let _ = nix::unistd::write(input, &bytes);
                    }
                }
                Ok(Some(Frame::Resize(size))) => {
                    if let Some(terminal) = self.input.as_ref().filter(|_| self.terminal) {
                        // TIOCSWINSZ: the kernel sends the container SIGWINCH.
                        let _ = crate::process::tty::set_size(terminal.as_fd(), size);
                    }
                }
                // Output and exit codes go the other way.
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Copies the container's output to the log and to attached clients until
/// it has exited and its output is drained (every writer gone, or quiet
/// for a moment after), and clients' input to the container.
fn copy_output(log: &mut LogWriter, output: Output, pidfd: &OwnedFd, attached: &mut Attached) -> Result<(), IoError> {
    let mut streams: Vec<(OwnedFd, Stream)> = match output {
        Output::Pipes { stdout, stderr } => {
            stdout.map(|fd| (fd, Stream::Stdout)).into_iter().chain(stderr.map(|fd| (fd, Stream::Stderr))).collect()
        }
        Output::Terminal(master) => master.map(|fd| (fd, Stream::Stdout)).into_iter().collect(),
    };
    let mut buf = [0u8; 8192];
    let mut exited_at: Option<Instant> = None;
    // Given back once the container has run a second, not on the way to a
    // short one's exit (a `run -it` waits for it).
    let mut memory_given_back = false;
    loop {
        if streams.is_empty() && exited_at.is_some() {
            break;
        }
        if exited_at.is_some_and(|at| at.elapsed() > Duration::from_secs(2)) {
            break;
        }
        let mut fds: Vec<PollFd> = streams.iter().map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        let exit_events = if exited_at.is_none() { PollFlags::POLLIN } else { PollFlags::empty() };
        fds.push(PollFd::new(pidfd.as_fd(), exit_events));
        fds.push(PollFd::new(attached.listener.as_fd(), PollFlags::POLLIN));
        fds.extend(attached.clients.iter().map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)));
        let timeout = match (exited_at, memory_given_back) {
            (Some(_), _) => PollTimeout::from(200u8),
            (None, false) => PollTimeout::from(1000u16),
            (None, true) => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(IoError::new("poll the container's output", e)),
            Ok(0) if exited_at.is_none() => {
                drop(fds);
                give_back_memory();
                memory_given_back = true;
                continue;
            }
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let n = streams.len();
        if ready[n] {
            exited_at = Some(Instant::now());
        }
        let mut closed = Vec::new();
        for (i, (fd, stream)) in streams.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => closed.push(i),
                Ok(n) => {
                    log.write(*stream, &buf[..n]).io_context("write the log")?;
                    attached.send(*stream, &buf[..n]);
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(IoError::new("read the container's output", e)),
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
        for i in (0..attached.clients.len()).rev() {
            if ready[n + 2 + i] && !attached.forward(i, &mut buf) {
                attached.clients.remove(i);
            }
        }
        if ready[n + 1] {
            accept_clients(attached.listener, &mut attached.clients);
        }
    }
    log.finish().io_context("write the log")
}

/// The container's exit status (docker's: 128+N for signal N); also reaps
/// any other orphan that was re-parented to us.
fn reap(pid: Pid) -> Option<i32> {
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => break Some(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break None,
        }
    };
    while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {}
    code
}
