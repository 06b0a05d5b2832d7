//! `ctr-oci features`: the runtime spec's features document, saying what
//! this milestone honours, so a caller can check before it asks (anything
//! not listed is refused at create with an error naming it).

use serde_json::{json, Value};

/// Mount options [`super::mounts::parse_options`] knows as flags or
/// propagation (anything else goes to the filesystem as data).
const MOUNT_OPTIONS: [&str; 30] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
];

pub fn features() -> Value {
    let capabilities: Vec<String> = {
        let mut all: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
        all.sort();
        all
    };
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::record::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            // The systemd form: a scope made over D-Bus where systemd runs
            // (the user's manager rootless), else the same path on cgroupfs.
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
        },
        "annotations": { "org.ctr.oci.milestone": "1" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_mount_option_parses_and_every_hook_is_listed() {
        let f = features();
        for option in f["mountOptions"].as_array().unwrap() {
            let option = option.as_str().unwrap().to_owned();
            let parsed = super::super::mounts::parse_options(std::slice::from_ref(&option)).unwrap();
            assert!(parsed.data.is_empty(), "{option} is not a flag");
        }
        assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
        assert!(f["linux"]["capabilities"].as_array().unwrap().contains(&json!("CAP_SYS_ADMIN")));
        assert!(!f["linux"]["namespaces"].as_array().unwrap().contains(&json!("time")));
    }
}
