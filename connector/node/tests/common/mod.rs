//! The loopback test harness: a real cloud and controller on 127.0.0.1 with ephemeral ports.
// Each test crate that includes this module uses only part of it; the rest is not dead.
#![allow(dead_code)]

pub mod attack;

use mc_node::client::{self, ClientReport, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig};
use mc_node::{cloud, controller, identities, EventLog};
use mc_rt::net::TcpStream;
use mc_rt::tls::{self, ClientTlsStream};
use mc_wire::ports::alpn;
use mc_wire::MeetingId;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const API_KEY: &str = "test-api-key-0123456789";

pub struct Deployment {
    pub cloud: cloud::CloudHandle,
    pub controller: controller::ControllerHandle,
    pub ids: mc_rt::certs::Deployment,
    pub ca: rustls::pki_types::CertificateDer<'static>,
    pub events: Arc<Mutex<Vec<String>>>,
}

impl Deployment {
    pub async fn start(tweak: impl FnOnce(&mut ControllerConfig, &mut CloudConfig)) -> Deployment {
        Self::start_with_cloud_ports(tweak, None).await
    }

    /// Like `start`, but the controller is told these (status sync, notification) ports for the
    /// cloud's dedicated services instead of the real ones.
    pub async fn start_with_cloud_ports(
        tweak: impl FnOnce(&mut ControllerConfig, &mut CloudConfig),
        dedicated: Option<(u16, u16)>,
    ) -> Deployment {
        let hosts = [
            ("cloud", vec!["127.0.0.1".to_string()]),
            ("controller-1", vec!["127.0.0.1".to_string()]),
            ("mmr-1", vec!["127.0.0.1".to_string()]),
            // What scrapes metrics and reads full health reports.
            ("prometheus", vec!["127.0.0.1".to_string()]),
            // Hosts of the right roles that are not this deployment's (the identity tests).
            ("controller-2", vec!["127.0.0.1".to_string()]),
            ("mmr-2", vec!["127.0.0.1".to_string()]),
        ];
        let ids =
            identities::generate("test", &hosts, 7, mc_rt::unix_now_ms() as i64 / 1000, 1).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut cloud_cfg = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            heartbeat_interval_ms: 300,
            seed: Some(1),
            ..Default::default()
        };
        let mut ctl_cfg = ControllerConfig {
            media_cascade_port: 0,
            listen: "127.0.0.1".parse().unwrap(),
            signal_port: 0,
            tls_port: 0,
            media_udp_port: 0,
            media_tcp_port: 0,
            seed: Some(2),
            connect_timeout_ms: 500,
            monitoring_interval_ms: 300,
            ..Default::default()
        };
        tweak(&mut ctl_cfg, &mut cloud_cfg);
        let cloud = cloud::start(
            cloud_cfg,
            ids.identity("cloud").unwrap(),
            EventLog::collecting("cloud", events.clone()),
        )
        .await
        .unwrap();
        ctl_cfg.cloud_status_sync_port = cloud.status_sync_addr.port();
        ctl_cfg.cloud_https_port = cloud.https_addr.port();
        ctl_cfg.cloud_notification_port = cloud.notification_addr.port();
        if let Some((sync, notify)) = dedicated {
            ctl_cfg.cloud_status_sync_port = sync;
            ctl_cfg.cloud_notification_port = notify;
        }
        let controller = controller::start(
            ctl_cfg,
            ids.identity("controller-1").unwrap(),
            EventLog::collecting("controller-1", events.clone()),
        )
        .await
        .unwrap();
        let d = Deployment {
            cloud,
            controller,
            ca: ids.ca().unwrap(),
            ids,
            events,
        };
        d.wait_for("registered with the cloud").await;
        d
    }

    pub async fn wait_for(&self, needle: &str) {
        for _ in 0..100 {
            if self
                .events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains(needle))
            {
                return;
            }
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
        panic!("no event {needle:?} in {:#?}", self.events.lock().unwrap());
    }

    /// Starts an MMR VM linked to the controller and waits until it has joined the zone.
    pub async fn start_mmr_vm(&self, capacity: u32) -> mc_node::mmr::vm::MmrVmHandle {
        self.start_mmr_vm_with(capacity, |_| {}).await
    }

    pub async fn start_mmr_vm_with(
        &self,
        capacity: u32,
        tweak: impl FnOnce(&mut mc_node::config::MmrConfig),
    ) -> mc_node::mmr::vm::MmrVmHandle {
        let mut config = mc_node::config::MmrConfig {
            cascade_port: 0,
            listen: "127.0.0.1".parse().unwrap(),
            media_udp_port: 0,
            media_tcp_port: 0,
            tls_port: 0,
            controller_host: "127.0.0.1".into(),
            controller_port: self.controller.signal_addr.port(),
            controller_fallback_port: self.controller.tls_addr.port(),
            capacity,
            connect_timeout_ms: 500,
            cloud_host: "127.0.0.1".into(),
            cloud_https_port: self.cloud.https_addr.port(),
            monitoring_interval_ms: 300,
            ..Default::default()
        };
        tweak(&mut config);
        let vm = mc_node::mmr::vm::start(
            config,
            self.ids.identity("mmr-1").unwrap(),
            EventLog::collecting("mmr-1", self.events.clone()),
        )
        .await
        .unwrap();
        self.wait_for("MMR mmr-1 linked").await;
        vm
    }

    /// A TLS connection to one of this deployment's listeners on `alpn`, presenting `who`'s
    /// certificate (`None`: a participant's connection, with none).
    pub async fn dial(
        &self,
        addr: SocketAddr,
        who: Option<&str>,
        alpn: &[u8],
    ) -> ClientTlsStream<TcpStream> {
        let id = who.map(|w| self.ids.identity(w).unwrap());
        let config = tls::client_config(&self.ca, id.as_ref(), alpn).unwrap();
        tls::connect(addr, "127.0.0.1", config, Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("{who:?} cannot connect to {addr}: {e}"))
    }

    /// A participant's signalling connection to the controller.
    pub async fn dial_signal(&self) -> ClientTlsStream<TcpStream> {
        self.dial(self.controller.signal_addr, None, alpn::SIGNAL)
            .await
    }

    /// `GET /metrics` over HTTP/1.0 with `who`'s certificate: the status line and the body.
    pub async fn scrape(&self, addr: SocketAddr, who: &str) -> (String, String) {
        use mc_rt::{AsyncReadExt, AsyncWriteExt};
        let mut s = self.dial(addr, Some(who), alpn::HTTP1).await;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    pub fn api(&self) -> ManagementApi {
        ManagementApi {
            host: "127.0.0.1".into(),
            port: self.cloud.https_addr.port(),
            api_key: API_KEY.into(),
            ca: self.ca.clone(),
            timeout_ms: 2_000,
        }
    }

    pub fn client(&self, name: &str, meeting: MeetingId, seed: u64) -> ClientConfig {
        ClientConfig {
            display_name: name.into(),
            cloud_https_port: self.cloud.https_addr.port(),
            api_key: API_KEY.into(),
            meeting: meeting.0,
            media_packets_per_s: 50,
            duration_ms: 1_500,
            connect_timeout_ms: 500,
            binding_timeout_ms: 200,
            binding_attempts: 2,
            seed: Some(seed),
            ..Default::default()
        }
    }

    /// Runs clients concurrently; every one must join.
    pub async fn run_clients(&self, clients: Vec<ClientConfig>) -> Vec<ClientReport> {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|c| {
                let (ca, ev) = (
                    self.ca.clone(),
                    EventLog::collecting(&c.display_name, self.events.clone()),
                );
                mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await })
            })
            .collect();
        let mut reports = Vec::new();
        for h in handles {
            reports.push(h.await.unwrap().expect("client joined"));
        }
        reports
    }
}

/// The value of one series (`name{labels}`) in a scrape, 0 when absent.
pub fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Media reaches every other participant of the meeting and nobody outside it.
pub fn assert_isolated_meetings(reports: &[ClientReport]) {
    for r in reports {
        let peers: Vec<u32> = reports
            .iter()
            .filter(|o| o.meeting == r.meeting && o.ssrc != r.ssrc)
            .map(|o| o.ssrc)
            .collect();
        let from: Vec<u32> = r.by_source.keys().copied().collect();
        assert_eq!(
            from,
            {
                let mut p = peers.clone();
                p.sort();
                p
            },
            "{} heard exactly its meeting's other participants",
            r.display_name
        );
        for ssrc in peers {
            let got = r.by_source[&ssrc].received;
            assert!(
                got >= 20,
                "{} received only {got} packets from {ssrc}",
                r.display_name
            );
        }
    }
}
