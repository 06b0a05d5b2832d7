//! Names of network interfaces and networks, validated once at the edge.
//!
//! The kernel caps an interface name at `IFNAMSIZ - 1` = 15 *bytes*, and it
//! refuses `/`, `:`, whitespace, `.` and `..`. These names also end up inside
//! nftables scripts (`iifname "veth..."`) and file names (`<network>.json`),
//! so this module is stricter than the kernel: only ASCII letters, digits,
//! `_`, `-` and `.` are accepted. Nothing else can reach a netlink message,
//! an `nft` script or a path. Host-side veth names are random
//! ([`random_host_veth`]), never derived from anything a caller chose: a
//! caller-chosen container id made them predictable, so one user's
//! container could claim (or its failed start delete) another user's veth
//! (the class of lxc-user-nic's CVE-2026-39402).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "interface name {0:?} is invalid: use 1 to 15 bytes from [A-Za-z0-9_.-], not \".\" or \"..\" \
         (the kernel's limit is 15 bytes, IFNAMSIZ - 1)"
    )]
    Interface(String),
    #[error("bridge name {0:?} is invalid: {1}")]
    Bridge(String, &'static str),
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// A network interface name that the kernel accepts and that is safe to
/// quote in an nftables script.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InterfaceName(String);

impl InterfaceName {
    /// `IFNAMSIZ - 1`: the kernel stores the name with a terminating NUL in 16 bytes.
    pub const MAX_BYTES: usize = 15;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bytes = s.as_bytes();
        let ok = (1..=Self::MAX_BYTES).contains(&bytes.len())
            && s != "."
            && s != ".."
            && bytes.iter().copied().all(is_name_byte);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Interface(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The prefix of host-side veth names; bridges may not use it, so a bridge
/// can never be mistaken for (or deleted as) a container's veth.
pub const HOST_VETH_PREFIX: &str = "veth";

/// A fresh host-side veth name: `veth` and 11 random hex digits (44
/// bits from /dev/urandom), exactly 15 bytes. The caller of this writes the
/// name into its records *before* creating the link, so a link of that name
/// is known to be its own; a clash with an existing link fails with EEXIST
/// and is retried under another name, never deleted.
pub fn random_host_veth() -> std::io::Result<InterfaceName> {
    let mut bytes = [0u8; 6];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hex_len = InterfaceName::MAX_BYTES - HOST_VETH_PREFIX.len();
    Ok(InterfaceName(format!("{HOST_VETH_PREFIX}{}", &hex[..hex_len])))
}

/// The prefix of the bridges ctr makes (`ctr0` for the default network,
/// `ctr1`... for users' networks); the firewall isolates them from each
/// other by it.
pub const BRIDGE_PREFIX: &str = "ctr";

/// The name of a network's bridge. An [`InterfaceName`] that is not `lo` and
/// does not look like one of our host veths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BridgeName(InterfaceName);

impl BridgeName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let name = InterfaceName::parse(s)
            .map_err(|_| NameError::Bridge(s.to_owned(), "use 1 to 15 bytes from [A-Za-z0-9_.-]"))?;
        if s == "lo" {
            return Err(NameError::Bridge(s.to_owned(), "\"lo\" is the loopback device"));
        }
        if s.starts_with(HOST_VETH_PREFIX) {
            return Err(NameError::Bridge(s.to_owned(), "the prefix \"veth\" is reserved for container veths"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_interface(&self) -> &InterfaceName {
        &self.0
    }
}

/// A network's name, used as the file name of its lease store: the type
/// the helper protocol carries, so both sides validate it alike.
pub use ctr_core::net::NetworkName;

macro_rules! name_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.as_str().to_owned()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }
    )*};
}
name_impls!(InterfaceName, BridgeName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_name_limit_is_fifteen_bytes() {
        assert!(InterfaceName::parse(&"a".repeat(15)).is_ok());
        assert!(InterfaceName::parse(&"a".repeat(16)).is_err());
        // 8 characters but 16 bytes: the kernel counts bytes.
        assert!(InterfaceName::parse(&"é".repeat(8)).is_err());
    }

    #[test]
    fn interface_name_refuses_what_the_kernel_or_nft_would_misread() {
        for bad in ["", ".", "..", "a/b", "a b", "a\tb", "a\n", "a:1", "a\"b", "a;b", "a\\b", "a\0b", "é"] {
            assert!(InterfaceName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["eth0", "lo", "br-ctr0", "veth.1", "a_b", "..."] {
            assert!(InterfaceName::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn host_veth_names_are_random_and_fit() {
        let (a, b) = (random_host_veth().unwrap(), random_host_veth().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), InterfaceName::MAX_BYTES);
        assert!(a.as_str().starts_with(HOST_VETH_PREFIX));
        assert_eq!(InterfaceName::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn bridge_name_refuses_loopback_and_veth_prefix() {
        assert!(BridgeName::parse("ctr0").is_ok());
        for bad in ["lo", "veth0", "vethabc", "", &"b".repeat(16), "br 0"] {
            assert!(BridgeName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn network_name_is_a_safe_file_name() {
        assert!(NetworkName::parse("default").is_ok());
        for bad in ["", ".", "..", ".hidden", "a/b", "-x", &"n".repeat(65)] {
            assert!(NetworkName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_goes_through_the_parser() {
        assert!(serde_json::from_str::<InterfaceName>("\"eth0\"").is_ok());
        assert!(serde_json::from_str::<InterfaceName>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<BridgeName>("\"veth1\"").is_err());
    }
}
