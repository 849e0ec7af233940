//! An HA pair of `connector controller` processes under load: meetings on both, then the
//! controller-1 process is killed (SIGKILL). Its participants rejoin through controller-2, which
//! takes the meetings over once controller-1's lease has run out, and they hear the others of
//! their meeting again; the participants of controller-2's meetings never notice.
// Real processes: simulations live in sim/.
#![cfg(not(madsim))]

use mc_node::client::{self, ClientError, ClientProbe, ClientReport, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig};
use mc_node::{cloud, identities, EventLog};
use mc_wire::MeetingId;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "ha-process-test-api-key-0001";
const MEETINGS: usize = 4;
const PER_MEETING: usize = 3;
const PACKETS_PER_S: u32 = 20;
/// How long, at most, the participants of the killed controller may take to hear media again.
const RECOVERY_BOUND: Duration = Duration::from_secs(20);
/// Packets a participant must receive after its rejoin to count as resumed.
const RESUMED_AFTER: u64 = 10;
/// A packet counts as sent after the kill when its index is this far past the sender's count
/// at the kill (a margin for packets sent between reading the counter and the kill itself).
const AFTER_KILL_MARGIN: u64 = 20;

/// A controller process, killed when dropped (also when the test panics).
struct Process {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_connector"))
            .args(["controller", "--config"])
            .arg(dir.join(format!("{name}.toml")))
            .arg("--certs")
            .arg(dir.join("certs"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Process {
            name,
            child: Some(child),
            log,
        }
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("--- {} (last {lines} lines) ---\n{tail}", self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The temporary directory: removed at the end, kept (and named) when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the test failed; its files are in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// TCP ports free right now, distinct (all are held while picking).
fn free_tcp_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Participant {
    name: String,
    meeting: MeetingId,
    probe: Arc<ClientProbe>,
    stop: Option<mc_rt::sync::oneshot::Sender<()>>,
    task: Option<mc_rt::JoinHandle<Result<ClientReport, ClientError>>>,
}

/// A participant whose run already ended (none should before the test stops them), with how.
async fn ended_early(
    participants: &mut [Participant],
) -> Option<(String, Result<ClientReport, ClientError>)> {
    let p = participants
        .iter_mut()
        .find(|p| p.task.as_ref().is_some_and(|t| t.is_finished()))?;
    let r = p.task.take().unwrap().await.unwrap();
    Some((p.name.clone(), r))
}

fn lines(log: &Arc<Mutex<Vec<String>>>, needle: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

/// The controller a participant joined through last, from its "joined" events.
fn joined_via(log: &Arc<Mutex<Vec<String>>>, name: &str) -> (usize, Option<String>) {
    let joined = lines(log, &format!(" {name} joined "));
    let via = joined.last().and_then(|l| {
        l.split(" via ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string)
    });
    (joined.len(), via)
}

fn tail(log: &Arc<Mutex<Vec<String>>>, n: usize) -> String {
    let log = log.lock().unwrap();
    log[log.len().saturating_sub(n)..].join("\n")
}

#[test]
fn killing_one_controller_process_of_an_ha_pair_moves_its_meetings_to_the_other() {
    mc_rt::block_on(async {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "mc-ha-proc-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        )));
        let dir_path = dir.0.clone();
        let local = vec!["127.0.0.1".to_string()];
        let hosts = [
            ("cloud", local.clone()),
            ("controller-1", local.clone()),
            ("controller-2", local.clone()),
        ];
        let ids =
            identities::generate("test", &hosts, 7, mc_rt::unix_now_ms() as i64 / 1000, 1).unwrap();
        ids.write(&dir_path.join("certs")).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));

        let cloud_cfg = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            // The product's lease, heartbeats and peer timing: this test measures failover as
            // deployed.
            ..Default::default()
        };
        let cloud = cloud::start(
            cloud_cfg,
            ids.identity("cloud").unwrap(),
            EventLog::collecting("cloud", log.clone()),
        )
        .await
        .unwrap();

        // Each controller must know the other's ports before either starts.
        let ports = free_tcp_ports(4);
        let (signal, tls) = ([ports[0], ports[1]], [ports[2], ports[3]]);
        for (i, id) in ["controller-1", "controller-2"].into_iter().enumerate() {
            let peer = 1 - i;
            let cfg = ControllerConfig {
                media_cascade_port: 0,
                id: id.into(),
                listen: "127.0.0.1".parse().unwrap(),
                signal_port: signal[i],
                tls_port: tls[i],
                media_udp_port: 0,
                media_tcp_port: 0,
                cloud_host: "127.0.0.1".into(),
                cloud_status_sync_port: cloud.status_sync_addr.port(),
                cloud_notification_port: cloud.notification_addr.port(),
                cloud_https_port: cloud.https_addr.port(),
                mmr_capacity: 20,
                connect_timeout_ms: 1_000,
                peer_host: Some("127.0.0.1".into()),
                peer_port: signal[peer],
                peer_fallback_port: tls[peer],
                ..Default::default()
            };
            cfg.validate().unwrap();
            std::fs::write(
                dir_path.join(format!("{id}.toml")),
                toml::to_string(&cfg).unwrap(),
            )
            .unwrap();
        }
        let mut c1 = Process::spawn("controller-1", &dir_path);
        let c2 = Process::spawn("controller-2", &dir_path);
        let diagnostics = |c1: &Process, c2: &Process| {
            format!(
                "{}\n{}\n--- events (last 80) ---\n{}",
                c1.log_tail(60),
                c2.log_tail(60),
                tail(&log, 80)
            )
        };

        // Both registered with the cloud, and each has linked to the other.
        let start = mc_rt::Instant::now();
        loop {
            let registered = ["controller-1", "controller-2"]
                .iter()
                .all(|c| !lines(&log, &format!("controller {c} registered")).is_empty());
            let linked = [&c1, &c2]
                .iter()
                .all(|p| p.log_text().contains("peer link to 127.0.0.1 up"));
            if registered && linked {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the pair did not come up (registered {registered}, linked {linked})\n{}",
                diagnostics(&c1, &c2)
            );
            mc_rt::sleep(Duration::from_millis(100)).await;
        }

        let ca = ids.ca().unwrap();
        let api = ManagementApi {
            host: "127.0.0.1".into(),
            port: cloud.https_addr.port(),
            api_key: API_KEY.into(),
            ca: ca.clone(),
            timeout_ms: 2_000,
        };
        // The cloud's view of the participants on each live controller.
        let live_load = || async {
            let status = api.call("GET", "/v1/status", None).await.unwrap();
            status["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["live"] == true)
                .map(|c| c["load"]["participants"].as_u64().unwrap_or(0))
                .sum::<u64>()
        };

        // One meeting at a time, so the cloud's least-loaded choice spreads them over both.
        let mut participants: Vec<Participant> = Vec::new();
        for m in 0..MEETINGS {
            let meeting = api.create_meeting(&format!("ha-{m}")).await.unwrap();
            for p in 0..PER_MEETING {
                let name = format!("m{m}-p{p}");
                let config = ClientConfig {
                    display_name: name.clone(),
                    cloud_https_port: cloud.https_addr.port(),
                    api_key: API_KEY.into(),
                    meeting: meeting.0,
                    media_packets_per_s: PACKETS_PER_S,
                    duration_ms: 0,
                    connect_timeout_ms: 1_000,
                    ..Default::default()
                };
                let probe = Arc::new(ClientProbe::default());
                let (stop, stopped) = mc_rt::sync::oneshot::channel::<()>();
                let (ca, ev, pr) = (
                    ca.clone(),
                    EventLog::collecting(&name, log.clone()),
                    probe.clone(),
                );
                let task = mc_rt::spawn(async move {
                    let stop = async {
                        let _ = stopped.await;
                    };
                    client::run_observed(config, ca, ev, stop, &pr).await
                });
                participants.push(Participant {
                    name,
                    meeting,
                    probe,
                    stop: Some(stop),
                    task: Some(task),
                });
            }
            let start = mc_rt::Instant::now();
            loop {
                let joined = participants
                    .iter()
                    .filter(|p| p.probe.joined.load(Ordering::Relaxed))
                    .count();
                if joined == participants.len() && live_load().await == joined as u64 {
                    break;
                }
                if let Some((name, r)) = ended_early(&mut participants).await {
                    panic!(
                        "{name} ended before the failover: {r:?}\n{}",
                        diagnostics(&c1, &c2)
                    );
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "meeting {meeting}: {joined} of {} joined, or the cloud's load lags\n{}",
                    participants.len(),
                    diagnostics(&c1, &c2)
                );
                mc_rt::sleep(Duration::from_millis(100)).await;
            }
        }

        // Everyone hears media; then note who is where.
        let start = mc_rt::Instant::now();
        let before: Vec<u64> = participants
            .iter()
            .map(|p| p.probe.received.load(Ordering::Relaxed))
            .collect();
        while participants
            .iter()
            .zip(&before)
            .any(|(p, b)| p.probe.received.load(Ordering::Relaxed) < b + RESUMED_AFTER)
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "not every participant receives media before the kill\n{}",
                diagnostics(&c1, &c2)
            );
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
        let mut on_c1 = Vec::new();
        let mut joins_before = Vec::new();
        for (i, p) in participants.iter().enumerate() {
            let (n, via) = joined_via(&log, &p.name);
            let via = via.unwrap_or_else(|| panic!("{} has no joined event", p.name));
            // A meeting lives on one controller: its participants join there (or are redirected).
            let first_of_meeting = participants.iter().position(|q| q.meeting == p.meeting);
            if first_of_meeting != Some(i) {
                let first = &participants[first_of_meeting.unwrap()];
                assert_eq!(
                    Some(&via),
                    joined_via(&log, &first.name).1.as_ref(),
                    "{} and {} are in one meeting on different controllers",
                    p.name,
                    first.name
                );
            }
            on_c1.push(via == "controller-1");
            joins_before.push(n);
        }
        let moved_meetings: Vec<MeetingId> = {
            let mut m: Vec<MeetingId> = participants
                .iter()
                .zip(&on_c1)
                .filter(|(_, c1)| **c1)
                .map(|(p, _)| p.meeting)
                .collect();
            m.dedup();
            m
        };
        assert!(
            !moved_meetings.is_empty() && moved_meetings.len() < MEETINGS,
            "the meetings are not spread over both controllers ({} on controller-1)\n{}",
            moved_meetings.len(),
            diagnostics(&c1, &c2)
        );

        // The kill. Each sender's count now bounds which of its packets left before it.
        let sent_at_kill: Vec<u64> = participants
            .iter()
            .map(|p| p.probe.sent.load(Ordering::Relaxed))
            .collect();
        c1.kill();
        let killed = mc_rt::Instant::now();
        let received_at_kill: Vec<u64> = participants
            .iter()
            .map(|p| p.probe.received.load(Ordering::Relaxed))
            .collect();

        // Per participant: when it was seen joined again (and its count then), and when it had
        // received enough since.
        let mut rejoined: Vec<Option<u64>> = vec![None; participants.len()];
        let mut resumed: Vec<Option<Duration>> = vec![None; participants.len()];
        loop {
            for (i, p) in participants.iter().enumerate() {
                if resumed[i].is_some() {
                    continue;
                }
                let received = p.probe.received.load(Ordering::Relaxed);
                if on_c1[i] {
                    if rejoined[i].is_none() {
                        let (n, via) = joined_via(&log, &p.name);
                        if n > joins_before[i] {
                            assert_eq!(
                                via.as_deref(),
                                Some("controller-2"),
                                "{} rejoined through the dead controller?\n{}",
                                p.name,
                                diagnostics(&c1, &c2)
                            );
                            rejoined[i] = Some(received);
                        }
                    }
                    if rejoined[i].is_some_and(|r| received >= r + RESUMED_AFTER) {
                        resumed[i] = Some(killed.elapsed());
                    }
                } else if received >= received_at_kill[i] + RESUMED_AFTER {
                    resumed[i] = Some(killed.elapsed());
                }
            }
            if resumed.iter().all(Option::is_some) {
                break;
            }
            if let Some((name, r)) = ended_early(&mut participants).await {
                panic!(
                    "{name} ended during the failover: {r:?}\n{}",
                    diagnostics(&c1, &c2)
                );
            }
            if killed.elapsed() > RECOVERY_BOUND {
                let waiting: Vec<String> = participants
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| resumed[*i].is_none())
                    .map(|(i, p)| {
                        format!(
                            "{} (on controller-1: {}, rejoined: {:?}, received {} at the kill, {} now)",
                            p.name,
                            on_c1[i],
                            rejoined[i],
                            received_at_kill[i],
                            p.probe.received.load(Ordering::Relaxed)
                        )
                    })
                    .collect();
                panic!(
                    "not resumed {} s after the kill: {waiting:#?}\n{}",
                    RECOVERY_BOUND.as_secs(),
                    diagnostics(&c1, &c2)
                );
            }
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
        let recovery: Vec<(String, u128)> = participants
            .iter()
            .enumerate()
            .filter(|(i, _)| on_c1[*i])
            .map(|(i, p)| (p.name.clone(), resumed[i].unwrap().as_millis()))
            .collect();
        let max_ms = recovery.iter().map(|(_, ms)| *ms).max().unwrap();
        eprintln!(
            "{} meetings with {} participants moved from the killed controller-1; media resumed after (ms): {recovery:?}; max {max_ms} ms",
            moved_meetings.len(),
            recovery.len()
        );

        // Enough media after the failover that every sender's post-kill packets reach the others.
        mc_rt::sleep(Duration::from_secs(3)).await;
        let mut reports = Vec::new();
        for p in participants.iter_mut() {
            let _ = p.stop.take().unwrap().send(());
        }
        for p in participants.iter_mut() {
            let task = p.task.take().unwrap();
            let r = mc_rt::timeout(Duration::from_secs(10), task)
                .await
                .unwrap_or_else(|_| panic!("{} did not stop", p.name))
                .unwrap()
                .unwrap_or_else(|e| panic!("{} failed: {e}", p.name));
            reports.push(r);
        }
        for (i, r) in reports.iter().enumerate() {
            let p = &participants[i];
            assert_eq!(r.controller, "controller-2", "{}: {r:?}", p.name);
            assert_eq!(r.ended_by_zc, None, "{}: {r:?}", p.name);
            if on_c1[i] {
                assert!(r.rejoins >= 1, "{} rejoined: {r:?}", p.name);
            } else {
                assert_eq!(r.rejoins, 0, "{} was left alone: {r:?}", p.name);
            }
            // Sequence numbers run on across rejoins: a source's received + lost span its
            // packets from the first heard, so their sum past the sender's count at the kill
            // means a packet the sender sent after the kill arrived — necessarily through
            // controller-2, after both rejoined.
            for (j, q) in participants.iter().enumerate() {
                if j == i || q.meeting != p.meeting {
                    continue;
                }
                let s = r.by_source.get(&reports[j].ssrc);
                assert!(
                    s.is_some_and(|s| s.received + s.lost > sent_at_kill[j] + AFTER_KILL_MARGIN),
                    "{} heard {} after the kill ({} sent before it): {s:?}",
                    p.name,
                    q.name,
                    sent_at_kill[j]
                );
            }
        }
        for m in &moved_meetings {
            assert!(
                !lines(
                    &log,
                    &format!("meeting {m} taken over by controller-2 from controller-1")
                )
                .is_empty(),
                "the cloud handed {m} to controller-2\n{}",
                tail(&log, 80)
            );
        }
        assert!(
            c2.log_text().contains("peer controller-1 is down"),
            "controller-2 reported its peer down\n{}",
            c2.log_tail(60)
        );
        let status = api.call("GET", "/v1/status", None).await.unwrap();
        let live: Vec<&str> = status["controllers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["live"] == true)
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(live, ["controller-2"], "{status}");
        drop(c2);
    });
}
