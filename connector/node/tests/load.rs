//! The load generator against a real loopback deployment: capacity limits show up in its report
//! as typed rejections, and the admitted participants exchange media.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::Deployment;
use mc_node::load::{self, LoadSpec};
use mc_node::EventLog;
use mc_wire::MeetingId;
use std::collections::BTreeMap;

#[test]
fn load_beyond_mmr_capacity_is_rejected_by_reason_and_the_admitted_exchange_media() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.mmr_capacity = 5).await;
        let spec = LoadSpec {
            meetings: 2,
            participants_per_meeting: 4,
            arrivals_per_s: 20.0,
            // Long enough that every admitted participant is still in when the last joins arrive.
            duration_ms: 2_500,
            media_packets_per_s: 50,
            seed: 42,
            ..LoadSpec::default()
        };
        let base = d.client("unused", MeetingId(0), 0);
        let mut progress = Vec::new();
        let report = load::run(
            spec,
            base,
            d.ca.clone(),
            EventLog::collecting("load", d.events.clone()),
            std::future::pending(),
            |p| progress.push(p.clone()),
        )
        .await
        .expect("the load runs");

        let j = &report.joins;
        assert_eq!(
            (j.planned, j.attempted, j.admitted, j.rejected, j.failed),
            (8, 8, 5, 3, 0),
            "{report:#?}"
        );
        assert!(report.failures.is_empty(), "{report:#?}");
        assert_eq!(report.rejections.values().sum::<u64>(), 3);
        assert!(
            report
                .rejections
                .keys()
                .all(|r| r == "meeting_full" || r == "zone_full"),
            "{:?}",
            report.rejections
        );
        assert!(report
            .rejections
            .keys()
            .all(|r| report.examples.contains_key(r)));
        let per_meeting_admitted: Vec<u64> =
            report.per_meeting.iter().map(|m| m.admitted).collect();
        assert_eq!(per_meeting_admitted.iter().sum::<u64>(), 5);
        assert!(report
            .per_meeting
            .iter()
            .all(|m| m.attempted == 4 && m.admitted + m.rejected + m.failed == 4));

        let lat = report
            .join_latency_ms
            .as_ref()
            .expect("join latency of the admitted");
        assert_eq!(lat.count, 5);
        assert!(
            lat.min <= lat.p50
                && lat.p50 <= lat.p90
                && lat.p90 <= lat.p99
                && lat.p99 <= lat.max
                && lat.max < 2_000,
            "{lat:?}"
        );
        assert_eq!(report.media_paths, BTreeMap::from([("udp".to_string(), 5)]));
        assert_eq!(report.signalling_ports.values().sum::<u64>(), 5);
        assert_eq!(report.ended_early, 0);

        // Every admitted participant heard every other admitted participant of its meeting.
        let m = &report.media;
        let expected_streams: u64 = per_meeting_admitted
            .iter()
            .map(|k| k * k.saturating_sub(1))
            .sum();
        assert_eq!(m.streams.len() as u64, expected_streams);
        assert_eq!(m.silent_streams, 0);
        assert_eq!(m.foreign_packets, 0, "no media crosses meetings");
        for s in &m.streams {
            assert!(
                s.received >= 20,
                "{} heard only {} packets from {}",
                s.receiver,
                s.received,
                s.source
            );
        }
        assert!(m.loss_percent < 5.0, "{m:#?}");
        assert!(
            m.sent >= 5 * 100,
            "five participants at 50 packets/s for 2.5 s: {}",
            m.sent
        );

        // Progress: about once per second, monotonic, and the last one matches the report.
        assert!(progress.len() >= 3, "{progress:?}");
        assert!(progress
            .windows(2)
            .all(|w| w[0].started <= w[1].started && w[0].elapsed_ms <= w[1].elapsed_ms));
        let last = progress.last().unwrap();
        assert_eq!(
            (
                last.started,
                last.active,
                last.left,
                last.rejected,
                last.failed
            ),
            (8, 0, 5, 3, 0)
        );
        assert_eq!(
            (last.packets_sent, last.packets_received),
            (m.sent, m.received)
        );

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["joins"]["admitted"], 5);
        assert_eq!(json["spec"]["participants_per_meeting"], 4);
    });
}

#[test]
fn a_load_that_cannot_create_its_meetings_fails_to_run() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let base = mc_node::config::ClientConfig {
            api_key: "wrong-key-wrong-key".into(),
            ..d.client("unused", MeetingId(0), 0)
        };
        let err = load::run(
            LoadSpec::default(),
            base,
            d.ca.clone(),
            EventLog::tracing_only("load"),
            std::future::pending(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("creating meeting 1 of 2") && err.to_string().contains("401"),
            "{err}"
        );
    });
}
