//! Receiving frames that carry a file descriptor (SCM_RIGHTS) on a Unix
//! stream: the helper's pidfd, and the terminal master that `ctr init`
//! hands back (sent with [`ctr_core::frame::write_frame_with_fd`]). The
//! descriptor rides on the frame's first bytes; the rest is read as a
//! normal frame, with the same length checks.

use ctr_core::frame::{self, FrameError};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Reads one frame and the descriptor that may travel with it.
pub fn recv_with_fd<T: DeserializeOwned>(channel: &UnixStream) -> Result<(T, Option<OwnedFd>), FrameError> {
    let mut prefix = [0u8; 4];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (got, fd) = {
        let mut iov = [IoSliceMut::new(&mut prefix)];
        let msg = loop {
            match recvmsg::<()>(channel.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(|e| FrameError::Io(e.into()))?,
            }
        };
        let mut fd = None;
        for c in msg.cmsgs().map_err(|e| FrameError::Io(e.into()))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // The kernel just installed it in our table for us.
                    let owned = crate::sys::adopt(raw);
                    fd.get_or_insert(owned);
                }
            }
        }
        (msg.bytes, fd)
    };
    if got == 0 {
        return Err(FrameError::Closed);
    }
    let mut reader = channel;
    if got < prefix.len() {
        std::io::Read::read_exact(&mut reader, &mut prefix[got..])
            .map_err(|_| FrameError::Truncated { expected: prefix.len(), got })?;
    }
    let len = frame::parse_len(prefix)?;
    let msg = frame::read_body(&mut reader, len)?;
    Ok((msg, fd))
}
