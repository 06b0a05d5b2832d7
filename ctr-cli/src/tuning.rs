//! `--ulimit` and `--sysctl`: parsed and checked on the caller's side,
//! where a refusal can still say why, and applied by the container's init
//! just before its command (`init::tuning`).
//!
//! Both stay inside what an unprivileged user may do: a hard limit can be
//! lowered but never raised above the caller's own (that needs
//! CAP_SYS_RESOURCE on the host), and only sysctls that the kernel scopes
//! to the container's own namespaces (network, IPC) can be set, so a
//! container never changes the host.

use crate::error::{IoContext, IoError};
use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
use serde::{Deserialize, Serialize};

/// A `--ulimit` or `--sysctl` that a container cannot have.
#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    /// The message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("{what}")]
    NotANumber { what: String, source: std::num::ParseIntError },
    #[error(transparent)]
    Io(#[from] IoError),
}

type Result<T, E = TuningError> = std::result::Result<T, E>;

/// Refuses a flag with a message that says what to change.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(TuningError::Invalid(format!($($arg)*)))
    };
}

/// Docker's `--ulimit` names and the limits they set.
const ULIMITS: [(&str, Resource); 15] = [
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

/// `--ulimit NAME=SOFT[:HARD]` (-1 for unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

fn limit_value(text: &str, whole: &str) -> Result<u64> {
    if text == "-1" || text == "unlimited" {
        return Ok(RLIM_INFINITY);
    }
    text.parse().map_err(|source| TuningError::NotANumber {
        what: format!("--ulimit {whole:?}: {text:?} is not a number (or -1 for unlimited)"),
        source,
    })
}

fn show(value: u64) -> String {
    if value == RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

impl Ulimit {
    /// Parses and checks against `current`, the caller's (soft, hard)
    /// limit of that resource.
    pub fn parse_with(text: &str, current: impl Fn(Resource) -> Result<(u64, u64)>) -> Result<Self> {
        let Some((name, values)) = text.split_once('=') else {
            invalid!("--ulimit {text:?}: give NAME=SOFT[:HARD], e.g. nofile=1024:2048");
        };
        let Some(resource) = Self::resource_of(name) else {
            let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
            invalid!("--ulimit {text:?}: unknown limit {name:?} (one of {})", names.join(", "));
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (limit_value(s, text)?, limit_value(h, text)?),
            None => (limit_value(values, text)?, limit_value(values, text)?),
        };
        if soft > hard {
            invalid!("--ulimit {text:?}: the soft limit {} is above the hard limit {}", show(soft), show(hard));
        }
        let (_, caller_hard) = current(resource)?;
        if hard > caller_hard {
            invalid!(
                "--ulimit {text:?}: the hard limit {} is above yours ({}); only a privileged user can raise it, \
                 so ask for at most {}",
                show(hard),
                show(caller_hard),
                show(caller_hard)
            );
        }
        Ok(Self { name: name.to_owned(), soft, hard })
    }

    /// Parses and checks against this process's own limits.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with(text, |r| Ok(getrlimit(r).io_context("getrlimit")?))
    }

    pub fn resource_of(name: &str) -> Option<Resource> {
        ULIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }
}

/// `--sysctl NAME=VALUE`, checked to be namespaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    pub name: String,
    pub value: String,
}

impl Sysctl {
    /// Only sysctls scoped to the container's namespaces: `net.*` (its own
    /// network namespace, so not with `--network host`), the IPC ones
    /// (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`).
    pub fn parse(text: &str, host_network: bool) -> Result<Self> {
        let Some((name, value)) = text.split_once('=') else {
            invalid!("--sysctl {text:?}: give NAME=VALUE, e.g. net.ipv4.ip_forward=1");
        };
        let well_formed = !name.is_empty()
            && name
                .split('.')
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)));
        if !well_formed {
            invalid!("--sysctl {text:?}: {name:?} is not a sysctl name (dot-separated, as net.ipv4.ip_forward)");
        }
        if value.is_empty() || value.chars().any(|c| c.is_control()) {
            invalid!("--sysctl {text:?}: give a value, on one line");
        }
        let ipc = name.starts_with("kernel.shm") || name.starts_with("kernel.msg") || name == "kernel.sem";
        let mqueue = name.starts_with("fs.mqueue.");
        let net = name.starts_with("net.");
        if net && host_network {
            invalid!(
                "--sysctl {name}: net.* sysctls would change the host's network namespace: not with --network host"
            );
        }
        if !(ipc || mqueue || net) {
            invalid!(
                "--sysctl {name}: not a namespaced sysctl, so setting it would change the whole host; only net.*, \
                 kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be set for a container"
            );
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// Its file, relative to /proc/sys.
    pub fn path(&self) -> String {
        self.name.replace('.', "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(_: Resource) -> Result<(u64, u64)> {
        Ok((1024, 4096))
    }

    #[test]
    fn ulimits_parse_and_cannot_rise_above_the_callers_hard_limit() {
        assert_eq!(
            Ulimit::parse_with("nofile=512:2048", caller).unwrap(),
            Ulimit { name: "nofile".into(), soft: 512, hard: 2048 }
        );
        assert_eq!(Ulimit::parse_with("core=0", caller).unwrap(), Ulimit { name: "core".into(), soft: 0, hard: 0 });
        let err = Ulimit::parse_with("nofile=1024:8192", caller).unwrap_err().to_string();
        assert!(err.contains("above yours (4096)"), "{err}");
        let err = Ulimit::parse_with("nofile=-1", caller).unwrap_err().to_string();
        assert!(err.contains("unlimited is above yours"), "{err}");
        assert!(Ulimit::parse_with("nofile=-1", |_| Ok((RLIM_INFINITY, RLIM_INFINITY))).is_ok());
        assert!(Ulimit::parse_with("nofile=10:5", caller).unwrap_err().to_string().contains("soft limit 10"));
        assert!(Ulimit::parse_with("bogus=1", caller).unwrap_err().to_string().contains("unknown limit"));
        assert!(Ulimit::parse_with("nofile", caller).is_err());
        assert!(Ulimit::parse_with("nofile=x", caller).is_err());
    }

    #[test]
    fn only_namespaced_sysctls_are_accepted() {
        for ok in ["net.ipv4.ip_forward=1", "kernel.shmmax=1000000", "kernel.msgmax=100", "kernel.sem=1 2 3 4"] {
            assert!(Sysctl::parse(ok, false).is_ok(), "{ok}");
        }
        assert!(Sysctl::parse("fs.mqueue.msg_max=20", true).is_ok());
        assert_eq!(Sysctl::parse("net.core.somaxconn=1024", false).unwrap().path(), "net/core/somaxconn");
        for (bad, why) in [
            ("kernel.hostname=x", "not a namespaced sysctl"),
            ("vm.swappiness=1", "not a namespaced sysctl"),
            ("kernel.semx=1", "not a namespaced sysctl"),
            ("net/../../x=1", "not a sysctl name"),
            ("net..x=1", "not a sysctl name"),
            ("net.ipv4.ip_forward=1\n2", "one line"),
            ("net.ipv4.ip_forward", "NAME=VALUE"),
        ] {
            let err = Sysctl::parse(bad, false).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = Sysctl::parse("net.ipv4.ip_forward=1", true).unwrap_err().to_string();
        assert!(err.contains("--network host"), "{err}");
    }
}
