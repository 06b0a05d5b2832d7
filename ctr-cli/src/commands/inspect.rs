//! `ctr inspect`: containers as JSON, or through a `--format` template.

use crate::args::container::InspectArgs;
use crate::output::template::render_template;
use anyhow::Result;
use ctr_cli::paths::Paths;

pub fn inspect(paths: &Paths, args: InspectArgs) -> Result<i32> {
    let mut all = Vec::new();
    let status = super::each(&args.containers, |key| {
        all.push(ctr_cli::container::inspect::inspect(paths, key)?);
        Ok(())
    });
    match args.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&all)?),
        Some(template) => {
            for value in &all {
                println!("{}", render_template(template, value)?);
            }
        }
    }
    Ok(status)
}
