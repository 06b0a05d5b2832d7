//! `CTR_TRACE_TIMINGS=1 ctr run ...`: how long the phases of starting a
//! container take, one line per phase on stderr,
//! `ctr-timing <phase> <milliseconds>ms @<CLOCK_MONOTONIC ms>` (e.g.
//! `ctr-timing rootfs.mount 0.412ms @81234.567`: the clock reading is when
//! the phase ended, so that `cargo xtask bench` can lay the phases of ctr
//! and of init, separate processes, on one time line and name the gaps
//! between them). Off, a phase costs one load of a once-initialised flag.
//!
//! `ctr init` gets no environment from the helper, so `ctr run` asks it to
//! trace with [`INIT_MARKER`] appended to the command's environment; init
//! takes it out before anything else ([`take_init_request`]). It contains
//! no `=`, so no `-e` and no image environment can produce it, and a
//! `CTR_TRACE_TIMINGS` the user passes with `-e` stays in the container.
//! Init's lines go to its stderr, which is `ctr`'s own (or the terminal
//! with `-t`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const VAR: &str = "CTR_TRACE_TIMINGS";
const INIT_MARKER: &str = "ctr-trace-timings";

/// When tracing is on: when this process's first traced phase started.
static SINCE: OnceLock<Option<Instant>> = OnceLock::new();

fn since() -> Option<Instant> {
    *SINCE.get_or_init(|| (std::env::var_os(VAR).is_some_and(|v| v == "1")).then(Instant::now))
}

fn line(phase: &str, elapsed: Duration, ended_at: Duration) -> String {
    format!("ctr-timing {phase} {:.3}ms @{:.3}", elapsed.as_secs_f64() * 1000.0, ended_at.as_secs_f64() * 1000.0)
}

/// CLOCK_MONOTONIC, which every process on the host reads alike.
fn monotonic() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}

/// Runs `f`, printing how long it took when tracing is on.
pub fn time<T>(phase: &str, f: impl FnOnce() -> T) -> T {
    if since().is_none() {
        return f();
    }
    let started = Instant::now();
    let out = f();
    eprintln!("{}", line(phase, started.elapsed(), monotonic()));
    out
}

/// Prints the time since this process's first traced phase started.
pub fn total(phase: &str) {
    if let Some(since) = since() {
        eprintln!("{}", line(phase, since.elapsed(), monotonic()));
    }
}

/// `ctr run`: asks the container's init to trace too, if we do.
pub fn ask_init(env: &mut Vec<String>) {
    if since().is_some() {
        env.push(INIT_MARKER.to_owned());
    }
}

/// `ctr init`, first thing: removes the marker from the command's
/// environment, and traces from now on if it was there.
pub fn take_init_request(env: &mut Vec<String>) {
    let asked = strip_marker(env);
    let _ = SINCE.set(asked.then(Instant::now));
}

fn strip_marker(env: &mut Vec<String>) -> bool {
    let before = env.len();
    env.retain(|e| e != INIT_MARKER);
    env.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_removed_and_user_variables_kept() {
        let mut env = vec!["PATH=/bin".to_owned(), format!("{VAR}=1"), INIT_MARKER.to_owned()];
        assert!(strip_marker(&mut env));
        assert_eq!(env, ["PATH=/bin".to_owned(), format!("{VAR}=1")]);
        assert!(!strip_marker(&mut env));
        assert!(!INIT_MARKER.contains('='));
    }

    #[test]
    fn line_format() {
        let at = Duration::from_micros(81_234_567);
        assert_eq!(line("rootfs.mount", Duration::from_micros(412), at), "ctr-timing rootfs.mount 0.412ms @81234.567");
        assert!(monotonic() > Duration::ZERO);
    }
}
