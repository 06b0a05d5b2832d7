//! The attach connection between a container's monitor and its clients
//! (`ctr attach`, `start -a`, a foreground `run -it`), as frames: a kind
//! byte, a little-endian u32 length, the payload. A client sends its input
//! and its terminal's size (on attaching and on every SIGWINCH, which the
//! monitor sets on the container's terminal); the monitor sends the
//! output, by stream, and last the exit code, once the exit is recorded
//! (and a `--rm` container removed).

use crate::spec::TerminalSize;

/// Longer payloads are a broken peer: both sides send at most 16 KiB.
const MAX_PAYLOAD: usize = 64 * 1024;
const HEADER: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Input(Vec<u8>),
    Resize(TerminalSize),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
}

/// A frame of an unknown kind, a size that does not fit its kind, or a
/// payload past the bound.
#[derive(Debug, thiserror::Error)]
#[error("malformed attach frame (kind {kind}, {len} bytes): the two ends are different ctr versions?")]
pub struct BadFrame {
    kind: u8,
    len: usize,
}

const INPUT: u8 = 1;
const RESIZE: u8 = 2;
const STDOUT: u8 = 3;
const STDERR: u8 = 4;
const EXIT: u8 = 5;

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, std::borrow::Cow<[u8]>) = match self {
            Self::Input(b) => (INPUT, b.as_slice().into()),
            Self::Stdout(b) => (STDOUT, b.as_slice().into()),
            Self::Stderr(b) => (STDERR, b.as_slice().into()),
            Self::Resize(s) => (RESIZE, [s.rows.to_le_bytes(), s.cols.to_le_bytes()].concat().into()),
            Self::Exit(code) => (EXIT, code.to_le_bytes().to_vec().into()),
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(kind);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Received bytes, cut into frames as they complete.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, BadFrame> {
        let Some(header) = self.buf.get(..HEADER) else { return Ok(None) };
        let kind = header[0];
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let bad = BadFrame { kind, len };
        let fits = match kind {
            INPUT | STDOUT | STDERR => len <= MAX_PAYLOAD,
            RESIZE | EXIT => len == 4,
            _ => false,
        };
        if !fits {
            return Err(bad);
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..HEADER + len).skip(HEADER).collect();
        let pair = |i: usize| u16::from_le_bytes([payload[i], payload[i + 1]]);
        Ok(Some(match kind {
            INPUT => Frame::Input(payload),
            STDOUT => Frame::Stdout(payload),
            STDERR => Frame::Stderr(payload),
            RESIZE => Frame::Resize(TerminalSize { rows: pair(0), cols: pair(2) }),
            _ => Frame::Exit(i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]])),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let frames = vec![
            Frame::Input(b"ls\r".to_vec()),
            Frame::Resize(TerminalSize { rows: 30, cols: 100 }),
            Frame::Stdout(Vec::new()),
            Frame::Stderr(vec![0xff; 300]),
            Frame::Exit(-1),
            Frame::Exit(130),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for chunk in [1, 2, 5, 7, bytes.len()] {
            let mut decoder = Decoder::default();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, frames, "chunks of {chunk}");
        }
    }

    #[test]
    fn malformed_frames_are_refused() {
        for bytes in [vec![9, 0, 0, 0, 0], vec![RESIZE, 3, 0, 0, 0], vec![INPUT, 0, 0, 0, 1]] {
            let mut decoder = Decoder::default();
            decoder.push(&bytes);
            assert!(decoder.next_frame().is_err(), "{bytes:?}");
        }
    }
}
