//! Every identity bound to its role and name (issue 12, item 3): on every mutual-TLS link and
//! for monitoring reports, a deployment certificate of the wrong role, and one of the right role
//! naming another node, are refused — with a typed reason, counted in
//! `mc_identity_refusals_total` — and the zone is unchanged. Each link's check is shown to let
//! its rightful peer in too, so none of these tests passes by refusing everything.
#![cfg(not(madsim))]

mod common;

use common::{sample, Deployment, API_KEY};
use mc_node::framed::{write_frame, FrameReader, Read};
use mc_node::http::request_json;
use mc_rt::tls;
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::notify::{ControllerToNotify, NotifyToController};
use mc_wire::peer::PeerMsg;
use mc_wire::ports::alpn;
use mc_wire::signal::MediaEndpoints;
use mc_wire::status::{CloudToController, ControllerToCloud, Load, SignallingEndpoints};
use mc_wire::{ControllerId, MmrId};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a refused peer may wait for the server to close on it.
const REFUSAL_WAIT: Duration = Duration::from_secs(3);

/// Sends `first` as `who` and returns the server's first answer (or how the link ended).
async fn first_answer<T: serde::Serialize, A: serde::de::DeserializeOwned>(
    d: &Deployment,
    addr: SocketAddr,
    who: &str,
    alpn: &[u8],
    first: &T,
) -> Read<A> {
    let (rd, mut wr) = mc_rt::split(d.dial(addr, Some(who), alpn).await);
    // A peer refused on its certificate alone may find the connection closed already.
    let _ = write_frame(&mut wr, first).await;
    FrameReader::new(rd).next_within::<A>(REFUSAL_WAIT).await
}

/// The link was closed on the peer without an answer (and promptly: not a timeout).
fn assert_closed<A: std::fmt::Debug>(what: &str, read: Read<A>) {
    match read {
        Read::Closed | Read::Io(_) => {}
        Read::Message(m) => panic!("{what}: answered {m:?}"),
        Read::Malformed(e) => panic!("{what}: answered garbage: {e}"),
        Read::Timeout => panic!("{what}: neither answered nor closed"),
    }
}

/// A JSON request to the cloud's HTTPS port, with `who`'s certificate if any.
async fn cloud_json(
    d: &Deployment,
    who: Option<&str>,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Result<Value, String> {
    let stream = d.dial(d.cloud.https_addr, who, alpn::HTTP1).await;
    request_json(stream, method, "127.0.0.1", path, key, body)
        .await
        .map_err(|e| e.to_string())
}

fn refusals(link: &str, reason: &str) -> String {
    format!("mc_identity_refusals_total{{link=\"{link}\",reason=\"{reason}\"}}")
}

/// What the cloud knows of the zone that a refused peer must not change: the controllers status
/// sync lists (and where), and the nodes monitoring has reports from, with their load.
async fn cloud_zone(d: &Deployment) -> Value {
    let status = cloud_json(d, None, "GET", "/v1/status", Some(API_KEY), None)
        .await
        .unwrap();
    let zone = cloud_json(d, None, "GET", "/v1/zone", Some(API_KEY), None)
        .await
        .unwrap();
    let controllers: Vec<Value> = status["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!([c["id"], c["signalling"], c["capacity"]]))
        .collect();
    let nodes: Vec<Value> = zone["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| json!([n["node"], n["role"], n["participants"], n["meetings"]]))
        .collect();
    json!({ "controllers": controllers, "nodes": nodes })
}

fn register(controller: &str) -> ControllerToCloud {
    ControllerToCloud::Register {
        controller: ControllerId(controller.into()),
        zone: "impostor".into(),
        signalling: SignallingEndpoints {
            host: "10.66.66.66".into(),
            port: 8802,
            fallback_port: 443,
        },
        capacity: Load {
            participants: 1,
            meetings: 1,
        },
        meetings: Vec::new(),
    }
}

#[test]
fn status_sync_takes_only_a_controller_registering_as_itself() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let before = cloud_zone(&d).await;
        let sync = d.cloud.status_sync_addr;
        // An MMR VM's certificate registering as controller-1 (the attack of the issue).
        let wrong_role: Read<CloudToController> = first_answer(
            &d,
            sync,
            "mmr-1",
            alpn::STATUS_SYNC,
            &register("controller-1"),
        )
        .await;
        let Read::Message(CloudToController::Rejected { message }) = wrong_role else {
            panic!("an MMR's certificate registered: {wrong_role:?}");
        };
        assert!(
            message.contains("takes a controller certificate; the peer presented a mmr"),
            "{message}"
        );
        // controller-2's certificate registering as controller-1.
        let other: Read<CloudToController> = first_answer(
            &d,
            sync,
            "controller-2",
            alpn::STATUS_SYNC,
            &register("controller-1"),
        )
        .await;
        let Read::Message(CloudToController::Rejected { message }) = other else {
            panic!("controller-2 registered as controller-1: {other:?}");
        };
        assert!(
            message.contains("claims to be controller \"controller-1\", but its certificate is for controller \"controller-2\""),
            "{message}"
        );
        assert_eq!(
            cloud_zone(&d).await,
            before,
            "a refused registration changed the zone"
        );
        let (_, metrics) = d.scrape(d.cloud.https_addr, "prometheus").await;
        assert_eq!(
            sample(&metrics, &refusals("status_sync", "wrong_role")),
            1.0
        );
        assert_eq!(
            sample(&metrics, &refusals("status_sync", "name_mismatch")),
            1.0
        );

        // controller-2 registering as itself is let in (and so the zone changes).
        let own: Read<CloudToController> = first_answer(
            &d,
            sync,
            "controller-2",
            alpn::STATUS_SYNC,
            &register("controller-2"),
        )
        .await;
        assert!(
            matches!(own, Read::Message(CloudToController::Registered { .. })),
            "{own:?}"
        );
        assert_ne!(cloud_zone(&d).await, before);
    });
}

#[test]
fn notification_is_only_for_a_controller_saying_hello_as_itself() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let before = cloud_zone(&d).await;
        let at = d.cloud.notification_addr;
        let hello = |c: &str| ControllerToNotify::Hello {
            controller: ControllerId(c.into()),
            after_seq: 0,
        };
        let wrong_role: Read<NotifyToController> =
            first_answer(&d, at, "mmr-1", alpn::NOTIFICATION, &hello("controller-1")).await;
        assert_closed("an MMR's certificate subscribing", wrong_role);
        let other: Read<NotifyToController> = first_answer(
            &d,
            at,
            "controller-2",
            alpn::NOTIFICATION,
            &hello("controller-1"),
        )
        .await;
        assert_closed("controller-2 subscribing as controller-1", other);
        assert_eq!(cloud_zone(&d).await, before);
        let (_, metrics) = d.scrape(d.cloud.https_addr, "prometheus").await;
        assert_eq!(
            sample(&metrics, &refusals("notification", "wrong_role")),
            1.0
        );
        assert_eq!(
            sample(&metrics, &refusals("notification", "name_mismatch")),
            1.0
        );

        let own: Read<NotifyToController> = first_answer(
            &d,
            at,
            "controller-2",
            alpn::NOTIFICATION,
            &hello("controller-2"),
        )
        .await;
        assert!(
            matches!(own, Read::Message(NotifyToController::Welcome { .. })),
            "{own:?}"
        );
    });
}

#[test]
fn monitoring_takes_a_report_only_from_the_node_it_describes() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        // The real controller-1 has reported.
        for _ in 0..50 {
            if cloud_zone(&d).await["nodes"].as_array().unwrap().len() == 1 {
                break;
            }
            mc_rt::sleep(Duration::from_millis(100)).await;
        }
        let before = cloud_zone(&d).await;
        assert_eq!(before["nodes"][0][0], "controller-1", "{before}");
        let report = |node: &str, role: &str| {
            json!({
                "node": node, "role": role, "live": true, "ready": true, "links": {},
                "participants": 999, "meetings": 99,
                "media": { "rtp_in": 0, "rtp_out": 0, "dropped": 0,
                           "udp_endpoints": 0, "tcp_endpoints": 0, "tls_endpoints": 0 }
            })
        };
        let post = |who: &'static str, body: Value| {
            let d = &d;
            async move {
                cloud_json(
                    d,
                    Some(who),
                    "POST",
                    "/v1/monitoring/reports",
                    None,
                    Some(body),
                )
                .await
            }
        };
        // An MMR's certificate reporting for controller-1 (the attack of the issue).
        let wrong_role = post("mmr-1", report("controller-1", "controller"))
            .await
            .unwrap_err();
        assert!(
            wrong_role.starts_with("403") && wrong_role.contains("takes a controller certificate"),
            "{wrong_role}"
        );
        // The cloud's and a scraper's certificates are no node's.
        for who in ["cloud", "prometheus"] {
            let refused = post(who, report("controller-1", "controller")).await;
            assert!(refused.unwrap_err().starts_with("403"), "{who}");
        }
        // controller-2's certificate reporting for controller-1, and mmr-2's for mmr-1.
        let other = post("controller-2", report("controller-1", "controller"))
            .await
            .unwrap_err();
        assert!(
            other.starts_with("403")
                && other.contains("certificate is for controller \"controller-2\""),
            "{other}"
        );
        assert!(post("mmr-2", report("mmr-1", "mmr")).await.is_err());
        mc_rt::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            cloud_zone(&d).await,
            before,
            "a refused report changed the zone"
        );
        let (_, metrics) = d.scrape(d.cloud.https_addr, "prometheus").await;
        assert_eq!(sample(&metrics, &refusals("monitoring", "wrong_role")), 3.0);
        assert_eq!(
            sample(&metrics, &refusals("monitoring", "name_mismatch")),
            2.0
        );

        // mmr-1 reporting for itself is taken, and shows.
        post("mmr-1", report("mmr-1", "mmr")).await.unwrap();
        assert_ne!(cloud_zone(&d).await, before);
    });
}

fn hello(mmr: &str) -> MmrToController {
    MmrToController::Hello {
        mmr: MmrId(mmr.into()),
        capacity: 50,
        media: MediaEndpoints {
            host: "10.66.66.66".into(),
            udp_port: 8801,
            tcp_port: 8801,
            tls_port: 443,
        },
        cascade_port: None,
    }
}

#[test]
fn a_controllers_mmr_link_takes_only_an_mmr_saying_hello_as_itself() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let before = d.controller.zone();
        for addr in [d.controller.signal_addr, d.controller.tls_addr] {
            // The cloud's certificate as MMR mmr-1 (the attack of the issue).
            let wrong_role: Read<ControllerToMmr> =
                first_answer(&d, addr, "cloud", alpn::LINK, &hello("mmr-1")).await;
            assert_closed("the cloud's certificate as an MMR", wrong_role);
            let other: Read<ControllerToMmr> =
                first_answer(&d, addr, "mmr-2", alpn::LINK, &hello("mmr-1")).await;
            assert_closed("mmr-2's certificate as mmr-1", other);
        }
        assert_eq!(d.controller.zone(), before, "a refused MMR joined the zone");
        let metrics = d.controller.metrics.render();
        assert_eq!(sample(&metrics, &refusals("mmr_link", "wrong_role")), 2.0);
        assert_eq!(
            sample(&metrics, &refusals("mmr_link", "name_mismatch")),
            2.0
        );

        let own: Read<ControllerToMmr> = first_answer(
            &d,
            d.controller.signal_addr,
            "mmr-2",
            alpn::LINK,
            &hello("mmr-2"),
        )
        .await;
        assert!(
            matches!(own, Read::Message(ControllerToMmr::Welcome { .. })),
            "{own:?}"
        );
    });
}

#[test]
fn an_mmr_vm_links_only_to_a_controller() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        // Something presenting the cloud's certificate where the MMR VM expects its controller.
        let listener = mc_rt::net::TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
            .await
            .unwrap();
        let fake = listener.local_addr().unwrap();
        let server = tls::server_config(
            &d.ids.identity("cloud").unwrap(),
            alpn::LINK,
            tls::ClientAuth::Required,
        )
        .unwrap();
        let router = tls::Router::new()
            .route(alpn::LINK, server)
            .default_route(alpn::LINK);
        mc_rt::spawn(async move {
            loop {
                let Ok((tcp, peer)) = mc_rt::net::accept(&listener).await else {
                    return;
                };
                let router = router.clone();
                mc_rt::spawn(async move {
                    if let Ok((_, s)) = router.accept(tcp, peer, Duration::from_secs(2)).await {
                        // Welcome it as a controller would, to show the MMR does not listen.
                        let (_, mut wr) = mc_rt::split(s);
                        let welcome = ControllerToMmr::Welcome {
                            controller: ControllerId("controller-1".into()),
                            report_interval_ms: 1_000,
                        };
                        let _ = write_frame(&mut wr, &welcome).await;
                        mc_rt::sleep(Duration::from_secs(5)).await;
                    }
                });
            }
        });
        let id = d.ids.identity("mmr-1").unwrap();
        let config = mc_node::config::MmrConfig {
            cascade_port: 0,
            listen: "127.0.0.1".parse().unwrap(),
            media_udp_port: 0,
            media_tcp_port: 0,
            tls_port: 0,
            controller_host: "127.0.0.1".into(),
            controller_port: fake.port(),
            controller_fallback_port: fake.port(),
            connect_timeout_ms: 500,
            cloud_host: "127.0.0.1".into(),
            cloud_https_port: d.cloud.https_addr.port(),
            ..Default::default()
        };
        let vm = mc_node::mmr::vm::start(config, id, mc_node::EventLog::tracing_only("mmr-1"))
            .await
            .unwrap();
        mc_rt::sleep(Duration::from_millis(1_500)).await;
        let metrics = vm.metrics.render();
        assert!(
            sample(&metrics, &refusals("mmr_link", "wrong_role")) >= 1.0,
            "{metrics}"
        );
        assert!(
            !vm.links.is_up("mmr_link"),
            "the MMR VM linked to the cloud's certificate"
        );
    });
}

fn ping(controller: &str) -> PeerMsg {
    PeerMsg::Ping {
        controller: ControllerId(controller.into()),
        sent_ms: mc_rt::unix_now_ms(),
        meetings: Vec::new(),
        load: Load::default(),
        capacity: Load {
            participants: 10,
            meetings: 1,
        },
        rejoin_key: None,
    }
}

/// The HA view controller-1 reports to a scraper: whether its peer is up, what it owns.
async fn ha_view(d: &Deployment) -> (Value, Value) {
    let s = d
        .dial(d.controller.tls_addr, Some("prometheus"), alpn::HTTP1)
        .await;
    let health = request_json(s, "GET", "127.0.0.1", "/v1/health", None, None)
        .await
        .unwrap();
    (
        health["ha"]["peer_up"].clone(),
        health["ha"]["owned"].clone(),
    )
}

#[test]
fn the_ha_peer_link_takes_only_the_peer_controller_as_itself() {
    mc_rt::block_on(async {
        // controller-1 in a pair whose peer is nowhere (the port of nothing).
        let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = Deployment::start(|c, _| {
            c.peer_host = Some("127.0.0.1".into());
            c.peer_port = nowhere;
            c.peer_fallback_port = nowhere;
        })
        .await;
        let before = (d.controller.zone(), ha_view(&d).await);
        assert_eq!(before.1 .0, false, "no peer yet");
        let at = d.controller.signal_addr;
        let wrong_role: Read<PeerMsg> =
            first_answer(&d, at, "mmr-1", alpn::PEER, &ping("controller-2")).await;
        assert_closed("an MMR's certificate as the peer", wrong_role);
        let other: Read<PeerMsg> =
            first_answer(&d, at, "controller-2", alpn::PEER, &ping("controller-9")).await;
        assert_closed("controller-2's certificate as controller-9", other);
        assert_eq!((d.controller.zone(), ha_view(&d).await), before);
        let metrics = d.controller.metrics.render();
        assert_eq!(sample(&metrics, &refusals("peer", "wrong_role")), 1.0);
        assert_eq!(sample(&metrics, &refusals("peer", "name_mismatch")), 1.0);

        let own: Read<PeerMsg> =
            first_answer(&d, at, "controller-2", alpn::PEER, &ping("controller-2")).await;
        assert!(
            matches!(own, Read::Message(PeerMsg::Pong { .. })),
            "{own:?}"
        );
    });
}

#[test]
fn metrics_and_full_health_are_a_scrapers() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        for addr in [d.cloud.https_addr, d.controller.tls_addr] {
            for who in ["mmr-1", "controller-1", "cloud"] {
                let (status, body) = d.scrape(addr, who).await;
                assert!(status.contains(" 403 "), "{who} scraped {addr}: {status}");
                assert!(body.contains("identity_refused"), "{body}");
            }
            let (status, _) = d.scrape(addr, "prometheus").await;
            assert!(status.contains(" 200 "), "{status}");
        }
        let (_, cloud) = d.scrape(d.cloud.https_addr, "prometheus").await;
        assert_eq!(sample(&cloud, &refusals("metrics", "wrong_role")), 3.0);
        let controller = d.controller.metrics.render();
        assert_eq!(sample(&controller, &refusals("metrics", "wrong_role")), 3.0);
    });
}
