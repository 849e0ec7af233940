//! A hostile peer's tools: connections from a chosen loopback source address (127.0.0.x stands
//! for another host), half-open TLS, and reading a node's listener counters.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The first bytes of a TLS record that announces a 512-byte ClientHello and never sends it: the
/// server waits for the rest until its handshake deadline.
pub const PARTIAL_CLIENT_HELLO: [u8; 6] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];

/// A TCP connection to `to` from `source` (any 127.0.0.0/8 address works on loopback).
pub fn connect_from(source: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{source}:0").parse().expect("an IPv4 address");
    sock.bind(&local.into())?;
    sock.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(sock.into())
}

/// A connection that stalls its TLS handshake halfway through the ClientHello.
pub fn half_open_tls(source: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = connect_from(source, to)?;
    s.write_all(&PARTIAL_CLIENT_HELLO)?;
    Ok(s)
}

/// Whether the server closed the connection within `within` (whatever it sent before closing).
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let until = std::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A node's scrape once `settled` holds of it, or after 2 s, whichever is first. A connection
/// closed inside the TLS accept is counted just after the peer sees it close, so a test that
/// reads the counter right after the close must give it a moment.
pub async fn scrape_when(render: impl Fn() -> String, settled: impl Fn(&str) -> bool) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let scrape = render();
        if settled(&scrape) || std::time::Instant::now() >= until {
            return scrape;
        }
        mc_rt::sleep(Duration::from_millis(20)).await;
    }
}

/// `mc_listener_connections_closed_total{listener, reason}` in a scrape (0 when absent).
pub fn closed_count(scrape: &str, listener: &str, reason: &str) -> u64 {
    let series = format!(
        "mc_listener_connections_closed_total{{listener=\"{listener}\",reason=\"{reason}\"}} "
    );
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse().expect("a counter value"))
        .unwrap_or(0)
}
