//! The product's limits over real sockets, at their defaults: one controller VM holds 200
//! participants on its MMR and 100 meetings. The 201st participant and the 101st meeting are
//! refused with their reasons, and the 200 admitted keep exchanging media.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::{assert_isolated_meetings, Deployment};
use mc_node::client::{self};
use mc_node::EventLog;
use mc_wire::signal::RejectReason;

#[test]
fn the_201st_participant_and_the_101st_meeting_are_refused_and_the_200_admitted_are_undisturbed() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let api = d.api();
        let mut meetings = Vec::new();
        for i in 0..101 {
            meetings.push(api.create_meeting(&format!("m{i}")).await.unwrap());
        }
        let mut handles = Vec::new();
        for (i, m) in meetings[..100].iter().enumerate() {
            for p in 0..2 {
                let mut c = d.client(&format!("p{i}-{p}"), *m, 1_000 + 2 * i as u64 + p);
                c.media_packets_per_s = 10;
                c.duration_ms = 8_000;
                // Real handshakes on a small machine: the production timeouts, and joins paced
                // (as a crowd arrives), not 200 at the same instant.
                c.connect_timeout_ms = mc_node::DEFAULT_CONNECT_TIMEOUT_MS;
                let (ca, ev) = (
                    d.ca.clone(),
                    EventLog::collecting(&c.display_name, d.events.clone()),
                );
                handles.push(mc_rt::spawn(async move {
                    client::run(c, ca, ev, std::future::pending()).await
                }));
                mc_rt::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        // Wait until all 200 are in, then knock twice.
        let joined = || {
            d.events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.contains(" joined m"))
                .count()
        };
        for _ in 0..300 {
            if joined() == 200 {
                break;
            }
            mc_rt::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            joined(),
            200,
            "{:#?}",
            d.events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.contains("refused") || e.contains("rejected"))
                .take(5)
                .collect::<Vec<_>>()
        );
        let mut extra = d.client("the-201st", meetings[0], 5);
        extra.duration_ms = 500;
        let err = client::run(
            extra,
            d.ca.clone(),
            EventLog::tracing_only("x"),
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.rejection(), Some(RejectReason::MeetingFull), "{err}");
        let mut extra = d.client("meeting-101", meetings[100], 6);
        extra.duration_ms = 500;
        let err = client::run(
            extra,
            d.ca.clone(),
            EventLog::tracing_only("x"),
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.rejection(),
            Some(RejectReason::ControllerMeetingLimit),
            "{err}"
        );
        assert!(err.to_string().contains("100 meetings"), "{err}");

        let mut reports = Vec::new();
        for h in handles {
            reports.push(h.await.unwrap().expect("all 200 admitted"));
        }
        assert_eq!(reports.len(), 200);
        assert_isolated_meetings(&reports);
        assert!(
            reports.iter().all(|r| r.ended_by_zc.is_none()),
            "nobody admitted was disturbed"
        );
    });
}
