//! `ctr network ls`: the default `bridge`, the caller's, `host` and `none`.

use crate::output::table::write_table;
use anyhow::Result;
use ctr_cli::helper_client::Helper;

pub fn ls(helper: &Helper, quiet: bool) -> Result<i32> {
    let networks = helper.network_list()?;
    if quiet {
        networks.iter().for_each(|n| println!("{}", n.name));
        ["host", "none"].iter().for_each(|n| println!("{n}"));
        return Ok(0);
    }
    let mut rows = vec![["NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS"].map(String::from)];
    for n in &networks {
        let count = n.containers.len().to_string();
        let row = [n.name.as_str(), "bridge", &n.bridge, &n.subnet.to_string(), &n.gateway.to_string(), &count];
        rows.push(row.map(String::from));
    }
    rows.push(["host", "host", "", "", "", ""].map(String::from));
    rows.push(["none", "null", "", "", "", ""].map(String::from));
    write_table(&mut std::io::stdout().lock(), &rows)?;
    Ok(0)
}
