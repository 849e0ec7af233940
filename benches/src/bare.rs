//! The MMR benchmark's two baselines: the least any UDP forwarder must do with the same traffic.
//! Receive datagrams, look up each sender's fixed destinations (the other participants of its
//! meeting), send a copy to each — no parsing, no lock — in as many receive loops on the socket
//! as the MMR runs ([`UDP_WORKERS`]), so they differ from the MMR only in what they do per packet.
//!
//! - [`Batching::PerPacket`]: one `recv_from` and one `send_to` per datagram, no allocation.
//! - [`Batching::Batched`]: what the MMR's loop does with the system calls, and nothing else: up
//!   to [`UDP_BATCH`] datagrams per `recv_many` (`recvmmsg` on Linux) and one `send_many` for
//!   all of a batch's copies (`sendmmsg`, and those to one receiver as one UDP GSO train); one
//!   list of copies allocated per batch, as the MMR.

use crate::isolated::Isolated;
use mc_node::mmr::{UDP_BATCH, UDP_WORKERS};
use mc_rt::net::{Inbox, UdpSocket};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Each participant's address, and the addresses its packets go to.
pub type Routes = BTreeMap<SocketAddr, Vec<SocketAddr>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    PerPacket,
    Batched,
}

#[derive(Default)]
pub struct Counters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    /// Receive calls that brought at least one routed datagram.
    pub receives: AtomicU64,
}

/// A running bare forwarder: its address and its counters.
pub type Bare = Isolated<(SocketAddr, Arc<Counters>)>;

/// Starts a bare forwarder on a runtime of its own, forwarding along `routes`.
pub async fn start(batching: Batching, routes: Routes) -> Bare {
    let name = match batching {
        Batching::PerPacket => "bench-bare-udp",
        Batching::Batched => "bench-batched-udp",
    };
    Isolated::start(name, move || async move {
        let sock = Arc::new(
            UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .expect("a loopback UDP port"),
        );
        // The MMR's socket buffers, so the forwarders differ only in what they do per packet.
        let _ = sock.set_buffer_bytes(mc_node::mmr::UDP_BUFFER_BYTES);
        let (routes, counters) = (Arc::new(routes), Arc::new(Counters::default()));
        for _ in 0..UDP_WORKERS {
            let (sock, routes, counters) = (sock.clone(), routes.clone(), counters.clone());
            match batching {
                Batching::PerPacket => mc_rt::spawn(per_packet(sock, routes, counters)),
                Batching::Batched => mc_rt::spawn(batched(sock, routes, counters)),
            };
        }
        (sock.local_addr(), counters)
    })
    .await
}

/// One datagram per system call: receive, look up the sender's destinations, send to each.
async fn per_packet(sock: Arc<UdpSocket>, routes: Arc<Routes>, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(dests) = routes.get(&src) else {
            continue;
        };
        counters.receives.fetch_add(1, Relaxed);
        counters.packets_in.fetch_add(1, Relaxed);
        counters.packets_out.fetch_add(dests.len() as u64, Relaxed);
        for dest in dests {
            let _ = sock.send_to(&buf[..n], *dest).await;
        }
    }
}

/// Many datagrams per system call, the MMR loop's shape: receive what is waiting (up to
/// [`UDP_BATCH`]), list every copy of every datagram in arrival order, send them all at once.
async fn batched(sock: Arc<UdpSocket>, routes: Arc<Routes>, counters: Arc<Counters>) {
    let mut inbox = Inbox::new(UDP_BATCH);
    // (datagram of the batch, destination) of every copy to send.
    let mut copies: Vec<(usize, SocketAddr)> = Vec::new();
    loop {
        if sock.recv_many(&mut inbox).await.is_err() {
            continue;
        }
        copies.clear();
        let mut packets_in = 0;
        for (i, (_, src)) in inbox.iter().enumerate() {
            if let Some(dests) = routes.get(&src) {
                packets_in += 1;
                copies.extend(dests.iter().map(|&dest| (i, dest)));
            }
        }
        if packets_in == 0 {
            continue;
        }
        counters.receives.fetch_add(1, Relaxed);
        counters.packets_in.fetch_add(packets_in, Relaxed);
        counters.packets_out.fetch_add(copies.len() as u64, Relaxed);
        let out: Vec<(&[u8], SocketAddr)> = copies
            .iter()
            .map(|&(i, dest)| (inbox.get(i).0, dest))
            .collect();
        sock.send_many(&out).await;
    }
}
