//! What init applies of `--sysctl`, `--ulimit` and `--group-add`
//! (checked on the caller's side in [`crate::tuning`]): sysctls once the
//! container's /proc is mounted and before /proc/sys is made read-only,
//! limits and groups just before the command.

use super::process::ResolvedUser;
use super::{InitContext, Result};
use crate::tuning::{Sysctl, Ulimit};
use nix::sys::resource::setrlimit;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Writes each sysctl into the container's own /proc/sys (after pivot).
pub fn write_sysctls(sysctls: &[Sysctl]) -> Result<()> {
    for sysctl in sysctls {
        let path = format!("/proc/sys/{}", sysctl.path());
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(sysctl.value.as_bytes()))
            .with_context(|| format!("--sysctl {}={}: writing {path}", sysctl.name, sysctl.value))?;
    }
    Ok(())
}

/// Sets each limit on this process, which the command inherits.
pub fn set_rlimits(limits: &[Ulimit]) -> Result<()> {
    for limit in limits {
        let Some(resource) = Ulimit::resource_of(&limit.name) else { refuse!("unknown limit {}", limit.name) };
        setrlimit(resource, limit.soft, limit.hard).with_context(|| {
            format!("--ulimit {}={}:{}: a hard limit cannot be raised above yours", limit.name, limit.soft, limit.hard)
        })?;
    }
    Ok(())
}

/// Adds `--group-add` groups (names from the container's /etc/group, or
/// numbers) to the user's supplementary groups.
pub fn add_groups(user: &mut ResolvedUser, names: &[String], group_file: &str, setgroups_allowed: bool) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    if !setgroups_allowed {
        refuse!(
            "--group-add needs setgroups in the container's user namespace, which is denied without a subordinate \
             gid range: add one for your user in /etc/subgid"
        );
    }
    for name in names {
        let by_name =
            group_file.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 3 && f[0] == name);
        let gid = match (by_name, name.parse::<u32>()) {
            (Some(f), _) => f[2].parse().with_context(|| format!("--group-add {name}: bad gid in /etc/group"))?,
            (None, Ok(gid)) => gid,
            (None, Err(_)) => refuse!("--group-add {name}: no such group in the container's /etc/group"),
        };
        if !user.groups.contains(&gid) {
            user.groups.push(gid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_added_by_name_or_number() {
        let mut user = ResolvedUser { uid: 1, gid: 1, groups: vec![1], home: "/".into() };
        add_groups(&mut user, &["audio".into(), "4242".into(), "1".into()], "audio:x:29:\n", true).unwrap();
        assert_eq!(user.groups, [1, 29, 4242]);
        assert!(add_groups(&mut user, &["ghosts".into()], "audio:x:29:\n", true).is_err());
        let err = add_groups(&mut user, &["audio".into()], "", false).unwrap_err().to_string();
        assert!(err.contains("/etc/subgid"), "{err}");
        assert!(add_groups(&mut user, &[], "", false).is_ok());
    }
}
