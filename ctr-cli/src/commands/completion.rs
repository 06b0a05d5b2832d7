//! `ctr completion SHELL`: the shell's completion script for ctr, and
//! `ctr generate man`: manual pages for ctr and each subcommand.

use crate::args::{Cli, CompletionArgs, ManArgs};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;

pub fn completion(args: CompletionArgs) -> Result<i32> {
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "ctr", &mut script);
    std::io::stdout().lock().write_all(&script).context("write the completion script")?;
    Ok(0)
}

pub fn man(args: ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &args.dir)
        .with_context(|| format!("write man pages in {}", args.dir.display()))?;
    println!("{}", args.dir.display());
    Ok(0)
}
