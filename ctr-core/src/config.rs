//! The helper's configuration: a root-owned TOML file whose path is fixed
//! when the helper is built (`$CTR_PREFIX/etc/ctr/helper.toml`). Unknown keys
//! are errors: a typo in a security setting must be loud.

use crate::ids::CgroupComponent;
use crate::net::Cidr;
use serde::Deserialize;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("helper config: {0}")]
    Syntax(String),
    #[error("helper config: {0} {1:?} must be an IPv4 network like \"10.88.0.0/16\" (prefix 8 to 30)")]
    Subnet(&'static str, String),
    #[error("helper config: user_network_pool {pool} overlaps bridge_subnet {bridge}: give them separate ranges")]
    PoolOverlap { pool: Cidr, bridge: Cidr },
    #[error(
        "helper config: cgroup_parent {0:?} must be \"self\" or an absolute path like \"/ctr\" of plain components"
    )]
    CgroupParent(String),
    #[error(
        "helper config: default_pids_limit {0} is too large: use 1 to {PIDS_LIMIT_MAX}, or 0 for no default limit"
    )]
    PidsLimit(u64),
}

/// Where container cgroups are created, in every hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupParent {
    /// Beneath this path from each hierarchy's root, e.g. `/ctr`.
    Fixed(Vec<CgroupComponent>),
    /// Beneath the caller's own cgroup in each hierarchy (tests, CI, nested use).
    CallerOwn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperConfig {
    pub cgroup_parent: CgroupParent,
    /// The default bridge network's subnet.
    pub bridge_subnet: Cidr,
    /// Where the subnets of networks that users create must lie: the
    /// administrator's promise that these addresses are free on this host.
    pub user_network_pool: Cidr,
    /// How many containers one user may have on bridge networks at once,
    /// counted over every network.
    pub max_interfaces_per_user: usize,
    /// How many networks one user may create.
    pub max_networks_per_user: usize,
    /// The pids limit of a container whose request names none (`None`: no
    /// default). A user may still ask for another, or for none with
    /// `--pids-limit -1`: it bounds a runaway or careless container, it is
    /// not a quota.
    pub default_pids_limit: Option<u64>,
}

pub const DEFAULT_BRIDGE_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);
pub const DEFAULT_USER_NETWORK_POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 89, 0, 0), 16);
pub const DEFAULT_MAX_INTERFACES_PER_USER: usize = 64;
pub const DEFAULT_MAX_NETWORKS_PER_USER: usize = 8;
/// podman's default.
pub const DEFAULT_PIDS_LIMIT: u64 = 2048;
/// The kernel's PID_MAX_LIMIT on 64-bit: pids.max accepts nothing larger.
pub const PIDS_LIMIT_MAX: u64 = 4 * 1024 * 1024;

impl Default for HelperConfig {
    fn default() -> Self {
        Self {
            cgroup_parent: CgroupParent::Fixed(vec![CgroupComponent::parse("ctr").expect("valid literal")]),
            bridge_subnet: Cidr::try_from(DEFAULT_BRIDGE_SUBNET).expect("valid literal"),
            user_network_pool: Cidr::try_from(DEFAULT_USER_NETWORK_POOL).expect("valid literal"),
            max_interfaces_per_user: DEFAULT_MAX_INTERFACES_PER_USER,
            max_networks_per_user: DEFAULT_MAX_NETWORKS_PER_USER,
            default_pids_limit: Some(DEFAULT_PIDS_LIMIT),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cgroup_parent: Option<String>,
    bridge_subnet: Option<String>,
    user_network_pool: Option<String>,
    max_interfaces_per_user: Option<u32>,
    max_networks_per_user: Option<u32>,
    default_pids_limit: Option<u64>,
}

impl HelperConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_owned()))?;
        let mut config = Self::default();
        if let Some(parent) = raw.cgroup_parent {
            config.cgroup_parent = parse_cgroup_parent(&parent)?;
        }
        if let Some(subnet) = raw.bridge_subnet {
            config.bridge_subnet = Cidr::parse(&subnet).map_err(|_| ConfigError::Subnet("bridge_subnet", subnet))?;
        }
        if let Some(pool) = raw.user_network_pool {
            config.user_network_pool =
                Cidr::parse(&pool).map_err(|_| ConfigError::Subnet("user_network_pool", pool))?;
        }
        if let Some(max) = raw.max_interfaces_per_user {
            config.max_interfaces_per_user = max as usize;
        }
        if let Some(max) = raw.max_networks_per_user {
            config.max_networks_per_user = max as usize;
        }
        match raw.default_pids_limit {
            None => {}
            Some(0) => config.default_pids_limit = None,
            Some(n) if n > PIDS_LIMIT_MAX => return Err(ConfigError::PidsLimit(n)),
            Some(n) => config.default_pids_limit = Some(n),
        }
        if config.user_network_pool.overlaps(&config.bridge_subnet) {
            return Err(ConfigError::PoolOverlap { pool: config.user_network_pool, bridge: config.bridge_subnet });
        }
        Ok(config)
    }
}

fn parse_cgroup_parent(s: &str) -> Result<CgroupParent, ConfigError> {
    if s == "self" {
        return Ok(CgroupParent::CallerOwn);
    }
    let bad = || ConfigError::CgroupParent(s.to_owned());
    let rest = s.strip_prefix('/').ok_or_else(bad)?;
    let components = rest
        .split('/')
        .filter(|c| !c.is_empty())
        .map(CgroupComponent::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if components.len() > 8 {
        return Err(bad());
    }
    Ok(CgroupParent::Fixed(components))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parent_is_slash_ctr() {
        let c = HelperConfig::parse("").unwrap();
        assert_eq!(c, HelperConfig::default());
    }

    #[test]
    fn parses_self_and_paths() {
        assert_eq!(HelperConfig::parse("cgroup_parent = \"self\"").unwrap().cgroup_parent, CgroupParent::CallerOwn);
        let c = HelperConfig::parse("cgroup_parent = \"/a/b\"").unwrap();
        assert_eq!(
            c.cgroup_parent,
            CgroupParent::Fixed(vec![CgroupComponent::parse("a").unwrap(), CgroupComponent::parse("b").unwrap()])
        );
    }

    #[test]
    fn network_settings() {
        let c = HelperConfig::parse("bridge_subnet = \"10.99.0.0/24\"\nmax_interfaces_per_user = 3").unwrap();
        assert_eq!(c.bridge_subnet, Cidr::new(Ipv4Addr::new(10, 99, 0, 0), 24).unwrap());
        assert_eq!(c.max_interfaces_per_user, 3);
        let c = HelperConfig::parse("user_network_pool = \"172.30.0.0/16\"\nmax_networks_per_user = 2").unwrap();
        assert_eq!((c.user_network_pool.to_string(), c.max_networks_per_user), ("172.30.0.0/16".into(), 2));
        assert!(HelperConfig::parse("user_network_pool = \"10.88.128.0/17\"").is_err(), "overlap accepted");
        for bad in ["10.99.0.1/24", "10.99.0.0/31", "10.99.0.0", "x/8"] {
            assert!(HelperConfig::parse(&format!("bridge_subnet = \"{bad}\"")).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_pids_limit() {
        assert_eq!(HelperConfig::parse("").unwrap().default_pids_limit, Some(2048));
        assert_eq!(HelperConfig::parse("default_pids_limit = 100").unwrap().default_pids_limit, Some(100));
        assert_eq!(HelperConfig::parse("default_pids_limit = 0").unwrap().default_pids_limit, None);
        for bad in ["default_pids_limit = -1", "default_pids_limit = 4194305", "default_pids_limit = \"max\""] {
            assert!(HelperConfig::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn refuses_traversal_relative_paths_and_unknown_keys() {
        for bad in ["cgroup_parent = \"/a/../b\"", "cgroup_parent = \"a\"", "cgroup_parent = \"/.x\"", "other = 1"] {
            assert!(HelperConfig::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
