//! A container with no mount namespace in linux.namespaces shares the
//! runtime's (the spec's rule for a namespace not listed). Its mounts (the
//! spec's, /dev's tmpfs, the masks) are then made in that namespace,
//! beneath its rootfs, and outlive its process: `create` lists the ones it
//! made (mount id and point, from mountinfo before and after) in the
//! record, and `delete`, or a failed `create`, detaches them. Nothing
//! else of the namespace changes: no propagation, no pivot_root.

use super::{OciContext, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One mount as mountinfo names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub id: u64,
    pub point: PathBuf,
}

/// Every mount of this process's namespace at or beneath `rootfs`.
pub fn beneath(rootfs: &Path) -> Result<Vec<MountPoint>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(parse_beneath(&info, rootfs))
}

fn parse_beneath(info: &str, rootfs: &Path) -> Vec<MountPoint> {
    info.lines()
        .filter_map(|line| {
            // ID PARENT MAJOR:MINOR ROOT POINT ...
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let point = PathBuf::from(ctr_core::cgroup::unescape_mountinfo(fields.nth(3)?));
            point.starts_with(rootfs).then_some(MountPoint { id, point })
        })
        .collect()
}

/// The mounts beneath `rootfs` now that `before` did not hold.
pub fn made_since(rootfs: &Path, before: &[MountPoint]) -> Result<Vec<MountPoint>> {
    Ok(beneath(rootfs)?.into_iter().filter(|m| !before.contains(m)).collect())
}

/// Detaches those of `made` still mounted as listed (same id at the same
/// point), deepest and latest first. Each is opened refusing symlinks and
/// unmounted through its descriptor, so a path the container changed
/// while it ran cannot lead the unmount elsewhere.
pub fn undo(rootfs: &Path, made: &[MountPoint]) -> Result<()> {
    let now = beneath(rootfs)?;
    let mut left: Vec<&MountPoint> = made.iter().filter(|m| now.contains(m)).collect();
    left.sort_by_key(|m| std::cmp::Reverse((m.point.components().count(), m.id)));
    for m in left {
        let fd = match crate::mounts::open_no_symlinks(&m.point) {
            Ok(fd) => fd,
            // Gone with a mount detached before it.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("open the container's mount {}", m.point.display())),
        };
        match nix::mount::umount2(&crate::init::mounts::fd_path(&fd), nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(e).with_context(|| format!("detach the container's mount {}", m.point.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_beneath_the_rootfs_only_unescaped() {
        let info = "\
22 1 0:21 / /tmp/b/rootfs rw shared:1 - ext4 /dev/sda1 rw
40 22 0:30 / /tmp/b/rootfs/proc rw - proc proc rw
41 22 0:31 /null /tmp/b/rootfs/my\\040dir rw - tmpfs tmpfs rw
42 1 0:32 / /tmp/b/rootfs2 rw - tmpfs tmpfs rw
43 1 0:33 /tmp/b/rootfs/x /srv rw - ext4 /dev/sda1 rw
";
        let found = parse_beneath(info, Path::new("/tmp/b/rootfs"));
        let points: Vec<(u64, &str)> = found.iter().map(|m| (m.id, m.point.to_str().unwrap())).collect();
        assert_eq!(points, [(22, "/tmp/b/rootfs"), (40, "/tmp/b/rootfs/proc"), (41, "/tmp/b/rootfs/my dir")]);
    }
}
