//! `ctr image inspect`: images as docker's JSON, or through `--format`.

use anyhow::{bail, Result};
use ctr_cli::image::local::{inspect_json, open_store};
use ctr_cli::paths::Paths;

pub fn inspect(paths: &Paths, names: &[String], format: Option<&str>) -> Result<i32> {
    let store = open_store(paths)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match store.lookup(name)? {
            Some(record) => out.push(inspect_json(&record)),
            None => missing.push(name.clone()),
        }
    }
    crate::output::listing::print_each(&mut std::io::stdout().lock(), format, &out)?;
    if !missing.is_empty() {
        bail!("no such image: {}", missing.join(", "));
    }
    Ok(0)
}
