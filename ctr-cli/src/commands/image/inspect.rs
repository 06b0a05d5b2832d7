//! `ctr image inspect`: images as docker's JSON.

use anyhow::{bail, Result};
use ctr_cli::image::local::{inspect_json, open_store};
use ctr_cli::paths::Paths;
use std::io::Write;

pub fn inspect(paths: &Paths, names: &[String]) -> Result<i32> {
    let store = open_store(paths)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match store.lookup(name)? {
            Some(record) => out.push(inspect_json(&record)),
            None => missing.push(name.clone()),
        }
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &out)?;
    writeln!(stdout)?;
    if !missing.is_empty() {
        bail!("no such image: {}", missing.join(", "));
    }
    Ok(0)
}
