//! Throwaway network namespaces and tiny TCP servers for the root tests.
//!
//! A namespace is created by a short-lived thread that `unshare`s
//! CLONE_NEWNET and opens its own `/proc/thread-self/ns/net`; that fd is the
//! only thing keeping the namespace alive, so dropping [`NetNs`] (also while
//! unwinding from a failed assertion, or the process dying) destroys the
//! namespace with every device, address and nftables rule in it. Nothing is
//! ever created in the test process's own namespace.
#![allow(dead_code)]

use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Whether the root tests were asked for; they are `#[ignore]`d otherwise.
pub fn enabled() -> bool {
    std::env::var_os("CTR_NET_ROOT_TESTS").is_some_and(|v| v == "1")
}

pub struct NetNs {
    fd: OwnedFd,
}

impl NetNs {
    pub fn new() -> Self {
        let fd = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): the root tests need root");
            OwnedFd::from(File::open("/proc/thread-self/ns/net").expect("open ns/net"))
        })
        .join()
        .unwrap();
        let ns = Self { fd };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                setns(&self.fd, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `ip ARGS` inside this namespace; panics if it fails.
    pub fn ip(&self, args: &[&str]) {
        let status = self.run(|| Command::new("/usr/sbin/ip").args(args).status()).expect("running ip");
        assert!(status.success(), "ip {args:?} failed");
    }

    /// Runs `ip ARGS` inside this namespace and returns its output.
    pub fn ip_output(&self, args: &[&str]) -> String {
        let out = self.run(|| Command::new("/usr/sbin/ip").args(args).output()).expect("running ip");
        assert!(out.status.success(), "ip {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Reads a file as this namespace sees it: right for `/proc/sys/net`,
    /// which follows the reading thread's namespace.
    pub fn read(&self, path: &str) -> String {
        self.run(|| std::fs::read_to_string(path)).unwrap().trim().to_owned()
    }
}

/// A TCP server that answers every connection with `token` and the peer's
/// address, then closes.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(ns: &NetNs, addr: SocketAddrV4, token: &'static str) -> Self {
        // The socket belongs to the namespace it was created in; the accept
        // loop itself can run anywhere.
        let listener = ns.run(|| TcpListener::bind(addr)).expect("bind");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = writeln!(stream, "{token} {}", peer.ip());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` and returns the server's answer
/// (`"<token> <peer address as the server saw it>"`).
pub fn fetch(ns: &NetNs, addr: SocketAddrV4, timeout: Duration) -> io::Result<String> {
    ns.run(|| {
        let mut stream = TcpStream::connect_timeout(&addr.into(), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.trim().to_owned())
    })
}

/// Like [`fetch`], retrying for a few seconds (a fresh link may need a
/// moment before its carrier and neighbours are up).
pub fn fetch_eventually(ns: &NetNs, addr: SocketAddrV4) -> String {
    let mut last = None;
    for _ in 0..20 {
        match fetch(ns, addr, Duration::from_millis(500)) {
            Ok(answer) => return answer,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not reach {addr}: {}", last.unwrap());
}
