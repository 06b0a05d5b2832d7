//! Framing on the helper channel: a u32 little-endian length, then a bincode
//! body of exactly that many bytes. The length is checked against
//! [`MAX_FRAME_LEN`] before anything is allocated, bincode decodes with the
//! same limit, and trailing bytes are an error. Lists a caller sends
//! decode through [`bounded_vec`], so an announced length allocates nothing.

use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

/// No legitimate message comes near this; anything larger is refused unread.
pub const MAX_FRAME_LEN: u32 = 64 * 1024;
const LEN_BYTES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the channel")]
    Closed,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(u32),
    #[error("frame truncated: expected {expected} bytes, got {got}")]
    Truncated { expected: usize, got: usize },
    #[error("frame could not be decoded: {0}")]
    Undecodable(String),
    #[error("frame has {0} trailing bytes after its message")]
    TrailingBytes(usize),
    #[error("channel I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Decode errors quote what the peer sent (an id, a subnet, a cpu list),
/// Debug-escaped, so up to six times the frame; the helper sends the message
/// back in its refusal, which must itself fit in a frame. 360 KiB did not.
const MAX_ERROR_LEN: usize = 512;

fn undecodable(e: impl std::fmt::Display) -> FrameError {
    let mut message = e.to_string();
    if message.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("... (truncated)");
    }
    FrameError::Undecodable(message)
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_limit::<{ MAX_FRAME_LEN as usize }>()
}

/// Encodes `msg` as one complete frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = bincode::serde::encode_to_vec(msg, bincode_config()).map_err(undecodable)?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(u32::MAX))?;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let mut frame = Vec::with_capacity(LEN_BYTES + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

/// Writes `msg` as one frame with `fd` attached (SCM_RIGHTS) to its first
/// bytes: the helper's pidfd, the terminal master `ctr init` hands back.
/// The receiver reads the rest as a normal frame, with the same checks.
pub fn write_frame_with_fd<T: Serialize>(channel: &UnixStream, msg: &T, fd: BorrowedFd<'_>) -> Result<(), FrameError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let bytes = encode(msg)?;
    let fds = [fd.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(channel.as_raw_fd(), &[io::IoSlice::new(&bytes)], &rights, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    let mut rest = channel;
    rest.write_all(&bytes[sent..])?;
    Ok(())
}

/// Parses the 4-byte length prefix, refusing oversized frames.
pub fn parse_len(prefix: [u8; LEN_BYTES]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len as usize)
}

/// Decodes a frame body that must be consumed exactly.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::decode_from_slice(body, bincode_config()).map_err(undecodable)?;
    if used != body.len() {
        return Err(FrameError::TrailingBytes(body.len() - used));
    }
    Ok(msg)
}

/// Reads one frame. A clean end of stream before the first byte is
/// [`FrameError::Closed`]; anything shorter than announced is `Truncated`.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut prefix = [0u8; LEN_BYTES];
    let got = read_full(r, &mut prefix)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < LEN_BYTES {
        return Err(FrameError::Truncated { expected: LEN_BYTES, got });
    }
    read_body(r, parse_len(prefix)?)
}

/// Reads and decodes a body of `len` bytes (already checked by [`parse_len`]).
pub fn read_body<T: DeserializeOwned>(r: &mut impl Read, len: usize) -> Result<T, FrameError> {
    let mut body = vec![0u8; len];
    let got = read_full(r, &mut body)?;
    if got < len {
        return Err(FrameError::Truncated { expected: len, got });
    }
    decode_body(&body)
}

/// Elements reserved up front, whatever length a list announces.
const PREALLOC_ELEMENTS: usize = 16;

/// For `#[serde(deserialize_with = "crate::frame::bounded_vec")]` on every
/// `Vec` in a request. bincode does not count a sequence's announced length
/// against its limit, and serde's `Vec` reserves up to 1 MiB from that
/// length alone: a 124-byte frame cost the helper 768 KiB before it failed
/// to decode (found by fuzz/). Here a list grows only with elements
/// actually decoded, each of which consumed bytes of the frame.
pub fn bounded_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Elements<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Elements<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(PREALLOC_ELEMENTS));
            while let Some(e) = seq.next_element()? {
                elements.push(e);
            }
            Ok(elements)
        }
    }
    deserializer.deserialize_seq(Elements(PhantomData))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Request, PROTOCOL_VERSION};

    #[test]
    fn round_trip() {
        let frame = encode(&Request::Hello { version: PROTOCOL_VERSION }).unwrap();
        let back: Request = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, Request::Hello { version: PROTOCOL_VERSION });
    }

    #[test]
    fn a_frame_with_a_descriptor_reads_back_as_the_same_frame() {
        use std::os::fd::AsFd;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        write_frame_with_fd(&ours, &Request::Hello { version: PROTOCOL_VERSION }, file.as_fd()).unwrap();
        let back: Request = read_frame(&mut theirs).unwrap();
        assert_eq!(back, Request::Hello { version: PROTOCOL_VERSION });
    }

    #[test]
    fn refuses_oversized_length_without_reading_on() {
        let mut frame = (MAX_FRAME_LEN + 1).to_le_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        assert!(matches!(read_frame::<Request>(&mut &frame[..]), Err(FrameError::TooLarge(_))));
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(read_frame::<Request>(&mut &huge[..]), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn refuses_truncation_garbage_and_trailing_bytes() {
        let frame = encode(&Request::Hello { version: 1 }).unwrap();
        assert!(matches!(read_frame::<Request>(&mut &frame[..2]), Err(FrameError::Truncated { .. })));
        assert!(matches!(read_frame::<Request>(&mut &frame[..frame.len() - 1]), Err(FrameError::Truncated { .. })));
        assert!(matches!(read_frame::<Request>(&mut &[][..]), Err(FrameError::Closed)));

        let garbage = [4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame::<Request>(&mut &garbage[..]), Err(FrameError::Undecodable(_))));

        let mut long = frame.clone();
        long.push(0);
        let len = u32::from_le_bytes(long[..4].try_into().unwrap()) + 1;
        long[..4].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(read_frame::<Request>(&mut &long[..]), Err(FrameError::TrailingBytes(1))));
    }

    /// A sequence that announces far more elements than it has.
    struct Lying(std::vec::IntoIter<u32>);
    impl Iterator for Lying {
        type Item = u32;
        fn next(&mut self) -> Option<u32> {
            self.0.next()
        }
        fn size_hint(&self) -> (usize, Option<usize>) {
            (1 << 40, Some(1 << 40))
        }
    }

    #[test]
    fn bounded_vec_reserves_only_what_it_decodes() {
        use serde::de::value::{Error, SeqDeserializer};
        let lying = || SeqDeserializer::<_, Error>::new(Lying(vec![1, 2, 3].into_iter()));
        // What serde's own Vec does with the announced length:
        let trusting = Vec::<u32>::deserialize(lying()).unwrap();
        assert!(trusting.capacity() >= 1 << 16, "serde no longer trusts size hints: bounded_vec may go");
        let bounded: Vec<u32> = bounded_vec(lying()).unwrap();
        assert_eq!(bounded, [1, 2, 3]);
        assert!(bounded.capacity() <= PREALLOC_ELEMENTS);
    }

    #[test]
    fn a_refusal_of_any_frame_fits_in_a_frame() {
        // A container id of 60000 control characters: its error quotes it,
        // escaped (6 bytes each), and the helper sends that error back.
        let hostile = Request::Exec { id: crate::ids::ContainerId::from_bytes(&[0; 32]) };
        let mut body = encode(&hostile).unwrap()[4..].to_vec();
        let id_at = body.len() - 65; // the variant tag, then the id's length and bytes
        body.truncate(id_at);
        let id = "\u{1}".repeat(60_000);
        body.extend_from_slice(&bincode::serde::encode_to_vec(&id, bincode_config()).unwrap());
        let err = decode_body::<Request>(&body).unwrap_err();
        assert!(matches!(err, FrameError::Undecodable(_)), "{err:?}");
        let refusal = crate::protocol::Response::Refused(crate::protocol::HelperError::Frame(err.to_string()));
        let frame = encode(&refusal).expect("the refusal fits in a frame");
        assert!(frame.len() < 1024, "a {}-byte refusal", frame.len());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        // A cheap deterministic fuzz: every prefix and byte flip of a valid frame.
        let frame = encode(&Request::Hello { version: 7 }).unwrap();
        for cut in 0..frame.len() {
            let _ = read_frame::<Request>(&mut &frame[..cut]);
        }
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let len = (seed % 40) as usize;
            let body: Vec<u8> = (0..len).map(|i| (seed >> (i % 24)) as u8).collect();
            let _ = decode_body::<Request>(&body);
        }
    }
}
