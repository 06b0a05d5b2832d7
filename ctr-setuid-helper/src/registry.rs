//! The registry of networks that users created: which user owns which
//! name, on which bridge and subnet. Root-owned state: a caller can create
//! and remove only its own entries, through the helper, and never choose a
//! bridge name or a subnet outside the configured pool.
//!
//! It is one text file, `/var/lib/ctr-helper/networks`, a line per network:
//! `uid <TAB> name <TAB> bridge <TAB> subnet <TAB> created`. Every field is a
//! validated type, so the file cannot carry anything else; a line that does
//! not parse makes the whole registry an error rather than being skipped,
//! since skipping it would free its bridge and subnet for someone else. It
//! persists across reboots (bridges and rules are made again on first use);
//! it is replaced by rename, and only under the network lock.

use crate::config::root_only;
use ctr_core::config::HelperConfig;
use ctr_core::net::{Cidr, NetworkName};
use ctr_core::protocol::HelperError;
use ctr_net::names::{BridgeName, BRIDGE_PREFIX};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

const REGISTRY_DIR: &str = "/var/lib/ctr-helper";
const REGISTRY_FILE: &str = "/var/lib/ctr-helper/networks";
/// The default network's bridge; users' bridges are numbered from 1.
pub const DEFAULT_BRIDGE: &str = "ctr0";
/// The prefix length of a subnet picked for a user who asked for none, and
/// the largest a user other than root may ask for.
const AUTO_PREFIX: u8 = 24;
/// Bridge numbers stop here, well below what fits in 15 bytes.
const MAX_BRIDGE_NUMBER: u32 = 99_999;

fn registry_error(e: impl std::fmt::Display) -> HelperError {
    HelperError::Network(format!("network registry {REGISTRY_FILE}: {e}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNetwork {
    pub owner: u32,
    pub name: NetworkName,
    pub bridge: BridgeName,
    pub subnet: Cidr,
    pub created: u64,
}

impl UserNetwork {
    fn line(&self) -> String {
        format!("{}\t{}\t{}\t{}\t{}\n", self.owner, self.name, self.bridge, self.subnet, self.created)
    }

    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [owner, name, bridge, subnet, created] = fields.as_slice() else { return None };
        Some(Self {
            owner: owner.parse().ok()?,
            name: NetworkName::parse(name).ok()?,
            bridge: BridgeName::parse(bridge).ok()?,
            subnet: Cidr::parse(subnet).ok()?,
            created: created.parse().ok()?,
        })
    }
}

pub fn parse(text: &str) -> Result<Vec<UserNetwork>, HelperError> {
    text.lines()
        .enumerate()
        .map(|(i, line)| UserNetwork::parse(line).ok_or_else(|| registry_error(format!("line {} is damaged", i + 1))))
        .collect()
}

/// The registry as it is on disk. Readers need no lock: writers replace
/// the file by rename, so it is never seen half-written.
pub fn load() -> Result<Vec<UserNetwork>, HelperError> {
    match std::fs::symlink_metadata(REGISTRY_FILE) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(registry_error(e)),
        Ok(meta) if !meta.is_file() || !root_only(&meta) => {
            return Err(registry_error("is not a regular root-owned file that only root can write"))
        }
        Ok(_) => {}
    }
    parse(&std::fs::read_to_string(REGISTRY_FILE).map_err(registry_error)?)
}

/// Replaces the registry. The caller holds the network lock.
pub fn store(networks: &[UserNetwork]) -> Result<(), HelperError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(REGISTRY_DIR).map_err(registry_error)?;
    let dir = std::fs::symlink_metadata(REGISTRY_DIR).map_err(registry_error)?;
    if !dir.is_dir() || !root_only(&dir) {
        return Err(registry_error(format!("{REGISTRY_DIR} is not a root-owned directory that only root can write")));
    }
    let text: String = networks.iter().map(UserNetwork::line).collect();
    let tmp = Path::new(REGISTRY_DIR).join("networks.tmp");
    ctr_core::fs::replace(&tmp, Path::new(REGISTRY_FILE), text.as_bytes(), true).map_err(registry_error)
}

pub fn find<'a>(networks: &'a [UserNetwork], owner: u32, name: &NetworkName) -> Option<&'a UserNetwork> {
    networks.iter().find(|n| n.owner == owner && &n.name == name)
}

/// A new network for `owner`, checked against the config and every network
/// that exists (the default one and all users').
pub fn plan(
    networks: &[UserNetwork],
    config: &HelperConfig,
    owner: u32,
    name: NetworkName,
    subnet: Option<Cidr>,
    created: u64,
) -> Result<UserNetwork, HelperError> {
    let refuse = |why: String| Err(HelperError::Network(why));
    if name.is_reserved() {
        return refuse(format!("the name {name:?} is reserved: choose another"));
    }
    if find(networks, owner, &name).is_some() {
        return refuse(format!("you already have a network named {name:?}"));
    }
    let owned = networks.iter().filter(|n| n.owner == owner).count();
    if owned >= config.max_networks_per_user {
        return refuse(format!(
            "you have {owned} networks, the most the helper's config allows (max_networks_per_user): remove one first"
        ));
    }
    let pool = config.user_network_pool;
    let taken: Vec<Cidr> = networks.iter().map(|n| n.subnet).chain([config.bridge_subnet]).collect();
    let subnet = match subnet {
        Some(s) if !pool.covers(&s) => {
            return refuse(format!(
                "subnet {s} is outside the pool for users' networks, {pool} (user_network_pool in the helper's config)"
            ))
        }
        // One user must not claim the pool that every user shares.
        Some(s) if owner != 0 && s.prefix() < AUTO_PREFIX => {
            return refuse(format!(
                "subnet {s} is larger than a /{AUTO_PREFIX}: only root may create a network that large"
            ))
        }
        Some(s) => match taken.iter().find(|t| t.overlaps(&s)) {
            Some(t) => return refuse(format!("subnet {s} overlaps {t}, which another network uses")),
            None => s,
        },
        None => free_subnet(pool, &taken).ok_or_else(|| {
            HelperError::Network(format!(
                "no free /{AUTO_PREFIX} is left in the pool {pool}: pass --subnet or remove a network"
            ))
        })?,
    };
    Ok(UserNetwork { owner, name, bridge: free_bridge(networks)?, subnet, created })
}

/// The first subnet of the automatic size in `pool` that overlaps nothing.
fn free_subnet(pool: Cidr, taken: &[Cidr]) -> Option<Cidr> {
    let prefix = AUTO_PREFIX.max(pool.prefix());
    let step = 1u64 << (32 - prefix);
    let start = u64::from(u32::from(pool.address()));
    let end = start + (1u64 << (32 - pool.prefix()));
    (start..end)
        .step_by(usize::try_from(step).ok()?)
        .filter_map(|a| Cidr::new(u32::try_from(a).ok()?.into(), prefix).ok())
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
}

/// The lowest `ctrN` (N >= 1) that no registered network uses.
fn free_bridge(networks: &[UserNetwork]) -> Result<BridgeName, HelperError> {
    (1..=MAX_BRIDGE_NUMBER)
        .map(|n| format!("{BRIDGE_PREFIX}{n}"))
        .find(|b| networks.iter().all(|n| n.bridge.as_str() != b))
        .and_then(|b| BridgeName::parse(&b).ok())
        .ok_or_else(|| registry_error("no bridge name is left"))
}

#[cfg(test)]
#[path = "tests/registry.rs"]
mod tests;
