//! Abuse on a running deployment: 2,000 half-open TLS connections (ClientHello never finished)
//! against the controller's signalling port and 2,000 against the MMR VM's TLS media port, from
//! one hostile source, while a meeting runs. Every node keeps working, its counters account for
//! every hostile connection, the meeting's media keeps flowing and a new participant still joins.
#![cfg(not(madsim))]

mod common;

use common::attack::{closed_count, closed_within, half_open_tls, scrape_when};
use common::Deployment;
use mc_node::client;
use mc_node::EventLog;
use std::net::SocketAddr;
use std::time::Duration;

const HALF_OPEN: usize = 2_000;
/// The hostile host (any 127.0.0.0/8 address is loopback); participants connect from 127.0.0.1.
const ATTACKER: &str = "127.0.0.99";
const HANDSHAKE_TIMEOUT_MS: u64 = 300;
const MAX_CONNS_PER_SOURCE: u32 = 64;

/// Opens `HALF_OPEN` stalled handshakes to each target as fast as it can, holds them, and
/// returns per target how many the server had closed by the end of `hold` (refused or timed
/// out), or within `grace` more: on an overloaded machine the last of 4,000 connections may
/// still wait in the accept queue when the hold ends, and a server that never closes one fails
/// either way.
fn flood(targets: [SocketAddr; 2], hold: Duration, grace: Duration) -> [usize; 2] {
    let mut conns: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..HALF_OPEN {
        for (i, to) in targets.iter().enumerate() {
            conns[i].push(half_open_tls(ATTACKER, *to).expect("loopback accepts the connection"));
        }
    }
    std::thread::sleep(hold);
    let until = std::time::Instant::now() + grace;
    conns.map(|c| {
        c.into_iter()
            .filter_map(|mut s| {
                let left = until.saturating_duration_since(std::time::Instant::now());
                closed_within(&mut s, left.max(Duration::from_millis(1))).then_some(())
            })
            .count()
    })
}

#[test]
fn half_open_tls_floods_are_refused_or_timed_out_while_the_meeting_keeps_its_media() {
    // The test itself holds both ends of every connection.
    mc_node::fd_limit::raise_to_hard().unwrap();
    mc_rt::block_on(async {
        // The controller's own MMR takes one participant, so the meeting lands on the MMR VM.
        let d = Deployment::start(|c, _| {
            c.mmr_capacity = 1;
            c.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
            c.max_conns_per_source = MAX_CONNS_PER_SOURCE;
        })
        .await;
        let vm = d
            .start_mmr_vm_with(10, |c| {
                c.handshake_timeout_ms = HANDSHAKE_TIMEOUT_MS;
                c.max_conns_per_source = MAX_CONNS_PER_SOURCE;
            })
            .await;
        let api = d.api();
        let (filler, m) = (
            api.create_meeting("filler").await.unwrap(),
            api.create_meeting("under attack").await.unwrap(),
        );
        let run = |name: &str, meeting, seed, duration_ms| {
            let mut c = d.client(name, meeting, seed);
            c.duration_ms = duration_ms;
            let (ca, ev) = (d.ca.clone(), EventLog::collecting(name, d.events.clone()));
            mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await })
        };
        let filler = run("filler", filler, 1, 7_000);
        d.wait_for(" on controller-1-mmr").await;
        let (ada, bob) = (run("ada", m, 2, 6_000), run("bob", m, 3, 6_000));
        d.wait_for(&format!(" to m{} on mmr-1", m.0)).await;
        mc_rt::sleep(Duration::from_millis(500)).await;

        let targets = [d.controller.signal_addr, vm.tls_addr];
        let attacker = std::thread::spawn(move || {
            flood(targets, Duration::from_secs(3), Duration::from_secs(5))
        });
        // A newcomer joins while the flood is on.
        mc_rt::sleep(Duration::from_millis(500)).await;
        let cyd = run("cyd", m, 4, 1_500).await.unwrap();
        let closed = attacker.join().unwrap();

        let cyd = cyd.expect("a new participant joined during the flood");
        assert!(cyd.received >= 20, "{cyd:?}");
        for report in [ada.await.unwrap(), bob.await.unwrap()] {
            let r = report.expect("a participant stayed in the meeting");
            assert_eq!(r.ended_by_zc, None, "{r:?}");
            assert_eq!(r.rejoins, 0, "{r:?}");
            let (received, lost) = r
                .by_source
                .values()
                .fold((0, 0), |(n, l), s| (n + s.received, l + s.lost));
            eprintln!("{}: received {received}, lost {lost}", r.display_name);
            assert!(
                received >= 200,
                "{} received only {received}: {r:?}",
                r.display_name
            );
            assert!(
                lost * 100 <= received,
                "{} lost {lost} of {received} packets during the flood",
                r.display_name
            );
        }
        filler.await.unwrap().unwrap();

        // Every hostile connection was closed by the servers, and each is counted as refused
        // (over the per-source cap) or timed out (its handshake never finished).
        assert_eq!(
            closed,
            [HALF_OPEN, HALF_OPEN],
            "hostile connections still open"
        );
        let counted = |listener: &str, s: &str| {
            closed_count(s, listener, "source_full")
                + closed_count(s, listener, "handshake_timeout")
        };
        for (node, metrics, listener) in [
            ("controller", &d.controller.metrics, "signalling"),
            ("MMR VM", &vm.metrics, "tls"),
        ] {
            let all = |s: &str| counted(listener, s) >= HALF_OPEN as u64;
            let scrape = scrape_when(|| metrics.render(), all).await;
            let refused = closed_count(&scrape, listener, "source_full");
            let timed_out = closed_count(&scrape, listener, "handshake_timeout");
            eprintln!("{node} {listener}: {refused} refused (source_full), {timed_out} timed out (handshake_timeout)");
            assert_eq!(refused + timed_out, HALF_OPEN as u64, "{node}: {scrape}");
            assert!(refused > 0 && timed_out > 0, "{node}: {scrape}");
        }
        // The nodes still answer: the MMR VM is still linked, the controller still admits.
        assert!(vm.links.is_up("mmr_link"), "{:?}", vm.links.snapshot());
    });
}

/// Media-port floods at twice the per-source limits while a meeting runs: garbage (as if RTP from
/// nobody bound) and binding requests for a grant that does not exist (each would draw an answer
/// at whatever address it claims: a reflector). Over its rate a source's packets are dropped
/// unanswered and counted; the meeting's media is untouched.
#[test]
fn media_port_floods_are_held_to_their_per_source_rates_while_the_meeting_keeps_its_media() {
    const UNBOUND_PER_S: u32 = 100;
    const BINDINGS_PER_S: u32 = 50;
    const FLOOD_MS: u64 = 3_000;
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| {
            c.media_unbound_packets_per_s = UNBOUND_PER_S;
            c.media_bindings_per_s = BINDINGS_PER_S;
        })
        .await;
        let m = d.api().create_meeting("under a media flood").await.unwrap();
        let run = |name: &str, seed| {
            let mut c = d.client(name, m, seed);
            c.duration_ms = 6_000;
            let (ca, ev) = (d.ca.clone(), EventLog::collecting(name, d.events.clone()));
            mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await })
        };
        let (ada, bob) = (run("ada", 2), run("bob", 3));
        d.wait_for(&format!(" to m{} on controller-1-mmr", m.0))
            .await;
        mc_rt::sleep(Duration::from_millis(500)).await;
        let before = drops(&d.controller.metrics.render());

        // Twice each rate, evenly, from one hostile address, for FLOOD_MS.
        let to = d.controller.media_udp_addr;
        let attacker = std::thread::spawn(move || {
            let sock = std::net::UdpSocket::bind((ATTACKER, 0)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            let token = mc_wire::MediaToken::from_bytes(vec![0x42; 16]);
            let (mut sent, mut answers, mut buf) = ([0u64; 2], 0u64, [0u8; 2048]);
            let start = std::time::Instant::now();
            let per_ms = (2 * (UNBOUND_PER_S + BINDINGS_PER_S)) as f64 / 1_000.0;
            while start.elapsed() < Duration::from_millis(FLOOD_MS) {
                let due = (start.elapsed().as_secs_f64() * 1_000.0 * per_ms) as u64;
                while sent[0] + sent[1] < due {
                    // Two garbage packets for each binding, as the two rates stand.
                    let binding = (sent[0] + sent[1]) % 3 == 2;
                    let packet = if binding {
                        mc_wire::binding::Binding::Request {
                            txn: [sent[1] as u8; 12],
                            username: mc_wire::binding::BindingId::of(&token),
                            counter: sent[1] + 1,
                        }
                        .encode_signed(&token)
                    } else {
                        vec![0xff; 120]
                    };
                    sock.send_to(&packet, to).unwrap();
                    sent[binding as usize] += 1;
                }
                while sock.recv(&mut buf).is_ok() {
                    answers += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            while sock.recv(&mut buf).is_ok() {
                answers += 1;
            }
            (sent, answers)
        });
        let ([garbage, bindings], answers) = attacker.join().unwrap();
        let after = drops(&d.controller.metrics.render());
        let delta = |reason: &str| after[reason] - before[reason];
        eprintln!(
            "sent {garbage} garbage and {bindings} bindings in {FLOOD_MS} ms; {} garbage and {} bindings rate-limited; {answers} answers",
            delta("rate_limited_unbound"),
            delta("rate_limited_binding")
        );
        // Every hostile packet is accounted for: dropped by the limit, or dropped (garbage) or
        // refused (unknown grant) by the table.
        assert_eq!(delta("rate_limited_unbound") + delta("malformed"), garbage);
        assert_eq!(delta("rate_limited_binding") + delta("bad_token"), bindings);
        // At twice the rate for three seconds, a burst of twice the rate passes, then the rate:
        // about a third of each flood is over the limit (the sender's pace varies on a busy host).
        let secs = FLOOD_MS / 1_000;
        for (reason, per_s, sent) in [
            ("rate_limited_unbound", UNBOUND_PER_S, garbage),
            ("rate_limited_binding", BINDINGS_PER_S, bindings),
        ] {
            let allowed = u64::from(per_s) * (2 + secs);
            assert!(
                sent > allowed,
                "the flood was too slow to test {reason}: {sent}"
            );
            assert!(
                delta(reason) >= sent - allowed - u64::from(per_s) / 2,
                "{reason}"
            );
        }
        // Only bindings within the rate were answered: the port reflects no more than that.
        assert_eq!(answers, delta("bad_token"));
        for report in [ada.await.unwrap(), bob.await.unwrap()] {
            let r = report.expect("a participant stayed in the meeting");
            assert_eq!((r.ended_by_zc.as_deref(), r.rejoins), (None, 0), "{r:?}");
            let (received, lost) = r
                .by_source
                .values()
                .fold((0, 0), |(n, l), s| (n + s.received, l + s.lost));
            assert!(received >= 200, "{r:?}");
            assert!(
                lost * 100 <= received,
                "{} lost {lost} of {received}",
                r.display_name
            );
            assert_eq!(r.unopened, Default::default(), "{r:?}");
        }
    });
}

/// `mc_mmr_dropped_packets_total` by reason, from a scrape.
fn drops(scrape: &str) -> std::collections::BTreeMap<String, u64> {
    let mut by_reason = std::collections::BTreeMap::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("mc_mmr_dropped_packets_total{") else {
            continue;
        };
        let reason = rest
            .split("reason=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok());
        if let (Some(reason), Some(value)) = (reason, value) {
            *by_reason.entry(reason.to_string()).or_default() += value;
        }
    }
    by_reason
}
