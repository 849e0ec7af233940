//! Sockets, through the seam: the same calls for tokio and for madsim (whose UDP API differs),
//! with the simulation firewall consulted on every send and connect.

use crate::fault::{self, Action, Proto};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use tokio::net::{TcpListener, TcpStream};

/// A UDP socket. `&self` methods, so one socket can be shared by a receive task and senders.
pub struct UdpSocket {
    inner: tokio::net::UdpSocket,
    local: SocketAddr,
}

impl UdpSocket {
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let inner = tokio::net::UdpSocket::bind(addr).await?;
        let local = inner.local_addr()?;
        Ok(UdpSocket { inner, local })
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
            self.inner.send_to(dst, buf).await
        }
        #[cfg(not(madsim))]
        {
            self.inner.send_to(buf, dst).await.map(|_| ())
        }
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await
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
