//! The MMR shell: media listeners (UDP, TCP with RFC 4571 framing, and TLS 443 via the host's
//! router) around the sans-IO forwarding table. A controller VM runs one in-process; its ZC hands
//! it grants directly.

pub(crate) mod cascade;
mod controller_link;
mod media;
pub mod vm;

pub use mc_core::client::MediaPath;
pub(crate) use media::serve_stream;

use crate::error::{bind_hint, bind_tcp, NodeError};
use crate::listen::{ConnCaps, Gate, StreamDeadlines};
use mc_core::mmr::{Forwarding, GuardCounters, MediaGuard, MediaLimits, MmrCounters};
use mc_core::zc::MmrCommand;
use mc_rt::net::UdpSocket;
use mc_rt::sync::mpsc;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Tasks receiving and forwarding on the UDP media socket.
pub const UDP_WORKERS: usize = 8;

/// Datagrams a UDP receive loop takes from the socket in one call (where the platform can), and
/// forwards together.
pub const UDP_BATCH: usize = 32;

/// Socket buffers the MMR asks for on its UDP media socket, each way: about 3,000 small
/// datagrams wait for a receive loop or the network, where Linux's default (208 KiB) holds
/// about 160, so a burst (a key frame fanned out to a meeting) queues instead of being dropped.
/// The kernel caps it at `net.core.rmem_max` / `wmem_max`; the MMR says so at start.
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Queued packets per stream connection; beyond this a slow reader loses packets (counted), so
/// one slow participant cannot hold up a meeting.
pub const STREAM_QUEUE_PACKETS: usize = 256;

pub(crate) struct MmrState {
    pub forwarding: Forwarding,
    /// Per-source rate limits on what is not a bound participant's media.
    pub guard: MediaGuard,
    pub streams: BTreeMap<u64, mpsc::Sender<Vec<u8>>>,
    pub next_stream: u64,
    pub stream_queue_drops: u64,
    /// TCP or TLS, for each open stream connection.
    pub stream_transport: BTreeMap<u64, MediaPath>,
    /// Successful bindings, by the transport they arrived on.
    pub bindings_by_path: BTreeMap<MediaPath, u64>,
    /// Participants whose media moved from one transport to another (fallback, moving back).
    pub path_changes: BTreeMap<(MediaPath, MediaPath), u64>,
    /// Links to the other MMRs of cascaded meetings.
    pub cascades: cascade::Cascades,
}

impl MmrState {
    /// How an endpoint reaches this MMR.
    pub fn path_of(&self, e: mc_core::mmr::Endpoint) -> MediaPath {
        match e {
            mc_core::mmr::Endpoint::Udp(_) => MediaPath::Udp,
            // Never a participant's: links to other MMRs run on TLS.
            mc_core::mmr::Endpoint::Cascade(_) => MediaPath::Tls,
            mc_core::mmr::Endpoint::Stream(id) => self
                .stream_transport
                .get(&id)
                .copied()
                .unwrap_or(MediaPath::Tcp),
        }
    }
}

/// A running MMR. Cloning shares it.
#[derive(Clone)]
pub struct Mmr {
    pub(crate) state: Arc<Mutex<MmrState>>,
    pub(crate) udp: Arc<UdpSocket>,
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// TCP 8801's caps and counts.
    pub tcp_gate: Gate,
    /// What every media stream connection (TCP or TLS) must do to stay open.
    pub(crate) deadlines: StreamDeadlines,
}

impl Mmr {
    /// Binds UDP and TCP media on `udp` and `tcp` and starts serving them, with the default
    /// caps and deadlines of an MMR VM.
    pub async fn start(udp: SocketAddr, tcp: SocketAddr) -> Result<Mmr, NodeError> {
        let c = crate::config::MmrConfig::default();
        Mmr::start_with(
            udp,
            tcp,
            c.conn_caps(),
            c.stream_deadlines(),
            c.media_limits(),
        )
        .await
    }

    /// Binds UDP and TCP media on `udp` and `tcp` and starts serving them; TCP connections are
    /// held to `caps` and, like the TLS media connections, to `deadlines`; what each source
    /// address may send besides bound media, to `limits`.
    pub async fn start_with(
        udp: SocketAddr,
        tcp: SocketAddr,
        caps: ConnCaps,
        deadlines: StreamDeadlines,
        limits: MediaLimits,
    ) -> Result<Mmr, NodeError> {
        let sock = UdpSocket::bind(udp)
            .await
            .map_err(|source| NodeError::Bind {
                what: "MMR media (UDP)",
                addr: udp,
                hint: bind_hint(&source, udp.port()),
                source,
            })?;
        size_buffers(&sock);
        let listener = bind_tcp("MMR media (TCP)", tcp).await?;
        let mmr = Mmr {
            state: Arc::new(Mutex::new(MmrState {
                forwarding: Forwarding::new(),
                guard: MediaGuard::new(limits),
                streams: BTreeMap::new(),
                next_stream: 0,
                stream_queue_drops: 0,
                stream_transport: BTreeMap::new(),
                bindings_by_path: BTreeMap::new(),
                path_changes: BTreeMap::new(),
                cascades: cascade::Cascades::default(),
            })),
            udp_addr: sock.local_addr(),
            tcp_addr: listener.local_addr().expect("bound"),
            udp: Arc::new(sock),
            tcp_gate: Gate::new("media_tcp", caps),
            deadlines,
        };
        // Several receive loops share the socket: under load one loop's receive-and-fan-out would
        // be the bottleneck. (In simulation a receive wakes one loop at a time, so the others
        // cost nothing while idle.)
        for _ in 0..UDP_WORKERS {
            mc_rt::spawn(media::udp_loop(mmr.clone()));
        }
        mc_rt::spawn(media::tcp_accept_loop(listener, mmr.clone()));
        Ok(mmr)
    }

    /// Carries out a ZC command.
    pub fn apply(&self, cmd: MmrCommand) {
        if let MmrCommand::Cascade { meeting, peers } = cmd {
            return cascade::apply(self, meeting, peers);
        }
        let mut s = self.state.lock().unwrap();
        match cmd {
            MmrCommand::Admit {
                token,
                meeting,
                participant,
            } => s.forwarding.admit(token, meeting, participant),
            MmrCommand::Revoke { token } => {
                if let Some(mc_core::mmr::Endpoint::Stream(id)) = s.forwarding.revoke(&token) {
                    // Dropping the queue's sender ends that connection's writer, closing it.
                    s.streams.remove(&id);
                }
            }
            MmrCommand::Cascade { .. } => unreachable!("handled above"),
        }
    }

    /// Lets this MMR carry meetings cascaded across MMRs (DESIGN §5, PROTOCOL §14) as `id`: it
    /// accepts the other MMRs' links on `listener` (mutual TLS, ALPN `mc-cascade/1`, under
    /// `caps`, each handshake done within `handshake_timeout_ms`) and dials theirs with
    /// `identity`'s certificate, each attempt within `connect_timeout_ms`. Before this call an
    /// MMR records `MmrCommand::Cascade` but links to no one. Call it once, at start-up, on the
    /// runtime the MMR runs on: the listener is served until that runtime ends.
    pub fn serve_cascades(
        &self,
        id: mc_wire::MmrId,
        identity: &mc_rt::tls::Identity,
        listener: mc_rt::net::TcpListener,
        caps: ConnCaps,
        connect_timeout_ms: u64,
        handshake_timeout_ms: u64,
    ) -> Result<(), mc_rt::tls::TlsError> {
        let dial =
            mc_rt::tls::client_config(&identity.ca, Some(identity), mc_wire::ports::alpn::CASCADE)?;
        cascade::enable(self, id, dial, connect_timeout_ms);
        cascade::serve_port(
            listener,
            identity,
            self.clone(),
            Gate::new("cascade", caps),
            handshake_timeout_ms,
        )
    }

    pub fn counters(&self) -> MmrCounters {
        self.state.lock().unwrap().forwarding.counters().clone()
    }

    /// Drops every grant and closes every media stream (a new link to the controller).
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.forwarding.clear();
        s.streams.clear();
    }

    /// Counters and bound participants by transport. The one place the MMR's totals are added
    /// up: the monitoring report, the MMR link's `load` and `connector up` all read them here, so
    /// no two of them can report a different `dropped`.
    pub fn media_counters(&self) -> mc_wire::monitor::MediaCounters {
        let s = self.state.lock().unwrap();
        let c = s.forwarding.counters();
        let mut m = mc_wire::monitor::MediaCounters {
            rtp_in: c.rtp_in,
            rtp_out: c.rtp_out,
            dropped: dropped(
                c,
                s.guard.counters(),
                s.stream_queue_drops + s.cascades.queue_drops,
            ),
            ..Default::default()
        };
        for e in s.forwarding.bound() {
            match e {
                mc_core::mmr::Endpoint::Udp(_) => m.udp_endpoints += 1,
                mc_core::mmr::Endpoint::Stream(id)
                    if s.stream_transport.get(&id) == Some(&MediaPath::Tls) =>
                {
                    m.tls_endpoints += 1
                }
                mc_core::mmr::Endpoint::Stream(_) => m.tcp_endpoints += 1,
                mc_core::mmr::Endpoint::Cascade(_) => {}
            }
        }
        m
    }

    /// Everything the MMR's metrics show, read in one lock.
    pub(crate) fn metrics_snapshot(&self) -> MmrMetricsSnapshot {
        let s = self.state.lock().unwrap();
        MmrMetricsSnapshot {
            counters: s.forwarding.counters().clone(),
            guard: s.guard.counters(),
            stream_queue_drops: s.stream_queue_drops + s.cascades.queue_drops,
            participants: s.forwarding.participants(),
            meetings: s.forwarding.meetings().len(),
            bound_by_path: s.forwarding.bound().fold(BTreeMap::new(), |mut m, e| {
                *m.entry(s.path_of(e)).or_default() += 1;
                m
            }),
            bindings_by_path: s.bindings_by_path.clone(),
            path_changes: s.path_changes.clone(),
        }
    }

    /// The meetings this MMR holds grants for (a meeting must live on exactly one MMR).
    pub fn meetings(&self) -> std::collections::BTreeSet<mc_wire::MeetingId> {
        self.state.lock().unwrap().forwarding.meetings()
    }

    pub fn participants(&self) -> usize {
        self.state.lock().unwrap().forwarding.participants()
    }
}

/// What an MMR's metrics show, read at one instant.
pub(crate) struct MmrMetricsSnapshot {
    pub counters: MmrCounters,
    pub guard: GuardCounters,
    pub stream_queue_drops: u64,
    pub participants: usize,
    pub meetings: usize,
    pub bound_by_path: BTreeMap<MediaPath, u64>,
    pub bindings_by_path: BTreeMap<MediaPath, u64>,
    pub path_changes: BTreeMap<(MediaPath, MediaPath), u64>,
}

/// Every packet the MMR received and did not forward (whatever the reason, the rate limits'
/// included), plus every copy a full stream queue lost. Every counter is named, so a new drop
/// reason cannot be left out.
fn dropped(c: &MmrCounters, guard: GuardCounters, stream_queue_drops: u64) -> u64 {
    let GuardCounters {
        rate_limited_unbound,
        rate_limited_bindings,
    } = guard;
    let MmrCounters {
        rtp_in: _,
        rtp_out: _,
        rtp_bytes_in: _,
        rtp_bytes_out: _,
        bindings: _,
        dropped_malformed,
        dropped_unbound,
        refused_bad_token,
        refused_replayed,
        dropped_unexpected,
    } = c;
    dropped_malformed
        + dropped_unbound
        + refused_bad_token
        + refused_replayed
        + dropped_unexpected
        + rate_limited_unbound
        + rate_limited_bindings
        + stream_queue_drops
}

/// Asks for [`UDP_BUFFER_BYTES`] on the media socket and says what the kernel gave, and whether
/// copies to one participant leave in trains (UDP GSO); a cap or a refusal is no reason not to
/// serve, only one to tell the operator.
fn size_buffers(sock: &UdpSocket) {
    let trains = if sock.sends_trains() { "on" } else { "off" };
    match sock.set_buffer_bytes(UDP_BUFFER_BYTES) {
        Ok((recv, send)) if recv >= UDP_BUFFER_BYTES && send >= UDP_BUFFER_BYTES => {
            tracing::info!(
                recv_bytes = recv,
                send_bytes = send,
                gso = trains,
                "MMR media socket buffers"
            )
        }
        Ok((recv, send)) => tracing::warn!(
            recv_bytes = recv,
            send_bytes = send,
            wanted_bytes = UDP_BUFFER_BYTES,
            gso = trains,
            "the kernel capped the MMR's UDP socket buffers: bursts beyond them are dropped; \
             raise net.core.rmem_max and net.core.wmem_max (sysctl) to at least the wanted size"
        ),
        Err(e) => tracing::warn!(
            gso = trains,
            "could not size the MMR's UDP socket buffers: {e}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_adds_every_drop_reason_and_queue_losses_and_nothing_else() {
        // One bit per counter, so the sum shows exactly which ones were added.
        let c = MmrCounters {
            rtp_in: 1,
            rtp_out: 1 << 1,
            rtp_bytes_in: 1 << 8,
            rtp_bytes_out: 1 << 9,
            bindings: 1 << 2,
            dropped_malformed: 1 << 3,
            dropped_unbound: 1 << 4,
            refused_bad_token: 1 << 5,
            dropped_unexpected: 1 << 6,
            refused_replayed: 1 << 10,
        };
        let guard = GuardCounters {
            rate_limited_unbound: 1 << 11,
            rate_limited_bindings: 1 << 12,
        };
        assert_eq!(dropped(&c, guard, 1 << 7), 0b1_1100_1111_1000);
    }
}
