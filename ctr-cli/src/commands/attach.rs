//! `ctr attach`: our stdio to a running container's, until it exits or
//! Ctrl-P Ctrl-Q detaches.

use crate::args::durable::AttachArgs;
use anyhow::Result;
use ctr_cli::container::attach::{attach as attach_to, Attachment};
use ctr_cli::paths::Paths;

pub fn attach(paths: &Paths, args: AttachArgs) -> Result<i32> {
    match attach_to(paths, &args.container, !args.no_stdin)? {
        Attachment::Exited(code) => Ok(code),
        Attachment::Detached => Ok(0),
    }
}
