//! Bounds on decompressing image layers, against decompression bombs (issue
//! 10, item 6): a 1 MB gzip of zeros inflates to 1 GiB, and an archive can
//! be built to decompress slowly. Checked on the decompressing side of
//! every layer ([`super::decode_and_hash`]), chunk by chunk, so a bomb is
//! stopped after a bounded amount of work and disk, and its temporary
//! layer and blob are removed like any failed layer's:
//!
//! - the ratio of decompressed to compressed bytes of one layer, once it
//!   has produced more than [`RATIO_GRACE`] (small layers of zeros are
//!   legitimately very compressible);
//! - the decompressed bytes of one pull, load or import, over all its
//!   layers (counted across the threads that unpack them);
//! - the time one layer takes to read, decompress and unpack.
//!
//! The user sets them in `ctr.toml` ([`crate::user_config`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Below this many decompressed bytes a layer's ratio is not checked.
pub const RATIO_GRACE: u64 = 16 << 20;

pub use crate::user_config::{UnpackLimits, DEFAULT_MAX_RATIO, DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT};

/// Where to change a limit, for the error that names it.
fn advice(key: &str) -> String {
    format!(
        "if you trust this image, raise `{key}` under [image] in {} (0 for no limit)",
        crate::user_config::shown_path()
    )
}

/// Whether `decompressed` bytes from `compressed` bytes break `max_ratio`.
pub fn ratio_exceeded(compressed: u64, decompressed: u64, max_ratio: u64) -> bool {
    decompressed > RATIO_GRACE && decompressed > compressed.saturating_mul(max_ratio)
}

/// The limits and the decompressed bytes counted so far, shared by every
/// layer of one operation.
#[derive(Debug, Default)]
pub struct UnpackGuard {
    limits: UnpackLimits,
    total: AtomicU64,
}

impl UnpackGuard {
    pub fn new(limits: UnpackLimits) -> Self {
        Self { limits, total: AtomicU64::new(0) }
    }

    /// Starts one layer's clock.
    pub fn layer(&self) -> LayerGuard<'_> {
        LayerGuard { guard: self, started: Instant::now() }
    }
}

pub struct LayerGuard<'a> {
    guard: &'a UnpackGuard,
    started: Instant,
}

impl LayerGuard<'_> {
    /// After a chunk of `chunk` bytes: this layer has given `decompressed`
    /// bytes from `compressed` bytes of archive so far.
    pub fn check(&self, compressed: u64, decompressed: u64, chunk: u64) -> Result<(), String> {
        let limits = &self.guard.limits;
        if let Some(max) = limits.max_ratio.filter(|&max| ratio_exceeded(compressed, decompressed, max)) {
            return Err(format!(
                "refusing the layer: {decompressed} bytes decompressed from {compressed} bytes of archive, more than the \
                 {max}:1 ratio allowed (a decompression bomb?); {}",
                advice("max_unpack_ratio")
            ));
        }
        let total = self.guard.total.fetch_add(chunk, Ordering::Relaxed).saturating_add(chunk);
        if let Some(max) = limits.max_size.filter(|&max| total > max) {
            return Err(format!(
                "refusing the image: its layers decompress to more than {max} bytes; {}",
                advice("max_unpack_size")
            ));
        }
        if let Some(max) = limits.timeout.filter(|&max| self.started.elapsed() > max) {
            return Err(format!(
                "refusing the layer: unpacking it took longer than {}; {}",
                humantime::format_duration(max),
                advice("unpack_timeout")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ratio_counts_only_past_the_grace() {
        // 1 MB of gzip that became 1 GiB: about 1000:1.
        assert!(ratio_exceeded(1 << 20, 1 << 30, 100));
        assert!(!ratio_exceeded(1 << 20, 1 << 30, 1024));
        // A small layer of zeros: a huge ratio, but little work.
        assert!(!ratio_exceeded(1 << 10, RATIO_GRACE, 100));
        assert!(ratio_exceeded(1 << 10, RATIO_GRACE + 1, 100));
        // Exactly at the ratio is allowed; no compressed byte read yet is not a division by zero.
        assert!(!ratio_exceeded(1 << 20, 100 << 20, 100));
        assert!(ratio_exceeded(0, RATIO_GRACE + 1, 100));
        assert!(!ratio_exceeded(u64::MAX, u64::MAX, 2));
    }

    #[test]
    fn the_size_limit_counts_every_layer_of_an_operation() {
        let guard = UnpackGuard::new(UnpackLimits { max_ratio: None, max_size: Some(100), timeout: None });
        let (a, b) = (guard.layer(), guard.layer());
        assert!(a.check(60, 60, 60).is_ok());
        let err = b.check(50, 50, 50).unwrap_err();
        assert!(err.contains("more than 100 bytes") && err.contains("max_unpack_size"), "{err}");
    }

    #[test]
    fn errors_name_the_setting_and_the_file() {
        let guard = UnpackGuard::new(UnpackLimits::default());
        let err = guard.layer().check(1 << 20, 1 << 30, 1 << 30).unwrap_err();
        assert!(err.contains("100:1") && err.contains("max_unpack_ratio") && err.contains("ctr.toml"), "{err}");
        let slow = UnpackGuard::new(UnpackLimits { timeout: Some(Duration::ZERO), ..UnpackLimits::default() });
        let layer = slow.layer();
        std::thread::sleep(Duration::from_millis(2));
        let err = layer.check(1, 1, 1).unwrap_err();
        assert!(err.contains("unpack_timeout"), "{err}");
        let unlimited = UnpackGuard::new(UnpackLimits { max_ratio: None, max_size: None, timeout: None });
        assert!(unlimited.layer().check(1, u64::MAX / 2, u64::MAX / 2).is_ok());
    }
}
