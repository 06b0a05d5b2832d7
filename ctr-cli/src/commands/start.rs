//! `ctr start [-a] [-i]`: starts containers again; with -a, attaches to one.

use crate::args::durable::StartArgs;
use anyhow::{bail, Result};
use ctr_cli::container::attach::{self, Attachment, DetachKeys};
use ctr_cli::container::start::{start as start_container, StartOutcome};
use ctr_cli::paths::Paths;

pub fn start(paths: &Paths, args: StartArgs) -> Result<i32> {
    if !args.attach && args.detach_keys.is_some() {
        bail!("--detach-keys is for -a: without it nothing attaches");
    }
    if !args.attach {
        return Ok(super::each(&args.containers, |key| {
            match start_container(paths, key, false, args.unless_stopped)? {
                StartOutcome::Started(_) => {
                    println!("{key}");
                    Ok(())
                }
                StartOutcome::Failed { message, .. } => bail!("{key}: {message}"),
            }
        }));
    }
    let [key] = args.containers.as_slice() else { bail!("-a attaches to one container: name just one") };
    let keys = args.detach_keys.as_deref().map(DetachKeys::parse).transpose()?;
    match start_container(paths, key, true, args.unless_stopped)? {
        StartOutcome::Started(Some(connection)) => {
            let (_, state) = ctr_cli::container::Container::locate(paths, key)?;
            let keys = attach::detach_keys(&state, keys)?;
            let relay = attach::Relay { tty: state.tty, send_input: args.interactive, keys, ..Default::default() };
            match relay.run(paths, key, connection)? {
                Attachment::Exited(code) => Ok(code),
                Attachment::Detached => Ok(0),
            }
        }
        StartOutcome::Started(None) => Ok(0),
        StartOutcome::Failed { exit_code, message } => {
            eprintln!("ctr: {message}");
            Ok(exit_code)
        }
    }
}
