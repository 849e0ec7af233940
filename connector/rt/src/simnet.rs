//! The seam's UDP under madsim: a datagram network of its own, built on madsim's tasks, clock and
//! seeded randomness, a per-simulation `plugin::Simulator` like the firewall.
//!
//! Why not madsim's own UDP: madsim (0.2.34) makes every sleep last at least 1 ms and its network
//! sleeps on every `send_to` and every `recv_from` (`NetSim::rand_delay`), so each datagram held
//! its sender 1 ms and its receiver 1 ms, cost three of madsim's timers, two extra task polls and
//! several map lookups and copies (benches/README.md, "Where the simulator's time goes"). Here a
//! send does not sleep: it applies the link's clog state, draws a latency from the simulation's
//! range with madsim's seeded RNG and files the datagram in one queue ordered by (delivery time,
//! sequence). One pump task on the supervisor node sleeps until the earliest delivery, moves every
//! datagram then due into its socket's receive queue and wakes one receiver. So a timer costs per
//! distinct delivery instant of the whole network, not per datagram; madsim's 1 ms floor on sleeps
//! only rounds a delivery up when it falls within 1 ms of the previous one.
//!
//! What a madsim UDP socket gave stays the same: the seam still binds one (it allocates the port,
//! checks the address and is closed with its node), the firewall and UDP loss are applied in
//! `net.rs` before a datagram gets here, clogged nodes and links (told here by the harness through
//! [`crate::fault`], beside madsim's own `NetSim`, which keeps carrying TCP) lose what they would
//! carry, a killed node's sockets vanish with their queues, and a paused node's queues keep
//! filling up to a socket buffer's worth, beyond which datagrams are dropped and counted.

use madsim::plugin::{simulator, Simulator};
use madsim::task::{NodeId, Spawner};
use madsim::time::{sleep_until, Instant, Sleep};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What one socket's receive queue may hold, in payload bytes, like a socket buffer: beyond it
/// datagrams are dropped (and counted), as a real kernel drops them.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// A socket's place in the network: its node, port and bound IP (unspecified for all).
type Key = (NodeId, u16, IpAddr);

/// One datagram on its way.
struct Flight {
    to: Key,
    /// The socket it was sent to; a socket bound later at the same address does not get it.
    socket: u64,
    from: SocketAddr,
    data: Vec<u8>,
}

/// One bound socket's receive side.
struct Port {
    id: u64,
    ready: VecDeque<(SocketAddr, Vec<u8>)>,
    bytes: usize,
    /// Receivers waiting, by ticket (oldest first); a waker is removed when it is woken.
    waiters: BTreeMap<u64, Waker>,
}

struct State {
    latency: Range<Duration>,
    node_ip: BTreeMap<NodeId, IpAddr>,
    ip_node: BTreeMap<IpAddr, NodeId>,
    clogged_in: BTreeSet<NodeId>,
    clogged_out: BTreeSet<NodeId>,
    clogged_links: BTreeSet<(NodeId, NodeId)>,
    sockets: BTreeMap<Key, Port>,
    in_flight: BTreeMap<(Instant, u64), Flight>,
    next_seq: u64,
    next_id: u64,
    /// The pump's waker and the delivery it sleeps until (None: nothing in flight).
    pump: Option<(Waker, Option<Instant>)>,
    pump_started: bool,
    spawner: Spawner,
    /// Datagrams dropped because their socket's queue was full.
    overflowed: u64,
}

pub struct SimNet {
    state: Mutex<State>,
}

impl Simulator for SimNet {
    fn new(_: &madsim::rand::GlobalRng, _: &madsim::time::TimeHandle, _: &madsim::Config) -> Self {
        unreachable!("madsim builds simulators with new1")
    }

    // madsim calls `new1` (it hands over the supervisor node's spawner, where the pump runs).
    fn new1(
        _: &madsim::rand::GlobalRng,
        _: &madsim::time::TimeHandle,
        spawner: &Spawner,
        config: &madsim::Config,
    ) -> Self {
        SimNet {
            state: Mutex::new(State {
                latency: config.net.send_latency.clone(),
                node_ip: BTreeMap::new(),
                ip_node: BTreeMap::new(),
                clogged_in: BTreeSet::new(),
                clogged_out: BTreeSet::new(),
                clogged_links: BTreeSet::new(),
                sockets: BTreeMap::new(),
                in_flight: BTreeMap::new(),
                next_seq: 0,
                next_id: 0,
                pump: None,
                pump_started: false,
                spawner: spawner.clone(),
                overflowed: 0,
            }),
        }
    }

    fn reset_node(&self, id: NodeId) {
        // A killed node's sockets close, and what they had received is gone.
        let mut s = self.state.lock().unwrap();
        s.sockets.retain(|k, _| k.0 != id);
    }
}

fn net() -> std::sync::Arc<SimNet> {
    simulator::<SimNet>()
}

/// The network, if there is still a simulation on this thread (a socket or receive may be dropped
/// as its runtime is torn down).
fn try_net() -> Option<std::sync::Arc<SimNet>> {
    madsim::runtime::Handle::try_current().ok()?;
    Some(simulator::<SimNet>())
}

/// Tells the network a node's IP address (the harness, for each node it creates with one).
pub fn set_node_ip(node: NodeId, ip: IpAddr) {
    let net = net();
    let mut s = net.state.lock().unwrap();
    if let Some(old) = s.node_ip.insert(node, ip) {
        s.ip_node.remove(&old);
    }
    s.ip_node.insert(ip, node);
}

pub fn set_latency(latency: Range<Duration>) {
    net().state.lock().unwrap().latency = latency;
}

pub fn clog_node(node: NodeId) {
    let net = net();
    let mut s = net.state.lock().unwrap();
    s.clogged_in.insert(node);
    s.clogged_out.insert(node);
}

pub fn unclog_node(node: NodeId) {
    let net = net();
    let mut s = net.state.lock().unwrap();
    s.clogged_in.remove(&node);
    s.clogged_out.remove(&node);
}

pub fn clog_link(src: NodeId, dst: NodeId) {
    net().state.lock().unwrap().clogged_links.insert((src, dst));
}

pub fn unclog_link(src: NodeId, dst: NodeId) {
    net()
        .state
        .lock()
        .unwrap()
        .clogged_links
        .remove(&(src, dst));
}

/// Datagrams dropped so far because a receive queue was full.
pub fn overflowed() -> u64 {
    net().state.lock().unwrap().overflowed
}

/// A socket's membership of the network; dropping it closes the socket.
pub(crate) struct Socket {
    key: Key,
    id: u64,
    /// The source address receivers see for datagrams from this socket (node IP, or the bound
    /// one); loopback destinations see 127.0.0.1 instead.
    from: SocketAddr,
}

impl Socket {
    /// Registers the socket madsim bound at `local` on the current node.
    pub(crate) fn register(local: SocketAddr) -> Socket {
        let node = madsim::plugin::node();
        let net = net();
        let mut s = net.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        let key = (node, local.port(), local.ip());
        let ip = if local.ip().is_unspecified() {
            s.node_ip.get(&node).copied().unwrap_or(local.ip())
        } else {
            local.ip()
        };
        // A node the harness did not name is known by the first address it binds.
        if !local.ip().is_unspecified() && !local.ip().is_loopback() {
            if let std::collections::btree_map::Entry::Vacant(e) = s.node_ip.entry(node) {
                e.insert(local.ip());
                s.ip_node.insert(local.ip(), node);
            }
        }
        s.sockets.insert(
            key,
            Port {
                id,
                ready: VecDeque::new(),
                bytes: 0,
                waiters: BTreeMap::new(),
            },
        );
        if !s.pump_started {
            s.pump_started = true;
            s.spawner.spawn(Pump { sleep: None });
        }
        Socket {
            key,
            id,
            from: SocketAddr::new(ip, local.port()),
        }
    }

    /// Sends one datagram: never waits. One to nowhere, or over a clogged link, is lost.
    pub(crate) fn send(&self, buf: &[u8], dst: SocketAddr) {
        let net = net();
        let mut s = net.state.lock().unwrap();
        let src = self.key.0;
        let (dst_node, from) = if dst.ip().is_loopback() {
            (
                src,
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.from.port()),
            )
        } else {
            match s.ip_node.get(&dst.ip()) {
                Some(&n) => (n, self.from),
                None => return,
            }
        };
        if s.clogged_out.contains(&src)
            || s.clogged_in.contains(&dst_node)
            || s.clogged_links.contains(&(src, dst_node))
        {
            return;
        }
        // The socket bound to that very address, else one bound to all addresses.
        let candidates: [Key; 3] = [
            (dst_node, dst.port(), dst.ip()),
            (dst_node, dst.port(), Ipv4Addr::UNSPECIFIED.into()),
            (dst_node, dst.port(), Ipv6Addr::UNSPECIFIED.into()),
        ];
        let Some((to, socket)) = candidates
            .into_iter()
            .find_map(|k| s.sockets.get(&k).map(|p| (k, p.id)))
        else {
            return;
        };
        let span = s.latency.end.saturating_sub(s.latency.start).as_nanos() as u64;
        let extra = if span == 0 {
            0
        } else {
            madsim::rand::random::<u64>() % span
        };
        let at = Instant::now() + s.latency.start + Duration::from_nanos(extra);
        s.next_seq += 1;
        let seq = s.next_seq;
        s.in_flight.insert(
            (at, seq),
            Flight {
                to,
                socket,
                from,
                data: buf.to_vec(),
            },
        );
        // Wake the pump only if it sleeps past this delivery (or has nothing to wait for).
        let wake = match &s.pump {
            Some((_, None)) => true,
            Some((_, Some(t))) => at < *t,
            None => false,
        };
        if wake {
            let (w, _) = s.pump.take().unwrap();
            drop(s);
            w.wake();
        }
    }

    /// Waits for datagrams and hands over what is queued, at most `max`, each to `take`.
    pub(crate) fn recv(&self, max: usize) -> Recv<'_> {
        Recv {
            socket: self,
            max: max.max(1),
            ticket: None,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let Some(net) = try_net() else { return };
        let mut s = net.state.lock().unwrap();
        if s.sockets.get(&self.key).is_some_and(|p| p.id == self.id) {
            s.sockets.remove(&self.key);
        }
    }
}

/// A receive: resolves to the datagrams taken (sender, payload), oldest first.
pub(crate) struct Recv<'a> {
    socket: &'a Socket,
    max: usize,
    ticket: Option<u64>,
}

impl Future for Recv<'_> {
    type Output = io::Result<Vec<(SocketAddr, Vec<u8>)>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let net = net();
        let mut s = net.state.lock().unwrap();
        let State {
            sockets, next_id, ..
        } = &mut *s;
        let Some(port) = sockets
            .get_mut(&self.socket.key)
            .filter(|p| p.id == self.socket.id)
        else {
            // Closed under us (the node was killed): its tasks are going away.
            return Poll::Pending;
        };
        if port.ready.is_empty() {
            let ticket = *self.ticket.get_or_insert_with(|| {
                *next_id += 1;
                *next_id
            });
            port.waiters.insert(ticket, cx.waker().clone());
            return Poll::Pending;
        }
        if let Some(t) = self.ticket.take() {
            port.waiters.remove(&t);
        }
        let n = port.ready.len().min(self.max);
        let got: Vec<_> = port.ready.drain(..n).collect();
        port.bytes -= got.iter().map(|(_, d)| d.len()).sum::<usize>();
        // More than this receive takes: hand the rest to another waiting receiver.
        let next = if port.ready.is_empty() {
            None
        } else {
            port.waiters.pop_first().map(|(_, w)| w)
        };
        drop(s);
        if let Some(w) = next {
            w.wake();
        }
        Poll::Ready(Ok(got))
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let Some(net) = try_net() else { return };
        let mut s = net.state.lock().unwrap();
        let Some(port) = s
            .sockets
            .get_mut(&self.socket.key)
            .filter(|p| p.id == self.socket.id)
        else {
            return;
        };
        // Still waiting: just leave. Woken but abandoned: pass the wake-up on.
        if port.waiters.remove(&ticket).is_none() && !port.ready.is_empty() {
            if let Some((_, w)) = port.waiters.pop_first() {
                drop(s);
                w.wake();
            }
        }
    }
}

/// Moves datagrams from the air into their sockets' queues at their delivery time.
struct Pump {
    /// The sleep under way and the delivery it waits for.
    sleep: Option<(Sleep, Instant)>,
}

impl Future for Pump {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let net = net();
        loop {
            let mut wake = Vec::new();
            let mut s = net.state.lock().unwrap();
            let now = Instant::now();
            while let Some(entry) = s.in_flight.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let f = entry.remove();
                let State {
                    sockets,
                    overflowed,
                    ..
                } = &mut *s;
                let Some(port) = sockets.get_mut(&f.to).filter(|p| p.id == f.socket) else {
                    continue;
                };
                if port.bytes + f.data.len() > SOCKET_BUFFER_BYTES {
                    *overflowed += 1;
                    continue;
                }
                let was_empty = port.ready.is_empty();
                port.bytes += f.data.len();
                port.ready.push_back((f.from, f.data));
                if was_empty {
                    if let Some((_, w)) = port.waiters.pop_first() {
                        wake.push(w);
                    }
                }
            }
            let next = s.in_flight.first_key_value().map(|(k, _)| k.0);
            s.pump = Some((cx.waker().clone(), next));
            drop(s);
            for w in wake {
                w.wake();
            }
            let Some(at) = next else {
                self.sleep = None;
                return Poll::Pending;
            };
            // A sleep registers a timer each time it is polled: poll each one once, then only
            // look at the clock when woken again.
            match &self.sleep {
                Some((sleep, t)) if *t == at => {
                    if !sleep.is_elapsed() {
                        return Poll::Pending;
                    }
                }
                _ => {
                    let mut sleep = sleep_until(at);
                    if Pin::new(&mut sleep).poll(cx).is_pending() {
                        self.sleep = Some((sleep, at));
                        return Poll::Pending;
                    }
                }
            }
            self.sleep = None;
        }
    }
}
