//! Reading a connection while checking, for every chunk, which process wrote it.
//!
//! Identity is decided once per connection (see [`crate::peer`]). A process
//! could connect, pass the socket to a child, and exec an installed binary so
//! that the check sees a legitimate executable while the child talks. With
//! `SO_PASSCRED` on our end, the kernel attaches the *writer's* credentials
//! to every chunk and never merges chunks of different writers; this reader
//! refuses any chunk whose writer is not the identified process.
//! Must never: hand out bytes before their writer was checked.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use interprocess::os::unix::uds_local_socket::tokio::Stream;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};
use tokio::io::{AsyncRead, Interest, ReadBuf};

/// An [`AsyncRead`] over a connection that accepts bytes only from `pid`/`uid`.
pub struct CheckedReader {
    stream: Arc<Stream>,
    pid: i32,
    uid: u32,
}

impl CheckedReader {
    /// Turns on `SO_PASSCRED` for the connection and reads only what `pid` wrote.
    pub fn new(stream: Arc<Stream>, pid: i32, uid: u32) -> io::Result<CheckedReader> {
        setsockopt(stream.inner(), sockopt::PassCred, &true).map_err(io::Error::from)?;
        Ok(CheckedReader { stream, pid, uid })
    }

    fn recv_checked(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.stream.inner().as_raw_fd();
        let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<UnixAddr>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(io::Error::from)?;
        let n = msg.bytes;
        if n == 0 {
            return Ok(0);
        }
        let writer = msg.cmsgs().map_err(io::Error::from)?.find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(c) => Some((c.pid(), c.uid())),
            _ => None,
        });
        match writer {
            Some((pid, uid)) if pid == self.pid && uid == self.uid => Ok(n),
            Some((pid, uid)) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "bytes written by pid {pid} (uid {uid}), not by the identified peer pid {}",
                    self.pid
                ),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "bytes without writer credentials",
            )),
        }
    }
}

impl AsyncRead for CheckedReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.inner().poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            match self
                .stream
                .inner()
                .try_io(Interest::READABLE, || self.recv_checked(dst))
            {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
