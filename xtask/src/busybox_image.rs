//! The built-in `busybox` image that `cargo xtask install` ships: a plain tar
//! of a tiny rootfs made from Debian's static busybox (with its copyright
//! notice), plus its config. The tar is deterministic (sorted entries, mtime
//! 0, owner 0:0 but for /etc/shadow's group) so that reinstalling writes a
//! byte-identical file and changes nothing. The tests use the same rootfs
//! where no Alpine minirootfs is cached (see [`crate::test_image`]).

use crate::host;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Debian's package whose /bin/busybox is statically linked: the image has no libc.
pub const PACKAGE: &str = "busybox-static";
const BUSYBOX: &str = "/bin/busybox";
/// The package's copyright file: the image carries the GPL notice of the binary it ships.
const COPYRIGHT: &str = "/usr/share/doc/busybox-static/copyright";

const CONFIG_JSON: &str = r#"{"cmd": ["sh"], "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
"#;
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n";
/// Locked passwords, readable by root and group shadow only, as on Debian.
const SHADOW: &str = "root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n";
const SHADOW_GID: u64 = 42;
const OS_RELEASE: &str = "NAME=BusyBox\nID=busybox\n";
const DIRS: [(&str, u32); 14] = [
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("proc", 0o755),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o755),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/share", 0o755),
    ("usr/share/doc", 0o755),
    ("usr/share/doc/busybox-static", 0o755),
    ("var", 0o755),
];

/// Writes `busybox.tar` and `busybox.json` into `images_dir` (root:root
/// 0644), leaving files that already have the right content untouched.
/// Needs [`PACKAGE`] installed.
pub fn install(images_dir: &Path) -> Result<()> {
    host::root_dir(images_dir, 0o755)?;
    write_if_changed(&images_dir.join("busybox.tar"), &rootfs_from_host()?)?;
    write_if_changed(&images_dir.join("busybox.json"), CONFIG_JSON.as_bytes())
}

/// The rootfs tar, from the installed [`PACKAGE`].
pub fn rootfs_from_host() -> Result<Vec<u8>> {
    let read = |path| std::fs::read(path).with_context(|| format!("cannot read {path}: install {PACKAGE}"));
    rootfs_tar(&read(BUSYBOX)?, &read(COPYRIGHT)?, &applets()?)
}

/// The applet names `busybox --list` prints, sorted, without `busybox` itself.
fn applets() -> Result<Vec<String>> {
    let list = host::stdout_of(Command::new(BUSYBOX).arg("--list"))?;
    let mut applets: Vec<String> =
        list.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox").map(str::to_owned).collect();
    if let Some(bad) = applets.iter().find(|a| a.contains('/') || a.starts_with('.')) {
        bail!("{BUSYBOX} --list printed {bad:?}, which is not an applet name");
    }
    applets.sort();
    applets.dedup();
    Ok(applets)
}

/// The rootfs as an uncompressed tar: directories, then files, then links.
fn rootfs_tar(busybox: &[u8], copyright: &[u8], applets: &[String]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (dir, mode) in DIRS {
        append(&mut tar, tar::EntryType::Directory, dir, mode, &[], None)?;
    }
    append(&mut tar, tar::EntryType::Regular, "bin/busybox", 0o755, busybox, None)?;
    for (path, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP), ("etc/os-release", OS_RELEASE)] {
        append(&mut tar, tar::EntryType::Regular, path, 0o644, text.as_bytes(), None)?;
    }
    let mut shadow = header(tar::EntryType::Regular, 0o640, SHADOW.len(), None)?;
    shadow.set_gid(SHADOW_GID);
    add(&mut tar, shadow, "etc/shadow", SHADOW.as_bytes())?;
    let copyright_path = "usr/share/doc/busybox-static/copyright";
    append(&mut tar, tar::EntryType::Regular, copyright_path, 0o644, copyright, None)?;
    for applet in applets {
        append(&mut tar, tar::EntryType::Symlink, &format!("bin/{applet}"), 0o777, &[], Some("busybox"))?;
    }
    tar.into_inner().context("cannot finish the busybox tar")
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) -> Result<()> {
    add(tar, header(kind, mode, data.len(), link)?, path, data)
}

fn add(tar: &mut tar::Builder<Vec<u8>>, mut header: tar::Header, path: &str, data: &[u8]) -> Result<()> {
    tar.append_data(&mut header, path, data).with_context(|| format!("cannot add {path} to the busybox tar"))
}

/// A root-owned entry of mtime 0.
fn header(kind: tar::EntryType, mode: u32, size: usize, link: Option<&str>) -> Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size as u64);
    if let Some(target) = link {
        header.set_link_name(target).with_context(|| format!("bad link target {target}"))?;
    }
    Ok(header)
}

fn write_if_changed(path: &Path, contents: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return host::set_owner_and_mode(path, 0o644);
    }
    host::write_root_file(path, contents, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Entry {
        kind: tar::EntryType,
        mode: u32,
        gid: u64,
        link: Option<String>,
        data: Vec<u8>,
    }

    fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Entry> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                assert_eq!((h.uid().unwrap(), h.mtime().unwrap()), (0, 0), "{path}");
                (path, Entry { kind: h.entry_type(), mode: h.mode().unwrap(), gid: h.gid().unwrap(), link, data })
            })
            .collect()
    }

    #[test]
    fn rootfs_has_busybox_links_users_and_a_sticky_tmp() {
        let tar = rootfs_tar(b"ELF", b"GPL", &["ls".into(), "sh".into()]).unwrap();
        let e = entries(&tar);
        assert!(e.iter().all(|(path, entry)| entry.gid == 0 || path == "etc/shadow"));
        assert_eq!((e["etc/shadow"].gid, e["etc/shadow"].mode), (42, 0o640));
        assert!(String::from_utf8_lossy(&e["etc/group"].data).contains("\nshadow:x:42:\n"));
        assert_eq!(e["usr/share/doc/busybox-static/copyright"].data, b"GPL");
        assert_eq!((e["bin/busybox"].data.as_slice(), e["bin/busybox"].mode), (&b"ELF"[..], 0o755));
        assert_eq!(e["bin/sh"].kind, tar::EntryType::Symlink);
        assert_eq!(e["bin/sh"].link.as_deref(), Some("busybox"));
        assert_eq!((e["tmp"].kind, e["tmp"].mode), (tar::EntryType::Directory, 0o1777));
        assert!(String::from_utf8_lossy(&e["etc/passwd"].data).starts_with("root:x:0:0:root:/root:/bin/sh\n"));
        assert!(String::from_utf8_lossy(&e["etc/group"].data).contains("nogroup:x:65534:"));
        assert!(e.contains_key("usr/bin") && e.contains_key("sbin") && e.contains_key("etc/os-release"));
    }

    #[test]
    fn rootfs_is_byte_for_byte_reproducible() {
        let applets = ["cat".to_owned(), "sh".to_owned()];
        assert_eq!(rootfs_tar(b"x", b"c", &applets).unwrap(), rootfs_tar(b"x", b"c", &applets).unwrap());
    }

    #[test]
    fn config_is_the_documented_json() {
        let v: serde_json::Value = serde_json::from_str(CONFIG_JSON).unwrap();
        assert_eq!(v["cmd"], serde_json::json!(["sh"]));
        assert!(v["env"][0].as_str().unwrap().starts_with("PATH=/usr/local/sbin:"));
    }
}
