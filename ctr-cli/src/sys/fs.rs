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

/// `fgetxattr(fd, name)`: the attribute's value, or None when the file has
/// no such attribute. At most 256 bytes are read (overlayfs's markers are
/// one byte).
pub fn get_xattr(fd: std::os::fd::BorrowedFd, name: &CStr) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let mut value = vec![0u8; 256];
    // SAFETY: name is a live NUL-terminated string and value a live buffer
    // of the length given, which the kernel writes at most that much into.
    let rc = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    if rc >= 0 {
        value.truncate(usize::try_from(rc).unwrap_or(0));
        return Ok(Some(value));
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ENODATA) => Ok(None),
        e => Err(e),
    }
}
