//! Docker's question before a prune, and its way with several names (go on past failures).

use anyhow::Result;

/// Docker's question before a prune: `force` skips it; on a terminal the
/// user answers; without a terminal to ask on, the prune is refused
/// rather than done unasked. Returns whether to go on.
pub(crate) fn confirm(force: bool, warning: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{warning}; standard input is not a terminal to confirm on: add -f (--force) to go ahead");
    }
    print!("WARNING! {warning}.\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// Runs `action` on each item named, going on past failures and printing
/// each; docker's status: 1 if any failed.
pub(crate) fn each<T: AsRef<str>>(items: &[T], mut action: impl FnMut(&str) -> Result<()>) -> i32 {
    let mut failed = false;
    for item in items {
        if let Err(e) = action(item.as_ref()) {
            eprintln!("ctr: {e:#}");
            failed = true;
        }
    }
    i32::from(failed)
}
