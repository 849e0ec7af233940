//! The walking skeleton over real sockets on loopback: a cloud, one controller VM and clients,
//! with real TLS, real UDP and real HTTP.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::{assert_isolated_meetings, Deployment};
use mc_node::client::{self, ManagementApi};
use mc_node::framed::{write_frame, FrameReader};
use mc_node::EventLog;
use mc_wire::signal::{ClientToZc, RejectReason, ZcToClient};
use std::time::Duration;

#[test]
fn media_flows_within_a_meeting_and_never_across_meetings() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let api = d.api();
        let (m1, m2) = (
            api.create_meeting("design review").await.unwrap(),
            api.create_meeting("standup").await.unwrap(),
        );
        let reports = d
            .run_clients(vec![
                d.client("ada", m1, 11),
                d.client("bob", m1, 12),
                d.client("cyd", m1, 13),
                d.client("dan", m2, 14),
            ])
            .await;
        assert!(
            reports
                .iter()
                .all(|r| r.media_path == client::MediaPath::Udp),
            "{reports:#?}"
        );
        assert_isolated_meetings(&reports);
        assert_eq!(
            reports[3].received, 0,
            "alone in its meeting, dan hears nothing"
        );
    });
}

#[test]
fn media_falls_back_to_tls_443_when_udp_and_tcp_8801_are_unreachable() {
    mc_rt::block_on(async {
        // A UDP socket that never answers stands for a firewalled UDP port; a closed TCP port
        // refuses connections, as a blocked one does.
        let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_tcp = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let udp_port = black_hole.local_addr().unwrap().port();
        let d = Deployment::start(|c, _| {
            c.advertise_media_udp_port = Some(udp_port);
            c.advertise_media_tcp_port = Some(closed_tcp);
        })
        .await;
        let m = d.api().create_meeting("fallback").await.unwrap();
        let reports = d
            .run_clients(vec![d.client("ada", m, 21), d.client("bob", m, 22)])
            .await;
        assert!(
            reports
                .iter()
                .all(|r| r.media_path == client::MediaPath::Tls),
            "{reports:#?}"
        );
        assert_isolated_meetings(&reports);
        drop(black_hole);
    });
}

#[test]
fn media_uses_tcp_8801_when_only_udp_is_unreachable() {
    mc_rt::block_on(async {
        let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = black_hole.local_addr().unwrap().port();
        let d = Deployment::start(|c, _| c.advertise_media_udp_port = Some(udp_port)).await;
        let m = d.api().create_meeting("tcp").await.unwrap();
        let reports = d
            .run_clients(vec![d.client("ada", m, 31), d.client("bob", m, 32)])
            .await;
        assert!(
            reports
                .iter()
                .all(|r| r.media_path == client::MediaPath::Tcp),
            "{reports:#?}"
        );
        assert_isolated_meetings(&reports);
    });
}

/// Joins with a raw ticket on the signalling port and returns the ZC's answer.
async fn join_raw(d: &Deployment, ticket: &str) -> ZcToClient {
    let stream = d.dial_signal().await;
    let (rd, mut wr) = mc_rt::split(stream);
    write_frame(
        &mut wr,
        &ClientToZc::Join {
            ticket: ticket.into(),
        },
    )
    .await
    .unwrap();
    FrameReader::new(rd)
        .next::<ZcToClient>()
        .await
        .unwrap()
        .expect("an answer")
}

fn reason(msg: &ZcToClient) -> RejectReason {
    match msg {
        ZcToClient::Rejected {
            reason, message, ..
        } => {
            assert!(!message.is_empty());
            *reason
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn bad_expired_and_replayed_tickets_are_refused_with_a_reason() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, cloud| cloud.ticket_ttl_s = 1).await;
        let m = d.api().create_meeting("tickets").await.unwrap();
        assert_eq!(
            reason(&join_raw(&d, "not-a-ticket").await),
            RejectReason::TicketInvalid
        );

        let grant = client::fetch_ticket(&d.client("eve", m, 41), &d.ca)
            .await
            .unwrap();
        let mut forged = grant.ticket.clone();
        forged.replace_range(
            forged.len() - 2..,
            if forged.ends_with("00") { "11" } else { "00" },
        );
        assert_eq!(
            reason(&join_raw(&d, &forged).await),
            RejectReason::TicketInvalid
        );

        assert!(matches!(
            join_raw(&d, &grant.ticket).await,
            ZcToClient::Joined { .. }
        ));
        assert_eq!(
            reason(&join_raw(&d, &grant.ticket).await),
            RejectReason::TicketReplayed
        );

        let late = client::fetch_ticket(&d.client("mallory", m, 42), &d.ca)
            .await
            .unwrap();
        mc_rt::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(
            reason(&join_raw(&d, &late.ticket).await),
            RejectReason::TicketExpired
        );
    });
}

#[test]
fn the_management_api_requires_its_key_and_explains_bad_requests() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let wrong = ManagementApi {
            api_key: "wrong-key-wrong-key".into(),
            ..d.api()
        };
        let err = wrong.create_meeting("x").await.unwrap_err();
        assert!(err.contains("401") && err.contains("API key"), "{err}");
        let err = d
            .api()
            .call(
                "POST",
                "/v1/meetings",
                Some(serde_json::json!({ "topic": "" })),
            )
            .await
            .unwrap_err();
        assert!(err.contains("422") && err.contains("topic"), "{err}");
        let err = d
            .api()
            .call(
                "POST",
                "/v1/meetings/99/tickets",
                Some(serde_json::json!({ "display_name": "x" })),
            )
            .await
            .unwrap_err();
        assert!(
            err.contains("404") && err.contains("does not exist"),
            "{err}"
        );
        let err = d
            .api()
            .call(
                "POST",
                "/v1/meetings",
                Some(serde_json::json!({ "topik": "x" })),
            )
            .await
            .unwrap_err();
        assert!(
            err.contains("400") && err.contains("unknown field"),
            "{err}"
        );
    });
}

#[test]
fn an_mmr_vm_links_adds_its_capacity_and_carries_meetings() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.mmr_capacity = 2).await;
        let vm = d.start_mmr_vm(4).await;
        let api = d.api();
        let meetings = [
            api.create_meeting("a").await.unwrap(),
            api.create_meeting("b").await.unwrap(),
            api.create_meeting("c").await.unwrap(),
        ];
        // Sequential first joins pin each meeting to an MMR: local (0/2), then mmr-1 (0/4), then
        // mmr-1 again (1/4 < 1/2).
        let mut reports = Vec::new();
        for (i, m) in meetings.iter().enumerate() {
            let mut c = d.client(&format!("first-{i}"), *m, 100 + i as u64);
            c.duration_ms = 2_500;
            let (ca, ev) = (
                d.ca.clone(),
                EventLog::collecting("first", d.events.clone()),
            );
            reports.push(mc_rt::spawn(async move {
                client::run(c, ca, ev, std::future::pending()).await
            }));
            d.wait_for(&format!(" to m{} on ", m.0)).await;
        }
        let seconds = d
            .run_clients(vec![
                d.client("second-a", meetings[0], 200),
                d.client("second-b", meetings[1], 201),
                d.client("second-c", meetings[2], 202),
            ])
            .await;
        let mut all: Vec<_> = Vec::new();
        for h in reports {
            all.push(h.await.unwrap().unwrap());
        }
        all.extend(seconds);
        assert_isolated_meetings(&all);
        let log = d.events.lock().unwrap().join("\n");
        assert!(
            log.contains(&format!("to m{} on controller-1-mmr", meetings[0].0)),
            "{log}"
        );
        assert!(
            log.contains(&format!("to m{} on mmr-1", meetings[1].0))
                && log.contains(&format!("to m{} on mmr-1", meetings[2].0)),
            "{log}"
        );
        assert!(
            vm.mmr.counters().rtp_in > 0,
            "media went through the MMR VM"
        );

        // The zone's capacity is the controller's MMR plus the VM's, as the cloud sees it.
        mc_rt::sleep(Duration::from_millis(2_500)).await;
        let status = api.call("GET", "/v1/status", None).await.unwrap();
        assert_eq!(
            status["controllers"][0]["capacity"]["participants"], 6,
            "{status}"
        );
    });
}

#[test]
fn every_link_falls_back_to_443_when_its_dedicated_port_is_closed() {
    mc_rt::block_on(async {
        // Closed ports refuse connections, as blocked ones do. Only the 443 equivalents answer.
        let closed = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp = black_hole.local_addr().unwrap().port();
        let (sync, notify, signal, tcp) = (closed(), closed(), closed(), closed());
        let d = Deployment::start_with_cloud_ports(
            |c, _| {
                c.advertise_signal_port = Some(signal);
                c.advertise_media_udp_port = Some(udp);
                c.advertise_media_tcp_port = Some(tcp);
            },
            Some((sync, notify)),
        )
        .await;
        d.wait_for("registered with the cloud on port").await;
        d.wait_for("subscribed to cloud notifications").await;
        let log = d.events.lock().unwrap().join("\n");
        let https = d.cloud.https_addr.port();
        assert!(
            log.contains(&format!("registered with the cloud on port {https}")),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "subscribed to cloud notifications on port {https}"
            )),
            "{log}"
        );

        let vm = d.start_mmr_vm_with(4, |m| m.controller_port = signal).await;
        let log = d.events.lock().unwrap().join("\n");
        assert!(
            log.contains(&format!(
                "linked to controller controller-1 on port {}",
                d.controller.tls_addr.port()
            )),
            "{log}"
        );
        drop(vm);

        let m = d.api().create_meeting("443 only").await.unwrap();
        let reports = d
            .run_clients(vec![d.client("ada", m, 61), d.client("bob", m, 62)])
            .await;
        for r in &reports {
            assert_eq!(
                (r.signalling_port, r.media_path),
                (d.controller.tls_addr.port(), client::MediaPath::Tls),
                "{r:?}"
            );
        }
        assert_isolated_meetings(&reports);
        let zone = d.api().call("GET", "/v1/zone", None).await.unwrap();
        let ctl = zone["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "controller-1")
            .cloned()
            .unwrap_or_default();
        assert_eq!(ctl["links"]["status_sync"]["path"], "fallback", "{zone:#}");
        assert_eq!(ctl["links"]["notification"]["path"], "fallback", "{zone:#}");
    });
}

#[test]
fn a_bridged_client_carries_a_local_rtp_tool_into_the_meeting_and_back() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let m = d.api().create_meeting("bridge").await.unwrap();
        // The "RTP tool": one socket that sends RTP to the bridge and receives the meeting's media.
        let tool = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tool.set_nonblocking(true).unwrap();
        let bridge_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut bridged = d.client("tool", m, 71);
        bridged.bridge_listen = Some(bridge_port);
        bridged.bridge_send = Some(tool.local_addr().unwrap());
        bridged.duration_ms = 3_000;
        let (ca, ev) = (d.ca.clone(), EventLog::collecting("tool", d.events.clone()));
        let bridge =
            mc_rt::spawn(async move { client::run(bridged, ca, ev, std::future::pending()).await });
        d.wait_for("tool joined").await;
        let mut listener = d.client("listener", m, 72);
        listener.duration_ms = 2_000;
        let (ca, ev) = (
            d.ca.clone(),
            EventLog::collecting("listener", d.events.clone()),
        );
        let heard =
            mc_rt::spawn(
                async move { client::run(listener, ca, ev, std::future::pending()).await },
            );
        d.wait_for("listener joined").await;

        // The tool sends 40 RTP packets (and one that is not RTP, which must not get through)...
        let tool_rtp = std::thread::spawn(move || {
            let mut got = 0;
            let mut buf = [0u8; 2048];
            for seq in 0..40u16 {
                let p = mc_wire::rtp::RtpPacket {
                    marker: false,
                    payload_type: 96,
                    sequence: seq,
                    timestamp: seq as u32 * 960,
                    ssrc: 0xfeed,
                    csrc: vec![],
                    payload: vec![7; 100],
                };
                tool.send_to(&p.encode(), bridge_port).unwrap();
                if seq == 5 {
                    tool.send_to(b"not rtp", bridge_port).unwrap();
                }
                // ...and drains what the meeting sent it meanwhile.
                std::thread::sleep(Duration::from_millis(20));
                while let Ok(n) = tool.recv(&mut buf) {
                    if mc_wire::rtp::RtpHeader::parse(&buf[..n]).is_ok() {
                        got += 1;
                    }
                }
            }
            got
        });
        let listener = heard.await.unwrap().unwrap();
        let from_tool = tool_rtp.join().unwrap();
        let bridge = bridge.await.unwrap().unwrap();
        assert_eq!(
            listener.by_source.get(&0xfeed).map(|s| s.received),
            Some(40),
            "{listener:?}"
        );
        assert_eq!(bridge.sent, 40, "only RTP crosses the bridge");
        assert!(
            from_tool >= 20,
            "the tool heard the meeting: {from_tool} packets"
        );
    });
}

#[test]
fn a_meeting_larger_than_its_mmr_cascades_onto_an_mmr_vm_and_everyone_hears_everyone() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.mmr_capacity = 2).await;
        let vm = d.start_mmr_vm(2).await;
        let m = d.api().create_meeting("town hall").await.unwrap();
        // Four participants, two seats on each MMR: the meeting fills the controller's MMR and
        // extends onto the MMR VM, and the two MMRs link to each other over mutual TLS.
        let reports = d
            .run_clients(
                (0..4)
                    .map(|i| d.client(&format!("p{i}"), m, 300 + i))
                    .collect(),
            )
            .await;
        assert_isolated_meetings(&reports);
        let log = d.events.lock().unwrap().join("\n");
        assert!(
            log.contains(&format!("to m{} on controller-1-mmr", m.0))
                && log.contains(&format!("to m{} on mmr-1", m.0)),
            "{log}"
        );
        let counters = vm.mmr.counters();
        assert!(counters.rtp_in > 0 && counters.rtp_out > 0, "{counters:?}");
    });
}
