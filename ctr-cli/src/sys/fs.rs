//! File system calls that nix does not wrap.

use std::ffi::CStr;

/// `lsetxattr(path, name, value, len, 0)`: sets an extended attribute on
/// `path` itself, never on what a symlink there points to.
pub fn set_xattr_nofollow(path: &CStr, name: &CStr, value: &[u8]) -> std::io::Result<()> {
    // SAFETY: path and name are live NUL-terminated strings and value a
    // live slice of the length given; the call only reads them.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
