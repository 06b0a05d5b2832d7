//! The base image of the integration tests ([`ctr_tests::BaseImage`]), as a
//! gzip rootfs tarball the test user can read. `../shared/images`, when it
//! sits beside the clone, is an optional cache: its Alpine minirootfs, a real
//! foreign distribution, is used once its checksum matches `SHA256SUMS`.
//! Without it, the busybox rootfs that `cargo xtask install` ships is made
//! from Debian's busybox-static (which apt verified when it installed it), so
//! a clone alone tests itself.

use crate::{busybox_image, host};
use anyhow::{bail, Context, Result};
use ctr_tests::BaseImage;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

const ALPINE: &str = "alpine-minirootfs-3.20.3-x86_64.tar.gz";
const BUSYBOX: &str = "busybox-rootfs.tar.gz";

/// Writes the base image's tarball into `dir` (root-owned, mode 0644) and
/// returns which image it is and where.
pub fn prepare(dir: &Path) -> Result<(BaseImage, PathBuf)> {
    let cache = host::workspace_root().join("../shared/images");
    if cache.join(ALPINE).is_file() {
        let dst = dir.join(ALPINE);
        host::write_root_file(&dst, &verified_alpine(&cache)?, 0o644)?;
        return Ok((BaseImage::Alpine, dst));
    }
    eprintln!(
        "xtask: {} holds no {ALPINE}: the tests run on a busybox rootfs made from Debian's {}",
        cache.display(),
        busybox_image::PACKAGE
    );
    let dst = dir.join(BUSYBOX);
    host::write_root_file(&dst, &gzip(&busybox_image::rootfs_from_host()?)?, 0o644)?;
    Ok((BaseImage::Busybox, dst))
}

/// `images/<ALPINE>`, checked against `images/SHA256SUMS`. A cached file
/// that does not match is an error, not a reason to fall back: someone
/// changed the cache, and the tests must not run on what it now holds.
fn verified_alpine(images: &Path) -> Result<Vec<u8>> {
    let src = images.join(ALPINE);
    let sums_path = images.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).with_context(|| format!("cannot read {}", sums_path.display()))?;
    let expected =
        expected_sha256(&sums, ALPINE).with_context(|| format!("{} lists no {ALPINE}", sums_path.display()))?;
    let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != expected {
        bail!("{} has sha256 {actual}, but SHA256SUMS says {expected}: restore it or remove it", src.display());
    }
    Ok(bytes)
}

/// The digest `sha256sum` recorded for `file` (`<hex>  <name>` or `<hex> *<name>`).
fn expected_sha256(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let (digest, name) = line.split_once(char::is_whitespace)?;
        (name.trim_start().trim_start_matches('*') == file).then(|| digest.to_ascii_lowercase())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Gzip with no name and mtime 0, so the same tar gives the same bytes.
fn gzip(tar: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    encoder.write_all(tar).and_then(|()| encoder.finish()).context("cannot gzip the busybox rootfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sha256sum_output_in_both_modes() {
        let sums = "ABC123  other.tar\nd4e6  alpine.tar.gz\nbeef *bin.tar\n";
        assert_eq!(expected_sha256(sums, "alpine.tar.gz").as_deref(), Some("d4e6"));
        assert_eq!(expected_sha256(sums, "bin.tar").as_deref(), Some("beef"));
        assert_eq!(expected_sha256(sums, "other.tar").as_deref(), Some("abc123"));
        assert_eq!(expected_sha256(sums, "missing"), None);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }

    #[test]
    fn gzip_is_reproducible_and_round_trips() {
        let gz = gzip(b"rootfs").unwrap();
        assert_eq!(gz, gzip(b"rootfs").unwrap());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, b"rootfs");
    }
}
