//! Recognises how an archive is compressed from its first bytes (never from
//! its file name: a tarball piped through stdin has none, and names lie) and
//! wraps the stream in the matching decoder. Supported: plain tar, gzip
//! (including concatenated members, as `pigz` writes), zstd and xz.

use super::Result;
use std::fmt;
use std::io::{self, Cursor, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "plain tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        })
    }
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2: &[u8] = b"BZh";
const ZIP: &[u8] = b"PK\x03\x04";
/// Long enough for the longest magic number above.
const HEAD_LEN: usize = 6;

/// What `head`, the first bytes of a stream, says about its compression.
/// Anything unrecognised is taken as a plain tar; the tar parser then
/// rejects what is not one.
pub fn detect(head: &[u8]) -> Result<Compression> {
    Ok(if head.starts_with(GZIP) {
        Compression::Gzip
    } else if head.starts_with(ZSTD) {
        Compression::Zstd
    } else if head.starts_with(XZ) {
        Compression::Xz
    } else if head.starts_with(BZIP2) {
        refuse!("bzip2-compressed archives are not supported: recompress it, e.g. `bzcat FILE | gzip > FILE.tar.gz`")
    } else if head.starts_with(ZIP) {
        refuse!("this is a zip file, not a tar archive: an image must be a tar archive of a root filesystem")
    } else {
        Compression::None
    })
}

/// Wraps `input` in the decoder its first bytes call for. The bytes read to
/// find out are put back in front of the stream, so nothing needs seeking
/// and stdin works as well as a file.
pub fn decoder<'a, R: Read + 'a>(mut input: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let head = read_head(&mut input)?;
    if head.is_empty() {
        refuse!("the archive is empty: expected a tar archive (plain, gzip, zstd or xz)");
    }
    let compression = detect(&head)?;
    let stream = Cursor::new(head).chain(input);
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(stream)?),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(stream)),
    };
    Ok((compression, decoded))
}

/// Up to HEAD_LEN bytes; fewer only at end of input (a pipe may deliver
/// them in several reads).
fn read_head(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    input.take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"not really a tar, but the decoders do not care";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn roundtrip(compressed: Vec<u8>) -> (Compression, Vec<u8>) {
        let (kind, mut decoded) = decoder(Cursor::new(compressed)).unwrap();
        let mut out = Vec::new();
        decoded.read_to_end(&mut out).unwrap();
        (kind, out)
    }

    #[test]
    fn detects_each_format_by_magic() {
        assert_eq!(roundtrip(TEXT.to_vec()), (Compression::None, TEXT.to_vec()));
        assert_eq!(roundtrip(gzip(TEXT)), (Compression::Gzip, TEXT.to_vec()));
        assert_eq!(roundtrip(zstd::encode_all(TEXT, 3).unwrap()), (Compression::Zstd, TEXT.to_vec()));
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(TEXT).unwrap();
        assert_eq!(roundtrip(xz.finish().unwrap()), (Compression::Xz, TEXT.to_vec()));
    }

    #[test]
    fn reads_concatenated_gzip_members() {
        let mut both = gzip(b"first ");
        both.extend(gzip(b"second"));
        assert_eq!(roundtrip(both).1, b"first second");
    }

    #[test]
    fn short_and_empty_inputs() {
        assert_eq!(roundtrip(b"ab".to_vec()), (Compression::None, b"ab".to_vec()));
        let err = decoder(Cursor::new(Vec::new())).err().unwrap();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn rejects_unsupported_formats_with_advice() {
        let err = detect(b"BZh91AY").unwrap_err();
        assert!(err.to_string().contains("recompress"), "{err}");
        assert!(detect(b"PK\x03\x04xx").is_err());
    }
}
