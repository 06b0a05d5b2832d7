//! The caller's resource limits, which a setuid program inherits: a small
//! RLIMIT_FSIZE once killed the helper (SIGXFSZ) after it had made a veth
//! and a DNAT rule but before it had recorded them. So, first thing, the
//! helper raises every soft limit that could stop it half-way to its hard
//! limit (core dumps to 0), ignores SIGXFSZ, SIGXCPU and SIGPIPE (main does;
//! the failing call then returns an error, which is handled), and refuses up
//! front if a hard limit is too low: it cannot raise one without
//! CAP_SYS_RESOURCE, and failing before acting leaves nothing behind. The
//! container's first process is the caller's own, so it gets the caller's
//! limits and signal dispositions back before it executes `ctr init`.

use ctr_core::protocol::HelperError;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::{signal, SigHandler, Signal};

/// Every limit that can stop or starve the helper, and the least hard limit
/// it needs (`None`: unlimited). CPU time counts from before the exec, so
/// only an unlimited one is safe; so is FSIZE (lease files grow with the
/// subnet). The helper's threads reserve address space, hence AS and DATA.
const NEEDED: [(Resource, &str, Option<u64>); 8] = [
    (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE (ulimit -f)", None),
    (Resource::RLIMIT_CPU, "RLIMIT_CPU (ulimit -t)", None),
    (Resource::RLIMIT_RTTIME, "RLIMIT_RTTIME", None),
    (Resource::RLIMIT_AS, "RLIMIT_AS (ulimit -v)", Some(1 << 30)),
    (Resource::RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", Some(1 << 30)),
    (Resource::RLIMIT_STACK, "RLIMIT_STACK (ulimit -s)", Some(8 << 20)),
    (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE (ulimit -n)", Some(256)),
    // Root bypasses it, but the container is cloned with the caller's uid.
    (Resource::RLIMIT_NPROC, "RLIMIT_NPROC (ulimit -u)", Some(64)),
];

/// Signals a resource limit or a closed peer would send to kill us.
pub const IGNORED: [Signal; 3] = [Signal::SIGXFSZ, Signal::SIGXCPU, Signal::SIGPIPE];

/// The caller's limits as they were, for its container's process.
#[derive(Debug, Clone, Default)]
pub struct CallerLimits(Vec<(Resource, u64, u64)>);

/// Whether a hard limit falls short of what the helper needs.
fn short(hard: u64, needed: Option<u64>) -> bool {
    hard != RLIM_INFINITY && needed.is_none_or(|n| hard < n)
}

/// Raises the soft limits and sets core dumps to 0 (main has set
/// [`IGNORED`] to be ignored already); returns the caller's limits, or a
/// refusal naming the first hard limit that is too low (after raising all
/// the others, so that sending the refusal cannot fail on them).
pub fn harden() -> Result<CallerLimits, HelperError> {
    let mut saved = Vec::new();
    let mut refusal = None;
    for (resource, name, needed) in NEEDED {
        let Ok((soft, hard)) = getrlimit(resource) else { continue };
        saved.push((resource, soft, hard));
        let _ = setrlimit(resource, hard, hard);
        if short(hard, needed) && refusal.is_none() {
            let needed = needed.map_or_else(|| "unlimited".into(), |n| format!("at least {n}"));
            refusal = Some(HelperError::ResourceLimit { resource: name.into(), hard: hard.to_string(), needed });
        }
    }
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        saved.push((Resource::RLIMIT_CORE, soft, hard));
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    }
    refusal.map_or(Ok(CallerLimits(saved)), Err)
}

impl CallerLimits {
    /// In a child about to execute the caller's code: the caller's limits
    /// and default dispositions for [`IGNORED`] (ignored ones would survive
    /// the exec). Lowering a soft limit never needs privilege.
    pub fn restore(&self) -> nix::Result<()> {
        for s in IGNORED {
            // SAFETY: SIG_DFL runs no code of ours in signal context.
            unsafe { signal(s, SigHandler::SigDfl) }?;
        }
        self.0.iter().try_for_each(|&(resource, soft, hard)| setrlimit(resource, soft, hard))
    }
}

#[cfg(test)]
#[path = "tests/rlimit.rs"]
mod tests;
