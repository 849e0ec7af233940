//! Whole-deployment simulations: the walking skeleton's behaviours, on the production code, under
//! madsim. Every test prints its seed; `MC_SIM_SEED=N ci/test-sim <test>` replays one.
#![cfg(madsim)]

use mc_rt::fault::{self, Action, Proto};
use mc_sim::{assert_isolated_meetings, hash_lines, ip, run, seeds, SimDeployment, CONTROLLER_IP};
use mc_node::client::MediaPath;
use mc_wire::ports;
use mc_wire::signal::RejectReason;
use std::time::Duration;

const SEEDS: &[u64] = &[1, 2, 3];

/// Two meetings side by side: each participant hears exactly the others of its own meeting.
async fn two_meetings(seed: u64) -> (Vec<mc_node::client::ClientReport>, Vec<String>) {
    let d = SimDeployment::start(seed, |_| {}).await;
    let (m1, m2) = (d.create_meeting("one").await, d.create_meeting("two").await);
    let clients = vec![d.client("ada", m1, 20, 3_000), d.client("bob", m1, 20, 3_000), d.client("cyd", m1, 20, 3_000), d.client("dan", m2, 20, 3_000), d.client("eve", m2, 20, 3_000)];
    let reports: Vec<_> = d.run_clients(clients).await.into_iter().map(|r| r.expect("joined")).collect();
    (reports, d.events())
}

#[test]
fn media_flows_within_each_meeting_and_never_across() {
    for seed in seeds(SEEDS) {
        run("media_flows_within_each_meeting_and_never_across", seed, || async move {
            let (reports, _) = two_meetings(seed).await;
            assert!(reports.iter().all(|r| r.media_path == MediaPath::Udp));
            assert_isolated_meetings(&reports, 40);
        });
    }
}

#[test]
fn blocked_udp_and_tcp_8801_fall_back_to_tls_443() {
    for seed in seeds(SEEDS) {
        run("blocked_udp_and_tcp_8801_fall_back_to_tls_443", seed, || async move {
            let d = SimDeployment::start(seed, |_| {}).await;
            fault::block(ip(CONTROLLER_IP), Proto::Udp, ports::MEDIA, Action::Drop);
            fault::block(ip(CONTROLLER_IP), Proto::Tcp, ports::MEDIA, Action::Drop);
            let m = d.create_meeting("fallback").await;
            let reports: Vec<_> = d.run_clients(vec![d.client("ada", m, 20, 3_000), d.client("bob", m, 20, 3_000)]).await.into_iter().map(|r| r.unwrap()).collect();
            assert!(reports.iter().all(|r| r.media_path == MediaPath::Tls), "{reports:#?}");
            assert_isolated_meetings(&reports, 40);
        });
    }
}

#[test]
fn blocked_udp_falls_back_to_tcp_8801() {
    for seed in seeds(SEEDS) {
        run("blocked_udp_falls_back_to_tcp_8801", seed, || async move {
            let d = SimDeployment::start(seed, |_| {}).await;
            // The whole protocol, not just the port: some networks carry no UDP at all.
            fault::block_protocol(ip(CONTROLLER_IP), Proto::Udp, Action::Drop);
            let m = d.create_meeting("tcp").await;
            let reports: Vec<_> = d.run_clients(vec![d.client("ada", m, 20, 3_000), d.client("bob", m, 20, 3_000)]).await.into_iter().map(|r| r.unwrap()).collect();
            assert!(reports.iter().all(|r| r.media_path == MediaPath::Tcp), "{reports:#?}");
            assert_isolated_meetings(&reports, 40);
        });
    }
}

#[test]
fn blocked_signalling_and_status_sync_ports_fall_back_to_443() {
    for seed in seeds(SEEDS) {
        run("blocked_signalling_and_status_sync_ports_fall_back_to_443", seed, || async move {
            // Block before anything starts: the controller must register through the cloud's 443.
            fault::block(ip(mc_sim::CLOUD_IP), Proto::Tcp, ports::STATUS_SYNC, Action::Reject);
            fault::block(ip(CONTROLLER_IP), Proto::Tcp, ports::ZC, Action::Drop);
            let d = SimDeployment::start(seed, |_| {}).await;
            assert!(d.events().iter().any(|e| e.contains("registered with the cloud on port 443")));
            let m = d.create_meeting("443").await;
            let reports: Vec<_> = d.run_clients(vec![d.client("ada", m, 20, 2_000), d.client("bob", m, 20, 2_000)]).await.into_iter().map(|r| r.unwrap()).collect();
            assert!(reports.iter().all(|r| r.signalling_port == ports::HTTPS && r.media_path == MediaPath::Udp), "{reports:#?}");
            assert_isolated_meetings(&reports, 25);
        });
    }
}

#[test]
fn a_bad_or_expired_ticket_is_refused_with_its_reason() {
    for seed in seeds(SEEDS) {
        run("a_bad_or_expired_ticket_is_refused_with_its_reason", seed, || async move {
            let d = SimDeployment::start(seed, |_| {}).await;
            let m = d.create_meeting("tickets").await;
            let (cfg, ca) = (d.client("eve", m, 20, 1_000), d.ca());
            let reasons = d
                .on_new_host("eve", move || async move {
                    let grant = mc_node::client::fetch_ticket(&cfg, &ca).await.unwrap();
                    let forged = format!("{}00", &grant.ticket[..grant.ticket.len() - 2]);
                    let bad = join_raw(&grant, &ca, "garbage").await;
                    let tampered = join_raw(&grant, &ca, if forged == grant.ticket { "x" } else { &forged }).await;
                    // Tickets live 300 s by default; wait past that in simulated time.
                    mc_rt::sleep(std::time::Duration::from_secs(301)).await;
                    let expired = join_raw(&grant, &ca, &grant.ticket).await;
                    (bad, tampered, expired)
                })
                .await;
            assert_eq!(reasons, (RejectReason::TicketInvalid, RejectReason::TicketInvalid, RejectReason::TicketExpired));
        });
    }
}

/// Sends one join with `ticket` to the first controller of `grant`; returns the rejection reason.
async fn join_raw(grant: &mc_node::client::TicketGrant, ca: &rustls::pki_types::CertificateDer<'static>, ticket: &str) -> RejectReason {
    use mc_node::framed::{write_frame, FrameReader};
    use mc_wire::signal::{ClientToZc, ZcToClient};
    let c = &grant.controllers[0];
    let config = mc_rt::tls::client_config(ca, None, mc_wire::ports::alpn::SIGNAL).unwrap();
    let addr = mc_rt::net::resolve(&c.host, c.port).await.unwrap();
    let stream = mc_rt::tls::connect(addr, &c.host, config, std::time::Duration::from_secs(2)).await.unwrap();
    let (rd, mut wr) = mc_rt::split(stream);
    write_frame(&mut wr, &ClientToZc::Join { ticket: ticket.into() }).await.unwrap();
    match FrameReader::new(rd).next::<ZcToClient>().await.unwrap() {
        Some(ZcToClient::Rejected { reason, .. }) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn one_seed_gives_one_event_log() {
    for seed in seeds(&[42]) {
        let first = run("one_seed_gives_one_event_log", seed, || async move { two_meetings(seed).await.1 });
        let second = run("one_seed_gives_one_event_log", seed, || async move { two_meetings(seed).await.1 });
        let (h1, h2) = (hash_lines(&first), hash_lines(&second));
        println!("[sim] seed {seed}: event log of {} lines, hash {h1:016x} then {h2:016x}", first.len());
        if std::env::var_os("MC_SIM_PRINT_LOG").is_some() {
            println!("{}", first.join("\n"));
        }
        assert!(first.len() > 10, "the log records the run");
        if h1 != h2 {
            let diff = first.iter().zip(&second).position(|(a, b)| a != b).unwrap_or(first.len().min(second.len()));
            panic!("seed {seed} is not deterministic: logs differ from line {diff}:\n  {:?}\n  {:?}", first.get(diff), second.get(diff));
        }
    }
}

#[test]
fn an_mmr_vm_that_dies_moves_its_meetings_and_participants_rejoin_on_their_own() {
    for seed in seeds(SEEDS) {
        run("an_mmr_vm_that_dies_moves_its_meetings_and_participants_rejoin_on_their_own", seed, || async move {
            let d = SimDeployment::start(seed, |c| c.mmr_capacity = 4).await;
            let vm = d.start_mmr_vm(10).await;
            let (a, b) = (d.create_meeting("stays").await, d.create_meeting("moves").await);
            // Meeting a lands on the controller's MMR (ids break the tie), then b on the idle VM.
            let a1 = d.spawn_client(d.client("a1", a, 20, 12_000));
            d.wait_for(&format!("to m{} on controller-1-mmr", a.0), Duration::from_secs(10)).await;
            let b1 = d.spawn_client(d.client("b1", b, 20, 12_000));
            let b2 = d.spawn_client(d.client("b2", b, 20, 12_000));
            let a2 = d.spawn_client(d.client("a2", a, 20, 12_000));
            d.wait_for(&format!("to m{} on mmr-1", b.0), Duration::from_secs(10)).await;
            mc_rt::sleep(Duration::from_secs(3)).await;

            mc_rt::sim::runtime::Handle::current().kill(vm);
            d.wait_for("MMR mmr-1 is down", Duration::from_secs(5)).await;
            d.wait_for(&format!("to m{} on controller-1-mmr", b.0), Duration::from_secs(5)).await;
            let mut reports = Vec::new();
            for h in [a1, a2, b1, b2] {
                reports.push(h.await.unwrap().expect("joined"));
            }
            for r in &reports {
                assert_eq!(r.ended_by_zc, None, "{r:?}");
                let moved = r.meeting == b;
                assert_eq!(r.rejoins, moved as u32, "only meeting b's participants rejoin: {r:?}");
                // 12 s at 20 packets/s from one peer is 240; a2 joins late, b loses seconds to the failover.
                let from_peer = r.by_source.values().map(|s| s.received).sum::<u64>();
                assert!(from_peer > 150, "{} received {from_peer}", r.display_name);
            }
            assert_isolated_meetings(&reports, 100);
        });
    }
}
