//! A meeting of 500 across three `connector mmr` processes of 180 seats each: `connector load`
//! joins 500 participants (six of them speaking, spread over the arrival order, so every MMR
//! carries speakers), the meeting cascades from the first MMR onto the second and third, and every
//! listener hears every speaker — across the cascade links. Then the middle MMR process is killed
//! (SIGKILL): only its participants move (to the third MMR's free seats and the controller's
//! spare MMR), and everyone hears everyone again within the failover bound.
// Real processes: simulations live in sim/.
#![cfg(not(madsim))]

use mc_node::config::{CloudConfig, ControllerConfig, MmrConfig};
use mc_node::{cloud, controller, identities, EventLog};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "cascade-process-test-api-key-01";
const PARTICIPANTS: u32 = 500;
const SPEAKERS: u32 = 6;
/// Seats on each MMR: 500 participants fill the first two and part of the third.
const SEATS: u32 = 180;
const PACKETS_PER_S: u32 = 10;
const ARRIVALS_PER_S: u32 = 50;
/// Each participant stays this long: the last arrives after about 10 s, the kill comes once all
/// are in, and everyone hears everyone for several seconds after it.
const STAY_MS: u64 = 28_000;
/// The goal for a failover: from the death to media again.
const RECOVERY_BOUND_MS: u64 = 3_000;

/// A child process, killed when dropped (also when the test panics).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn admitted_on(log: &Arc<Mutex<Vec<String>>>, mmr: &str) -> usize {
    let on = format!(" on {mmr}");
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("admitted ") && l.ends_with(&on))
        .count()
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = mc_rt::Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        mc_rt::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_mmr(dir: &Path, name: &str, cfg: &MmrConfig) -> Process {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(cfg).unwrap()).unwrap();
    let out = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Process(
        Command::new(env!("CARGO_BIN_EXE_connector"))
            .args(["mmr", "--config"])
            .arg(path)
            .arg("--certs")
            .arg(dir.join("certs"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_meeting_of_500_cascades_over_three_mmr_processes_and_survives_losing_one() {
    // 500 signalling connections end on this process's controller.
    mc_node::fd_limit::raise_to_hard().unwrap();
    mc_rt::block_on(async {
        let dir = std::env::temp_dir().join(format!(
            "mc-cascade-proc-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        let local = vec!["127.0.0.1".to_string()];
        // The controller sorts after the MMR VMs, so its own MMR is the spare the meeting reaches
        // last (ties in placement go to the smaller id).
        let mut hosts = vec![("cloud", local.clone()), ("controller:zc-1", local.clone())];
        let vms = ["mmr-1", "mmr-2", "mmr-3"];
        hosts.extend(vms.iter().map(|n| (*n, local.clone())));
        let ids =
            identities::generate("test", &hosts, 5, mc_rt::unix_now_ms() as i64 / 1000, 1).unwrap();
        ids.write(&dir.join("certs")).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));

        let cloud = cloud::start(
            CloudConfig {
                https_port: 0,
                status_sync_port: 0,
                notification_port: 0,
                api_key: API_KEY.into(),
                ..Default::default()
            },
            ids.identity("cloud").unwrap(),
            EventLog::collecting("cloud", log.clone()),
        )
        .await
        .unwrap();
        let ctl = controller::start(
            ControllerConfig {
                id: "zc-1".into(),
                listen: "127.0.0.1".parse().unwrap(),
                signal_port: 0,
                tls_port: 0,
                media_udp_port: 0,
                media_tcp_port: 0,
                media_cascade_port: 0,
                cloud_status_sync_port: cloud.status_sync_addr.port(),
                cloud_notification_port: cloud.notification_addr.port(),
                cloud_https_port: cloud.https_addr.port(),
                mmr_capacity: SEATS,
                ..Default::default()
            },
            ids.identity("zc-1").unwrap(),
            EventLog::collecting("zc-1", log.clone()),
        )
        .await
        .unwrap();
        let has = |needle: String| {
            let log = log.clone();
            move || log.lock().unwrap().iter().any(|l| l.contains(&needle))
        };
        wait_until(
            "registered with the cloud",
            Duration::from_secs(10),
            has("registered with the cloud".into()),
        )
        .await;

        let mut processes: Vec<Option<Process>> = vms
            .iter()
            .map(|name| {
                let cfg = MmrConfig {
                    id: name.to_string(),
                    listen: "127.0.0.1".parse().unwrap(),
                    media_udp_port: 0,
                    media_tcp_port: 0,
                    tls_port: 0,
                    cascade_port: 0,
                    controller_host: "127.0.0.1".into(),
                    controller_port: ctl.signal_addr.port(),
                    controller_fallback_port: ctl.tls_addr.port(),
                    cloud_https_port: cloud.https_addr.port(),
                    capacity: SEATS,
                    ..Default::default()
                };
                Some(spawn_mmr(&dir, name, &cfg))
            })
            .collect();
        for name in vms {
            wait_until(
                &format!("{name} linked"),
                Duration::from_secs(10),
                has(format!("MMR {name} linked")),
            )
            .await;
        }

        let ca_pem = dir.join("certs").join("ca.pem");
        assert!(
            ca_pem.exists(),
            "the deployment CA is written as {ca_pem:?}"
        );
        let mut load = Command::new(env!("CARGO_BIN_EXE_connector"))
            .args(["load", "--json", "--meetings", "1"])
            .args(["--participants", &PARTICIPANTS.to_string()])
            .args(["--speakers", &SPEAKERS.to_string()])
            .args(["--pps", &PACKETS_PER_S.to_string()])
            .args(["--arrivals-per-s", &ARRIVALS_PER_S.to_string()])
            .args(["--duration-ms", &STAY_MS.to_string()])
            .args(["--seed", "7", "--cloud", "127.0.0.1"])
            .args(["--cloud-port", &cloud.https_addr.port().to_string()])
            .args(["--api-key", API_KEY])
            .arg("--ca")
            .arg(&ca_pem)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("report.json")).unwrap())
            .stderr(std::fs::File::create(dir.join("load.log")).unwrap())
            .spawn()
            .unwrap();

        // Everyone in: the first two MMRs full, the rest on the third, the spare untouched.
        wait_until(
            "all 500 participants admitted",
            Duration::from_secs(60),
            || vms.iter().map(|m| admitted_on(&log, m)).sum::<usize>() == PARTICIPANTS as usize,
        )
        .await;
        let seated: Vec<usize> = vms.iter().map(|m| admitted_on(&log, m)).collect();
        assert_eq!(
            seated,
            [
                SEATS as usize,
                SEATS as usize,
                (PARTICIPANTS - 2 * SEATS) as usize
            ],
            "the meeting fills each MMR before it extends onto the next"
        );
        assert_eq!(admitted_on(&log, "zc-1-mmr"), 0);
        // Media flows across the cascade for a while before the kill.
        mc_rt::sleep(Duration::from_millis(2_000)).await;

        drop(processes[1].take());
        wait_until(
            "the controller notices mmr-2 is gone",
            Duration::from_secs(5),
            has("MMR mmr-2 is down".into()),
        )
        .await;

        let status = loop {
            if let Some(status) = load.try_wait().unwrap() {
                break status;
            }
            mc_rt::sleep(Duration::from_millis(200)).await;
        };
        let load_log = std::fs::read_to_string(dir.join("load.log")).unwrap_or_default();
        assert!(status.success(), "connector load failed:\n{load_log}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap())
                .unwrap_or_else(|e| panic!("load report is not JSON ({e}):\n{load_log}"));

        let moved = [admitted_on(&log, "mmr-3"), admitted_on(&log, "zc-1-mmr")];
        let joins = &report["joins"];
        assert_eq!(
            (
                joins["admitted"].as_u64(),
                joins["rejected"].as_u64(),
                joins["failed"].as_u64()
            ),
            (Some(PARTICIPANTS as u64), Some(0), Some(0)),
            "{joins}\n{load_log}"
        );
        let media = &report["media"];
        // Every listener heard every speaker (wherever each sat), nothing crossed meetings.
        assert_eq!(
            media["streams"].as_array().unwrap().len() as u32,
            PARTICIPANTS * SPEAKERS - SPEAKERS,
            "a stream from each speaker to each other participant"
        );
        assert_eq!(media["silent_streams"], 0, "{media:#}");
        assert_eq!(media["foreign_packets"], 0);
        assert_eq!(media["malformed"], 0);
        // Only the killed MMR's participants moved, once each, none ended early.
        assert_eq!(report["ended_early"], 0);
        assert_eq!(report["rejoins"], SEATS, "moved: {moved:?}");
        assert_eq!(
            moved.iter().sum::<usize>(),
            (PARTICIPANTS - 2 * SEATS + SEATS) as usize,
            "the third MMR and the spare took exactly the moved participants"
        );
        let gaps = &media["longest_gap_ms"];
        eprintln!(
            "500 participants over 3 MMR processes, mmr-2 killed: each stream's longest silence p50 {} / p99 {} / max {} ms; moved participants landed {moved:?} on mmr-3 / zc-1-mmr",
            gaps["p50"], gaps["p99"], gaps["max"]
        );
        let worst = gaps["max"].as_u64().unwrap();
        assert!(
            worst <= RECOVERY_BOUND_MS,
            "a stream stayed silent {worst} ms (bound {RECOVERY_BOUND_MS} ms): {gaps}"
        );
        drop(processes);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
