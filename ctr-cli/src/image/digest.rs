//! SHA-256 digests in the form ctr writes them (`sha256:<64 hex>`), and a
//! reader that hashes and counts the bytes passing through it. The reader is
//! what lets an import compute a layer's digests in the same single pass that
//! unpacks it, and its byte limit is what stops a decompression bomb.

use super::Result;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

pub const ALGORITHM_PREFIX: &str = "sha256:";

/// `sha256:<hex>` of `bytes`.
pub fn of_bytes(bytes: &[u8]) -> String {
    format!("{ALGORITHM_PREFIX}{:x}", Sha256::digest(bytes))
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hex part of a `sha256:<64 hex>` digest. Digests read back from state
/// files are checked here before they are joined into a path, so a corrupt
/// file cannot point the store outside its own directories.
pub fn hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix(ALGORITHM_PREFIX) {
        Some(hex) if is_hex64(hex) => Ok(hex),
        _ => refuse!("{digest:?} is not a sha256 digest (expected sha256:<64 lowercase hex digits>)"),
    }
}

/// Hashes and counts everything read through it, failing once more than
/// `limit` bytes have gone by.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> HashingReader<R> {
    /// `what` names the stream in the limit's error ("the uncompressed archive").
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0, limit, what }
    }

    /// Reads the rest of the stream, so that the digest covers all of it
    /// (a tar reader stops at the end-of-archive marker, before the padding).
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }

    /// The `sha256:<hex>` digest and the length of what was read.
    pub fn finish(self) -> (String, u64) {
        (format!("{ALGORITHM_PREFIX}{:x}", self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            let limit = if self.limit >= 1 << 30 {
                format!("the {} GiB limit for an image layer", self.limit >> 30)
            } else {
                format!("the {} bytes it was said to have", self.limit)
            };
            return Err(io::Error::other(format!("{} is larger than {limit}", self.what)));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_passes_through() {
        let mut r = HashingReader::new(&b"abc"[..], 10, "input");
        r.drain().unwrap();
        let (digest, len) = r.finish();
        assert_eq!(digest, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digest, of_bytes(b"abc"));
        assert_eq!(len, 3);
    }

    #[test]
    fn stops_past_the_limit() {
        let mut r = HashingReader::new(&[0u8; 100][..], 10, "the input");
        let err = r.drain().unwrap_err();
        assert!(err.to_string().contains("the input is larger than"), "{err}");
    }

    #[test]
    fn checks_digest_syntax() {
        let good = of_bytes(b"");
        assert_eq!(hex(&good).unwrap().len(), 64);
        assert!(hex("sha256:../../etc").is_err());
        assert!(hex(&good.to_uppercase()).is_err());
        assert!(hex(&good[7..]).is_err());
    }
}
