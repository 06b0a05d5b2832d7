//! A netlink connection driven on the calling thread, without an async
//! runtime.
//!
//! rtnetlink is async: requests are futures answered by a `Connection`
//! future that owns the socket. Its stock sockets need tokio or smol, both
//! heavy for a setuid helper. Here the socket is a non-blocking netlink
//! socket whose reads return `Pending` on `EWOULDBLOCK`, and [`Netlink::run`]
//! is a tiny executor: it polls the request and the connection, and when
//! neither can make progress and nothing woke them, it sleeps in `poll(2)` on
//! the socket until the kernel answers. Everything stays on one thread, in
//! the namespace it is in: a netlink socket belongs to the network
//! namespace it was created in, and nothing here opens one elsewhere.

use bytes::BufMut;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::Connection;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, AsyncSocket, Socket, SocketAddr};
use rtnetlink::Handle;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How long one request may wait for the kernel. The kernel answers
/// rtnetlink requests synchronously, so this only guards against a bug
/// turning into a hung setuid helper.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A non-blocking netlink socket for rtnetlink's `Connection`.
pub(crate) struct PollSocket(Socket);

impl PollSocket {
    fn from_socket(socket: Socket) -> io::Result<Self> {
        socket.set_non_blocking(true)?;
        Ok(Self(socket))
    }

    /// `Pending` on `EWOULDBLOCK`: [`Netlink::run`] polls the fd and retries.
    fn ready<T>(result: io::Result<T>) -> Poll<io::Result<T>> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        }
    }
}

impl AsyncSocket for PollSocket {
    fn socket_ref(&self) -> &Socket {
        &self.0
    }

    fn socket_mut(&mut self) -> &mut Socket {
        &mut self.0
    }

    fn new(protocol: isize) -> io::Result<Self> {
        Self::from_socket(Socket::new(protocol)?)
    }

    fn poll_send(&self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Self::ready(self.0.send(buf, 0))
    }

    fn poll_send_to(&self, _: &mut Context<'_>, buf: &[u8], addr: &SocketAddr) -> Poll<io::Result<usize>> {
        Self::ready(self.0.send_to(buf, addr, 0))
    }

    fn poll_recv<B: BufMut>(&self, _: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<()>> {
        Self::ready(self.0.recv(buf, 0).map(drop))
    }

    fn poll_recv_from<B: BufMut>(&self, _: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<SocketAddr>> {
        Self::ready(self.0.recv_from(buf, 0).map(|(_, addr)| addr))
    }

    fn poll_recv_from_full(&self, _: &mut Context<'_>) -> Poll<io::Result<(Vec<u8>, SocketAddr)>> {
        Self::ready(self.0.recv_from_full())
    }
}

/// Set by rtnetlink's channels when one side has something for the other.
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Why a request could not be carried out, apart from the kernel's answer.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("opening a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("waiting for the kernel's netlink answer: {0}")]
    Poll(#[source] nix::Error),
    #[error("the kernel did not answer a netlink request within {0:?}")]
    Timeout(Duration),
    #[error("the netlink connection closed unexpectedly")]
    Closed,
}

/// One rtnetlink connection, bound to the namespace it was opened in.
pub(crate) struct Netlink {
    connection: Connection<RouteNetlinkMessage, PollSocket>,
    handle: Handle,
}

impl Netlink {
    /// A connection in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Self, DriverError> {
        let socket = Socket::new(NETLINK_ROUTE).and_then(PollSocket::from_socket).map_err(DriverError::Socket)?;
        let (connection, handle, _unsolicited) = rtnetlink::from_socket(socket);
        Ok(Self { connection, handle })
    }

    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Drives `request` and the connection on this thread until the request
    /// completes.
    pub(crate) fn run<T>(&mut self, request: impl Future<Output = T>) -> Result<T, DriverError> {
        let flag = Arc::new(WakeFlag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let mut request = pin!(request);
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            if let Poll::Ready(value) = request.as_mut().poll(&mut cx) {
                return Ok(value);
            }
            if Pin::new(&mut self.connection).poll(&mut cx).is_ready() {
                return Err(DriverError::Closed);
            }
            // A channel wake-up means the other side has work: poll again.
            if flag.0.swap(false, Ordering::AcqRel) {
                continue;
            }
            self.wait_readable(deadline)?;
        }
    }

    /// Sleeps until the socket is readable, in short slices so that a wake-up
    /// that raced with the check above costs at most one slice.
    fn wait_readable(&mut self, deadline: Instant) -> Result<(), DriverError> {
        if Instant::now() >= deadline {
            return Err(DriverError::Timeout(REQUEST_TIMEOUT));
        }
        let socket = self.connection.socket_mut().socket_ref();
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(_) | Err(nix::Error::EINTR) => Ok(()),
            Err(e) => Err(DriverError::Poll(e)),
        }
    }
}
