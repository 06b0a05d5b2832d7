//! `ctr logs`: a container's output, as its monitor logged it.

use crate::args::container::{parse_tail, LogsArgs};
use anyhow::Result;
use ctr_cli::paths::Paths;
use std::io::Write;

pub fn logs(paths: &Paths, args: LogsArgs) -> Result<i32> {
    let tail = parse_tail(&args.tail)?;
    ctr_cli::logs::read(paths, &args.container, tail, args.follow, |entries| {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for entry in entries {
            let sink: &mut dyn Write = if entry.stream == "stderr" { &mut err } else { &mut out };
            if args.timestamps {
                write!(sink, "{} ", entry.time)?;
            }
            sink.write_all(entry.log.as_bytes())?;
        }
        out.flush()
    })?;
    Ok(0)
}
