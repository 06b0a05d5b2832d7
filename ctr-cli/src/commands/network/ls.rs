//! `ctr network ls`: the default `bridge`, the caller's, `host` and `none`.

use crate::output::listing::{print_list, Listing};
use anyhow::Result;
use ctr_cli::helper_client::Helper;

/// ctr's table: docker's NAME and DRIVER, and what a bridge network has.
const NETWORKS: Listing = Listing {
    default: "table {{.Name}}\t{{.Driver}}\t{{.Bridge}}\t{{.Subnet}}\t{{.Gateway}}\t{{.Containers}}",
    headers: &[("ID", "NETWORK ID")],
};

pub fn ls(helper: &Helper, quiet: bool, format: Option<&str>) -> Result<i32> {
    let networks = helper.network_list()?;
    if quiet {
        networks.iter().for_each(|n| println!("{}", n.name));
        ["host", "none"].iter().for_each(|n| println!("{n}"));
        return Ok(0);
    }
    let row = |name: &str, driver: &str, bridge: &str, subnet: String, gateway: String, containers: String| {
        serde_json::json!({
            "ID": name, "Name": name, "Driver": driver, "Scope": "local", "Bridge": bridge,
            "Subnet": subnet, "Gateway": gateway, "Containers": containers,
        })
    };
    let mut rows: Vec<serde_json::Value> = networks
        .iter()
        .map(|n| {
            let (subnet, gateway) = (n.subnet.to_string(), n.gateway.to_string());
            row(n.name.as_str(), "bridge", &n.bridge, subnet, gateway, n.containers.len().to_string())
        })
        .collect();
    rows.push(row("host", "host", "", String::new(), String::new(), String::new()));
    rows.push(row("none", "null", "", String::new(), String::new(), String::new()));
    print_list(&mut std::io::stdout().lock(), format, &NETWORKS, &rows)?;
    Ok(0)
}
