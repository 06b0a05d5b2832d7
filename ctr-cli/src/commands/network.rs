//! `ctr network create|ls|inspect|rm`: the caller's bridge networks. The
//! helper owns the registry (root-side, so no user can take another's
//! bridge or subnet); this side asks for changes and shows the answers,
//! adding container names from the caller's own state.

use crate::args::network::NetworkCommand;
use anyhow::{bail, Result};
use ctr_cli::helper_client::Helper;
use ctr_cli::paths::Paths;
use ctr_core::net::{Cidr, NetworkName, NetworkSummary};
use std::collections::BTreeMap;

fn name(s: &str) -> Result<NetworkName> {
    Ok(NetworkName::parse(s)?)
}

pub fn network(paths: &Paths, command: NetworkCommand) -> Result<i32> {
    let helper = Helper::new(&paths.helper());
    match command {
        NetworkCommand::Create { subnet, name: n } => {
            let subnet = subnet.as_deref().map(Cidr::parse).transpose()?;
            let created = helper.network_create(name(&n)?, subnet)?;
            println!("{}", created.name);
            Ok(0)
        }
        NetworkCommand::Ls { quiet } => {
            let networks = helper.network_list()?;
            if quiet {
                networks.iter().for_each(|n| println!("{}", n.name));
                ["host", "none"].iter().for_each(|n| println!("{n}"));
                return Ok(0);
            }
            println!("{:<24}{:<9}{:<10}{:<18}{:<16}CONTAINERS", "NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY");
            for n in &networks {
                let (subnet, gateway) = (n.subnet.to_string(), n.gateway.to_string());
                println!(
                    "{:<24}{:<9}{:<10}{:<18}{:<16}{}",
                    n.name,
                    "bridge",
                    n.bridge,
                    subnet,
                    gateway,
                    n.containers.len()
                );
            }
            println!("{:<24}{:<9}", "host", "host");
            println!("{:<24}{:<9}", "none", "null");
            Ok(0)
        }
        NetworkCommand::Inspect { names } => {
            let networks = helper.network_list()?;
            let mut found = Vec::new();
            let mut failed = false;
            for n in &names {
                match networks.iter().find(|s| s.name.as_str() == n) {
                    Some(s) => found.push(inspect_json(paths, s)),
                    None => {
                        eprintln!("ctr: no network named {n:?}: see `ctr network ls`");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(i32::from(failed))
        }
        NetworkCommand::Rm { names } => {
            let mut failed = false;
            for n in &names {
                match name(n).and_then(|n| helper.network_remove(n)) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("ctr: {n}: {e:#}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("some networks were not removed");
            }
            Ok(0)
        }
        NetworkCommand::Prune => {
            let unused = helper.network_list()?.into_iter().filter(|n| !n.name.is_default() && n.containers.is_empty());
            for n in unused {
                // A container may have joined since the listing: the helper refuses then.
                match helper.network_remove(n.name.clone()) {
                    Ok(()) => println!("{}", n.name),
                    Err(e) => eprintln!("ctr: {}: {e:#}", n.name),
                }
            }
            Ok(0)
        }
    }
}

fn inspect_json(paths: &Paths, n: &NetworkSummary) -> serde_json::Value {
    let names: BTreeMap<String, String> =
        ctr_cli::container::list(paths).unwrap_or_default().into_iter().map(|s| (s.id, s.name)).collect();
    let containers: serde_json::Map<String, serde_json::Value> = n
        .containers
        .iter()
        .map(|(id, addr)| {
            let name = names.get(id).cloned().unwrap_or_default();
            let value = serde_json::json!({"Name": name, "IPv4Address": format!("{addr}/{}", n.subnet.prefix())});
            (id.clone(), value)
        })
        .collect();
    let created = (n.created > 0).then(|| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(n.created)).to_string()
    });
    serde_json::json!({
        "Name": n.name.as_str(),
        "Driver": "bridge",
        "Bridge": n.bridge,
        "Created": created,
        "IPAM": {"Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Containers": containers,
    })
}
