//! Docker's question before a prune.

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
