//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"<RFC 3339, ns, UTC>"}`. The
//! monitor writes them ([`LogWriter`]); `ctr logs` reads, tails and follows
//! them. A line longer than 16 KiB is split as docker splits it (the parts
//! without a trailing newline).

use crate::container::record::Container;
use crate::container::record::RecordError;
use crate::error::{IoContext, IoError};
use crate::log_options::rotated;
pub use crate::log_options::{log_files, LogOptions};
use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// Why a container's log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Docker's json-file buffer: longer lines are written in parts.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// One log line (with its newline) for `bytes` of `stream` at `time`.
/// Written by hand rather than through serde: this runs in the monitor,
/// whose resident size is per container, and little code stays little.
pub fn format_entry(stream: Stream, bytes: &[u8], time: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut line = String::with_capacity(text.len() + 64);
    line.push_str("{\"log\":\"");
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push_str("\",\"stream\":\"");
    line.push_str(stream.name());
    line.push_str("\",\"time\":\"");
    line.push_str(time);
    line.push_str("\"}\n");
    line
}

/// Appends a container's output to its log, a line per entry, rotating it
/// by its [`LogOptions`].
pub struct LogWriter {
    file: File,
    path: std::path::PathBuf,
    options: LogOptions,
    size: u64,
    /// Bytes of an unfinished line, per stream.
    partial: [Vec<u8>; 2],
}

fn open_append(path: &Path) -> Result<File, IoError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_io_context(|| format!("open the log {}", path.display()))
}

impl LogWriter {
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, IoError> {
        let file = open_append(path)?;
        let size = file.metadata().with_io_context(|| format!("stat the log {}", path.display()))?.len();
        Ok(Self { file, path: path.to_owned(), options, size, partial: [Vec::new(), Vec::new()] })
    }

    /// Appends whole entries (each one line), rotating between two of them
    /// where the next would pass max-size.
    fn append(&mut self, out: &str) -> std::io::Result<()> {
        if self.size + out.len() as u64 <= self.options.max_size {
            self.size += out.len() as u64;
            return self.file.write_all(out.as_bytes());
        }
        for entry in out.split_inclusive('\n') {
            self.append_one(entry)?;
        }
        Ok(())
    }

    fn append_one(&mut self, out: &str) -> std::io::Result<()> {
        if self.size > 0 && self.size + out.len() as u64 > self.options.max_size {
            for n in (1..self.options.max_files).rev() {
                let from = if n == 1 { self.path.clone() } else { rotated(&self.path, n - 1) };
                match std::fs::rename(&from, rotated(&self.path, n)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            // With max-file=1 nothing is kept: the log starts again.
            self.file = open_append(&self.path).map_err(std::io::Error::other)?;
            self.file.set_len(0)?;
            self.size = 0;
        }
        self.size += out.len() as u64;
        self.file.write_all(out.as_bytes())
    }

    /// Logs what `stream` produced; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> std::io::Result<()> {
        let time = crate::units::rfc3339_nanos(std::time::SystemTime::now());
        let mut out = String::new();
        let slot = stream as usize;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(end + 1);
            let pending = &mut self.partial[slot];
            if pending.is_empty() {
                out.push_str(&format_entry(stream, line, &time));
            } else {
                pending.extend_from_slice(line);
                out.push_str(&format_entry(stream, pending, &time));
                pending.clear();
            }
            bytes = rest;
        }
        let pending = &mut self.partial[slot];
        pending.extend_from_slice(bytes);
        while pending.len() >= MAX_LINE {
            let part: Vec<u8> = pending.drain(..MAX_LINE).collect();
            out.push_str(&format_entry(stream, &part, &time));
        }
        if out.is_empty() {
            return Ok(());
        }
        self.append(&out)
    }

    /// Writes what is left of unfinished lines (at end of output).
    pub fn finish(&mut self) -> std::io::Result<()> {
        let time = crate::units::rfc3339_nanos(std::time::SystemTime::now());
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.partial[stream as usize]);
            if !pending.is_empty() {
                self.append(&format_entry(stream, &pending, &time))?;
            }
        }
        Ok(())
    }
}

/// The offset at which the last `n` lines of `file` start, found by
/// reading backwards in blocks.
pub fn tail_offset(file: &mut File, n: usize) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0;
    let mut block = vec![0u8; 64 * 1024];
    // A last line with its newline: that newline does not start a line.
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let buf = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        for (i, &b) in buf.iter().enumerate().rev() {
            if b != b'\n' {
                skip_last = false;
                continue;
            }
            if skip_last {
                skip_last = false;
                continue;
            }
            newlines += 1;
            if newlines == n {
                return Ok(start + i as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

/// The complete entries in `buf`, which keeps an unfinished last line.
fn take_entries(buf: &mut Vec<u8>) -> Vec<Entry> {
    let Some(last) = buf.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
    let entries = buf[..last].split(|&b| b == b'\n').filter_map(|line| serde_json::from_slice(line).ok()).collect();
    buf.drain(..=last);
    entries
}

/// Reads a container's log: the last `tail` entries (all with `None`),
/// and with `follow` what comes after until the container stops. Each
/// batch of entries goes to `emit` as it is read.
pub fn read(
    paths: &Paths,
    key: &str,
    tail: Option<usize>,
    follow: bool,
    mut emit: impl FnMut(&[Entry]) -> std::io::Result<()>,
) -> Result<(), LogsError> {
    let (container, state) = Container::locate(paths, key)?;
    let path = container.log_path();
    // Rotated files first (all of them; --tail counts back across them).
    let older = log_files(&path, state.log_options);
    let mut backlog = Vec::new();
    for old in &older[..older.len() - 1] {
        let mut bytes = std::fs::read(old).unwrap_or_default();
        bytes.push(b'\n');
        backlog.extend(take_entries(&mut bytes));
    }
    let mut file = match File::open(&path) {
        Ok(f) => f,
        // Never started: nothing was written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(emit(&backlog).io_context("write the log's lines")?);
        }
        Err(e) => return Err(IoError::new(format!("open {}", path.display()), e).into()),
    };
    let mut pending = Vec::new();
    match tail {
        Some(n) => {
            let read = |file: &mut File, pending: &mut Vec<u8>| -> std::io::Result<()> {
                let start = tail_offset(file, n)?;
                file.seek(SeekFrom::Start(start))?;
                file.read_to_end(pending).map(drop)
            };
            read(&mut file, &mut pending).with_io_context(|| format!("read {}", path.display()))?;
            let mut entries = take_entries(&mut pending);
            let from_older = n.saturating_sub(entries.len());
            entries.splice(0..0, backlog.split_off(backlog.len().saturating_sub(from_older)));
            emit(&entries).io_context("write the log's lines")?;
        }
        None => emit(&backlog).io_context("write the log's lines")?,
    }
    loop {
        // Decided before reading, so nothing written before the end is missed.
        let done = !follow || !still_writing(&container)?;
        file.read_to_end(&mut pending).with_io_context(|| format!("read {}", path.display()))?;
        emit(&take_entries(&mut pending)).io_context("write the log's lines")?;
        if done {
            return Ok(());
        }
        // Rotated away: what is left of it was read above; go on in the new file.
        if std::fs::metadata(&path).is_ok_and(|m| m.ino() != file.metadata().map(|f| f.ino()).unwrap_or(0)) {
            file.read_to_end(&mut pending).with_io_context(|| format!("read {}", path.display()))?;
            emit(&take_entries(&mut pending)).io_context("write the log's lines")?;
            file = File::open(&path).with_io_context(|| format!("open {}", path.display()))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether more output may come: the container runs, or its monitor is
/// still writing what it left.
fn still_writing(container: &Container) -> Result<bool, RecordError> {
    let Some(state) = container.read_state()? else { return Ok(false) };
    let monitor_alive = state.monitor.as_ref().is_some_and(|m| m.is_alive());
    Ok(state.is_up() || (state.status.is_live() && monitor_alive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_docker_json_file_lines() {
        let line = format_entry(Stream::Stderr, b"a \"q\"\n", "2024-01-02T03:04:05.000000006Z");
        assert_eq!(
            line,
            "{\"log\":\"a \\\"q\\\"\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-02T03:04:05.000000006Z\"}\n"
        );
        let back: Entry = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back.log, "a \"q\"\n");
    }

    fn logged(chunks: &[(Stream, &[u8])]) -> Vec<Entry> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::open(&path, LogOptions::default()).unwrap();
        for (s, b) in chunks {
            w.write(*s, b).unwrap();
        }
        w.finish().unwrap();
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn escapes_match_serde() {
        let raw = "tab\t \u{1} quote\" back\\ é\r\n";
        let line = format_entry(Stream::Stdout, raw.as_bytes(), "T");
        let entry: Entry = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(entry, Entry { log: raw.into(), stream: "stdout".into(), time: "T".into() });
        let invalid = format_entry(Stream::Stdout, b"\xff\n", "T");
        assert_eq!(serde_json::from_str::<Entry>(invalid.trim_end()).unwrap().log, "\u{fffd}\n");
    }

    #[test]
    fn lines_are_joined_across_reads_and_split_per_stream() {
        let e = logged(&[
            (Stream::Stdout, b"he"),
            (Stream::Stderr, b"oops\n"),
            (Stream::Stdout, b"llo\nwor"),
            (Stream::Stdout, b"ld"),
        ]);
        let got: Vec<(&str, &str)> = e.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(got, [("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "world")]);
        assert!(humantime::parse_rfc3339(&e[0].time).is_ok(), "{}", e[0].time);
    }

    #[test]
    fn long_lines_are_split_like_docker() {
        let long = vec![b'x'; MAX_LINE + 10];
        let e = logged(&[(Stream::Stdout, &long), (Stream::Stdout, b"\n")]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[1].log, format!("{}\n", "x".repeat(10)));
    }

    #[test]
    fn the_log_rotates_at_max_size_and_keeps_max_file_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let options = LogOptions::parse(&["max-size=1k,max-file=3"]).unwrap();
        let mut w = LogWriter::open(&path, options).unwrap();
        let batch: String = (0..50).map(|i| format!("line {i:03} {}\n", "x".repeat(50))).collect();
        w.write(Stream::Stdout, batch.as_bytes()).unwrap();
        for i in 50..100 {
            w.write(Stream::Stdout, format!("line {i:03} {}\n", "x".repeat(50)).as_bytes()).unwrap();
        }
        let files = log_files(&path, options);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 1024, "{f:?}");
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.contains("line 099"), "{last}");
        let oldest = std::fs::read_to_string(&files[0]).unwrap();
        assert!(!oldest.contains("line 000"), "the oldest entries went");
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn log_options_parse_like_docker() {
        assert_eq!(LogOptions::parse::<&str>(&[]).unwrap(), LogOptions::default());
        let o = LogOptions::parse(&["max-size=5m", "max-file=2"]).unwrap();
        assert_eq!((o.max_size, o.max_files), (5 << 20, 2));
        for bad in ["max-size=10", "max-file=0", "max-file=x", "mode=non-blocking", "max-size"] {
            assert!(LogOptions::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let text: String = (0..100_000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let mut f = File::open(&path).unwrap();
        let tail_of = |f: &mut File, n| {
            let off = tail_offset(f, n).unwrap() as usize;
            text[off..].to_owned()
        };
        assert_eq!(tail_of(&mut f, 2), "99998\n99999\n");
        assert_eq!(tail_of(&mut f, 0), "");
        assert_eq!(tail_of(&mut f, 1_000_000), text);
        std::fs::write(&path, "a\nb").unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(tail_offset(&mut f, 1).unwrap(), 2);
    }
}
