//! Whole-deployment simulations: the walking skeleton's behaviours, on the production code, under
//! madsim. Every test prints its seed; `MC_SIM_SEED=N ci/test-sim <test>` replays one.
#![cfg(madsim)]

use mc_node::client::MediaPath;
use mc_rt::fault::{self, Action, Proto};
use mc_sim::{assert_isolated_meetings, hash_lines, ip, run, seeds, SimDeployment, CONTROLLER_IP};
use mc_wire::ports;
use mc_wire::signal::RejectReason;
use std::time::Duration;

const SEEDS: &[u64] = &[1, 2, 3];

/// Two meetings side by side: each participant hears exactly the others of its own meeting.
async fn two_meetings(seed: u64) -> (Vec<mc_node::client::ClientReport>, Vec<String>) {
    let d = SimDeployment::start(seed, |_| {}).await;
    let (m1, m2) = (d.create_meeting("one").await, d.create_meeting("two").await);
    let clients = vec![
        d.client("ada", m1, 20, 3_000),
        d.client("bob", m1, 20, 3_000),
        d.client("cyd", m1, 20, 3_000),
        d.client("dan", m2, 20, 3_000),
        d.client("eve", m2, 20, 3_000),
    ];
    let reports: Vec<_> = d
        .run_clients(clients)
        .await
        .into_iter()
        .map(|r| r.expect("joined"))
        .collect();
    (reports, d.events())
}

#[test]
fn media_flows_within_each_meeting_and_never_across() {
    for seed in seeds(SEEDS) {
        run(
            "media_flows_within_each_meeting_and_never_across",
            seed,
            move || async move {
                let (reports, _) = two_meetings(seed).await;
                assert!(reports.iter().all(|r| r.media_path == MediaPath::Udp));
                assert_isolated_meetings(&reports, 40);
            },
        );
    }
}

#[test]
fn blocked_udp_and_tcp_8801_fall_back_to_tls_443() {
    for seed in seeds(SEEDS) {
        run(
            "blocked_udp_and_tcp_8801_fall_back_to_tls_443",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                fault::block(ip(CONTROLLER_IP), Proto::Udp, ports::MEDIA, Action::Drop);
                fault::block(ip(CONTROLLER_IP), Proto::Tcp, ports::MEDIA, Action::Drop);
                let m = d.create_meeting("fallback").await;
                let reports: Vec<_> = d
                    .run_clients(vec![
                        d.client("ada", m, 20, 3_000),
                        d.client("bob", m, 20, 3_000),
                    ])
                    .await
                    .into_iter()
                    .map(|r| r.unwrap())
                    .collect();
                assert!(
                    reports.iter().all(|r| r.media_path == MediaPath::Tls),
                    "{reports:#?}"
                );
                assert_isolated_meetings(&reports, 40);
            },
        );
    }
}

#[test]
fn blocked_udp_falls_back_to_tcp_8801() {
    for seed in seeds(SEEDS) {
        run(
            "blocked_udp_falls_back_to_tcp_8801",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                // The whole protocol, not just the port: some networks carry no UDP at all.
                fault::block_protocol(ip(CONTROLLER_IP), Proto::Udp, Action::Drop);
                let m = d.create_meeting("tcp").await;
                let reports: Vec<_> = d
                    .run_clients(vec![
                        d.client("ada", m, 20, 3_000),
                        d.client("bob", m, 20, 3_000),
                    ])
                    .await
                    .into_iter()
                    .map(|r| r.unwrap())
                    .collect();
                assert!(
                    reports.iter().all(|r| r.media_path == MediaPath::Tcp),
                    "{reports:#?}"
                );
                assert_isolated_meetings(&reports, 40);
            },
        );
    }
}

#[test]
fn blocked_signalling_and_status_sync_ports_fall_back_to_443() {
    for seed in seeds(SEEDS) {
        run(
            "blocked_signalling_and_status_sync_ports_fall_back_to_443",
            seed,
            move || async move {
                // Block before anything starts: the controller must register through the cloud's 443.
                fault::block(
                    ip(mc_sim::CLOUD_IP),
                    Proto::Tcp,
                    ports::STATUS_SYNC,
                    Action::Reject,
                );
                fault::block(ip(CONTROLLER_IP), Proto::Tcp, ports::ZC, Action::Drop);
                let d = SimDeployment::start(seed, |_| {}).await;
                assert!(d
                    .events()
                    .iter()
                    .any(|e| e.contains("registered with the cloud on port 443")));
                let m = d.create_meeting("443").await;
                let reports: Vec<_> = d
                    .run_clients(vec![
                        d.client("ada", m, 20, 2_000),
                        d.client("bob", m, 20, 2_000),
                    ])
                    .await
                    .into_iter()
                    .map(|r| r.unwrap())
                    .collect();
                assert!(
                    reports.iter().all(
                        |r| r.signalling_port == ports::HTTPS && r.media_path == MediaPath::Udp
                    ),
                    "{reports:#?}"
                );
                assert_isolated_meetings(&reports, 25);
            },
        );
    }
}

#[test]
fn a_bad_or_expired_ticket_is_refused_with_its_reason() {
    for seed in seeds(SEEDS) {
        run(
            "a_bad_or_expired_ticket_is_refused_with_its_reason",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                let m = d.create_meeting("tickets").await;
                let (cfg, ca) = (d.client("eve", m, 20, 1_000), d.ca());
                let reasons = d
                    .on_new_host("eve", move || async move {
                        let grant = mc_node::client::fetch_ticket(&cfg, &ca).await.unwrap();
                        let forged = format!("{}00", &grant.ticket[..grant.ticket.len() - 2]);
                        let bad = join_raw(&grant, &ca, "garbage").await;
                        let tampered = join_raw(
                            &grant,
                            &ca,
                            if forged == grant.ticket { "x" } else { &forged },
                        )
                        .await;
                        // Tickets live 300 s by default; wait past that in simulated time.
                        mc_rt::sleep(std::time::Duration::from_secs(301)).await;
                        let expired = join_raw(&grant, &ca, &grant.ticket).await;
                        (bad, tampered, expired)
                    })
                    .await;
                assert_eq!(
                    reasons,
                    (
                        RejectReason::TicketInvalid,
                        RejectReason::TicketInvalid,
                        RejectReason::TicketExpired
                    )
                );
            },
        );
    }
}

/// Sends one join with `ticket` to the first controller of `grant`; returns the rejection reason.
async fn join_raw(
    grant: &mc_node::client::TicketGrant,
    ca: &rustls::pki_types::CertificateDer<'static>,
    ticket: &str,
) -> RejectReason {
    use mc_node::framed::{write_frame, FrameReader};
    use mc_wire::signal::{ClientToZc, ZcToClient};
    let c = &grant.controllers[0];
    let config = mc_rt::tls::client_config(ca, None, mc_wire::ports::alpn::SIGNAL).unwrap();
    let addr = mc_rt::net::resolve(&c.host, c.port).await.unwrap();
    let stream = mc_rt::tls::connect(addr, &c.host, config, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    let (rd, mut wr) = mc_rt::split(stream);
    write_frame(
        &mut wr,
        &ClientToZc::Join {
            ticket: ticket.into(),
        },
    )
    .await
    .unwrap();
    match FrameReader::new(rd).next::<ZcToClient>().await.unwrap() {
        Some(ZcToClient::Rejected { reason, .. }) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn one_seed_gives_one_event_log() {
    for seed in seeds(&[42]) {
        let first = run("one_seed_gives_one_event_log", seed, move || async move {
            two_meetings(seed).await.1
        });
        let second = run("one_seed_gives_one_event_log", seed, move || async move {
            two_meetings(seed).await.1
        });
        let (h1, h2) = (hash_lines(&first), hash_lines(&second));
        println!(
            "[sim] seed {seed}: event log of {} lines, hash {h1:016x} then {h2:016x}",
            first.len()
        );
        if std::env::var_os("MC_SIM_PRINT_LOG").is_some() {
            println!("{}", first.join("\n"));
        }
        assert!(first.len() > 10, "the log records the run");
        if h1 != h2 {
            let diff = first
                .iter()
                .zip(&second)
                .position(|(a, b)| a != b)
                .unwrap_or(first.len().min(second.len()));
            panic!(
                "seed {seed} is not deterministic: logs differ from line {diff}:\n  {:?}\n  {:?}",
                first.get(diff),
                second.get(diff)
            );
        }
    }
}

#[test]
fn an_mmr_vm_that_dies_moves_its_meetings_and_participants_rejoin_on_their_own() {
    for seed in seeds(SEEDS) {
        run(
            "an_mmr_vm_that_dies_moves_its_meetings_and_participants_rejoin_on_their_own",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |c| c.mmr_capacity = 4).await;
                let vm = d.start_mmr_vm(10).await;
                let (a, b) = (
                    d.create_meeting("stays").await,
                    d.create_meeting("moves").await,
                );
                // Meeting a lands on the controller's MMR (ids break the tie), then b on the idle VM.
                let a1 = d.spawn_client(d.client("a1", a, 20, 12_000));
                d.wait_for(
                    &format!("to m{} on controller-1-mmr", a.0),
                    Duration::from_secs(10),
                )
                .await;
                let b1 = d.spawn_client(d.client("b1", b, 20, 12_000));
                let b2 = d.spawn_client(d.client("b2", b, 20, 12_000));
                let a2 = d.spawn_client(d.client("a2", a, 20, 12_000));
                d.wait_for(&format!("to m{} on mmr-1", b.0), Duration::from_secs(10))
                    .await;
                mc_rt::sleep(Duration::from_secs(3)).await;

                mc_rt::sim::runtime::Handle::current().kill(vm);
                d.wait_for("MMR mmr-1 is down", Duration::from_secs(5))
                    .await;
                d.wait_for(
                    &format!("to m{} on controller-1-mmr", b.0),
                    Duration::from_secs(5),
                )
                .await;
                let mut reports = Vec::new();
                for h in [a1, a2, b1, b2] {
                    reports.push(h.await.unwrap().expect("joined"));
                }
                for r in &reports {
                    assert_eq!(r.ended_by_zc, None, "{r:?}");
                    let moved = r.meeting == b;
                    assert_eq!(
                        r.rejoins, moved as u32,
                        "only meeting b's participants rejoin: {r:?}"
                    );
                    // 12 s at 20 packets/s from one peer is 240; a2 joins late, b loses seconds to the failover.
                    let from_peer = r.by_source.values().map(|s| s.received).sum::<u64>();
                    assert!(from_peer > 150, "{} received {from_peer}", r.display_name);
                }
                assert_isolated_meetings(&reports, 100);
            },
        );
    }
}

/// With every dedicated port blocked, every link runs on 443; when the ports open again, every
/// link and every participant's media moves back to them within the re-probe interval.
#[test]
fn with_only_443_open_everything_works_and_returns_to_dedicated_ports_when_they_reopen() {
    for seed in seeds(SEEDS) {
        run(
            "with_only_443_open_everything_works_and_returns_to_dedicated_ports_when_they_reopen",
            seed,
            move || async move {
                let (cloud, ctl, vm) = (
                    ip(mc_sim::CLOUD_IP),
                    ip(CONTROLLER_IP),
                    ip(mc_sim::MMR_VM_IP),
                );
                for (host, port) in [
                    (cloud, ports::STATUS_SYNC),
                    (cloud, ports::NOTIFICATION),
                    (ctl, ports::ZC),
                    (ctl, ports::MEDIA),
                    (vm, ports::MEDIA),
                ] {
                    fault::block(host, Proto::Tcp, port, Action::Drop);
                }
                fault::block_protocol(ctl, Proto::Udp, Action::Drop);
                fault::block_protocol(vm, Proto::Udp, Action::Drop);
                let d = SimDeployment::start(seed, |_| {}).await;
                d.start_mmr_vm(10).await;
                d.wait_for(
                    "subscribed to cloud notifications on port 443",
                    Duration::from_secs(30),
                )
                .await;
                let log = d.events().join("\n");
                assert!(
                    log.contains("registered with the cloud on port 443"),
                    "{log}"
                );
                assert!(
                    log.contains("linked to controller controller-1 on port 443"),
                    "{log}"
                );

                let m = d.create_meeting("443").await;
                let mut clients =
                    vec![d.client("ada", m, 5, 90_000), d.client("bob", m, 5, 90_000)];
                for c in &mut clients {
                    c.media_reprobe_ms = 10_000;
                }
                let handles: Vec<_> = clients.into_iter().map(|c| d.spawn_client(c)).collect();
                d.wait_for("bob joined", Duration::from_secs(30)).await;
                d.wait_for("ada joined", Duration::from_secs(30)).await;
                let log = d.events().join("\n");
                assert!(log.contains("port 443; media over tls"), "{log}");

                mc_rt::sleep(Duration::from_secs(10)).await;
                fault::unblock_all();
                // Links re-probe every 30 s, media every 10 s.
                d.wait_for(
                    "cloud link moving back to port 8803",
                    Duration::from_secs(40),
                )
                .await;
                d.wait_for("moving back to port 8804", Duration::from_secs(40))
                    .await;
                d.wait_for(
                    "link to controller moving back to port 8802",
                    Duration::from_secs(40),
                )
                .await;
                d.wait_for(
                    "ada moved media from tls back to udp",
                    Duration::from_secs(40),
                )
                .await;
                d.wait_for(
                    "bob moved media from tls back to udp",
                    Duration::from_secs(40),
                )
                .await;
                let mut reports = Vec::new();
                for h in handles {
                    reports.push(h.await.unwrap().unwrap());
                }
                for r in &reports {
                    assert_eq!(r.media_path, MediaPath::Udp, "{r:?}");
                    let lost: u64 = r.by_source.values().map(|s| s.lost).sum();
                    assert!(lost <= 5, "moving paths loses at most a few packets: {r:?}");
                }
                assert_isolated_meetings(&reports, 400);
            },
        );
    }
}

#[test]
fn a_meeting_ended_in_the_cloud_ends_on_the_controller() {
    for seed in seeds(SEEDS) {
        run(
            "a_meeting_ended_in_the_cloud_ends_on_the_controller",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                d.wait_for("subscribed to cloud notifications", Duration::from_secs(10))
                    .await;
                let (m, other) = (
                    d.create_meeting("ends").await,
                    d.create_meeting("stays").await,
                );
                let handles: Vec<_> = [("ada", m), ("bob", m), ("cyd", other)]
                    .into_iter()
                    .map(|(n, mt)| d.spawn_client(d.client(n, mt, 20, 20_000)))
                    .collect();
                d.wait_for("cyd joined", Duration::from_secs(10)).await;
                mc_rt::sleep(Duration::from_secs(2)).await;
                let api = d.api();
                d.on_new_host("host", move || async move {
                    api.call(
                        "POST",
                        &format!("/v1/meetings/{}/end", m.0),
                        Some(serde_json::json!({ "reason": "time is up" })),
                    )
                    .await
                    .unwrap()
                })
                .await;
                d.wait_for(
                    &format!(
                        "meeting {m} ended by the cloud (time is up): 2 participants disconnected"
                    ),
                    Duration::from_secs(5),
                )
                .await;
                let mut reports = Vec::new();
                for h in handles {
                    reports.push(h.await.unwrap().unwrap());
                }
                assert_eq!(reports[0].ended_by_zc.as_deref(), Some("time is up"));
                assert_eq!(reports[1].ended_by_zc.as_deref(), Some("time is up"));
                assert_eq!(reports[2].ended_by_zc, None);
            },
        );
    }
}

/// The product's limits, exactly: 100 meetings of 2 fill one controller VM (200 participants on
/// its MMR, 100 meetings). The 201st participant and the 101st meeting are refused with their
/// reasons, and everyone admitted keeps receiving media.
#[test]
fn the_201st_participant_and_the_101st_meeting_are_refused_and_nobody_admitted_is_disturbed() {
    for seed in seeds(&[1]) {
        run("the_201st_participant_and_the_101st_meeting_are_refused_and_nobody_admitted_is_disturbed", seed, move || async move {
            let d = SimDeployment::start(seed, |_| {}).await;
            let mut meetings = Vec::new();
            for i in 0..101 {
                meetings.push(d.create_meeting(&format!("m{i}")).await);
            }
            let mut handles = Vec::new();
            for (i, m) in meetings[..100].iter().enumerate() {
                for p in 0..2 {
                    handles.push(d.spawn_client(d.client(&format!("p{i}-{p}"), *m, 5, 30_000)));
                }
            }
            // Let all 200 join, then knock.
            mc_rt::sleep(Duration::from_secs(10)).await;
            let extra = d.run_clients(vec![d.client("the-201st", meetings[0], 5, 1_000), d.client("meeting-101", meetings[100], 5, 1_000)]).await;
            assert_eq!(extra[0].as_ref().unwrap_err().rejection(), Some(RejectReason::MeetingFull));
            assert_eq!(extra[1].as_ref().unwrap_err().rejection(), Some(RejectReason::ControllerMeetingLimit));
            let mut reports = Vec::new();
            for h in handles {
                reports.push(h.await.unwrap().expect("all 200 admitted"));
            }
            // 30 s at 5 packets/s from the one other participant, less join skew.
            assert_isolated_meetings(&reports, 100);
            assert!(reports.iter().all(|r| r.ended_by_zc.is_none() && r.by_source.values().all(|s| s.lost == 0)));
        });
    }
}

/// 300 participants all join within a tenth of a second a zone that holds 200: exactly 200 are
/// admitted and every other one gets a typed rejection.
#[test]
fn a_burst_of_joins_never_exceeds_capacity() {
    for seed in seeds(SEEDS) {
        run(
            "a_burst_of_joins_never_exceeds_capacity",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |c| c.mmr_capacity = 200).await;
                let mut meetings = Vec::new();
                for i in 0..30 {
                    meetings.push(d.create_meeting(&format!("burst {i}")).await);
                }
                let configs: Vec<_> = (0..300)
                    .map(|i| d.client(&format!("b{i}"), meetings[i % 30], 2, 5_000))
                    .collect();
                let outcomes = d.run_clients(configs).await;
                let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
                let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
                assert_eq!(admitted, 200, "{:?}", refused.first());
                assert!(
                    refused.iter().all(|e| matches!(
                        e.rejection(),
                        Some(RejectReason::MeetingFull | RejectReason::ZoneFull)
                    )),
                    "{refused:?}"
                );
                assert!(
                    d.events()
                        .iter()
                        .filter(|e| e.contains(" admitted "))
                        .count()
                        <= 200
                );
            },
        );
    }
}

#[test]
fn the_api_refuses_bad_keys_and_bad_fields_with_reasons() {
    for seed in seeds(&[1]) {
        run(
            "the_api_refuses_bad_keys_and_bad_fields_with_reasons",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                let (good, bad) = (
                    d.api(),
                    mc_node::client::ManagementApi {
                        api_key: "wrong-wrong-wrong-wrong".into(),
                        ..d.api()
                    },
                );
                let (e401, e422, e404) = d
                    .on_new_host("operator", move || async move {
                        (
                            bad.call("GET", "/v1/meetings", None).await.unwrap_err(),
                            good.call(
                                "POST",
                                "/v1/meetings",
                                Some(serde_json::json!({ "topic": "" })),
                            )
                            .await
                            .unwrap_err(),
                            good.call(
                                "POST",
                                "/v1/meetings/77/tickets",
                                Some(serde_json::json!({ "display_name": "x" })),
                            )
                            .await
                            .unwrap_err(),
                        )
                    })
                    .await;
                assert!(e401.starts_with("401"), "{e401}");
                assert!(e422.starts_with("422") && e422.contains("topic"), "{e422}");
                assert!(
                    e404.starts_with("404") && e404.contains("does not exist"),
                    "{e404}"
                );
            },
        );
    }
}

/// The scenario report of a fixed seed is a golden output: the same code, the same numbers.
#[test]
fn a_fixed_seed_scenario_report_matches_its_snapshot() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/udp-blocked.toml");
    let scenario = mc_sim::scenario::Scenario::load(&path).unwrap();
    let result = mc_sim::run::run_seed(&scenario, 1, None);
    assert!(result.passed(), "{:?}", result.violations);
    let summary = mc_sim::report::summarize(
        &[&result],
        |s| format!("ci/scenario run scenarios/udp-blocked.toml --seed {s}"),
        |_| None,
    );
    insta::assert_snapshot!(
        "udp_blocked_seed_1",
        format!(
            "{}\nplan: {}\nevent log hash: {}\n",
            mc_sim::report::markdown(None, &[summary]),
            result.plan,
            result.event_log_hash
        )
    );
}

/// A vandal sends garbage to every port — random datagrams and forged RTP and bindings to the
/// media port, random bytes to TCP 8801, oversized and malformed frames over real TLS to the ZC,
/// and bad requests to the cloud's API — while two participants talk. Nothing panics, the garbage
/// is dropped and counted, and the participants are not disturbed.
#[test]
fn garbage_on_every_port_is_dropped_and_counted_and_disturbs_nobody() {
    for seed in seeds(SEEDS) {
        run(
            "garbage_on_every_port_is_dropped_and_counted_and_disturbs_nobody",
            seed,
            move || async move {
                use mc_rt::{AsyncReadExt, AsyncWriteExt};
                let d = SimDeployment::start(seed, |_| {}).await;
                let m = d.create_meeting("talk").await;
                let talkers: Vec<_> = ["ada", "bob"]
                    .into_iter()
                    .map(|n| d.spawn_client(d.client(n, m, 20, 10_000)))
                    .collect();
                d.wait_for("bob joined", Duration::from_secs(10)).await;
                d.wait_for("ada joined", Duration::from_secs(10)).await;
                let (ca, api) = (d.ca(), d.api());
                d.on_new_host("vandal", move || async move {
                    let media = std::net::SocketAddr::new(ip(CONTROLLER_IP), ports::MEDIA);
                    let udp = mc_rt::net::UdpSocket::bind("0.0.0.0:0".parse().unwrap())
                        .await
                        .unwrap();
                    let mut x: u64 = seed;
                    let mut next = move || {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        x
                    };
                    for i in 0..300u32 {
                        let mut junk: Vec<u8> =
                            (0..(next() % 300) as usize).map(|_| next() as u8).collect();
                        match i % 3 {
                            // Looks like RTP from nobody bound.
                            0 if junk.len() >= 12 => junk[0] = 0x80,
                            // A binding with a token that was never granted.
                            1 => {
                                let token = mc_wire::MediaToken::from_bytes(vec![next() as u8; 16]);
                                junk = mc_wire::binding::Binding::Request {
                                    txn: [7; 12],
                                    username: mc_wire::binding::BindingId::of(&token),
                                    counter: 1,
                                }
                                .encode_signed(&token)
                            }
                            _ => {}
                        }
                        udp.send_to(&junk, media).await.unwrap();
                    }
                    if let Ok(mut tcp) =
                        mc_rt::net::connect_tcp(media, Duration::from_secs(1)).await
                    {
                        let junk: Vec<u8> = (0..5000).map(|_| next() as u8).collect();
                        let _ = tcp.write_all(&junk).await;
                        let _ = tcp.flush().await;
                    }
                    // Real TLS to the ZC, then frames a peer must never send.
                    let config = mc_rt::tls::client_config(&ca, None, ports::alpn::SIGNAL).unwrap();
                    for frame in [
                        vec![0xff, 0xff, 0xff, 0xff, 1],
                        vec![0, 0, 0, 3, 9, b'{', b'}'],
                        vec![0, 0, 0, 4, 1, b'{', b'x', b'}'],
                        vec![0, 0, 0, 0],
                    ] {
                        let addr = std::net::SocketAddr::new(ip(CONTROLLER_IP), ports::ZC);
                        let mut s = mc_rt::tls::connect(
                            addr,
                            &ip(CONTROLLER_IP).to_string(),
                            config.clone(),
                            Duration::from_secs(2),
                        )
                        .await
                        .unwrap();
                        s.write_all(&frame).await.unwrap();
                        s.flush().await.unwrap();
                        let mut buf = [0u8; 256];
                        let _ = mc_rt::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                    }
                    // The API: malformed JSON, a huge body, nonsense paths.
                    assert!(api
                        .call("POST", "/v1/meetings", Some(serde_json::json!([1, 2])))
                        .await
                        .unwrap_err()
                        .starts_with("400"));
                    let huge = serde_json::json!({ "topic": "x".repeat(100_000) });
                    assert!(api
                        .call("POST", "/v1/meetings", Some(huge))
                        .await
                        .unwrap_err()
                        .starts_with("413"));
                    assert!(api
                        .call("GET", "/v1/../../etc/passwd", None)
                        .await
                        .unwrap_err()
                        .starts_with("404"));
                })
                .await;
                let mut reports = Vec::new();
                for h in talkers {
                    reports.push(h.await.unwrap().unwrap());
                }
                assert_isolated_meetings(&reports, 180);
                assert!(
                    reports
                        .iter()
                        .all(|r| r.ended_by_zc.is_none() && r.malformed == 0),
                    "{reports:?}"
                );
                let counters = d.controller.get().unwrap().mmr.counters();
                assert!(
                    counters.dropped_malformed + counters.dropped_unbound >= 100,
                    "{counters:?}"
                );
                assert!(counters.refused_bad_token >= 90, "{counters:?}");
                // And the controller still admits.
                let again = d.run_clients(vec![d.client("after", m, 20, 1_000)]).await;
                assert!(again[0].is_ok(), "{:?}", again[0]);
            },
        );
    }
}

/// Draining an MMR under load: it takes no new meeting, its meetings move one at a time within the
/// deadline (their participants rejoin elsewhere and hear each other again), and once undrained
/// it takes meetings again.
#[test]
fn a_drained_mmr_hands_its_meetings_over_within_the_deadline() {
    for seed in seeds(SEEDS) {
        run(
            "a_drained_mmr_hands_its_meetings_over_within_the_deadline",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                d.start_mmr_vm_n(1, 50).await;
                d.start_mmr_vm_n(2, 50).await;
                d.wait_for("subscribed to cloud notifications", Duration::from_secs(10))
                    .await;
                let mut meetings = Vec::new();
                for i in 0..6 {
                    meetings.push(d.create_meeting(&format!("d{i}")).await);
                }
                let mut handles = Vec::new();
                for (i, m) in meetings.iter().enumerate() {
                    for p in 0..2 {
                        handles.push(d.spawn_client(d.client(
                            &format!("d{i}-{p}"),
                            *m,
                            10,
                            60_000,
                        )));
                        mc_rt::sleep(Duration::from_millis(300)).await;
                    }
                }
                d.wait_for("d5-1 joined", Duration::from_secs(20)).await;
                let on_vm = d.vms.lock().unwrap()["mmr-1"]
                    .1
                    .get()
                    .unwrap()
                    .mmr
                    .meetings()
                    .len();
                assert!(on_vm > 0, "the VM hosts meetings before the drain");
                let api = d.api();
                let drained_at = d.events().len();
                let a2 = api.clone();
                d.on_new_host("operator", move || async move {
                    a2.call(
                        "POST",
                        "/v1/mmrs/mmr-1/drain",
                        Some(serde_json::json!({ "deadline_s": 20 })),
                    )
                    .await
                    .unwrap()
                })
                .await;
                d.wait_for("MMR mmr-1 drained", Duration::from_secs(25))
                    .await;
                mc_rt::sleep(Duration::from_secs(3)).await;
                let vm_left = d.vms.lock().unwrap()["mmr-1"]
                    .1
                    .get()
                    .unwrap()
                    .mmr
                    .participants();
                assert_eq!(vm_left, 0, "every meeting has left the drained MMR");
                let placed_after: Vec<String> = d.events()[drained_at..]
                    .iter()
                    .filter(|e| e.contains(" on mmr-1"))
                    .cloned()
                    .collect();
                assert!(
                    placed_after.is_empty(),
                    "nothing new on a drained MMR: {placed_after:?}"
                );
                // Undrained, it takes new meetings again.
                let a3 = api.clone();
                d.on_new_host("operator", move || async move {
                    a3.call("DELETE", "/v1/mmrs/mmr-1/drain", None)
                        .await
                        .unwrap()
                })
                .await;
                d.wait_for("MMR mmr-1 undrained", Duration::from_secs(5))
                    .await;
                let fresh = d.create_meeting("after").await;
                let after = d
                    .run_clients(vec![
                        d.client("late-0", fresh, 10, 3_000),
                        d.client("late-1", fresh, 10, 3_000),
                    ])
                    .await;
                assert!(after.iter().all(|r| r.is_ok()));
                assert!(
                    d.events()
                        .iter()
                        .any(|e| e.contains(&format!("to m{} on mmr-1", fresh.0))),
                    "the idle, undrained MMR takes the new meeting"
                );
                let mut reports = Vec::new();
                for h in handles {
                    reports.push(h.await.unwrap().expect("joined"));
                }
                assert!(
                    reports.iter().all(|r| r.ended_by_zc.is_none()),
                    "{reports:?}"
                );
                assert!(
                    reports.iter().any(|r| r.rejoins == 1),
                    "the drained MMR's participants moved"
                );
                assert_isolated_meetings(&reports, 300);
            },
        );
    }
}

/// A drained controller stays live but not ready: the cloud stops offering it, it refuses new
/// meetings, and its meetings end within the deadline (with one controller there is nowhere to go).
#[test]
fn a_drained_controller_is_live_but_not_ready_and_its_meetings_end() {
    for seed in seeds(&[1]) {
        run(
            "a_drained_controller_is_live_but_not_ready_and_its_meetings_end",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |c| c.monitoring_interval_ms = 500).await;
                d.wait_for("subscribed to cloud notifications", Duration::from_secs(10))
                    .await;
                let m = d.create_meeting("before").await;
                let handles: Vec<_> = ["x", "y"]
                    .into_iter()
                    .map(|n| d.spawn_client(d.client(n, m, 10, 120_000)))
                    .collect();
                d.wait_for("y joined", Duration::from_secs(10)).await;
                let api = d.api();
                let a2 = api.clone();
                d.on_new_host("operator", move || async move {
                    a2.call(
                        "POST",
                        "/v1/controllers/controller-1/drain",
                        Some(serde_json::json!({ "deadline_s": 10 })),
                    )
                    .await
                    .unwrap()
                })
                .await;
                d.wait_for("controller controller-1 drained", Duration::from_secs(12))
                    .await;
                mc_rt::sleep(Duration::from_secs(3)).await;
                let a3 = api.clone();
                let (zone, ticket) = d
                    .on_new_host("operator", move || async move {
                        (
                            a3.call("GET", "/v1/zone", None).await.unwrap(),
                            a3.call(
                                "POST",
                                &format!("/v1/meetings/{}/tickets", m.0),
                                Some(serde_json::json!({ "display_name": "z" })),
                            )
                            .await,
                        )
                    })
                    .await;
                let node = zone["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["node"] == "controller-1")
                    .unwrap()
                    .clone();
                assert_eq!(
                    (node["live"].as_bool(), node["ready"].as_bool()),
                    (Some(true), Some(false)),
                    "{zone:#}"
                );
                assert!(
                    ticket.unwrap_err().starts_with("503"),
                    "the cloud offers no controller while it is drained"
                );
                for h in handles {
                    let r = h.await.unwrap().unwrap();
                    assert!(
                        r.ended_by_zc
                            .as_deref()
                            .is_some_and(|e| e.contains("drained for maintenance")),
                        "{r:?}"
                    );
                }
            },
        );
    }
}

/// An HA pair loses controller-1: its meeting moves to controller-2, which has room for only part
/// of it. Those who fit rejoin and hear each other; the rest are refused with a typed reason that
/// says why; controller-2's own meeting is not disturbed at all.
#[test]
fn after_a_failover_the_survivor_keeps_its_limits_and_refuses_the_overflow_with_a_reason() {
    for seed in seeds(SEEDS) {
        run(
            "after_a_failover_the_survivor_keeps_its_limits_and_refuses_the_overflow_with_a_reason",
            seed,
            move || async move {
                let d = SimDeployment::start_with(seed, 2, |c| c.mmr_capacity = 6).await;
                d.wait_for("controller-1 peer link to", Duration::from_secs(10))
                    .await;
                // The cloud offers the least-loaded controller first: m1 lands on controller-1,
                // then m2 on controller-2.
                let m1 = d.create_meeting("on controller-1").await;
                let first: Vec<_> = (0..5)
                    .map(|i| d.spawn_client(d.client(&format!("a{i}"), m1, 10, 60_000)))
                    .collect();
                for i in 0..5 {
                    d.wait_for(&format!("a{i} joined {m1}"), Duration::from_secs(10))
                        .await;
                }
                mc_rt::sleep(Duration::from_secs(3)).await;
                let m2 = d.create_meeting("on controller-2").await;
                let second: Vec<_> = (0..4)
                    .map(|i| d.spawn_client(d.client(&format!("b{i}"), m2, 10, 60_000)))
                    .collect();
                for i in 0..4 {
                    d.wait_for(&format!("b{i} joined {m2}"), Duration::from_secs(10))
                        .await;
                }
                let joined_via = |who: &str| {
                    d.events()
                        .into_iter()
                        .find(|e| e.contains(&format!(" {who} joined ")))
                        .unwrap()
                };
                assert!(joined_via("a0").contains("via controller-1"));
                assert!(joined_via("b0").contains("via controller-2"));

                let node = d.nodes.lock().unwrap()["controller-1"];
                mc_rt::sim::runtime::Handle::current().kill(node);

                let mut moved = 0;
                let mut refused = 0;
                for h in first {
                    let r = h.await.unwrap().unwrap();
                    match r.ended_by_zc.as_deref() {
                        None => {
                            moved += 1;
                            assert_eq!(r.controller, "controller-2", "{r:?}");
                            assert!(r.rejoins >= 1, "{r:?}");
                        }
                        Some(reason) => {
                            refused += 1;
                            assert!(
                                reason.contains("meeting_full")
                                    && reason.contains("hosts 6 of 6 participants"),
                                "a refused participant is told why: {reason}"
                            );
                        }
                    }
                }
                assert_eq!(
                    (moved, refused),
                    (2, 3),
                    "controller-2's MMR had 2 of its 6 seats free"
                );
                for h in second {
                    let r = h.await.unwrap().unwrap();
                    assert_eq!((r.rejoins, r.ended_by_zc.as_deref()), (0, None), "{r:?}");
                    assert_eq!(r.by_source.len(), 3, "hears the rest of its meeting");
                }
                let events = d.events();
                assert!(
                    events.iter().any(|e| e.contains(&format!(
                        "meeting {m1} taken over by controller-2 from controller-1"
                    ))),
                    "the cloud's registry records the takeover"
                );
            },
        );
    }
}
