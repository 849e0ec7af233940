//! The cloud's four services over real sockets: management (users, keys, roles, persistence),
//! notification (a meeting ended in the cloud ends on the controller), status sync and monitoring
//! (the zone's status shows every node and the path of each link).
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::{Deployment, API_KEY};
use mc_node::client::{self, ManagementApi};
use mc_node::config::CloudConfig;
use mc_node::{cloud, EventLog};
use serde_json::json;
use std::time::Duration;

#[test]
fn ending_a_meeting_in_the_cloud_disconnects_its_participants_with_the_reason() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        d.wait_for("subscribed to cloud notifications").await;
        let api = d.api();
        let (m, other) = (
            api.create_meeting("ends").await.unwrap(),
            api.create_meeting("goes on").await.unwrap(),
        );
        let clients: Vec<_> = [("ada", m), ("bob", m), ("cyd", other)]
            .into_iter()
            .map(|(name, meeting)| {
                let mut c = d.client(name, meeting, name.len() as u64);
                c.duration_ms = 4_000;
                let (ca, ev) = (d.ca.clone(), EventLog::collecting(name, d.events.clone()));
                mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await })
            })
            .collect();
        d.wait_for("cyd joined").await;
        d.wait_for("bob joined").await;
        d.wait_for("ada joined").await;
        let started = mc_rt::Instant::now();
        api.call(
            "POST",
            &format!("/v1/meetings/{}/end", m.0),
            Some(json!({ "reason": "the all-hands is over" })),
        )
        .await
        .unwrap();
        let mut reports = Vec::new();
        for h in clients {
            reports.push(h.await.unwrap().unwrap());
        }
        for r in &reports[..2] {
            assert_eq!(
                r.ended_by_zc.as_deref(),
                Some("the all-hands is over"),
                "{r:?}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_millis(3_900) || reports[2].ended_by_zc.is_none()
        );
        assert_eq!(reports[2].ended_by_zc, None, "the other meeting goes on");
        let err = client::fetch_ticket(&d.client("late", m, 9), &d.ca)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("409") && err.to_string().contains("ended"),
            "{err}"
        );
    });
}

#[test]
fn keys_tell_who_calls_and_roles_what_they_may_do() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let admin = d.api();
        let created = admin
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "ada@example.org", "display_name": "Ada Lovelace" })),
            )
            .await
            .unwrap();
        let key = created["api_key"].as_str().unwrap().to_string();
        assert_eq!(created["user"]["role"], "member");
        assert!(
            created["user"].get("key_sha256").is_none(),
            "the key's hash is never shown"
        );
        let ada = ManagementApi {
            api_key: key.clone(),
            ..d.api()
        };

        let err = ManagementApi {
            api_key: "not-a-key-not-a-key".into(),
            ..d.api()
        }
        .call("GET", "/v1/meetings", None)
        .await
        .unwrap_err();
        assert!(err.starts_with("401") && err.contains("not valid"), "{err}");
        let err = ada.call("GET", "/v1/users", None).await.unwrap_err();
        assert!(err.starts_with("403") && err.contains("admin"), "{err}");
        let err = ada.call("GET", "/v1/zone", None).await.unwrap_err();
        assert!(err.starts_with("403"), "{err}");

        // A member hosts meetings and joins under their own name; they may not end someone else's.
        let own = ada.create_meeting("ada's").await.unwrap();
        let theirs = admin.create_meeting("operator's").await.unwrap();
        let grant = ada
            .call(
                "POST",
                &format!("/v1/meetings/{}/tickets", own.0),
                Some(json!({})),
            )
            .await
            .unwrap();
        assert!(grant["ticket"].as_str().is_some());
        let err = ada
            .call(
                "POST",
                &format!("/v1/meetings/{}/end", theirs.0),
                Some(json!({})),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("403") && err.contains("host"), "{err}");
        ada.call(
            "POST",
            &format!("/v1/meetings/{}/end", own.0),
            Some(json!({})),
        )
        .await
        .unwrap();

        // Validation: every field, with a reason.
        let err = admin
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "nobody", "display_name": "N" })),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("422") && err.contains("email"), "{err}");
        let err = admin
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "ADA@example.org", "display_name": "Again" })),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("409"), "{err}");
        let err = admin
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "x@y.z", "display_name": "X", "role": "root" })),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("400") && err.contains("root"), "{err}");
        let err = admin.call("GET", "/v1/meetings/0", None).await.unwrap_err();
        assert!(
            err.starts_with("400") && err.contains("not a meeting id"),
            "{err}"
        );
        let err = admin.call("PUT", "/v1/meetings", None).await.unwrap_err();
        assert!(err.starts_with("405"), "{err}");
    });
}

#[test]
fn a_meetings_size_hint_is_validated_shown_and_carried_in_its_tickets() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let admin = d.api();
        let id = admin
            .create_meeting_expecting("town hall", Some(500))
            .await
            .unwrap();
        let shown = admin
            .call("GET", &format!("/v1/meetings/{}", id.0), None)
            .await
            .unwrap();
        assert_eq!(shown["expected_participants"], 500);
        let plain = admin.create_meeting("standup").await.unwrap();
        let list = admin.list_all("/v1/meetings", "meetings").await.unwrap();
        let hints: Vec<(u64, serde_json::Value)> = list
            .iter()
            .map(|m| {
                (
                    m["id"].as_u64().unwrap(),
                    m["expected_participants"].clone(),
                )
            })
            .collect();
        assert_eq!(hints, vec![(id.0, json!(500)), (plain.0, json!(null))]);
        // Every ticket for the meeting carries the hint to the controller that admits it.
        let grant = admin
            .call(
                "POST",
                &format!("/v1/meetings/{}/tickets", id.0),
                Some(json!({ "display_name": "Ada" })),
            )
            .await
            .unwrap();
        let ticket = mc_wire::ticket::Ticket::parse(grant["ticket"].as_str().unwrap()).unwrap();
        assert_eq!(ticket.claims.expected_participants, Some(500));

        // Anything but a whole number from 1 to the bound is a 422 naming the field.
        for bad in [
            json!(0),
            json!(-1),
            json!(2.5),
            json!("many"),
            json!(100_001),
            json!(u64::MAX),
        ] {
            let err = admin
                .call(
                    "POST",
                    "/v1/meetings",
                    Some(json!({ "topic": "t", "expected_participants": bad })),
                )
                .await
                .unwrap_err();
            assert!(
                err.starts_with("422") && err.contains("expected_participants"),
                "{bad}: {err}"
            );
        }
        let list = admin.list_all("/v1/meetings", "meetings").await.unwrap();
        assert_eq!(list.len(), 2, "no meeting was made by a refused request");
    })
}

#[test]
fn a_restarted_cloud_keeps_its_users_and_meetings_and_old_tickets_still_verify() {
    mc_rt::block_on(async {
        let dir = std::env::temp_dir().join(format!(
            "mc-cloud-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        let d = Deployment::start(|_, cloud| cloud.data_dir = Some(dir.clone())).await;
        let admin = d.api();
        let key = admin
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "grace@example.org", "display_name": "Grace" })),
            )
            .await
            .unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_string();
        let m = admin.create_meeting("persistent").await.unwrap();

        // A second cloud process on the same data directory (the first one's ports stay bound).
        let config = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            data_dir: Some(dir.clone()),
            ..Default::default()
        };
        let again = cloud::start(
            config,
            d.ids.identity("cloud").unwrap(),
            EventLog::tracing_only("cloud-2"),
        )
        .await
        .unwrap();
        let grace = ManagementApi {
            port: again.https_addr.port(),
            api_key: key,
            ..d.api()
        };
        let meeting = grace
            .call("GET", &format!("/v1/meetings/{}", m.0), None)
            .await
            .unwrap();
        assert_eq!(meeting["topic"], "persistent");
        let next = grace.create_meeting("after restart").await.unwrap();
        assert!(next.0 > m.0, "ids keep counting up");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn the_zone_status_shows_every_node_its_links_and_how_clients_reach_media() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        d.start_mmr_vm(10).await;
        let m = d.api().create_meeting("observed").await.unwrap();
        let mut c = d.client("ada", m, 5);
        c.duration_ms = 2_000;
        let (ca, ev) = (d.ca.clone(), EventLog::collecting("ada", d.events.clone()));
        let h = mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await });
        d.wait_for("ada joined").await;
        mc_rt::sleep(Duration::from_millis(1_000)).await;
        let zone = d.api().call("GET", "/v1/zone", None).await.unwrap();
        h.await.unwrap().unwrap();

        assert_eq!(zone["controllers"][0]["live"], true, "{zone:#}");
        let nodes = zone["nodes"].as_array().unwrap();
        let node = |name: &str| {
            nodes
                .iter()
                .find(|n| n["node"] == name)
                .unwrap_or_else(|| panic!("no report from {name}: {zone:#}"))
        };
        let ctl = node("controller-1");
        assert_eq!(
            (ctl["live"].as_bool(), ctl["ready"].as_bool()),
            (Some(true), Some(true)),
            "{ctl:#}"
        );
        assert_eq!(ctl["links"]["status_sync"]["path"], "dedicated", "{ctl:#}");
        assert_eq!(ctl["links"]["notification"]["path"], "dedicated", "{ctl:#}");
        let mmr = node("mmr-1");
        assert_eq!(mmr["links"]["mmr_link"]["path"], "dedicated", "{mmr:#}");
        let udp = ctl["media"]["udp_endpoints"].as_u64().unwrap()
            + mmr["media"]["udp_endpoints"].as_u64().unwrap();
        assert_eq!(udp, 1, "ada's media path is visible: {zone:#}");
        assert_eq!(zone["participants"], 1);
    });
}

#[test]
fn draining_an_mmr_through_the_api_moves_its_meeting() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.mmr_capacity = 1).await;
        d.wait_for("subscribed to cloud notifications").await;
        d.start_mmr_vm(10).await;
        let (filler, m) = (
            d.api().create_meeting("filler").await.unwrap(),
            d.api().create_meeting("moves").await.unwrap(),
        );
        // The controller's MMR holds one seat, taken first; meeting m then lives on the VM.
        let clients: Vec<_> = [("cyd", filler), ("ada", m), ("bob", m)]
            .into_iter()
            .map(|(name, meeting)| {
                let mut c = d.client(name, meeting, name.len() as u64 + 90);
                c.duration_ms = 4_000;
                let (ca, ev) = (d.ca.clone(), EventLog::collecting(name, d.events.clone()));
                let h =
                    mc_rt::spawn(
                        async move { client::run(c, ca, ev, std::future::pending()).await },
                    );
                std::thread::sleep(Duration::from_millis(300));
                h
            })
            .collect();
        d.wait_for(&format!("to m{} on mmr-1", m.0)).await;
        d.wait_for("bob joined").await;
        d.wait_for("ada joined").await;
        let err = d
            .api()
            .call(
                "POST",
                "/v1/mmrs/mmr-1/drain",
                Some(json!({ "deadline_s": 100_000 })),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("422"), "{err}");
        d.api()
            .call(
                "POST",
                "/v1/mmrs/mmr-1/drain",
                Some(json!({ "deadline_s": 1 })),
            )
            .await
            .unwrap();
        d.wait_for("MMR mmr-1 drained").await;
        let reports: Vec<_> = {
            let mut v = Vec::new();
            for h in clients {
                v.push(h.await.unwrap().unwrap());
            }
            v
        };
        // The meeting moved whole, but nothing else has room: drained is drained, so its
        // participants could not rejoin and were told why.
        for r in &reports[1..] {
            assert_eq!(r.rejoins, 1, "{r:?}");
            assert!(
                r.ended_by_zc
                    .as_deref()
                    .is_some_and(|e| e.contains("drained")),
                "{r:?}"
            );
        }
        let log = d.events.lock().unwrap().join("\n");
        assert!(
            log.contains(&format!(
                "moved meeting m{} (2 participants) off MMR mmr-1",
                m.0
            )),
            "{log}"
        );
    });
}

/// `GET path` on the cloud's HTTPS port, trusting the deployment CA: the status line and headers,
/// and the body.
async fn https_get(d: &Deployment, path: &str) -> (String, String) {
    use mc_rt::{AsyncReadExt, AsyncWriteExt};
    let mut stream = d
        .dial(d.cloud.https_addr, None, mc_wire::ports::alpn::HTTP1)
        .await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8(answer).expect("the page is UTF-8");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    (head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn the_dashboard_is_one_self_contained_page_that_polls_the_zone() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let (head, page) = https_get(&d, "/dashboard").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/html"), "{head}");
        // Nothing fetched from elsewhere at run time: no absolute URL anywhere in the page, and
        // the browser is told to load nothing but this origin's API.
        for external in ["http://", "https://", "//fonts.", "cdn"] {
            assert!(!page.contains(external), "the page references {external:?}");
        }
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(
            page.contains("fetch(\"/v1/zone\""),
            "the page polls the zone"
        );
        assert!(page.contains("#key=") || page.contains("get(\"key\")"));
    });
}

#[test]
fn the_zone_carries_capacity_hosted_meetings_and_recent_events_for_the_dashboard() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.max_meetings = 7).await;
        d.wait_for("subscribed to cloud notifications").await;
        d.start_mmr_vm(10).await;
        let m = d.api().create_meeting("watched").await.unwrap();
        let mut c = d.client("ada", m, 5);
        c.duration_ms = 3_000;
        let (ca, ev) = (d.ca.clone(), EventLog::collecting("ada", d.events.clone()));
        let h = mc_rt::spawn(async move { client::run(c, ca, ev, std::future::pending()).await });
        d.wait_for("ada joined").await;
        let api = d.api();
        api.call(
            "POST",
            "/v1/mmrs/mmr-1/drain",
            Some(json!({ "deadline_s": 600 })),
        )
        .await
        .unwrap();
        // Reports come every 300 ms in these tests.
        mc_rt::sleep(Duration::from_millis(1_000)).await;
        let zone = api.call("GET", "/v1/zone", None).await.unwrap();
        h.await.unwrap().unwrap();

        let nodes = zone["nodes"].as_array().unwrap();
        let node = |name: &str| {
            nodes
                .iter()
                .find(|n| n["node"] == name)
                .unwrap_or_else(|| panic!("no report from {name}: {zone:#}"))
        };
        let ctl = node("controller-1");
        assert_eq!(ctl["capacity"]["meetings"], 7, "{ctl:#}");
        assert_eq!(ctl["draining"], false, "{ctl:#}");
        let hosted = ctl["hosted"].as_array().expect("hosted meetings");
        assert_eq!(hosted.len(), 1, "{ctl:#}");
        assert_eq!(hosted[0]["meeting"], m.0, "{ctl:#}");
        assert_eq!(hosted[0]["participants"], 1, "{ctl:#}");
        let recent = ctl["recent"].as_array().expect("recent events");
        assert!(
            recent.iter().any(|e| e["kind"] == "link"
                && e["text"].as_str().unwrap().starts_with("status_sync up")),
            "the cloud link coming up is an event: {ctl:#}"
        );
        let mmr = node("mmr-1");
        assert_eq!(mmr["capacity"]["participants"], 10, "{mmr:#}");
        assert_eq!(mmr["drain_requested"], true, "{mmr:#}");
        let events = zone["events"].as_array().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "drain" && e["node"] == "cloud"),
            "the operator's drain is in the zone's events: {zone:#}"
        );
        assert!(zone["now_ms"].as_u64().unwrap() > 0);
    });
}
