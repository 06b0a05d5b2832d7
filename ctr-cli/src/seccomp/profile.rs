//! Docker's seccomp profile format (the JSON of `--security-opt
//! seccomp=FILE`, and of ctr's own default), parsed strictly: an unknown
//! field, action, operator or architecture is an error that names it, never
//! a rule silently dropped. Also decides which entries apply to a container
//! (docker's `includes`/`excludes` on capabilities, architectures and
//! kernel version).

use serde::Deserialize;
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("not a seccomp profile in docker's format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ProfileError {
    ProfileError::Invalid(message.into())
}

/// The whole profile. Field names are docker's (moby's `types.Seccomp`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    pub syscalls: Vec<SyscallEntry>,
    /// seccomp(2) filter flags: refused if any (see `validate`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Seccomp user notification: not supported (no agent to listen).
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
    /// Accepted (docker's files carry comments) and never used.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMapEntry {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallEntry {
    /// Docker's older single-name form.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    /// Accepted and never used, as above.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub includes: Option<Filter>,
    #[serde(default)]
    pub excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// An action as the filter takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Log,
    Errno(u16),
    Trap,
    Trace(u16),
    KillThread,
    KillProcess,
}

impl Action {
    /// Docker's action names; `errno` is the entry's errnoRet, else the
    /// profile's defaultErrnoRet, else EPERM (as docker does).
    pub fn parse(name: &str, errno: Option<u32>) -> Result<Self, ProfileError> {
        let ret = || -> Result<u16, ProfileError> {
            let value = errno.unwrap_or(libc::EPERM as u32);
            u16::try_from(value)
                .ok()
                .filter(|v| *v <= 4095)
                .ok_or_else(|| invalid(format!("errnoRet {value} is out of range (0 to 4095)")))
        };
        Ok(match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_ERRNO" => Action::Errno(ret()?),
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_TRACE" => Action::Trace(ret()?),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_NOTIFY" => {
                return Err(invalid(
                    "SCMP_ACT_NOTIFY needs a seccomp agent, which ctr does not run: use another action",
                ))
            }
            other => {
                return Err(invalid(format!(
                    "unknown action {other:?} (SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS...)"
                )))
            }
        })
    }

    /// Whether a syscall nobody named passes: then ctr does not turn
    /// syscalls newer than the profile into ENOSYS.
    pub fn permits(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

/// A comparison on one argument, as libseccomp takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    NotEqual,
    Less,
    LessOrEqual,
    Equal,
    GreaterEqual,
    Greater,
    /// `(arg & mask) == value`.
    MaskedEqual {
        mask: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub index: u32,
    pub op: Op,
    pub value: u64,
}

impl Condition {
    fn parse(arg: &Arg) -> Result<Self, ProfileError> {
        if arg.index > 5 {
            return Err(invalid(format!(
                "argument index {} is out of range (a syscall has arguments 0 to 5)",
                arg.index
            )));
        }
        let (op, value) = match arg.op.as_str() {
            "SCMP_CMP_NE" => (Op::NotEqual, arg.value),
            "SCMP_CMP_LT" => (Op::Less, arg.value),
            "SCMP_CMP_LE" => (Op::LessOrEqual, arg.value),
            "SCMP_CMP_EQ" => (Op::Equal, arg.value),
            "SCMP_CMP_GE" => (Op::GreaterEqual, arg.value),
            "SCMP_CMP_GT" => (Op::Greater, arg.value),
            // Docker: value is the mask, valueTwo the expected result.
            "SCMP_CMP_MASKED_EQ" => (Op::MaskedEqual { mask: arg.value }, arg.value_two),
            other => {
                return Err(invalid(format!(
                    "unknown argument operator {other:?} (SCMP_CMP_EQ, SCMP_CMP_MASKED_EQ...)"
                )))
            }
        };
        Ok(Condition { index: arg.index, op, value })
    }
}

/// One entry of the profile that applies to this container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    /// All must hold (docker's semantics for one entry's args).
    pub conditions: Vec<Condition>,
}

/// Who the filter is for: docker keys its rules on these.
pub struct Target<'a> {
    /// The container's capability set (bounding set), as `CAP_*` names.
    pub capabilities: &'a [String],
    /// Docker's (Go's) name of the host architecture: amd64, arm64...
    pub arch: &'a str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

/// Docker's name of the architecture ctr was built for.
pub fn native_arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// "6.18.44-foo" -> (6, 18).
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl Profile {
    pub fn parse(json: &[u8]) -> Result<Self, ProfileError> {
        let profile: Profile = serde_json::from_slice(json)?;
        profile.validate()?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), ProfileError> {
        Action::parse(&self.default_action, self.default_errno_ret)?;
        if self.listener_path.is_some() || self.listener_metadata.is_some() {
            return Err(invalid("listenerPath (seccomp user notification) is not supported by ctr"));
        }
        if self.architectures.is_some() && self.arch_map.is_some() {
            return Err(invalid("give either architectures or archMap, not both"));
        }
        if let Some(flag) = self.flags.first() {
            return Err(invalid(format!("filter flags are not supported by ctr ({flag:?}): drop \"flags\"")));
        }
        for entry in &self.syscalls {
            if entry.name.is_none() && entry.names.is_empty() {
                return Err(invalid("a syscalls entry names no syscall (give names)"));
            }
            if entry.name.is_some() && !entry.names.is_empty() {
                return Err(invalid("a syscalls entry gives both name and names"));
            }
            Action::parse(&entry.action, entry.errno_ret.or(self.default_errno_ret))?;
            for arg in entry.args.iter().flatten() {
                Condition::parse(arg)?;
            }
            for filter in [&entry.includes, &entry.excludes].into_iter().flatten() {
                if let Some(k) = &filter.min_kernel {
                    parse_kernel_version(k)
                        .ok_or_else(|| invalid(format!("minKernel {k:?} is not a kernel version such as \"4.8\"")))?;
                }
                for cap in filter.caps.iter().flatten() {
                    if !cap.starts_with("CAP_") || cap.parse::<caps::Capability>().is_err() {
                        return Err(invalid(format!(
                            "unknown capability {cap:?} in includes/excludes (write CAP_SYS_ADMIN...)"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn default_action(&self) -> Action {
        Action::parse(&self.default_action, self.default_errno_ret).expect("validated")
    }

    /// The libseccomp architectures (SCMP_ARCH_*) the filter covers: with
    /// archMap, the host's entry and its sub-architectures (docker's rule);
    /// with architectures, those; with neither, the host's alone.
    pub fn architectures(&self, native: &str) -> Vec<String> {
        if let Some(list) = &self.architectures {
            return list.clone();
        }
        let native_token = format!("SCMP_ARCH_{}", native.to_ascii_uppercase());
        let mut out = vec![native_token.clone()];
        for entry in self.arch_map.iter().flatten().filter(|e| e.architecture == native_token) {
            out.extend(entry.sub_architectures.iter().flatten().cloned());
        }
        out
    }

    /// Every syscall name the profile mentions, whatever applies: the
    /// profile's "table", beyond which a syscall is newer than the profile.
    pub fn all_names(&self) -> HashSet<&str> {
        self.syscalls.iter().flat_map(|e| e.name.iter().chain(e.names.iter())).map(String::as_str).collect()
    }

    /// The entries that apply to `target`, in order, with docker's rules:
    /// every `includes` cap must be held and any `excludes` cap held rules
    /// the entry out; `arches` name the host's architecture; `minKernel`
    /// is at most the running kernel.
    pub fn rules_for(&self, target: &Target) -> Vec<Rule> {
        let held: HashSet<&str> = target.capabilities.iter().map(String::as_str).collect();
        let applies = |e: &SyscallEntry| {
            if let Some(ex) = &e.excludes {
                if ex.arches.iter().flatten().any(|a| a == target.arch)
                    || ex.caps.iter().flatten().any(|c| held.contains(c.as_str()))
                    || ex.min_kernel.as_deref().and_then(parse_kernel_version).is_some_and(|k| target.kernel >= k)
                {
                    return false;
                }
            }
            if let Some(inc) = &e.includes {
                if inc.arches.as_ref().is_some_and(|a| !a.is_empty() && !a.iter().any(|a| a == target.arch))
                    || inc.caps.iter().flatten().any(|c| !held.contains(c.as_str()))
                    || inc.min_kernel.as_deref().and_then(parse_kernel_version).is_some_and(|k| target.kernel < k)
                {
                    return false;
                }
            }
            true
        };
        self.syscalls
            .iter()
            .filter(|e| applies(e))
            .map(|e| Rule {
                names: e.name.iter().chain(e.names.iter()).cloned().collect(),
                action: Action::parse(&e.action, e.errno_ret.or(self.default_errno_ret)).expect("validated"),
                conditions: e.args.iter().flatten().map(|a| Condition::parse(a).expect("validated")).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_profile_parses_and_keys_on_capabilities() {
        let profile = Profile::parse(super::super::DEFAULT_PROFILE).unwrap();
        assert_eq!(profile.default_action(), Action::Errno(1));
        let default_caps = crate::spec::capability_set(&[], &[]).unwrap();
        let target = Target { capabilities: &default_caps, arch: "amd64", kernel: (6, 1) };
        let rules = profile.rules_for(&target);
        let allowed = |name: &str| {
            rules
                .iter()
                .any(|r| r.action == Action::Allow && r.conditions.is_empty() && r.names.iter().any(|n| n == name))
        };
        assert!(
            allowed("read") && allowed("execve") && allowed("arch_prctl") && allowed("ptrace") && allowed("chroot")
        );
        assert!(!allowed("unshare") && !allowed("mount") && !allowed("keyctl") && !allowed("set_tls"));
        assert!(rules.iter().any(|r| r.names == ["clone3"] && r.action == Action::Errno(38)));
        let clone = rules.iter().find(|r| r.names == ["clone"]).unwrap();
        assert_eq!(clone.conditions, [Condition { index: 0, op: Op::MaskedEqual { mask: 0x7E02_0000 }, value: 0 }]);

        let admin = crate::spec::capability_set(&["SYS_ADMIN".into()], &[]).unwrap();
        let rules = profile.rules_for(&Target { capabilities: &admin, ..target });
        assert!(rules
            .iter()
            .any(|r| r.action == Action::Allow && r.conditions.is_empty() && r.names.iter().any(|n| n == "unshare")));
        assert!(!rules.iter().any(|r| r.names == ["clone3"] && r.action != Action::Allow));
        let old_kernel = profile.rules_for(&Target { kernel: (4, 4), ..target });
        assert!(!old_kernel.iter().any(|r| r.names.iter().any(|n| n == "ptrace")));
    }

    #[test]
    fn docker_rules_for_includes_and_excludes() {
        let json = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN","CAP_NET_ADMIN"]}},
            {"names":["b"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN","CAP_BPF"]}},
            {"names":["c"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
            {"names":["d"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}},
            {"name":"e","action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
        let profile = Profile::parse(json).unwrap();
        let names = |c: &[&str]| -> Vec<String> {
            let c = caps(c);
            profile
                .rules_for(&Target { capabilities: &c, arch: "amd64", kernel: (6, 1) })
                .into_iter()
                .flat_map(|r| r.names)
                .collect()
        };
        assert_eq!(names(&["CAP_SYS_ADMIN"]), ["e"]);
        assert_eq!(names(&["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]), ["a", "e"]);
        assert_eq!(names(&[]), ["b", "e"]);
        let e = profile.rules_for(&Target { capabilities: &[], arch: "amd64", kernel: (6, 1) }).pop().unwrap();
        assert_eq!(e.action, Action::Errno(13));
    }

    #[test]
    fn unsupported_or_malformed_profiles_are_refused_by_name() {
        for (json, needle) in [
            (r#"{"defaultAction":"SCMP_ACT_ERRNO","syscals":[]}"#, "syscals"),
            (r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "SCMP_ACT_NOPE"),
            (r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent"}"#, "listenerPath"),
            (r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}"#, "agent"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
                "index 6",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
                "SCMP_CMP_XX",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
                "70000",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
                "flags are not supported",
            ),
            (r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#, "names no syscall"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["SYS_ADMIN"]}}]}"#,
                "SYS_ADMIN",
            ),
            (r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":[],"archMap":[]}"#, "not both"),
            ("not json", "docker's format"),
        ] {
            let err = Profile::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("x"), None);
    }
}
