//! Sockets, through the seam: the same calls for tokio and for madsim (whose UDP API differs),
//! with the simulation firewall consulted on every send and connect.

use crate::fault::{self, Action, Proto};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use tokio::net::{TcpListener, TcpStream};

/// A UDP socket. `&self` methods, so one socket can be shared by a receive task and senders.
pub struct UdpSocket {
    /// Under madsim, only the port's owner (it allocates the port and closes with its node);
    /// datagrams go through the seam's own network, [`crate::simnet`].
    #[cfg_attr(madsim, allow(dead_code))]
    inner: tokio::net::UdpSocket,
    local: SocketAddr,
    #[cfg(madsim)]
    sim: crate::simnet::Socket,
    /// Whether datagrams to one address go in trains (UDP GSO); off for good once the kernel
    /// says this socket's device cannot.
    #[cfg(all(target_os = "linux", not(madsim)))]
    segments: std::sync::atomic::AtomicBool,
}

impl UdpSocket {
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let inner = tokio::net::UdpSocket::bind(addr).await?;
        let local = inner.local_addr()?;
        Ok(UdpSocket {
            #[cfg(madsim)]
            sim: crate::simnet::Socket::register(local),
            #[cfg(all(target_os = "linux", not(madsim)))]
            segments: crate::batch::can_segment(&inner).into(),
            inner,
            local,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one datagram. A datagram the simulated firewall blocks is silently lost, as on a
    /// real network.
    pub async fn send_to(&self, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
        if fault::check(Proto::Udp, Some(self.local), dst).is_some() || fault::udp_lost() {
            return Ok(());
        }
        #[cfg(madsim)]
        {
            self.sim.send(buf, dst);
            Ok(())
        }
        #[cfg(not(madsim))]
        {
            self.inner.send_to(buf, dst).await.map(|_| ())
        }
    }

    /// Receives one datagram; one longer than `buf` is truncated, as UDP does.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        #[cfg(madsim)]
        {
            let mut got = self.sim.recv(1).await?;
            let (from, data) = got.pop().expect("a receive brings at least one datagram");
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok((n, from))
        }
        #[cfg(not(madsim))]
        {
            self.inner.recv_from(buf).await
        }
    }

    /// Waits for datagrams and receives what is there, up to the inbox's capacity: in one system
    /// call on Linux (`recvmmsg`), everything due at once in simulation, one datagram a call
    /// elsewhere. Cancel-safe in simulation: a receive dropped before it completes takes nothing.
    pub async fn recv_many(&self, inbox: &mut Inbox) -> io::Result<()> {
        #[cfg(all(target_os = "linux", not(madsim)))]
        {
            use std::os::fd::AsRawFd;
            let fd = self.inner.as_raw_fd();
            self.inner
                .async_io(tokio::io::Interest::READABLE, || {
                    crate::batch::recv(fd, inbox)
                })
                .await
        }
        #[cfg(madsim)]
        {
            inbox.got.clear();
            let got = self.sim.recv(inbox.capacity()).await?;
            for (slot, (from, data)) in got.into_iter().enumerate() {
                let start = slot * MAX_DATAGRAM;
                inbox.data[start..start + data.len()].copy_from_slice(&data);
                inbox.got.push((slot, data.len(), from));
            }
            Ok(())
        }
        #[cfg(all(not(target_os = "linux"), not(madsim)))]
        {
            inbox.got.clear();
            let (n, from) = self.recv_from(&mut inbox.data[..MAX_DATAGRAM]).await?;
            inbox.got.push((0, n, from));
            Ok(())
        }
    }

    /// Sends each datagram to its address, in order, as [`send_to`](Self::send_to) would one by
    /// one: on Linux many to a system call (`sendmmsg`), and those to one address in trains
    /// (UDP GSO) where the kernel can. Each address's datagrams keep their order. One that the
    /// system refuses (an unreachable address, say) is lost, as a datagram may be; the rest
    /// still go.
    pub async fn send_many(&self, msgs: &[(&[u8], SocketAddr)]) {
        #[cfg(all(target_os = "linux", not(madsim)))]
        {
            use std::sync::atomic::Ordering::Relaxed;
            if msgs.len() < 2 || !self.segments.load(Relaxed) {
                return self.send_each(msgs).await;
            }
            let (order, trains) = crate::batch::trains(msgs);
            let lead = |t: &std::ops::Range<usize>| msgs[order[t.start]].0.len();
            // In the order planned, so each address's datagrams keep theirs: trains in runs of
            // one segment size, a call a run; datagrams that form no train (alone to their
            // address, or of a size that breaks the train) in runs of any size, as plain
            // datagrams, a call a run.
            let mut i = 0;
            while i < trains.len() {
                let (alone, size) = (trains[i].len() == 1, lead(&trains[i]));
                let run_end = (i..trains.len())
                    .find(|&j| {
                        let next_alone = trains[j].len() == 1;
                        next_alone != alone || (!alone && lead(&trains[j]) != size)
                    })
                    .unwrap_or(trains.len());
                if alone {
                    let plain: Vec<(&[u8], SocketAddr)> = trains[i..run_end]
                        .iter()
                        .map(|t| msgs[order[t.start]])
                        .collect();
                    self.send_each(&plain).await;
                    i = run_end;
                    continue;
                }
                let run: Vec<(Vec<std::io::IoSlice>, SocketAddr)> = trains[i..run_end]
                    .iter()
                    .map(|t| {
                        let parts = order[t.clone()]
                            .iter()
                            .map(|&k| std::io::IoSlice::new(msgs[k].0))
                            .collect();
                        (parts, msgs[order[t.start]].1)
                    })
                    .collect();
                self.send_trains(&run, size as u16).await;
                i = run_end;
            }
        }
        #[cfg(not(all(target_os = "linux", not(madsim))))]
        self.send_each(msgs).await
    }

    /// Sends trains of datagrams cut into `segment`-byte datagrams, many trains to a call
    /// (`sendmmsg` with UDP GSO). A train the kernel refuses goes datagram by datagram — and
    /// every train after it too if the device cannot take trains (`EIO`).
    #[cfg(all(target_os = "linux", not(madsim)))]
    async fn send_trains(&self, trains: &[(Vec<std::io::IoSlice<'_>>, SocketAddr)], segment: u16) {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering::Relaxed;
        let fd = self.inner.as_raw_fd();
        let mut rest = trains;
        while let [(parts, dst), ..] = rest {
            if !self.segments.load(Relaxed) {
                self.send_each(&one_by_one(parts, *dst)).await;
                rest = &rest[1..];
                continue;
            }
            let sent = self
                .inner
                .async_io(tokio::io::Interest::WRITABLE, || {
                    crate::batch::send_trains(fd, rest, segment)
                })
                .await;
            match sent.map_err(|e| e.raw_os_error()) {
                Ok(n) => rest = &rest[n.max(1)..],
                Err(Some(nix::libc::EIO)) => self.segments.store(false, Relaxed),
                Err(Some(nix::libc::EINVAL)) => {
                    self.send_each(&one_by_one(parts, *dst)).await;
                    rest = &rest[1..];
                }
                // Refused as a datagram would be (an unreachable address): lost.
                Err(_) => rest = &rest[1..],
            }
        }
    }

    /// Sends each datagram on its own: many to a system call on Linux (`sendmmsg`).
    async fn send_each(&self, msgs: &[(&[u8], SocketAddr)]) {
        #[cfg(all(target_os = "linux", not(madsim)))]
        {
            use std::os::fd::AsRawFd;
            let fd = self.inner.as_raw_fd();
            let mut rest = msgs;
            while !rest.is_empty() {
                let sent = self
                    .inner
                    .async_io(tokio::io::Interest::WRITABLE, || {
                        crate::batch::send(fd, rest)
                    })
                    .await;
                // sendmmsg stops at the first datagram that fails, and fails only if it is the
                // first: skip that one.
                rest = &rest[sent.unwrap_or(0).max(1)..];
            }
        }
        #[cfg(not(all(target_os = "linux", not(madsim))))]
        for (buf, dst) in msgs {
            let _ = self.send_to(buf, *dst).await;
        }
    }

    /// Asks the kernel for socket buffers of `bytes` each way, so a burst waits in the queue
    /// rather than being dropped (Linux's default holds about 160 small datagrams); returns the
    /// (receive, send) sizes granted, which `net.core.rmem_max` / `wmem_max` cap: one below
    /// `bytes` means the cap cut the request. (Linux reserves double, for its bookkeeping, and
    /// reports that; this returns half of it, in the caller's terms.) Nothing to set in
    /// simulation, where queues are the simulated network's.
    pub fn set_buffer_bytes(&self, bytes: usize) -> io::Result<(usize, usize)> {
        #[cfg(all(target_os = "linux", not(madsim)))]
        {
            use nix::sys::socket::{getsockopt, setsockopt, sockopt};
            setsockopt(&self.inner, sockopt::RcvBuf, &bytes)?;
            setsockopt(&self.inner, sockopt::SndBuf, &bytes)?;
            Ok((
                getsockopt(&self.inner, sockopt::RcvBuf)? / 2,
                getsockopt(&self.inner, sockopt::SndBuf)? / 2,
            ))
        }
        #[cfg(madsim)]
        return Ok((bytes, bytes));
        #[cfg(all(not(target_os = "linux"), not(madsim)))]
        {
            let _ = bytes;
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Whether [`send_many`](Self::send_many) sends datagrams to one address in trains (UDP
    /// GSO): on Linux when the kernel and the device can.
    pub fn sends_trains(&self) -> bool {
        #[cfg(all(target_os = "linux", not(madsim)))]
        return self.segments.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(all(target_os = "linux", not(madsim))))]
        false
    }
}

/// A train's datagrams, to go on their own.
#[cfg(all(target_os = "linux", not(madsim)))]
fn one_by_one<'a>(
    parts: &'a [std::io::IoSlice<'_>],
    dst: SocketAddr,
) -> Vec<(&'a [u8], SocketAddr)> {
    parts.iter().map(|p| (&**p, dst)).collect()
}

/// The largest UDP payload: a slot this size never truncates a datagram.
pub const MAX_DATAGRAM: usize = 65_535;

/// Datagrams received together by [`UdpSocket::recv_many`], each in a slot of its own.
pub struct Inbox {
    pub(crate) data: Vec<u8>,
    /// (slot, length, sender) of each datagram received, in arrival order.
    pub(crate) got: Vec<(usize, usize, SocketAddr)>,
}

impl Inbox {
    /// Room for `capacity` datagrams (their pages are touched only as datagrams fill them).
    pub fn new(capacity: usize) -> Inbox {
        Inbox {
            data: vec![0; capacity.max(1) * MAX_DATAGRAM],
            got: Vec::with_capacity(capacity),
        }
    }

    pub fn capacity(&self) -> usize {
        self.data.len() / MAX_DATAGRAM
    }

    /// How many datagrams the last receive brought.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// The `i`th datagram of the last receive and its sender.
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        let (slot, len, from) = self.got[i];
        let start = slot * MAX_DATAGRAM;
        (&self.data[start..start + len], from)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Connects with a deadline. A simulated `Drop` rule makes the attempt hang until the deadline,
/// a `Reject` rule refuses it at once — what real firewalls do.
pub async fn connect_tcp(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    match fault::check(Proto::Tcp, None, addr) {
        Some(Action::Reject) => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("connection to {addr} refused"),
            ))
        }
        Some(Action::Drop) => {
            tokio::time::sleep(timeout).await;
            return Err(timed_out(addr, timeout));
        }
        None => {}
    }
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(addr, timeout)),
    }
}

fn timed_out(addr: SocketAddr, timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "connecting to {addr} timed out after {} ms",
            timeout.as_millis()
        ),
    )
}

/// Accepts the next connection, unless the simulated firewall blocks the listener's port (then
/// the connection is closed at once, which the peer sees as a failed handshake).
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let local = listener.local_addr()?;
        if fault::check(Proto::Tcp, None, local).is_none() {
            return Ok((stream, peer));
        }
        drop(stream);
    }
}

/// Resolves `host` (an IP address or a DNS name) and `port` to one socket address.
pub async fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}
