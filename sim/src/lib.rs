//! Deterministic simulation of whole meeting-connector deployments.
//!
//! Every node runs the production start-up path (`mc_node::cloud::start`, `controller::start`,
//! `client::run` — what the CLI calls) on its own simulated host inside madsim, so a seed fixes
//! every network delay and every random choice, and a failing seed replays exactly. Faults come
//! from madsim (kill, clog) and from the seam's port firewall (`mc_rt::fault`).
//!
//! This crate only has content when built with `--cfg madsim` (see `ci/test`).
#![cfg(madsim)]

use mc_node::client::{self, ClientError, ClientReport, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig, MmrConfig};
use mc_node::{cloud, controller, identities, EventLog};
use mc_rt::sim::runtime::Handle;
use mc_wire::MeetingId;
use rustls::pki_types::CertificateDer;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use mc_node::events::hash_lines;

pub const CLOUD_IP: [u8; 4] = [192, 0, 2, 1];
pub const CONTROLLER_IP: [u8; 4] = [192, 0, 2, 2];
pub const MMR_VM_IP: [u8; 4] = [192, 0, 2, 3];
const API_KEY: &str = "simulation-api-key-0001";

/// The seeds a test runs: `MC_SIM_SEED=N` replays one, otherwise `defaults`.
pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("MC_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("MC_SIM_SEED must be an integer")],
        Err(_) => defaults.to_vec(),
    }
}

/// Runs `scenario` in a fresh simulation with `seed`. On a panic, prints the command that replays
/// this seed alone before the panic propagates.
pub fn run<F, Fut>(test: &str, seed: u64, scenario: F) -> Fut::Output
where
    F: FnOnce() -> Fut,
    Fut: Future,
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
    mc_rt::fault::runtime(seed).block_on(scenario())
}

/// A simulated deployment: one cloud host and one controller VM host.
pub struct SimDeployment {
    pub seed: u64,
    ca: CertificateDer<'static>,
    ids: mc_rt::certs::Deployment,
    events: Arc<Mutex<Vec<String>>>,
    next_host: Mutex<u32>,
}

impl SimDeployment {
    /// Starts the cloud and a controller, each on its own simulated host, and waits until the
    /// controller has registered with the cloud.
    pub async fn start(seed: u64, tweak: impl FnOnce(&mut ControllerConfig)) -> SimDeployment {
        let now_unix_s = (mc_rt::unix_now_ms() / 1000) as i64;
        let hosts = [
            ("cloud", vec![ip(CLOUD_IP).to_string()]),
            ("controller-1", vec![ip(CONTROLLER_IP).to_string()]),
            ("mmr-1", vec![ip(MMR_VM_IP).to_string()]),
        ];
        let ids = identities::generate("simulation", &hosts, seed, now_unix_s, 30).expect("identities");
        let events = Arc::new(Mutex::new(Vec::new()));
        let handle = Handle::current();

        let cloud_cfg = CloudConfig { listen: ip(CLOUD_IP), api_key: API_KEY.into(), seed: Some(seed ^ 0xc10d), ..Default::default() };
        let (identity, log) = (ids.identity("cloud").unwrap(), EventLog::collecting("cloud", events.clone()));
        handle
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

        let mut ctl_cfg = ControllerConfig {
            listen: ip(CONTROLLER_IP),
            cloud_host: ip(CLOUD_IP).to_string(),
            seed: Some(seed ^ 0xc7c7),
            ..Default::default()
        };
        tweak(&mut ctl_cfg);
        let (identity, log) = (ids.identity("controller-1").unwrap(), EventLog::collecting("controller-1", events.clone()));
        handle
            .create_node()
            .name("controller-1")
            .ip(ip(CONTROLLER_IP))
            .init(move || {
                let (c, i, l) = (ctl_cfg.clone(), identity.clone(), log.clone());
                async move {
                    controller::start(c, i, l).await.expect("controller starts");
                    std::future::pending::<()>().await
                }
            })
            .build();

        let d = SimDeployment { seed, ca: ids.ca().unwrap(), ids, events, next_host: Mutex::new(0) };
        d.wait_for("registered with the cloud", Duration::from_secs(30)).await;
        d
    }

    /// Starts MMR VM `mmr-1` on its own host, linked to the controller; returns its node, for
    /// faults. Waits until the controller has taken it into the zone.
    pub async fn start_mmr_vm(&self, capacity: u32) -> mc_rt::sim::task::NodeId {
        let config = MmrConfig {
            listen: ip(MMR_VM_IP),
            controller_host: ip(CONTROLLER_IP).to_string(),
            cloud_host: ip(CLOUD_IP).to_string(),
            capacity,
            ..Default::default()
        };
        let (identity, log) = (self.ids.identity("mmr-1").unwrap(), EventLog::collecting("mmr-1", self.events.clone()));
        let node = Handle::current()
            .create_node()
            .name("mmr-1")
            .ip(ip(MMR_VM_IP))
            .init(move || {
                let (c, i, l) = (config.clone(), identity.clone(), log.clone());
                async move {
                    mc_node::mmr::vm::start(c, i, l).await.expect("MMR VM starts");
                    std::future::pending::<()>().await
                }
            })
            .build();
        self.wait_for("MMR mmr-1 linked", Duration::from_secs(30)).await;
        node.id()
    }

    /// Spawns one client on its own host without waiting for it.
    pub fn spawn_client(&self, c: ClientConfig) -> mc_rt::sim::task::JoinHandle<Result<ClientReport, ClientError>> {
        let node = Handle::current().create_node().name(c.display_name.clone()).ip(self.next_ip()).build();
        let (ca, log) = (self.ca.clone(), EventLog::collecting(&c.display_name, self.events.clone()));
        node.spawn(async move { client::run(c, ca, log, std::future::pending()).await })
    }

    /// Waits (in simulated time) for an event containing `needle`.
    pub async fn wait_for(&self, needle: &str, within: Duration) {
        let start = mc_rt::Instant::now();
        while !self.events().iter().any(|e| e.contains(needle)) {
            assert!(start.elapsed() < within, "no event {needle:?} within {within:?}; events:\n{}", self.events().join("\n"));
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Participants' and operators' hosts, in 198.18.0.0/15 (the benchmarking range): room for
    /// many thousands of simulated hosts.
    fn next_ip(&self) -> IpAddr {
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
        let node = Handle::current().create_node().name(name).ip(self.next_ip()).build();
        node.spawn(async move { f().await }).await.expect("simulated task completes")
    }

    pub fn api(&self) -> ManagementApi {
        ManagementApi { host: ip(CLOUD_IP).to_string(), port: mc_wire::ports::HTTPS, api_key: API_KEY.into(), ca: self.ca.clone(), timeout_ms: 2_000 }
    }

    pub async fn create_meeting(&self, topic: &str) -> MeetingId {
        let (api, topic) = (self.api(), topic.to_string());
        self.on_new_host("operator", move || async move { api.create_meeting(&topic).await.expect("meeting created") }).await
    }

    /// A participant of `meeting`: `packets_per_s` RTP packets for `duration_ms`.
    pub fn client(&self, name: &str, meeting: MeetingId, packets_per_s: u32, duration_ms: u64) -> ClientConfig {
        ClientConfig {
            display_name: name.into(),
            cloud_host: ip(CLOUD_IP).to_string(),
            api_key: API_KEY.into(),
            meeting: meeting.0,
            media_packets_per_s: packets_per_s,
            duration_ms,
            seed: Some(self.seed.wrapping_mul(31).wrapping_add(name.len() as u64 * 7919 + name.bytes().map(u64::from).sum::<u64>())),
            ..Default::default()
        }
    }

    /// Runs every client on its own host, concurrently; returns their outcomes in order.
    pub async fn run_clients(&self, configs: Vec<ClientConfig>) -> Vec<Result<ClientReport, ClientError>> {
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
        let mut peers: Vec<u32> = reports.iter().filter(|o| o.meeting == r.meeting && o.ssrc != r.ssrc).map(|o| o.ssrc).collect();
        peers.sort();
        let from: Vec<u32> = r.by_source.keys().copied().collect();
        assert_eq!(from, peers, "{} must hear exactly the other participants of {}", r.display_name, r.meeting);
        for ssrc in peers {
            let got = r.by_source[&ssrc].received;
            assert!(got >= min_packets, "{} received only {got} packets from ssrc {ssrc}", r.display_name);
        }
    }
}
