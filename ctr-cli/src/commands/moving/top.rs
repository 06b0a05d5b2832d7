//! `ctr top CONTAINER`.

use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn top(paths: &Paths, container: &str) -> Result<i32> {
    let mut rows = vec![["UID", "PID", "PPID", "CMD"].map(String::from).to_vec()];
    for p in ctr_cli::container::top::top(paths, container)? {
        rows.push(vec![p.uid.to_string(), p.pid.to_string(), p.ppid.to_string(), p.command]);
    }
    crate::output::table::write_rows(&mut std::io::stdout().lock(), &rows)?;
    Ok(0)
}
