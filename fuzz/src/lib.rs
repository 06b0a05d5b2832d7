//! Fuzz target bodies for what the setuid helper does with a caller's bytes
//! before it acts: frame decoding ([`frame`]) and ctr-core's validation of
//! the decoded request ([`validate`]). The libFuzzer entry points in
//! `fuzz_targets/` only call these; `cargo xtask fuzz` builds and runs them.
//!
//! Each body asserts properties, not just "no panic": memory bounded by the
//! bytes received, decode/encode round trips, and for every accepted value
//! the invariants the helper relies on, checked by code independent of the
//! validator's own.

pub mod alloc;
mod invariants;
pub mod seeds;

use ctr_core::frame::{self, FrameError, MAX_FRAME_LEN};
use ctr_core::idmap::SubIdRange;
use ctr_core::protocol::{HelperError, Request, Response};
use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Frame,
    Validate,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Frame, Target::Validate];

    pub fn name(self) -> &'static str {
        match self {
            Target::Frame => "frame",
            Target::Validate => "validate",
        }
    }
}

/// The most heap that decoding `input_len` bytes may take, beyond the body
/// buffer that the length prefix announced (itself at most the frame
/// limit): once more the frame limit, for the byte strings whose announced
/// length bincode counts against that limit before reading them; then a
/// fixed multiple of the bytes actually received, as decoded values are
/// bigger than their encoding (a 3-byte id map entry is 12 bytes in memory,
/// and a `Vec` may double); then a constant. No length a caller announces
/// may cost more: that is what the frame limit promises.
pub fn heap_bound(input_len: usize) -> usize {
    MAX_FRAME_LEN as usize + HEAP_PER_INPUT_BYTE * input_len + HEAP_SLACK
}
pub const HEAP_PER_INPUT_BYTE: usize = 32;
pub const HEAP_SLACK: usize = 16 * 1024;

/// A reader that hands out the input a few bytes at a time and is
/// interrupted once, as a socket may be: `read_frame` must loop correctly.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.interrupt) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Target 1: arbitrary bytes as they arrive on the helper's channel,
/// length prefix included (so it may lie, in either direction).
pub fn frame(data: &[u8]) {
    let mut reader = Trickle { data, step: 1 + data.len() % 7, interrupt: data.len() % 2 == 1 };
    let baseline = alloc::start();
    let result = frame::read_frame::<Request>(&mut reader);
    let peak = alloc::peak_above(baseline);

    let announced = data.get(..4).map(|p| u32::from_le_bytes(p.try_into().expect("4 bytes")));
    let body_buffer = announced.filter(|&n| n <= MAX_FRAME_LEN).map_or(0, |n| n as usize);
    let bound = body_buffer + heap_bound(data.len());
    assert!(peak <= bound, "decoding {} input bytes took {peak} bytes of heap (bound {bound})", data.len());

    if let Err(e) = &result {
        refusal_fits(HelperError::Frame(e.to_string()));
    }
    match result {
        Ok(request) => {
            let len = announced.expect("a decoded frame has a prefix") as usize;
            assert!(len <= MAX_FRAME_LEN as usize);
            assert_eq!(reader.data.len(), data.len() - 4 - len, "read_frame read past its frame");
            round_trip(&request);
        }
        Err(FrameError::Closed) => assert!(data.is_empty()),
        Err(FrameError::TooLarge(n)) => assert!(n > MAX_FRAME_LEN && Some(n) == announced),
        Err(FrameError::Truncated { expected, got }) => assert!(got < expected),
        Err(FrameError::TrailingBytes(n)) => assert!(n > 0),
        Err(FrameError::Undecodable(_)) => {}
        Err(FrameError::Io(e)) => panic!("an in-memory reader cannot fail: {e}"),
    }
}

/// The refusal the helper sends back must reach the caller: it fits in a
/// frame, and stays short enough for a person to read.
pub fn refusal_fits(e: HelperError) {
    let frame = frame::encode(&Response::Refused(e)).expect("a refusal fits in a frame");
    assert!(frame.len() <= 1024, "a refusal of {} bytes", frame.len());
}

/// A decoded request encodes to a frame within the limit that decodes to
/// the same value, and that encoding is stable.
fn round_trip(request: &Request) {
    let encoded = frame::encode(request).expect("a decoded request re-encodes");
    assert!(encoded.len() <= 4 + MAX_FRAME_LEN as usize);
    let back: Request = frame::read_frame(&mut &encoded[..]).expect("a re-encoded request decodes");
    assert_eq!(&back, request, "the round trip changed the request");
    assert_eq!(frame::encode(&back).expect("encodes"), encoded, "encoding is not stable");
}

/// Who the validate target's request comes from: its ids and subordinate
/// ranges, as the helper would read them from /etc/subuid and /etc/subgid.
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub subuids: &'static [SubIdRange],
    pub subgids: &'static [SubIdRange],
}

/// The first input byte picks one (below [`TEXT_MODE`]).
pub const CALLERS: [Caller; 4] = [
    // An ordinary user with the usual ranges.
    Caller {
        uid: 1000,
        gid: 1000,
        subuids: &[SubIdRange { start: 100_000, count: 65_536 }],
        subgids: &[SubIdRange { start: 100_000, count: 65_536 }, SubIdRange { start: 300_000, count: 10 }],
    },
    // Root, who may map itself.
    Caller { uid: 0, gid: 0, subuids: &[], subgids: &[] },
    // A user with no ranges: only its own id.
    Caller { uid: 1001, gid: 1001, subuids: &[], subgids: &[] },
    // A misconfigured host: ranges that include host id 0 and reach u32::MAX.
    Caller {
        uid: 1002,
        gid: 50,
        subuids: &[SubIdRange { start: 0, count: 10 }, SubIdRange { start: u32::MAX - 9, count: 10 }],
        subgids: &[SubIdRange { start: 0, count: 1 << 31 }],
    },
];

/// An input byte with this bit set selects text mode: the rest is text for
/// the string parsers (ports, subnets, names, cpu lists, subuid files).
pub const TEXT_MODE: u8 = 0x80;

/// Target 2: a request body decoded and validated as the helper does,
/// against a fixed fake host; or text through the string parsers.
pub fn validate(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & TEXT_MODE != 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            invariants::text(text);
        }
        return;
    }
    let baseline = alloc::start();
    let decoded = frame::decode_body::<Request>(rest);
    let peak = alloc::peak_above(baseline);
    assert!(peak <= heap_bound(rest.len()), "decoding {} bytes took {peak} bytes of heap", rest.len());
    let request = match decoded {
        Ok(request) => request,
        Err(e) => return refusal_fits(HelperError::Frame(e.to_string())),
    };
    round_trip(&request);
    invariants::request(&CALLERS[usize::from(mode) % CALLERS.len()], &request);
}
