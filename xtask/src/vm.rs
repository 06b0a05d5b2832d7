//! `cargo xtask test --vm`: the test run inside a pure cgroup-v2 QEMU guest.

use crate::test_driver::Tally;
use anyhow::{bail, Result};

pub fn run_tests(_tally: &Tally, _extra: &[String]) -> Result<()> {
    bail!("--vm is not implemented yet")
}
