//! The client's media path: bind to the MMR with a request signed with the media token on UDP,
//! else TCP with RFC 4571 framing, else TLS 443 (ALPN `mc-media/1`); then send and receive
//! sealed RTP on whichever worked.

use crate::config::ClientConfig;
use crate::dial::dial_tls;
use mc_core::client::MediaPath;
use mc_core::Rng;
use mc_rt::net::UdpSocket;
use mc_rt::sync::mpsc;
use mc_rt::tls::{self, BoxStream};
use mc_rt::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use mc_wire::binding::{Binding, BindingId};
use mc_wire::ports::alpn;
use mc_wire::rfc4571::{self, Rfc4571Decoder};
use mc_wire::signal::MediaEndpoints;
use mc_wire::MediaToken;
use rustls::pki_types::CertificateDer;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Datagrams from the MMR waiting for the media loop.
const UDP_QUEUE_PACKETS: usize = 1024;

pub(super) enum MediaConn {
    /// `rx` is fed by a receive task: a socket receive inside `select!` is not cancel-safe under
    /// madsim (a datagram handed to a receive that loses the race would be dropped).
    Udp {
        sock: Arc<UdpSocket>,
        mmr: SocketAddr,
        rx: mpsc::Receiver<Vec<u8>>,
        reader: mc_rt::JoinHandle<()>,
    },
    Stream {
        path: MediaPath,
        rd: ReadHalf<BoxStream>,
        wr: WriteHalf<BoxStream>,
        dec: Rfc4571Decoder,
        buf: Vec<u8>,
    },
}

impl MediaConn {
    pub fn path(&self) -> MediaPath {
        match self {
            MediaConn::Udp { .. } => MediaPath::Udp,
            MediaConn::Stream { path, .. } => *path,
        }
    }

    /// A consent-freshness check on UDP (RFC 7675 in spirit): a binding request the MMR answers.
    pub async fn send_keepalive(
        &mut self,
        token: &MediaToken,
        counter: &BindingCounter,
        txn: [u8; 12],
    ) -> io::Result<()> {
        match self {
            MediaConn::Udp { sock, mmr, .. } => {
                sock.send_to(&counter.request(token, txn), *mmr).await
            }
            // Streams fail loudly; they need no keepalive.
            MediaConn::Stream { .. } => Ok(()),
        }
    }

    pub async fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        match self {
            MediaConn::Udp { sock, mmr, .. } => sock.send_to(packet, *mmr).await,
            MediaConn::Stream { wr, .. } => {
                wr.write_all(&rfc4571::encode(packet)).await?;
                wr.flush().await
            }
        }
    }

    /// The next media packet from the MMR. Cancel-safe (used inside `select!`).
    pub async fn recv(&mut self) -> io::Result<Vec<u8>> {
        match self {
            MediaConn::Udp { rx, .. } => rx.recv().await.ok_or_else(|| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the UDP media socket failed")
            }),
            MediaConn::Stream { rd, dec, buf, .. } => loop {
                if let Some(p) = dec.next_packet() {
                    return Ok(p.to_vec());
                }
                let n = rd.read(buf).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the MMR closed the media connection",
                    ));
                }
                dec.push(&buf[..n]);
            },
        }
    }
}

/// Numbers one session's binding requests: every request, on any path and from any task, gets
/// the next number, and the MMR takes each number once and never an old one after a newer.
#[derive(Debug, Clone, Default)]
pub(super) struct BindingCounter(Arc<AtomicU64>);

impl BindingCounter {
    /// A signed binding request with the next number: proves the token without sending it.
    pub fn request(&self, token: &MediaToken, txn: [u8; 12]) -> Vec<u8> {
        Binding::Request {
            txn,
            username: BindingId::of(token),
            counter: self.0.fetch_add(1, Ordering::Relaxed) + 1,
        }
        .encode_signed(token)
    }
}

/// What binding needs to know about the participant's grant.
#[derive(Clone)]
pub(super) struct Credential {
    pub token: MediaToken,
    pub counter: BindingCounter,
}

/// Binds on one path (the session core walks them, best first).
pub(super) async fn bind(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    ep: &MediaEndpoints,
    cred: &Credential,
    rng: &mut Rng,
    path: MediaPath,
) -> Result<MediaConn, BindError> {
    match path {
        MediaPath::Udp => bind_udp(config, ep, cred, rng).await,
        MediaPath::Tcp | MediaPath::Tls => bind_stream(config, ca, ep, cred, rng, path).await,
    }
}

/// The local UDP port of a bridged client: standard RTP tools send to it and receive from it.
pub(super) struct Bridge {
    sock: Arc<UdpSocket>,
    rx: mpsc::Receiver<(Vec<u8>, SocketAddr)>,
    reader: mc_rt::JoinHandle<()>,
    /// Where the meeting's media goes: configured, or else whoever last sent to the port.
    send_to: Option<SocketAddr>,
    fixed: bool,
}

impl Bridge {
    pub async fn bind(listen: SocketAddr, send_to: Option<SocketAddr>) -> io::Result<Bridge> {
        let sock = Arc::new(UdpSocket::bind(listen).await?);
        let (tx, rx) = mpsc::channel(UDP_QUEUE_PACKETS);
        let reader_sock = sock.clone();
        let reader = mc_rt::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok((n, from)) = reader_sock.recv_from(&mut buf).await {
                if tx.send((buf[..n].to_vec(), from)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Bridge {
            sock,
            rx,
            reader,
            send_to,
            fixed: send_to.is_some(),
        })
    }

    /// The next datagram from the local tool (cancel-safe).
    pub async fn recv(&mut self) -> Vec<u8> {
        match self.rx.recv().await {
            Some((packet, from)) => {
                if !self.fixed {
                    self.send_to = Some(from);
                }
                packet
            }
            None => std::future::pending().await,
        }
    }

    pub async fn send(&self, packet: &[u8]) {
        if let Some(to) = self.send_to {
            let _ = self.sock.send_to(packet, to).await;
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Drop for MediaConn {
    fn drop(&mut self) {
        if let MediaConn::Udp { reader, .. } = self {
            reader.abort();
        }
    }
}

async fn udp_reader(sock: Arc<UdpSocket>, mmr: SocketAddr, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match sock.recv_from(&mut buf).await {
            // Only the MMR may send us media; anything else is noise.
            Ok((n, from)) if from == mmr => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("UDP media receive: {e}");
                return;
            }
        }
    }
}

/// Why binding on one media path failed, by who is at fault.
#[derive(Debug, thiserror::Error)]
pub(super) enum BindError {
    /// The MMR answered and refused the token.
    #[error("the MMR refused the media token ({code} {reason})")]
    Refused { code: u16, reason: String },
    /// Nothing answered in time: the path is blocked, or the MMR is gone.
    #[error("no binding answer {0}")]
    Unanswered(String),
    /// Our side or the network failed: resolving, binding, connecting, sending, reading.
    #[error("{0}")]
    Network(String),
}

fn network(e: impl std::fmt::Display) -> BindError {
    BindError::Network(e.to_string())
}

/// Whether `reply` answers the binding request `txn`: yes, no (not ours), or a refusal. A
/// success counts only if signed with our token: anyone can send a datagram, only the MMR that
/// holds our grant can sign one. An error about a grant the MMR does not know cannot be signed.
fn check_reply(reply: &[u8], txn: &[u8; 12], token: &MediaToken) -> Result<bool, BindError> {
    let Ok(d) = Binding::decode(reply) else {
        return Ok(false);
    };
    match d.msg {
        Binding::Success { txn: t, .. } if &t == txn && d.verify(token) => Ok(true),
        Binding::Error {
            txn: t,
            code,
            reason,
        } if &t == txn && (d.verify(token) || !d.has_integrity()) => {
            Err(BindError::Refused { code, reason })
        }
        _ => Ok(false),
    }
}

pub(super) async fn bind_udp(
    config: &ClientConfig,
    ep: &MediaEndpoints,
    cred: &Credential,
    rng: &mut Rng,
) -> Result<MediaConn, BindError> {
    let mmr = mc_rt::net::resolve(&ep.host, ep.udp_port)
        .await
        .map_err(network)?;
    let local: SocketAddr = if mmr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(local).await.map_err(network)?;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..config.binding_attempts {
        let txn = rng.bytes::<12>();
        let request = cred.counter.request(&cred.token, txn);
        sock.send_to(&request, mmr).await.map_err(network)?;
        let wait = async {
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, from)) if from == mmr => match check_reply(&buf[..n], &txn, &cred.token)
                    {
                        Ok(true) => return Ok(()),
                        Ok(false) => continue,
                        Err(e) => return Err(e),
                    },
                    Ok(_) => continue,
                    // An ICMP port-unreachable surfaces as an error on some platforms.
                    Err(e) => return Err(network(e)),
                }
            }
        };
        match mc_rt::timeout(Duration::from_millis(config.binding_timeout_ms), wait).await {
            Ok(Ok(())) => {
                let sock = Arc::new(sock);
                let (tx, rx) = mpsc::channel(UDP_QUEUE_PACKETS);
                let reader = mc_rt::spawn(udp_reader(sock.clone(), mmr, tx));
                return Ok(MediaConn::Udp {
                    sock,
                    mmr,
                    rx,
                    reader,
                });
            }
            // A refusal is an answer: another attempt would be refused too.
            Ok(Err(e @ BindError::Refused { .. })) => return Err(e),
            Ok(Err(_)) | Err(_) => continue,
        }
    }
    Err(BindError::Unanswered(format!(
        "on UDP {mmr} after {} attempts of {} ms",
        config.binding_attempts, config.binding_timeout_ms
    )))
}

async fn bind_stream(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
    ep: &MediaEndpoints,
    cred: &Credential,
    rng: &mut Rng,
    path: MediaPath,
) -> Result<MediaConn, BindError> {
    let deadline = Duration::from_millis(config.connect_timeout_ms);
    let stream: BoxStream = match path {
        MediaPath::Tcp => {
            let addr = mc_rt::net::resolve(&ep.host, ep.tcp_port)
                .await
                .map_err(network)?;
            Box::new(
                mc_rt::net::connect_tcp(addr, deadline)
                    .await
                    .map_err(network)?,
            )
        }
        _ => {
            let tls_config = tls::client_config(ca, None, alpn::MEDIA).map_err(network)?;
            let timeout_ms = config.connect_timeout_ms;
            Box::new(
                dial_tls(&ep.host, ep.tls_port, tls_config, timeout_ms)
                    .await
                    .map_err(network)?,
            )
        }
    };
    let (rd, mut wr) = mc_rt::split(stream);
    let txn = rng.bytes::<12>();
    let request = cred.counter.request(&cred.token, txn);
    wr.write_all(&rfc4571::encode(&request))
        .await
        .map_err(network)?;
    wr.flush().await.map_err(network)?;
    let mut conn = MediaConn::Stream {
        path,
        rd,
        wr,
        dec: Rfc4571Decoder::default(),
        buf: vec![0u8; 16 * 1024],
    };
    let answer = mc_rt::timeout(deadline, async {
        loop {
            let reply = conn.recv().await.map_err(network)?;
            if check_reply(&reply, &txn, &cred.token)? {
                return Ok::<(), BindError>(());
            }
        }
    })
    .await;
    match answer {
        Ok(Ok(())) => Ok(conn),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BindError::Unanswered(format!(
            "within {} ms",
            deadline.as_millis()
        ))),
    }
}
