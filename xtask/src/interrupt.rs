//! Ctrl-C and SIGTERM: the first one only sets a flag, which the driver
//! checks while it waits for its children (they run in their own process
//! groups, see [`crate::host::spawn`]), so it stops them and still cleans up
//! its network namespace, mounts and cgroups. A second one exits at once.

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers; idempotent.
pub fn install() -> Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag before this signal sets it:
        // only a second signal exits.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .context("cannot install a signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&flag)).context("cannot install a signal handler")?;
    }
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// An error if Ctrl-C or SIGTERM has arrived, to stop between steps.
pub fn check() -> Result<()> {
    if requested() {
        anyhow::bail!("interrupted");
    }
    Ok(())
}
