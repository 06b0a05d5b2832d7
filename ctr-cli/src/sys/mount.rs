//! The new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount,
//! mount_setattr), which nix does not wrap. Every path argument is the
//! empty string with AT_EMPTY_PATH: the calls work on descriptors only.

use super::adopt_result;
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// A detached copy of the tree at `fd` and the mounts beneath it:
/// `open_tree(fd, "", OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH)`.
pub fn clone_tree(fd: &OwnedFd) -> nix::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: the path is a NUL-terminated empty string; the call only reads it.
    adopt_result(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// Attaches the detached mount `mount` on the directory `target` holds;
/// `mount` then names the attached mount's root.
pub fn move_mount(mount: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are NUL-terminated empty strings; nothing is written.
    let rc = unsafe {
        libc::syscall(libc::SYS_move_mount, mount.as_raw_fd(), c"".as_ptr(), target.as_raw_fd(), c"".as_ptr(), flags)
    };
    Errno::result(rc).map(drop)
}

/// A filesystem context being configured (`fsopen`), not yet mounted.
pub struct FsContext(OwnedFd);

impl FsContext {
    /// `fsopen(name, FSOPEN_CLOEXEC)`.
    pub fn open(name: &CStr) -> nix::Result<Self> {
        // SAFETY: the name is a NUL-terminated string; the call only reads it.
        adopt_result(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) }).map(Self)
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set_string(&self, key: &CStr, value: &CStr) -> nix::Result<()> {
        self.config(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())
    }

    /// `fsconfig(FSCONFIG_SET_FLAG, key)`.
    pub fn set_flag(&self, key: &CStr) -> nix::Result<()> {
        self.config(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null())
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)`, then `fsmount`: the detached mount.
    pub fn create_and_mount(self) -> nix::Result<OwnedFd> {
        self.config(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())?;
        // SAFETY: plain integer arguments.
        adopt_result(unsafe { libc::syscall(libc::SYS_fsmount, self.0.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })
    }

    fn config(&self, cmd: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char) -> nix::Result<()> {
        // SAFETY: key and value are null or point into CStrs borrowed by
        // the public callers for the duration of this call, which only
        // reads them.
        let rc = unsafe { libc::syscall(libc::SYS_fsconfig, self.0.as_raw_fd(), cmd, key, value, 0) };
        Errno::result(rc).map(drop)
    }
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH|AT_RECURSIVE)` setting
/// MOUNT_ATTR_RDONLY on the mount `fd` is the root of and every mount
/// beneath it (Linux 5.12).
pub fn set_read_only_recursive(fd: &OwnedFd) -> nix::Result<()> {
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE;
    // SAFETY: the path is a NUL-terminated empty string, `attr` is a live
    // struct mount_attr of the size passed, and the call writes nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}
