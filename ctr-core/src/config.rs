//! The helper's configuration: a root-owned TOML file whose path is fixed
//! when the helper is built (`$CTR_PREFIX/etc/ctr/helper.toml`). Unknown keys
//! are errors: a typo in a security setting must be loud.

use crate::ids::CgroupComponent;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("helper config: {0}")]
    Syntax(String),
    #[error("helper config: cgroup_parent {0:?} must be \"self\" or an absolute path like \"/ctr\" of plain components")]
    CgroupParent(String),
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
}

impl Default for HelperConfig {
    fn default() -> Self {
        Self { cgroup_parent: CgroupParent::Fixed(vec![CgroupComponent::parse("ctr").expect("valid literal")]) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cgroup_parent: Option<String>,
}

impl HelperConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_owned()))?;
        let mut config = Self::default();
        if let Some(parent) = raw.cgroup_parent {
            config.cgroup_parent = parse_cgroup_parent(&parent)?;
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
    fn refuses_traversal_relative_paths_and_unknown_keys() {
        for bad in ["cgroup_parent = \"/a/../b\"", "cgroup_parent = \"a\"", "cgroup_parent = \"/.x\"", "other = 1"] {
            assert!(HelperConfig::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
