//! Validated identifiers: container ids and names, cgroup path components.
//!
//! Each type can only be built through `parse`, and serde goes through the
//! same parser, so a decoded request cannot carry an invalid identifier.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("container id {0:?} is not 64 lowercase hexadecimal characters")]
    ContainerId(String),
    #[error(
        "container name {0:?} is invalid: use 1 to 64 characters from [a-zA-Z0-9_.-], starting with a letter or digit"
    )]
    ContainerName(String),
    #[error(
        "cgroup path component {0:?} is invalid: use 1 to 128 characters from [a-zA-Z0-9_.-], not starting with '.'"
    )]
    CgroupComponent(String),
}

/// A container id: 64 lowercase hex characters, like docker's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub const LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = s.len() == Self::LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::ContainerId(s.to_owned()))
        }
    }

    /// Builds an id from 32 random bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The first 12 characters, as docker shows them (and the default hostname).
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A container name chosen by the user (`--name`), docker's alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::ContainerName(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One component of a cgroup path: never empty, `.`, `..`, or containing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CgroupComponent(String);

impl CgroupComponent {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && bytes[0] != b'.'
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::CgroupComponent(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_impls!(ContainerId, ContainerName, CgroupComponent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_accepts_only_64_lowercase_hex() {
        let good = "a".repeat(64);
        assert!(ContainerId::parse(&good).is_ok());
        assert!(ContainerId::parse(&"A".repeat(64)).is_err());
        assert!(ContainerId::parse(&"a".repeat(63)).is_err());
        assert!(ContainerId::parse(&"a".repeat(65)).is_err());
        assert!(ContainerId::parse(&format!("{}/", "a".repeat(63))).is_err());
        assert!(ContainerId::parse("").is_err());
    }

    #[test]
    fn container_id_from_bytes_round_trips() {
        let id = ContainerId::from_bytes(&[0xab; 32]);
        assert_eq!(ContainerId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.short(), "abababababab");
    }

    #[test]
    fn container_name_rejects_paths_and_control_characters() {
        for bad in ["", "/x", "a/b", "..", ".", "-x", "a\nb", "a\0b", "a b", "é", &"a".repeat(65)] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "web-1", "db_2.prod", &"a".repeat(64)] {
            assert!(ContainerName::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn cgroup_component_rejects_traversal() {
        for bad in ["", ".", "..", "a/b", ".hidden", "a\0"] {
            assert!(CgroupComponent::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CgroupComponent::parse("ctr").is_ok());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec("../etc", cfg).unwrap();
        let decoded: Result<(ContainerName, usize), _> = bincode::serde::decode_from_slice(&bytes, cfg);
        assert!(decoded.is_err());
    }
}
