//! `ctr ps`: containers (running ones; -a for all), as docker lists them.

use crate::args::container::PsArgs;
use crate::output::status::{created_text, status_text};
use crate::output::table::write_table;
use anyhow::{bail, Result};
use ctr_cli::container::State;
use ctr_cli::paths::Paths;
use std::io::Write;

pub fn ps(paths: &Paths, args: PsArgs) -> Result<i32> {
    let states: Vec<State> = ctr_cli::container::list(paths)?.into_iter().filter(|s| args.all || s.is_up()).collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", s.short_id())?;
        }
    } else if args.format.as_deref() == Some("json") {
        for s in &states {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "ID": s.short_id(), "Id": s.id, "Names": s.name, "Image": s.image, "Command": s.command.join(" "),
                    "CreatedAt": s.created, "RunningFor": created_text(s), "Status": status_text(s),
                    "State": s.run_state().docker_name(), "Pid": s.init.as_ref().filter(|_| s.is_up()).map(|p| p.pid),
                })
            )?;
        }
    } else if let Some(format) = &args.format {
        bail!("--format {format:?} is not supported: use `json`, or `ctr inspect --format '{{{{.State.Status}}}}'`");
    } else {
        let mut rows = vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"].map(String::from)];
        for s in &states {
            let mut command: String = s.command.join(" ");
            if command.chars().count() > 20 {
                command = command.chars().take(19).collect::<String>() + "…";
            }
            rows.push([
                s.short_id().to_owned(),
                s.image.clone(),
                format!("\"{command}\""),
                created_text(s),
                status_text(s),
                s.name.clone(),
            ]);
        }
        write_table(&mut out, &rows)?;
    }
    Ok(0)
}
