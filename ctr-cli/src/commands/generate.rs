//! `ctr generate systemd`: prints (or with --files writes) a unit.

use crate::args::durable::GenerateCommand;
use anyhow::{Context, Result};
use ctr_cli::container::systemd_unit::{generate as unit, UnitScope};
use ctr_cli::paths::Paths;

pub fn generate(paths: &Paths, command: GenerateCommand) -> Result<i32> {
    let GenerateCommand::Systemd(args) = command;
    let scope = if args.system { UnitScope::System } else { UnitScope::User };
    let (file, text) = unit(paths, &args.container, scope, args.time)?;
    if args.files {
        std::fs::write(&file, text).with_context(|| format!("write {file}"))?;
        println!("{file}");
    } else {
        print!("{text}");
    }
    Ok(0)
}
