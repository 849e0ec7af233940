//! An MMR VM as its own `connector mmr` process, killed mid-meeting: its participants are told to
//! rejoin, land on the controller's MMR and get media again, and the zone's capacity drops by the
//! dead MMR's share.
// Real processes: simulations live in sim/.
#![cfg(not(madsim))]

use mc_node::client::{self, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig, MmrConfig};
use mc_node::{cloud, controller, identities, EventLog};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "process-test-api-key-0001";

async fn wait_for(log: &Arc<Mutex<Vec<String>>>, needle: &str, within: Duration) {
    let start = mc_rt::Instant::now();
    while !log.lock().unwrap().iter().any(|l| l.contains(needle)) {
        assert!(
            start.elapsed() < within,
            "no event {needle:?}: {:#?}",
            log.lock().unwrap()
        );
        mc_rt::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn killing_an_mmr_vm_process_moves_its_meetings_and_its_participants_resume() {
    mc_rt::block_on(async {
        let dir = std::env::temp_dir().join(format!(
            "mc-mmr-proc-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        let local = vec!["127.0.0.1".to_string()];
        let hosts = [
            ("cloud", local.clone()),
            ("controller-1", local.clone()),
            ("mmr-1", local.clone()),
        ];
        let ids =
            identities::generate("test", &hosts, 3, mc_rt::unix_now_ms() as i64 / 1000, 1).unwrap();
        ids.write(&dir.join("certs")).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));

        let cloud_cfg = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            heartbeat_interval_ms: 300,
            ..Default::default()
        };
        let cloud = cloud::start(
            cloud_cfg,
            ids.identity("cloud").unwrap(),
            EventLog::collecting("cloud", log.clone()),
        )
        .await
        .unwrap();
        let ctl_cfg = ControllerConfig {
            media_cascade_port: 0,
            listen: "127.0.0.1".parse().unwrap(),
            signal_port: 0,
            tls_port: 0,
            media_udp_port: 0,
            media_tcp_port: 0,
            cloud_status_sync_port: cloud.status_sync_addr.port(),
            cloud_notification_port: cloud.notification_addr.port(),
            cloud_https_port: cloud.https_addr.port(),
            mmr_capacity: 4,
            mmr_report_interval_ms: 500,
            ..Default::default()
        };
        let ctl = controller::start(
            ctl_cfg,
            ids.identity("controller-1").unwrap(),
            EventLog::collecting("controller-1", log.clone()),
        )
        .await
        .unwrap();
        wait_for(&log, "registered with the cloud", Duration::from_secs(10)).await;

        let mmr_cfg = MmrConfig {
            cascade_port: 0,
            listen: "127.0.0.1".parse().unwrap(),
            media_udp_port: 0,
            media_tcp_port: 0,
            tls_port: 0,
            controller_host: "127.0.0.1".into(),
            controller_port: ctl.signal_addr.port(),
            controller_fallback_port: ctl.tls_addr.port(),
            cloud_https_port: cloud.https_addr.port(),
            capacity: 10,
            ..Default::default()
        };
        std::fs::write(dir.join("mmr-1.toml"), toml::to_string(&mmr_cfg).unwrap()).unwrap();
        let mut vm = Command::new(env!("CARGO_BIN_EXE_connector"))
            .args(["mmr", "--config"])
            .arg(dir.join("mmr-1.toml"))
            .arg("--certs")
            .arg(dir.join("certs"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&log, "MMR mmr-1 linked", Duration::from_secs(10)).await;

        let ca = ids.ca().unwrap();
        let api = ManagementApi {
            host: "127.0.0.1".into(),
            port: cloud.https_addr.port(),
            api_key: API_KEY.into(),
            ca: ca.clone(),
            timeout_ms: 2_000,
        };
        let (a, b) = (
            api.create_meeting("stays").await.unwrap(),
            api.create_meeting("moves").await.unwrap(),
        );
        let join = |name: &str, meeting: mc_wire::MeetingId| {
            let config = ClientConfig {
                display_name: name.into(),
                cloud_https_port: cloud.https_addr.port(),
                api_key: API_KEY.into(),
                meeting: meeting.0,
                duration_ms: 8_000,
                connect_timeout_ms: 500,
                ..Default::default()
            };
            let (ca, ev) = (ca.clone(), EventLog::collecting(name, log.clone()));
            mc_rt::spawn(async move { client::run(config, ca, ev, std::future::pending()).await })
        };
        // Meeting a lands on the controller's MMR (ids break the tie); b then goes to the idle VM.
        let a1 = join("a1", a);
        wait_for(
            &log,
            &format!("to m{} on controller-1-mmr", a.0),
            Duration::from_secs(5),
        )
        .await;
        let b1 = join("b1", b);
        let b2 = join("b2", b);
        wait_for(
            &log,
            &format!("to m{} on mmr-1", b.0),
            Duration::from_secs(5),
        )
        .await;
        wait_for(&log, "b2 joined", Duration::from_secs(5)).await;
        wait_for(&log, "b1 joined", Duration::from_secs(5)).await;
        mc_rt::sleep(Duration::from_millis(1_500)).await;

        vm.kill().unwrap();
        vm.wait().unwrap();
        let killed = mc_rt::Instant::now();
        wait_for(&log, "MMR mmr-1 is down", Duration::from_secs(5)).await;
        wait_for(
            &log,
            &format!("to m{} on controller-1-mmr", b.0),
            Duration::from_secs(5),
        )
        .await;
        let moved_ms = killed.elapsed().as_millis();

        let (a1, b1, b2) = (
            a1.await.unwrap().unwrap(),
            b1.await.unwrap().unwrap(),
            b2.await.unwrap().unwrap(),
        );
        assert_eq!((a1.rejoins, a1.ended_by_zc.as_deref()), (0, None), "{a1:?}");
        for r in [&b1, &b2] {
            assert_eq!((r.rejoins, r.ended_by_zc.as_deref()), (1, None), "{r:?}");
            let peer = if r.ssrc == b1.ssrc { b2.ssrc } else { b1.ssrc };
            assert!(
                r.by_source.get(&peer).is_some_and(|s| s.received > 100),
                "{} heard its peer again after moving: {r:?}",
                r.display_name
            );
        }
        let status = api.call("GET", "/v1/status", None).await.unwrap();
        assert_eq!(
            status["controllers"][0]["capacity"]["participants"], 4,
            "only the controller's MMR is left: {status}"
        );
        eprintln!("meeting moved {moved_ms} ms after the MMR VM process was killed");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
