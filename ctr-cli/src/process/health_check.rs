//! The health checks of one run of a container ([`crate::health`]): a
//! thread of the process that waits on it (its monitor, or a foreground
//! `ctr run`) runs a probe every interval, `ctr exec ID CMD` of our own
//! executable, and records the result in the container's record under its
//! lock. As docker's, it runs none while the container is paused.

use crate::container::record::{now_rfc3339, Container};
use crate::health::{HealthConfig, HealthResult, HealthState, KEPT_OUTPUT};
use crate::lock::ContainerLock;
use crate::process::liveness::ProcessRef;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The checks of one run of a container; [`Checker::stop`] when it exits.
pub struct Checker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checker {
    /// Starts checking the container whose init is `init`: every
    /// interval, a probe, its result recorded under the container's lock.
    pub fn start(container: &Container, init: ProcessRef, config: HealthConfig) -> Option<Self> {
        let command = config.command()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let id = container.id.to_string();
        let records = container.clone();
        let thread = std::thread::spawn(move || {
            // The signals the waiting thread forwards must not end up here
            // (a child resets its mask at exec).
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&nix::sys::signal::SigSet::all()),
                None,
            );
            let began = Instant::now();
            let start_period = Duration::from_nanos(config.start_period);
            loop {
                if !sleep_unless_stopped(config.interval(), &stopped) {
                    return;
                }
                // Docker's: no probe runs while the container is paused, and
                // the next one comes a whole interval after its unpause.
                if is_paused(&records) {
                    if !wait_while_paused(&records, &stopped) {
                        return;
                    }
                    continue;
                }
                let result = probe(&id, &command, config.timeout(), &stopped);
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                // Paused meanwhile: docker cancels such a probe and keeps no result.
                if is_paused(&records) {
                    continue;
                }
                let in_start_period = began.elapsed() < start_period;
                if !record(&records, &init, result, &config, in_start_period) {
                    return;
                }
            }
        });
        Some(Self { stop, thread })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn is_paused(records: &Container) -> bool {
    matches!(records.read_state(), Ok(Some(state)) if state.status == crate::container::state::Status::Paused)
}

/// Waits until the container is no longer paused; false once stopped.
fn wait_while_paused(records: &Container, stopped: &AtomicBool) -> bool {
    while is_paused(records) {
        if !sleep_unless_stopped(Duration::from_millis(200), stopped) {
            return false;
        }
    }
    true
}

/// Sleeps `period` in short steps; false once stopped.
fn sleep_unless_stopped(period: Duration, stopped: &AtomicBool) -> bool {
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        if stopped.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
    }
    !stopped.load(Ordering::Relaxed)
}

/// One probe: `ctr exec ID COMMAND...`, its output (both streams) kept,
/// ended after `timeout` (SIGTERM, which `ctr exec` passes on, then
/// SIGKILL).
fn probe(id: &str, command: &[String], timeout: Duration, stopped: &AtomicBool) -> HealthResult {
    let start = now_rfc3339();
    let failed =
        |message: String| HealthResult { start: start.clone(), end: now_rfc3339(), exit_code: -1, output: message };
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed(format!("health check: pipe: {e}")),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return failed(format!("health check: pipe: {e}")),
    };
    let spawned = Command::new("/proc/self/exe")
        .arg0("ctr")
        .arg("exec")
        .arg(id)
        .args(command)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .current_dir("/")
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return failed(format!("health check: start ctr exec: {e}")),
    };
    // Read by a thread of its own, so that a full pipe never stalls the
    // probe; a process the probe left behind may keep the pipe open, so
    // the result takes what was read by a second after the probe ended.
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reading = {
        let kept = kept.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut reader = reader;
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let Ok(mut kept) = kept.lock() else { break };
                let room = KEPT_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        })
    };
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if stopped.load(Ordering::Relaxed) || Instant::now() >= deadline {
            timed_out = !stopped.load(Ordering::Relaxed);
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let grace = Instant::now() + Duration::from_secs(1);
            while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read_by = Instant::now() + Duration::from_secs(1);
    while !reading.is_finished() && Instant::now() < read_by {
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = kept.lock().map(|k| String::from_utf8_lossy(&k).into_owned()).unwrap_or_default();
    if timed_out {
        return failed(format!("Health check exceeded timeout ({})", humantime::format_duration(timeout)));
    }
    let exit_code = status.and_then(|s| s.code()).unwrap_or(-1);
    HealthResult { start, end: now_rfc3339(), exit_code, output }
}

/// Records a result in the container's record, under its lock, if the
/// record still describes this run (same init); false once the container
/// is gone.
fn record(
    records: &Container,
    init: &ProcessRef,
    result: HealthResult,
    config: &HealthConfig,
    in_start_period: bool,
) -> bool {
    let Ok(Some(_lock)) = ContainerLock::acquire(&records.state_dir) else { return false };
    let Ok(Some(mut state)) = records.read_state() else { return false };
    if state.init.as_ref() != Some(init) {
        return true;
    }
    state.health.get_or_insert_with(HealthState::default).record(result, config, in_start_period);
    records.write_state(&state).is_ok()
}
