//! `ctr port`: a container's published ports.

use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn port(paths: &Paths, key: &str) -> Result<i32> {
    let state = ctr_cli::container::find(paths, key)?;
    for p in state.network.iter().flat_map(|n| &n.ports) {
        println!("{p}");
    }
    Ok(0)
}
