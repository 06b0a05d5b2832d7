//! `ctr diff CONTAINER`.

use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn diff(paths: &Paths, container: &str) -> Result<i32> {
    for change in ctr_cli::container::layer::diff(paths, container)? {
        println!("{} {}", change.kind, change.path);
    }
    Ok(0)
}
