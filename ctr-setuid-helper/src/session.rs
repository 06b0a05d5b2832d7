//! The session: `Hello`, then exactly one operation, then exit. The order is
//! enforced here, on the privileged side; each operation is validated in
//! full before it is applied. Before any operation, what the caller's dead
//! containers left behind is removed ([`reconcile`]), so a helper killed
//! half-way is cleaned up by the caller's next use of the helper.

use crate::caller::Caller;
use crate::{cgroup, exec, network, reconcile, record, spawn, update};
use ctr_core::config::HelperConfig;
use ctr_core::frame::{self, FrameError};
use ctr_core::protocol::{HelperError, Request, Response, PROTOCOL_VERSION};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

fn frame_error(e: FrameError) -> HelperError {
    HelperError::Frame(e.to_string())
}

fn receive(channel: &mut UnixStream) -> Result<Request, HelperError> {
    frame::read_frame(channel).map_err(frame_error)
}

pub fn send(channel: &mut UnixStream, response: &Response) -> Result<(), HelperError> {
    frame::write_frame(channel, response).map_err(frame_error)
}

pub fn serve(
    channel: &mut UnixStream,
    caller: &Caller,
    config: Result<HelperConfig, HelperError>,
) -> Result<(), HelperError> {
    match receive(channel)? {
        Request::Hello { version } if version == PROTOCOL_VERSION => {}
        Request::Hello { version } => return Err(HelperError::Version { helper: PROTOCOL_VERSION, client: version }),
        other => return Err(HelperError::OutOfOrder { expected: "Hello".into(), got: other.kind().into() }),
    }
    let config = config?;
    send(channel, &Response::Hello { version: PROTOCOL_VERSION })?;
    let uid = caller.uid.as_raw();
    let request = receive(channel)?;
    if !matches!(request, Request::Reconcile) {
        // Best effort: what cannot be removed now stays for the next run.
        if let Err(e) = reconcile::dead_records(&config, uid) {
            eprintln!("ctr-setuid-helper: warning: cleaning up after dead containers: {e}");
        }
    }

    match request {
        Request::Spawn(request) => {
            let validated = spawn::validate(caller, &config, &request)?;
            send_spawned(channel, spawn::apply(caller, &config, validated)?)
        }
        Request::RemoveCgroup { id } => {
            reconcile::remove(&config, uid, &id)?;
            send(channel, &Response::Removed)
        }
        Request::Reconcile => {
            let containers = reconcile::all(&config, uid)?;
            send(channel, &Response::Reconciled { containers })
        }
        Request::Exec { id } => send_spawned(channel, exec::apply(caller, &id)?),
        Request::Freeze { id, frozen } => {
            cgroup::freeze(&record::load_existing(uid, &id)?.cgroups, frozen)?;
            send(channel, &Response::Frozen { frozen })
        }
        Request::Update { id, limits } => {
            update::apply(uid, &id, &limits)?;
            send(channel, &Response::Updated)
        }
        Request::NetworkCreate { name, subnet } => {
            let created = network::create(caller, &config, name, subnet)?;
            send(channel, &Response::Networks(vec![created]))
        }
        Request::NetworkRemove { name } => {
            network::remove(caller, &config, &name)?;
            send(channel, &Response::NetworkRemoved)
        }
        Request::NetworkList => send(channel, &Response::Networks(network::list(caller, &config)?)),
        other @ Request::Hello { .. } => {
            Err(HelperError::OutOfOrder { expected: "an operation".into(), got: other.kind().into() })
        }
    }
}

/// `Spawned`, with the process's pidfd attached (SCM_RIGHTS).
fn send_spawned(channel: &UnixStream, spawned: spawn::Spawned) -> Result<(), HelperError> {
    let response =
        Response::Spawned { pid: spawned.pid.as_raw(), cgroups: spawned.cgroups.dirs, network: spawned.network };
    frame::write_frame_with_fd(channel, &response, spawned.pidfd.as_fd()).map_err(frame_error)
}
