//! `--userns keep-id`: the caller's passwd and group lines, appended to
//! the image's `/etc/passwd` and `/etc/group` when no line has its uid or
//! gid (podman's), so that `whoami` and `id -un` name it. Done on the
//! overlay's root before any volume or /etc bind is mounted, so the write
//! can only land in the container's writable layer (overlayfs copies the
//! file up); the shared keep-id layer copy below is never written. A
//! symlink or a non-regular file there is left alone: init does not write
//! through links an image planted.

use super::{InitContext, Result};
use crate::spec::KeepIdUser;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

pub fn add_entries(root: &OwnedFd, user: &KeepIdUser) -> Result<()> {
    if !user.fits() {
        return Ok(());
    }
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let etc = match openat(Some(root.as_raw_fd()), "etc", flags, Mode::empty()) {
        Ok(raw) => sys::adopt(raw),
        // No /etc, or a link or a file in its place: nothing to add to.
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e).context("open /etc of the image"),
    };
    append_unless_present(&etc, "passwd", user.uid, &user.passwd_line())?;
    append_unless_present(&etc, "group", user.gid, &user.group_line())
}

/// Appends `line` to `etc/name` unless a line's third field is `id`.
fn append_unless_present(etc: &OwnedFd, name: &str, id: u32, line: &str) -> Result<()> {
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let file = match openat(Some(etc.as_raw_fd()), name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(raw) => sys::adopt(raw),
        Err(Errno::ELOOP) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("open /etc/{name} of the image")),
    };
    if SFlag::from_bits_truncate(fstat(file.as_raw_fd())?.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Ok(());
    }
    let mut file = std::fs::File::from(file);
    let mut text = String::new();
    file.read_to_string(&mut text).with_context(|| format!("read /etc/{name} of the image"))?;
    if has_id(&text, id) {
        return Ok(());
    }
    let separator = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    // The descriptor is at the end of what was read.
    file.write_all(format!("{separator}{line}").as_bytes()).with_context(|| format!("add the caller to /etc/{name}"))
}

fn has_id(text: &str, id: u32) -> bool {
    text.lines().any(|l| l.split(':').nth(2).and_then(|f| f.parse::<u32>().ok()) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_added_once_and_only_for_a_missing_id() {
        let dir = std::env::temp_dir().join(format!("ctr-keep-id-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh").unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
        let root = sys::adopt(
            nix::fcntl::open(&dir, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY, Mode::empty()).unwrap(),
        );
        let user =
            KeepIdUser { name: "ann".into(), uid: 1000, gid: 100, group: "ann".into(), home: "/home/ann".into() };
        add_entries(&root, &user).unwrap();
        add_entries(&root, &user).unwrap();
        let passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap();
        assert_eq!(passwd, "root:x:0:0:root:/root:/bin/sh\nann:*:1000:100:ann:/home/ann:/bin/sh\n");
        let group = std::fs::read_to_string(dir.join("etc/group")).unwrap();
        assert_eq!(group, "root:x:0:\nusers:x:100:\n", "gid 100 has a group already");
        // A planted link is not written through.
        std::fs::remove_file(dir.join("etc/group")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-target", dir.join("etc/group")).unwrap();
        add_entries(&root, &KeepIdUser { gid: 1000, ..user.clone() }).unwrap();
        assert!(!std::path::Path::new("/nonexistent-target").exists());
        let bad = KeepIdUser { home: "/a:b".into(), ..user };
        assert!(!bad.fits());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
