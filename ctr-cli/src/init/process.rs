//! The container's process: user and groups from the image's /etc files,
//! the capability bounding set, working directory, environment, and the
//! executable's lookup with docker's exit codes (126, 127).

use super::{InitContext, Result};
use crate::spec::ProcessSpec;
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const EXIT_NOT_EXECUTABLE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An error that carries the exit status docker would give it.
#[derive(Debug)]
pub struct ExecFailure {
    pub exit_code: i32,
    pub message: String,
}

#[derive(Debug, PartialEq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Resolves `-u` against the container's passwd and group text, like docker:
/// NAME or UID, optionally `:GROUP` or `:GID`; numeric ids need no entry.
pub fn resolve_user(spec: Option<&str>, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let spec = spec.unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entries: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 7).collect();
    let by_user = entries.iter().find(|f| f[0] == user_part || f[2] == user_part);
    let (uid, mut gid, home, name) = match (by_user, user_part.parse::<u32>()) {
        (Some(f), _) => (f[2].parse()?, f[3].parse()?, f[5].to_owned(), Some(f[0])),
        (None, Ok(uid)) => (uid, 0, "/".to_owned(), None),
        (None, Err(_)) => refuse!("unable to find user {user_part}: no matching entries in passwd file"),
    };
    let groups_table: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 4).collect();
    if let Some(g) = group_part {
        gid = match (groups_table.iter().find(|f| f[0] == g), g.parse::<u32>()) {
            (Some(f), _) => f[2].parse()?,
            (None, Ok(gid)) => gid,
            (None, Err(_)) => refuse!("unable to find group {g}: no matching entries in group file"),
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for f in &groups_table {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse() {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser { uid, gid, groups, home })
}

/// Finds the executable as execvp would, with docker's exit codes.
pub fn lookup_executable(program: &str, path_var: &str) -> Result<PathBuf, ExecFailure> {
    let not_found = || ExecFailure {
        exit_code: EXIT_NOT_FOUND,
        message: format!("exec: \"{program}\": executable file not found in $PATH"),
    };
    if program.is_empty() {
        return Err(not_found());
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(path),
            Ok(_) => Err(ExecFailure {
                exit_code: EXIT_NOT_EXECUTABLE,
                message: format!("exec: {program}: permission denied"),
            }),
            Err(_) => Err(ExecFailure {
                exit_code: EXIT_NOT_FOUND,
                message: format!("exec: {program}: no such file or directory"),
            }),
        };
    }
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(not_found)
}

/// Drops every capability outside `allowed` from the bounding set, so that
/// nothing executed later can hold more, and from the inheritable and
/// ambient sets. The bounding set needs one PR_CAPBSET_DROP per capability
/// (the kernel has no other way), made only for those still held, up to the
/// kernel's last (one newer than this build knows included); the
/// inheritable set takes one capset, and only if it holds any to drop.
/// CAP_SETPCAP goes last, since it is what allows dropping.
pub fn limit_capabilities(allowed: &[String]) -> Result<()> {
    let allowed: CapsHashSet = allowed.iter().map(|n| Capability::from_str(n)).collect::<Result<_, _>>()?;
    let allowed_mask = allowed.iter().fold(0u64, |mask, c| mask | 1 << c.index());
    let setpcap = Capability::CAP_SETPCAP.index();
    let mut drop_setpcap = false;
    for index in 0..64u8 {
        // SAFETY: integer arguments only; EINVAL past the last capability.
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index), 0, 0, 0) };
        if held < 0 {
            break;
        }
        if held == 0 || allowed_mask & 1 << index != 0 {
            continue;
        }
        if index == setpcap {
            drop_setpcap = true;
        } else {
            drop_bounding(index)?;
        }
    }
    let inheritable = caps::read(None, CapSet::Inheritable)?;
    if !inheritable.is_subset(&allowed) {
        caps::set(None, CapSet::Inheritable, &inheritable.intersection(&allowed).copied().collect())?;
    }
    caps::clear(None, CapSet::Ambient).ok();
    if drop_setpcap {
        drop_bounding(setpcap)?;
    }
    Ok(())
}

fn drop_bounding(index: u8) -> Result<()> {
    // SAFETY: integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) };
    nix::errno::Errno::result(rc).with_context(|| format!("drop capability {index} from the bounding set"))?;
    Ok(())
}

/// Becomes `user`. Supplementary groups are set only where the user
/// namespace allows setgroups(2) (see the helper's setgroups policy).
/// Whether this user namespace lets us set supplementary groups (only with
/// a subordinate gid range mapped).
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(false)
}

pub fn switch_user(user: &ResolvedUser) -> Result<()> {
    if setgroups_allowed() {
        let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).context("setgroups")?;
    }
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid)
        .with_context(|| format!("setgid {}: is gid {} mapped in the container?", user.gid, user.gid))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid)
        .with_context(|| format!("setuid {}: is uid {} mapped in the container?", user.uid, user.uid))?;
    Ok(())
}

/// The environment docker gives: PATH and HOSTNAME and HOME if unset.
pub fn build_env(spec: &ProcessSpec, hostname: &str, home: &str) -> Vec<String> {
    let mut env = spec.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split_once('=').is_some_and(|(k, _)| k == key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

pub fn path_of(env: &[String]) -> String {
    env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_owned()
}

pub fn to_cstrings(items: &[String]) -> Result<Vec<CString>> {
    items.iter().map(|s| CString::new(s.as_bytes()).context("argument or environment contains a NUL byte")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:33:33:web:/var/www:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nlog:x:4:web\nnogroup:x:65534:\n";

    #[test]
    fn resolves_names_ids_and_groups() {
        assert_eq!(
            resolve_user(None, PASSWD, GROUP).unwrap(),
            ResolvedUser { uid: 0, gid: 0, groups: vec![0], home: "/root".into() }
        );
        let web = resolve_user(Some("web"), PASSWD, GROUP).unwrap();
        assert_eq!((web.uid, web.gid, web.groups.clone()), (33, 33, vec![33, 4]));
        let numeric = resolve_user(Some("1234:5678"), PASSWD, GROUP).unwrap();
        assert_eq!((numeric.uid, numeric.gid), (1234, 5678));
        assert_eq!(resolve_user(Some("nobody:www"), PASSWD, GROUP).unwrap().gid, 33);
        assert!(resolve_user(Some("ghost"), PASSWD, GROUP).is_err());
        assert!(resolve_user(Some("root:ghosts"), PASSWD, GROUP).is_err());
    }

    #[test]
    fn lookup_gives_docker_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "x").unwrap();
        let path_var = dir.path().to_str().unwrap();
        assert_eq!(lookup_executable("tool", path_var).unwrap(), exe);
        assert_eq!(lookup_executable("nope", path_var).unwrap_err().exit_code, 127);
        assert_eq!(lookup_executable("data", path_var).unwrap_err().exit_code, 127);
        assert_eq!(lookup_executable(plain.to_str().unwrap(), path_var).unwrap_err().exit_code, 126);
        assert_eq!(lookup_executable("/no/such", path_var).unwrap_err().exit_code, 127);
    }
}
