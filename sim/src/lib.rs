//! Deterministic simulation of whole meeting-connector deployments.
//!
//! Every node runs the production start-up path (`mc_node::cloud::start`, `controller::start`,
//! `client::run` — what the CLI calls) on its own simulated host inside madsim, so a seed fixes
//! every network delay and every random choice, and a failing seed replays exactly. Faults come
//! from madsim (kill, clog) and from the seam's port firewall (`mc_rt::fault`).
//!
//! This crate only has content when built with `--cfg madsim` (see `ci/test`).
#![cfg(madsim)]
#![forbid(unsafe_code)]

use mc_node::client::{self, ClientError, ClientReport, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig, MmrConfig};
use mc_node::{cloud, controller, identities, EventLog};
use mc_rt::sim::runtime::Handle;
use mc_rt::sim::task::NodeId;
use mc_wire::MeetingId;
use rustls::pki_types::CertificateDer;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use mc_node::events::hash_lines;

pub const CLOUD_IP: [u8; 4] = [192, 0, 2, 1];
pub const CONTROLLER_IP: [u8; 4] = [192, 0, 2, 2];
/// Controllers a simulated deployment can have: one, or an HA pair.
pub const MAX_CONTROLLERS: u32 = 2;

/// The address of controller `n` (1-based): 192.0.2.2 and 192.0.2.3.
pub fn controller_ip(n: u32) -> IpAddr {
    ip([192, 0, 2, 1 + n as u8])
}
pub const MMR_VM_IP: [u8; 4] = [192, 0, 2, 11];
/// MMR VMs a simulated deployment can have (each has its own certificate).
pub const MAX_MMR_VMS: u32 = 8;

/// The address of MMR VM `n` (1-based): 192.0.2.11 and up.
pub fn mmr_vm_ip(n: u32) -> IpAddr {
    ip([192, 0, 2, 10 + n as u8])
}
const API_KEY: &str = "simulation-api-key-0001";

/// The seeds a test runs: `MC_SIM_SEED=N` replays one, `MC_SIM_SEED=A..=B` sweeps a range,
/// otherwise `defaults`.
pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    let Ok(s) = std::env::var("MC_SIM_SEED") else {
        return defaults.to_vec();
    };
    let int = |t: &str| -> u64 {
        t.trim()
            .parse()
            .expect("MC_SIM_SEED must be a seed N or a range A..=B")
    };
    match s.split_once("..=") {
        Some((a, b)) => {
            let (a, b) = (int(a), int(b));
            assert!(a <= b, "MC_SIM_SEED={s}: an empty range runs nothing");
            (a..=b).collect()
        }
        None => vec![int(&s)],
    }
}

/// Runs `scenario` in a fresh simulation with `seed`. On a panic, prints the command that replays
/// this seed alone before the panic propagates.
pub fn run<F, Fut>(test: &str, seed: u64, scenario: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future,
    Fut::Output: Send + 'static,
{
    eprintln!("[sim] {test}: seed {seed}");
    struct Repro<'a>(&'a str, u64);
    impl Drop for Repro<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("[sim] {} failed with seed {}; reproduce with:\n  MC_SIM_SEED={} ci/test-sim {}", self.0, self.1, self.1, self.0);
            }
        }
    }
    let _repro = Repro(test, seed);
    mc_rt::fault::simulate(seed, scenario)
}

/// Where the harness looks at a running node: a weak reference. The handle itself is owned by the
/// node's own start-up task, so killing or restarting the host drops it with everything it holds
/// (its listeners above all): the harness keeps nothing of a node alive, and a host that is down
/// has nothing to look at.
pub struct NodeSlot<T>(Arc<Mutex<Weak<T>>>);

impl<T> NodeSlot<T> {
    /// The node's handle while its host runs.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0.lock().unwrap().upgrade()
    }
    fn set(&self, handle: &Arc<T>) {
        *self.0.lock().unwrap() = Arc::downgrade(handle);
    }
}

impl<T> Clone for NodeSlot<T> {
    fn clone(&self) -> Self {
        NodeSlot(self.0.clone())
    }
}

impl<T> Default for NodeSlot<T> {
    fn default() -> Self {
        NodeSlot(Arc::new(Mutex::new(Weak::new())))
    }
}

/// A running controller, or nothing while its host is down.
pub type ControllerSlot = NodeSlot<controller::ControllerHandle>;

/// A running MMR VM, or nothing while its host is down.
pub type MmrVmSlot = NodeSlot<mc_node::mmr::vm::MmrVmHandle>;

/// A simulated deployment: the cloud, one controller VM or an HA pair, and MMR VMs, each on
/// its own host.
pub struct SimDeployment {
    pub seed: u64,
    ca: CertificateDer<'static>,
    ids: mc_rt::certs::Deployment,
    events: Arc<Mutex<Vec<String>>>,
    /// Typed events and state-change wake-ups, for the checkers.
    pub checks: Arc<mc_node::events::Checks>,
    /// Every server host by name, for faults.
    pub nodes: Mutex<BTreeMap<String, NodeId>>,
    /// controller-1 while its host runs, for checkers.
    pub controller: ControllerSlot,
    /// Every controller by name (controller-1, and controller-2 of a pair), as `controller`.
    pub controllers: BTreeMap<String, ControllerSlot>,
    /// The running MMR VMs by name, with their capacity.
    pub vms: Mutex<BTreeMap<String, (u32, MmrVmSlot)>>,
    next_host: Mutex<u32>,
}

impl SimDeployment {
    /// Starts the cloud and a controller, each on its own simulated host, and waits until the
    /// controller has registered with the cloud.
    pub async fn start(seed: u64, tweak: impl Fn(&mut ControllerConfig)) -> SimDeployment {
        Self::start_with(seed, 1, tweak).await
    }

    /// Starts the cloud and `controllers` controllers (two make an HA pair, each the other's
    /// peer), each on its own host; waits until every controller has registered.
    pub async fn start_with(
        seed: u64,
        controllers: u32,
        tweak: impl Fn(&mut ControllerConfig),
    ) -> SimDeployment {
        Self::start_recording(seed, controllers, Arc::default(), None, tweak).await
    }

    /// As [`SimDeployment::start_with`], with every node's events appended to `events`: the
    /// caller keeps the event log even if the simulation panics or hangs. `lease_ms` replaces
    /// the product's controller lease, with the heartbeats, peer pings and peer detection in the
    /// product defaults' proportions (a third of the lease; the lease and its margin).
    pub async fn start_recording(
        seed: u64,
        controllers: u32,
        events: Arc<Mutex<Vec<String>>>,
        lease_ms: Option<u64>,
        tweak: impl Fn(&mut ControllerConfig),
    ) -> SimDeployment {
        assert!((1..=MAX_CONTROLLERS).contains(&controllers));
        let checks: Arc<mc_node::events::Checks> = Arc::default();
        let now_unix_s = (mc_rt::unix_now_ms() / 1000) as i64;
        let mut hosts = vec![("cloud".to_string(), vec![ip(CLOUD_IP).to_string()])];
        for n in 1..=MAX_CONTROLLERS {
            hosts.push((
                format!("controller-{n}"),
                vec![controller_ip(n).to_string()],
            ));
        }
        for i in 1..=MAX_MMR_VMS {
            hosts.push((format!("mmr-{i}"), vec![mmr_vm_ip(i).to_string()]));
        }
        let hosts: Vec<(&str, Vec<String>)> =
            hosts.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
        let ids =
            identities::generate("simulation", &hosts, seed, now_unix_s, 30).expect("identities");
        let handle = Handle::current();

        let mut cloud_cfg = CloudConfig {
            listen: ip(CLOUD_IP),
            api_key: API_KEY.into(),
            seed: Some(seed ^ 0xc10d),
            ..Default::default()
        };
        if let Some(lease_ms) = lease_ms {
            cloud_cfg.controller_lease_ms = lease_ms;
            cloud_cfg.heartbeat_interval_ms = lease_ms / 3;
        }
        let (identity, log) = (
            ids.identity("cloud").unwrap(),
            EventLog::collecting("cloud", events.clone()).with_checks(checks.clone()),
        );
        let cloud_node = handle
            .create_node()
            .name("cloud")
            .ip(ip(CLOUD_IP))
            .init(move || {
                let (c, i, l) = (cloud_cfg.clone(), identity.clone(), log.clone());
                async move {
                    cloud::start(c, i, l).await.expect("cloud starts");
                    std::future::pending::<()>().await
                }
            })
            .build();
        mc_rt::fault::set_node_ip(cloud_node.id(), ip(CLOUD_IP));
        let mut nodes = BTreeMap::new();
        nodes.insert("cloud".to_string(), cloud_node.id());

        let mut slots = BTreeMap::new();
        for n in 1..=controllers {
            let name = format!("controller-{n}");
            let mut ctl_cfg = ControllerConfig {
                id: name.clone(),
                listen: controller_ip(n),
                cloud_host: ip(CLOUD_IP).to_string(),
                seed: Some(seed ^ 0xc7c7 ^ (n as u64 - 1)),
                peer_host: (controllers == 2).then(|| controller_ip(3 - n).to_string()),
                ..Default::default()
            };
            if let Some(lease_ms) = lease_ms {
                ctl_cfg.peer_interval_ms = lease_ms / 3;
                ctl_cfg.peer_down_after_ms = lease_ms + mc_core::zc::ha::LEASE_MARGIN_MS;
                ctl_cfg.mmr_report_interval_ms = lease_ms / 4;
            }
            tweak(&mut ctl_cfg);
            let (identity, log) = (
                ids.identity(&name).unwrap(),
                EventLog::collecting(&name, events.clone()).with_checks(checks.clone()),
            );
            let slot = ControllerSlot::default();
            let init_slot = slot.clone();
            let node = handle
                .create_node()
                .name(&name)
                .ip(controller_ip(n))
                .init(move || {
                    let (c, i, l, slot) = (
                        ctl_cfg.clone(),
                        identity.clone(),
                        log.clone(),
                        init_slot.clone(),
                    );
                    async move {
                        let h =
                            Arc::new(controller::start(c, i, l).await.expect("controller starts"));
                        slot.set(&h);
                        std::future::pending::<()>().await;
                        drop(h)
                    }
                })
                .build();
            mc_rt::fault::set_node_ip(node.id(), controller_ip(n));
            nodes.insert(name.clone(), node.id());
            slots.insert(name, slot);
        }

        let d = SimDeployment {
            seed,
            ca: ids.ca().unwrap(),
            ids,
            events,
            checks,
            next_host: Mutex::new(0),
            nodes: Mutex::new(nodes),
            controller: slots["controller-1"].clone(),
            controllers: slots,
            vms: Mutex::new(BTreeMap::new()),
        };
        for n in 1..=controllers {
            d.wait_for(
                &format!("controller-{n} registered with the cloud"),
                Duration::from_secs(30),
            )
            .await;
        }
        d
    }

    /// Starts MMR VM `mmr-1` on its own host, linked to the controller; returns its node, for
    /// faults. Waits until the controller has taken it into the zone.
    pub async fn start_mmr_vm(&self, capacity: u32) -> NodeId {
        self.start_mmr_vm_n(1, capacity).await
    }

    /// Starts MMR VM `mmr-<n>` (1..=8) and waits until the controller has taken it in. In an HA
    /// pair, odd MMR VMs link to controller-1 and even ones to controller-2, each with the other
    /// controller to fall back on.
    pub async fn start_mmr_vm_n(&self, n: u32, capacity: u32) -> NodeId {
        let name = format!("mmr-{n}");
        let pair = self.controllers.len() == 2;
        let home = if pair { 2 - n % 2 } else { 1 };
        let config = MmrConfig {
            id: name.clone(),
            listen: mmr_vm_ip(n),
            controller_host: controller_ip(home).to_string(),
            peer_controller_host: pair.then(|| controller_ip(3 - home).to_string()),
            cloud_host: ip(CLOUD_IP).to_string(),
            capacity,
            ..Default::default()
        };
        let (identity, log) = (
            self.ids.identity(&name).unwrap(),
            EventLog::collecting(&name, self.events.clone()).with_checks(self.checks.clone()),
        );
        let slot = MmrVmSlot::default();
        let init_slot = slot.clone();
        let node = Handle::current()
            .create_node()
            .name(&name)
            .ip(mmr_vm_ip(n))
            .init(move || {
                let (c, i, l, slot) = (
                    config.clone(),
                    identity.clone(),
                    log.clone(),
                    init_slot.clone(),
                );
                async move {
                    let h = Arc::new(
                        mc_node::mmr::vm::start(c, i, l)
                            .await
                            .expect("MMR VM starts"),
                    );
                    slot.set(&h);
                    std::future::pending::<()>().await;
                    drop(h)
                }
            })
            .build();
        mc_rt::fault::set_node_ip(node.id(), mmr_vm_ip(n));
        self.nodes.lock().unwrap().insert(name.clone(), node.id());
        self.vms
            .lock()
            .unwrap()
            .insert(name.clone(), (capacity, slot));
        self.wait_for(&format!("MMR {name} linked"), Duration::from_secs(30))
            .await;
        node.id()
    }

    /// Spawns one client on its own host without waiting for it.
    pub fn spawn_client(
        &self,
        c: ClientConfig,
    ) -> mc_rt::sim::task::JoinHandle<Result<ClientReport, ClientError>> {
        self.spawn_client_observed(c, Arc::default())
    }

    /// Spawns one client on its own host, with live counters the caller can watch.
    pub fn spawn_client_observed(
        &self,
        c: ClientConfig,
        probe: Arc<client::ClientProbe>,
    ) -> mc_rt::sim::task::JoinHandle<Result<ClientReport, ClientError>> {
        let node_ip = self.next_ip();
        let node = Handle::current()
            .create_node()
            .name(c.display_name.clone())
            .ip(node_ip)
            .build();
        mc_rt::fault::set_node_ip(node.id(), node_ip);
        let (ca, log) = (
            self.ca.clone(),
            EventLog::collecting(&c.display_name, self.events.clone())
                .with_checks(self.checks.clone()),
        );
        // The harness reads `joined` as "in the meeting now": false again once the client ends.
        node.spawn(async move {
            let r = client::run_observed(c, ca, log, std::future::pending(), &probe).await;
            probe
                .joined
                .store(false, std::sync::atomic::Ordering::Relaxed);
            r
        })
    }

    /// An event log writer for the harness itself (faults, checks).
    pub fn log(&self, node: &str) -> EventLog {
        EventLog::collecting(node, self.events.clone()).with_checks(self.checks.clone())
    }

    /// Waits (in simulated time) for an event containing `needle`.
    pub async fn wait_for(&self, needle: &str, within: Duration) {
        let start = mc_rt::Instant::now();
        while !self.events().iter().any(|e| e.contains(needle)) {
            assert!(
                start.elapsed() < within,
                "no event {needle:?} within {within:?}; events:\n{}",
                self.events().join("\n")
            );
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Participants' and operators' hosts, in 198.18.0.0/15 (the benchmarking range): room for
    /// many thousands of simulated hosts.
    pub fn next_ip(&self) -> IpAddr {
        let mut n = self.next_host.lock().unwrap();
        *n += 1;
        let [_, _, hi, lo] = n.to_be_bytes();
        ip([198, 18 + (*n >> 16) as u8, hi, lo])
    }

    /// Runs `f` on a fresh simulated host (an operator's or a participant's machine).
    pub async fn on_new_host<F, Fut, T>(&self, name: &str, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let node_ip = self.next_ip();
        let node = Handle::current()
            .create_node()
            .name(name)
            .ip(node_ip)
            .build();
        mc_rt::fault::set_node_ip(node.id(), node_ip);
        node.spawn(async move { f().await })
            .await
            .expect("simulated task completes")
    }

    pub fn api(&self) -> ManagementApi {
        ManagementApi {
            host: ip(CLOUD_IP).to_string(),
            port: mc_wire::ports::HTTPS,
            api_key: API_KEY.into(),
            ca: self.ca.clone(),
            timeout_ms: 2_000,
        }
    }

    pub async fn create_meeting(&self, topic: &str) -> MeetingId {
        let (api, topic) = (self.api(), topic.to_string());
        self.on_new_host("operator", move || async move {
            api.create_meeting(&topic).await.expect("meeting created")
        })
        .await
    }

    /// A participant of `meeting`: `packets_per_s` RTP packets for `duration_ms`.
    pub fn client(
        &self,
        name: &str,
        meeting: MeetingId,
        packets_per_s: u32,
        duration_ms: u64,
    ) -> ClientConfig {
        ClientConfig {
            display_name: name.into(),
            cloud_host: ip(CLOUD_IP).to_string(),
            api_key: API_KEY.into(),
            meeting: meeting.0,
            media_packets_per_s: packets_per_s,
            duration_ms,
            // Distinct names, distinct seeds (and so distinct SSRCs): FNV-1a of the name.
            seed: Some(
                name.bytes()
                    .fold(0xcbf2_9ce4_8422_2325 ^ self.seed, |h, b| {
                        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
                    }),
            ),
            ..Default::default()
        }
    }

    /// Runs every client on its own host, concurrently; returns their outcomes in order.
    pub async fn run_clients(
        &self,
        configs: Vec<ClientConfig>,
    ) -> Vec<Result<ClientReport, ClientError>> {
        let handles: Vec<_> = configs.into_iter().map(|c| self.spawn_client(c)).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("client task completes"));
        }
        out
    }

    pub fn ca(&self) -> CertificateDer<'static> {
        self.ca.clone()
    }
}

pub fn ip(octets: [u8; 4]) -> IpAddr {
    IpAddr::from(octets)
}

/// Media reached every other participant of its meeting (at least `min_packets` from each) and
/// nobody outside it.
pub fn assert_isolated_meetings(reports: &[ClientReport], min_packets: u64) {
    for r in reports {
        let mut peers: Vec<u32> = reports
            .iter()
            .filter(|o| o.meeting == r.meeting && o.ssrc != r.ssrc)
            .map(|o| o.ssrc)
            .collect();
        peers.sort();
        let from: Vec<u32> = r.by_source.keys().copied().collect();
        assert_eq!(
            from, peers,
            "{} must hear exactly the other participants of {}",
            r.display_name, r.meeting
        );
        for ssrc in peers {
            let got = r.by_source[&ssrc].received;
            assert!(
                got >= min_packets,
                "{} received only {got} packets from ssrc {ssrc}",
                r.display_name
            );
        }
    }
}

pub mod cli;
pub mod lifecycle;
pub mod plan;
pub mod pool;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;
