//! The descriptors a container's process gets from ctr-oci, as runc gives
//! them: systemd's socket activation (`LISTEN_FDS`) and `--preserve-fds`
//! beyond the standard streams, and, in a user namespace, the standard
//! streams owned by the namespace's root so that it can reopen them.

use super::{OciContext, Result};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

/// The descriptors from 3 on that reach the process: the activation
/// sockets first, then `--preserve-fds`' (runc's order).
#[derive(Debug, Clone, Copy)]
pub struct Passed {
    pub listen: u32,
    pub total: u32,
}

/// Counts what `create` passes and checks that it is open now: a missing
/// descriptor is the caller's mistake, said here rather than by the
/// container's process.
pub fn passed(preserve_fds: u32) -> Result<Passed> {
    let listen = activation_count();
    let total = listen.checked_add(preserve_fds).context("LISTEN_FDS and --preserve-fds are too large")?;
    check_open(3, listen, &format!("LISTEN_FDS={listen}"))?;
    check_open(3 + listen, preserve_fds, &format!("--preserve-fds {preserve_fds}"))?;
    Ok(Passed { listen, total })
}

/// Refuses unless descriptors `first` to `first+count-1` are open.
pub fn check_open(first: u32, count: u32, what: &str) -> Result<()> {
    for fd in first..first.saturating_add(count) {
        let raw = i32::try_from(fd)?;
        if nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFD).is_err() {
            refuse!("{what}: descriptor {fd} is not open");
        }
    }
    Ok(())
}

/// The sockets systemd handed us, counted by runc's rule (go-systemd's
/// `activation.Files`): `LISTEN_FDS=N` counts only when `LISTEN_PID` is our
/// own pid (unset or another's: meant for someone else, so none).
fn activation_count() -> u32 {
    let ours = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<u32>().ok());
    count.filter(|_| ours).unwrap_or(0)
}

/// Tells the process of its activation sockets, as runc does: the count,
/// and `LISTEN_PID=1` (the process is pid 1 of its pid namespace).
pub fn tell_activation(spec: &mut Spec, listen: u32) {
    if listen == 0 {
        return;
    }
    if let Some(mut process) = spec.process().clone() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.extend([format!("LISTEN_FDS={listen}"), "LISTEN_PID=1".to_owned()]);
        process.set_env(Some(env));
        spec.set_process(Some(process));
    }
}

/// Whether the bundle's process gets a user namespace, new or joined.
pub fn has_user_namespace(bundle: &super::bundle::Bundle) -> bool {
    bundle.clone_flags & libc::CLONE_NEWUSER != 0 || bundle.join.iter().any(|(flag, _)| *flag == libc::CLONE_NEWUSER)
}

/// With a user namespace (the process `pid` is in one that is not ours),
/// our standard streams, which the process shares, are given to the
/// namespace's root (the host ids its 0 maps to), as runc gives it the
/// pipes it makes: a pipe or socket is mode 0600 to its maker, and the
/// container's root could not otherwise reopen `/proc/self/fd/1`. Only
/// pipes and sockets: a device node (the host's `/dev/null`, a terminal)
/// or a file is the host's, and keeps its owner. What cannot be chowned
/// (EPERM, EINVAL, EROFS: an owner the caller's namespace cannot name) is
/// left as it is, as runc leaves it.
pub fn give_stdio_to_namespace_root(pid: Pid) -> Result<()> {
    let namespace = |of: &str| std::fs::read_link(format!("/proc/{of}/ns/user"));
    if namespace(&pid.to_string()).context("the container's user namespace")?
        == namespace("self").context("our user namespace")?
    {
        return Ok(());
    }
    let root_of = |map: &str| -> Result<Option<u32>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{map}")).with_context(|| format!("read {map}"))?;
        Ok(super::record::outer_id(&text, 0))
    };
    let (Some(uid), Some(gid)) = (root_of("uid_map")?, root_of("gid_map")?) else { return Ok(()) };
    for fd in 0..=2 {
        let Ok(stat) = nix::sys::stat::fstat(fd) else { continue };
        let kind = stat.st_mode & libc::S_IFMT;
        if (kind != libc::S_IFIFO && kind != libc::S_IFSOCK) || (stat.st_uid == uid && stat.st_gid == gid) {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid.into()), Some(gid.into())) {
            Ok(()) | Err(nix::errno::Errno::EPERM | nix::errno::Errno::EINVAL | nix::errno::Errno::EROFS) => {}
            Err(e) => return Err(e).with_context(|| format!("give descriptor {fd} to the user namespace's root")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_is_told_as_runc_tells_it() {
        let mut spec = Spec::default();
        tell_activation(&mut spec, 2);
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"LISTEN_FDS=2".to_owned()) && env.contains(&"LISTEN_PID=1".to_owned()), "{env:?}");
        let before = spec.clone();
        tell_activation(&mut spec, 0);
        assert_eq!(spec.process().as_ref().unwrap().env(), before.process().as_ref().unwrap().env());
    }
}
