//! The session: `Hello`, then exactly one operation, then exit. The order is
//! enforced here, on the privileged side; each operation is validated in
//! full before it is applied. Before any operation, what the caller's dead
//! containers left behind is removed ([`reconcile`]), so a helper killed
//! half-way is cleaned up by the caller's next use of the helper.

use crate::caller::Caller;
use crate::{cgroup, exec, network, reconcile, record, spawn};
use ctr_core::config::HelperConfig;
use ctr_core::frame::{self, FrameError};
use ctr_core::protocol::{HelperError, Request, Response, PROTOCOL_VERSION};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

fn frame_error(e: FrameError) -> HelperError {
    HelperError::Frame(e.to_string())
}

pub fn send(channel: &mut UnixStream, response: &Response) -> Result<(), HelperError> {
    frame::write_frame(channel, response).map_err(frame_error)
}

pub fn serve(
    channel: &mut UnixStream,
    caller: &Caller,
    config: Result<HelperConfig, HelperError>,
) -> Result<(), HelperError> {
    match frame::read_frame(channel).map_err(frame_error)? {
        Request::Hello { version } if version == PROTOCOL_VERSION => {}
        Request::Hello { version } => return Err(HelperError::Version { helper: PROTOCOL_VERSION, client: version }),
        other => return Err(HelperError::OutOfOrder { expected: "Hello".into(), got: other.kind().into() }),
    }
    let config = config?;
    send(channel, &Response::Hello { version: PROTOCOL_VERSION })?;
    let uid = caller.uid.as_raw();
    let request = frame::read_frame(channel).map_err(frame_error)?;
    if !matches!(request, Request::Reconcile) {
        // Best effort: what cannot be removed now stays for the next run.
        // The container that `RemoveCgroup` names is removed by it.
        let own = if let Request::RemoveCgroup { id } = &request { Some(id) } else { None };
        if let Err(e) = reconcile::dead_records(&config, uid, own) {
            eprintln!("ctr-setuid-helper: warning: cleaning up after dead containers: {e}");
        }
    }

    let response = match request {
        Request::Spawn(request) => {
            let validated = spawn::validate(caller, &config, &request)?;
            return send_spawned(channel, spawn::apply(caller, &config, validated)?);
        }
        Request::Exec { id } => return send_spawned(channel, exec::apply(caller, &id)?),
        Request::RemoveCgroup { id } => reconcile::remove(&config, uid, &id).map(|()| Response::Removed)?,
        Request::Reconcile => Response::Reconciled { containers: reconcile::all(&config, uid)? },
        Request::Freeze { id, frozen } => {
            cgroup::freeze(&record::load_existing(uid, &id)?.cgroups, frozen).map(|()| Response::Frozen { frozen })?
        }
        // New limits for a running container of the caller's (`ctr update`):
        // validated as at `Spawn`, written as at `Spawn` (the closed set of
        // `LimitFile`s only) to the cgroups that the root-owned record for
        // (caller's real uid, `id`) names. No path is in the request, and
        // another user's container id finds no record.
        Request::Update { id, limits } => {
            spawn::validate_limits(&limits)?;
            cgroup::apply_limits(&record::load_existing(uid, &id)?.cgroups, &limits).map(|()| Response::Updated)?
        }
        Request::NetworkCreate { name, subnet } => {
            Response::Networks(vec![network::create(caller, &config, name, subnet)?])
        }
        Request::NetworkRemove { name } => {
            network::remove(caller, &config, &name).map(|()| Response::NetworkRemoved)?
        }
        Request::NetworkList => Response::Networks(network::list(caller, &config)?),
        other @ Request::Hello { .. } => {
            return Err(HelperError::OutOfOrder { expected: "an operation".into(), got: other.kind().into() })
        }
    };
    send(channel, &response)
}

/// `Spawned`, with the process's pidfd attached (SCM_RIGHTS).
fn send_spawned(channel: &UnixStream, (response, pidfd): spawn::Spawned) -> Result<(), HelperError> {
    frame::write_frame_with_fd(channel, &response, pidfd.as_fd()).map_err(frame_error)
}
