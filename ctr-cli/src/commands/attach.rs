//! `ctr attach`: our stdio to a running container's, until it exits or
//! the detach keys (Ctrl-P Ctrl-Q) detach.

use crate::args::durable::AttachArgs;
use anyhow::Result;
use ctr_cli::container::attach::{attach as attach_to, Attachment, DetachKeys};
use ctr_cli::paths::Paths;

pub fn attach(paths: &Paths, args: AttachArgs) -> Result<i32> {
    let keys = args.detach_keys.as_deref().map(DetachKeys::parse).transpose()?;
    match attach_to(paths, &args.container, !args.no_stdin, keys)? {
        Attachment::Exited(code) => Ok(code),
        Attachment::Detached => Ok(0),
    }
}
