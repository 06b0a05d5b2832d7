//! Who called us (the real uid and gid, the only identity the kernel vouches
//! for), and the helper's moves between host root and the caller's identity.

use crate::rlimit::CallerLimits;
use crate::spawn::spawn_error;
use ctr_core::protocol::HelperError;
use nix::unistd::{getgid, getuid, setresgid, setresuid, Gid, Uid, User};

#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: Uid,
    pub gid: Gid,
    /// The passwd name, used only to find the caller's lines in /etc/subuid.
    pub name: Option<String>,
    /// The resource limits the caller ran us with, for its own processes.
    pub limits: CallerLimits,
}

impl Caller {
    pub fn from_real_ids(limits: CallerLimits) -> Self {
        let uid = getuid();
        let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
        Self { uid, gid: getgid(), name, limits }
    }

    pub fn is_root(&self) -> bool {
        self.uid.is_root()
    }
}

/// Every id becomes 0 (the caller's were read into [`Caller`] first). In
/// setuid mode euid is 0 already; in file-capability mode CAP_SETUID and
/// CAP_SETGID allow it. Real ids of 0 also mean the caller can no longer
/// signal the helper half-way through an operation, and that tools the
/// helper runs (nft) do not see a setuid context and refuse to work.
pub fn become_root() -> Result<(), HelperError> {
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    setresuid(root.0, root.0, root.0).and_then(|()| setresgid(root.1, root.1, root.1)).map_err(|e| {
        HelperError::NotPrivileged(format!(
            "cannot become root ({e}); reinstall with `sudo cargo xtask install` (setuid or --mode caps)"
        ))
    })
}

/// Runs `f` with the caller's effective uid and gid but CAP_SYS_ADMIN kept
/// effective, then returns to root. A user namespace created in `f` is owned
/// by the caller (its owner is the creator's euid), while the capability
/// lets creation succeed on hosts that forbid unprivileged user namespaces.
///
/// While in `f`, the saved uid stays 0, so the kernel keeps the permitted
/// set; the process stays non-dumpable, so the caller cannot ptrace it.
pub fn as_caller_with_sys_admin<T>(caller: &Caller, f: impl FnOnce() -> T) -> Result<T, HelperError> {
    setresgid(caller.gid, caller.gid, Gid::from_raw(0)).map_err(|e| spawn_error("setresgid to caller", e))?;
    setresuid(caller.uid, caller.uid, Uid::from_raw(0)).map_err(|e| spawn_error("setresuid to caller", e))?;
    let result = caps::raise(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).map(|()| f());
    // Back to root whatever happened; if this fails we must not go on.
    become_root()?;
    result.map_err(|e| spawn_error("raise CAP_SYS_ADMIN", e))
}
