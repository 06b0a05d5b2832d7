//! Progress for pulls, loads and imports: on a terminal, one live bar per
//! layer (bytes, total, speed); otherwise (CI logs, pipes) plain lines, one
//! when a layer starts, one every few seconds while it runs, one when it is
//! done. Everything goes to stderr, so stdout stays for results.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a plain line reports a running layer.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    /// Without a terminal: print plain lines (else nothing).
    plain: bool,
}

impl Progress {
    /// Bars when stderr is a terminal; else plain lines if `plain_lines`.
    pub fn new(plain_lines: bool) -> Progress {
        if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            Progress { multi: Some(multi), plain: false }
        } else {
            Progress { multi: None, plain: plain_lines }
        }
    }

    /// No output at all (`-q`).
    pub fn quiet() -> Progress {
        Progress { multi: None, plain: false }
    }

    /// A line above the bars, or a plain line.
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None if self.plain => eprintln!("{line}"),
            None => {}
        }
    }

    /// A bar for one layer (`id` is a short digest), `action` what it does.
    pub fn layer(&self, id: &str, total: Option<u64>, action: &str) -> LayerBar {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(match total {
                Some(total) => ProgressBar::new(total),
                None => ProgressBar::no_length(),
            });
            let template = match total {
                Some(_) => "{prefix}: {msg:12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                None => "{prefix}: {msg:12} {bytes:>10} {bytes_per_sec:>12}",
            };
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> "));
            bar.set_prefix(id.to_owned());
            bar.set_message(action.to_owned());
            bar
        });
        let size = total.map(|t| format!(" ({})", crate::units::human_size(t))).unwrap_or_default();
        if self.plain {
            eprintln!("{id}: {action}{size}");
        }
        LayerBar {
            bar,
            plain: self.plain,
            id: id.to_owned(),
            action: action.to_owned(),
            total,
            started: Instant::now(),
            count: Arc::new(AtomicU64::new(0)),
            last_line: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

/// One layer's progress; see [`Progress::layer`].
pub struct LayerBar {
    bar: Option<ProgressBar>,
    plain: bool,
    id: String,
    action: String,
    total: Option<u64>,
    started: Instant,
    count: Arc<AtomicU64>,
    last_line: Arc<Mutex<Instant>>,
}

impl LayerBar {
    /// Counts what is read through the returned reader.
    pub fn wrap<R: Read>(&self, inner: R) -> ProgressReader<'_, R> {
        ProgressReader { inner, bar: self }
    }

    fn advance(&self, n: u64) {
        let count = self.count.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_position(count);
        } else if self.plain {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= PLAIN_INTERVAL {
                *last = Instant::now();
                let of = self.total.map(|t| format!(" of {}", crate::units::human_size(t))).unwrap_or_default();
                eprintln!("{}: {} {}{of}", self.id, self.action, crate::units::human_size(count));
            }
        }
    }

    /// Says what the layer is doing now ("Downloading").
    pub fn set_action(&self, action: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(action.to_owned());
        }
    }

    /// Marks the layer done: `what` says how ("Pull complete", "Already exists").
    pub fn done(&self, what: &str) {
        let count = self.count.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 && count > 0 {
            format!(" in {secs:.1}s, {}/s", crate::units::human_size((count as f64 / secs) as u64))
        } else {
            String::new()
        };
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_owned());
                bar.finish();
            }
            None if self.plain => eprintln!("{}: {what} ({}{rate})", self.id, crate::units::human_size(count)),
            None => {}
        }
    }

    pub fn fail(&self, why: &str) {
        match &self.bar {
            Some(bar) => bar.abandon_with_message(format!("failed: {why}")),
            None if self.plain => eprintln!("{}: failed: {why}", self.id),
            None => {}
        }
    }

    /// Starts counting from zero again (a retried download).
    pub fn restart(&self, why: &str) {
        self.count.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(0);
        }
        if self.plain {
            eprintln!("{}: retrying: {why}", self.id);
        }
    }
}

pub struct ProgressReader<'a, R> {
    inner: R,
    bar: &'a LayerBar,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.advance(n as u64);
        Ok(n)
    }
}
