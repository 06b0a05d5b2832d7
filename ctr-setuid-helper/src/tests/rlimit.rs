//! Unit tests of [`crate::rlimit`]: a child module of it, so they reach its
//! private items; kept apart so the privileged code reads on its own.

use super::*;

#[test]
fn a_hard_limit_is_short_unless_unlimited_or_large_enough() {
    assert!(!short(RLIM_INFINITY, None));
    assert!(short(1 << 40, None), "CPU and FSIZE must be unlimited");
    assert!(!short(4096, Some(256)));
    assert!(short(255, Some(256)));
    assert!(!short(RLIM_INFINITY, Some(256)));
}
