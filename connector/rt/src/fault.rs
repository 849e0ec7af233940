//! Simulation-only fault hooks. madsim can clog whole nodes and links but has no notion of a port,
//! so the seam keeps a per-simulation firewall that its sockets consult: a rule blocks one
//! protocol and port on one host, in both directions, by dropping packets (and hanging connection
//! attempts) or by rejecting them (connection refused). In real builds nothing here exists but a
//! check that always passes.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Silently drop: datagrams vanish and TCP connection attempts time out.
    Drop,
    /// Refuse: TCP connection attempts fail at once; datagrams vanish.
    Reject,
}

/// Whether a packet from `local` to `dst` is blocked. `local` is None where not known yet.
#[inline]
pub(crate) fn check(proto: Proto, local: Option<SocketAddr>, dst: SocketAddr) -> Option<Action> {
    #[cfg(madsim)]
    {
        sim::check(proto, local, dst)
    }
    #[cfg(not(madsim))]
    {
        let _ = (proto, local, dst);
        None
    }
}

/// Whether the simulated network loses this datagram (UDP only: madsim's own loss rate would also
/// drop TCP segments, which real TCP retransmits).
#[inline]
pub(crate) fn udp_lost() -> bool {
    #[cfg(madsim)]
    {
        sim::udp_lost()
    }
    #[cfg(not(madsim))]
    {
        false
    }
}

#[cfg(madsim)]
pub use sim::{
    block, block_protocol, clog_link, clog_node, runtime, set_latency, set_node_ip, set_udp_loss,
    simulate, unblock, unblock_all, unblock_protocol, unclog_link, unclog_node,
};

#[cfg(madsim)]
mod sim {
    use super::*;
    use madsim::net::NetSim;
    use madsim::plugin::{simulator, Simulator};
    use madsim::task::NodeId;
    use std::collections::BTreeMap;
    use std::net::IpAddr;
    use std::sync::Mutex;

    /// (host, protocol, port); a `None` port is the whole protocol on that host.
    type Rule = (IpAddr, Proto, Option<u16>);

    /// Rules by (host, protocol, port); a `None` port blocks the whole protocol on that host.
    #[derive(Default)]
    pub struct Firewall {
        rules: Mutex<BTreeMap<Rule, Action>>,
        /// Parts per million of UDP datagrams lost.
        udp_loss_ppm: std::sync::atomic::AtomicU32,
    }

    impl Simulator for Firewall {
        fn new(
            _: &madsim::rand::GlobalRng,
            _: &madsim::time::TimeHandle,
            _: &madsim::Config,
        ) -> Self {
            Firewall::default()
        }
    }

    /// A simulation runtime with the firewall installed. Simulations must be built with this,
    /// on a thread of their own: see [`simulate`].
    pub fn runtime(seed: u64) -> madsim::runtime::Runtime {
        let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        rt.add_simulator::<Firewall>();
        rt.add_simulator::<crate::simnet::SimNet>();
        rt
    }

    // madsim's network carries TCP, the seam's own (`simnet`) UDP: the harness tells both of a
    // node's address, of clogs and of latency through these.

    /// Records a node's IP address (for each node the harness creates with one).
    pub fn set_node_ip(node: NodeId, ip: IpAddr) {
        crate::simnet::set_node_ip(node, ip);
    }

    /// Clogs a node both ways: nothing reaches it or leaves it, TCP or UDP.
    pub fn clog_node(node: NodeId) {
        NetSim::current().clog_node(node);
        crate::simnet::clog_node(node);
    }

    pub fn unclog_node(node: NodeId) {
        NetSim::current().unclog_node(node);
        crate::simnet::unclog_node(node);
    }

    /// Clogs the link from `src` to `dst` (one way).
    pub fn clog_link(src: NodeId, dst: NodeId) {
        NetSim::current().clog_link(src, dst);
        crate::simnet::clog_link(src, dst);
    }

    pub fn unclog_link(src: NodeId, dst: NodeId) {
        NetSim::current().unclog_link(src, dst);
        crate::simnet::unclog_link(src, dst);
    }

    /// Every packet from now on takes a latency drawn from `latency`.
    pub fn set_latency(latency: std::ops::Range<std::time::Duration>) {
        NetSim::current().update_config(|c| c.send_latency = latency.clone());
        crate::simnet::set_latency(latency);
    }

    /// Runs the future `make` builds to completion in a fresh simulation seeded with `seed`, on a
    /// fresh thread. madsim can seed std's `HashMap` keys (which madsim's own network iterates)
    /// only on a thread that has not used them yet: a second simulation on the same thread would
    /// not replay the first. A panic inside is passed on to the caller.
    pub fn simulate<F, Fut>(seed: u64, make: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future,
        Fut::Output: Send + 'static,
    {
        std::thread::Builder::new()
            .name(format!("sim-seed-{seed}"))
            .stack_size(32 << 20)
            .spawn(move || runtime(seed).block_on(make()))
            .expect("a thread for the simulation")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Blocks one port of one protocol on `host`, in both directions.
    pub fn block(host: IpAddr, proto: Proto, port: u16, action: Action) {
        simulator::<Firewall>()
            .rules
            .lock()
            .unwrap()
            .insert((host, proto, Some(port)), action);
    }

    pub fn unblock(host: IpAddr, proto: Proto, port: u16) {
        simulator::<Firewall>()
            .rules
            .lock()
            .unwrap()
            .remove(&(host, proto, Some(port)));
    }

    /// Blocks every port of a protocol on `host` (e.g. all UDP), in both directions.
    pub fn block_protocol(host: IpAddr, proto: Proto, action: Action) {
        simulator::<Firewall>()
            .rules
            .lock()
            .unwrap()
            .insert((host, proto, None), action);
    }

    pub fn unblock_protocol(host: IpAddr, proto: Proto) {
        simulator::<Firewall>()
            .rules
            .lock()
            .unwrap()
            .remove(&(host, proto, None));
    }

    pub fn unblock_all() {
        simulator::<Firewall>().rules.lock().unwrap().clear();
    }

    /// Loses this fraction (0.0 to 1.0) of every UDP datagram from now on.
    pub fn set_udp_loss(rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0) as u32;
        simulator::<Firewall>()
            .udp_loss_ppm
            .store(ppm, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn udp_lost() -> bool {
        let ppm = simulator::<Firewall>()
            .udp_loss_ppm
            .load(std::sync::atomic::Ordering::Relaxed);
        ppm > 0 && (madsim::rand::random::<u32>() % 1_000_000) < ppm
    }

    pub(crate) fn check(
        proto: Proto,
        local: Option<SocketAddr>,
        dst: SocketAddr,
    ) -> Option<Action> {
        let fw = simulator::<Firewall>();
        let rules = fw.rules.lock().unwrap();
        if rules.is_empty() {
            return None;
        }
        let hit = |a: SocketAddr| {
            rules
                .get(&(a.ip(), proto, Some(a.port())))
                .or_else(|| rules.get(&(a.ip(), proto, None)))
                .copied()
        };
        hit(dst).or_else(|| {
            // Servers in a simulation bind their node's own address, so a rule on a server port
            // also stops what that port sends (a firewall is stateful both ways).
            hit(local?)
        })
    }
}
