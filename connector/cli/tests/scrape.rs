//! Scraping every process of a running `connector up --pair` deployment, as Prometheus would:
//! HTTPS with the deployment CA and the `prometheus` client certificate `up` writes. The figures
//! must say what is happening (participants equal those who joined, packets grow), and every
//! scrape must pass `promtool check metrics`. It is also the README's first command with a second
//! controller (the one test on the pair's fixed loopback ports, so no two tests contend for them).
#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The processes of `up --pair --mmr-vms 1 --ports unprivileged`, and where each serves metrics.
const TARGETS: [(&str, &str); 4] = [
    ("cloud", "https://127.0.0.1:10443/metrics"),
    ("controller-1", "https://127.0.0.2:8802/metrics"),
    ("controller-2", "https://127.0.0.3:8802/metrics"),
    ("mmr-1", "https://127.0.0.11:10443/metrics"),
];

/// `GET url` with curl; returns the status and the body.
fn get(url: &str, certs: &Path, client_cert: bool) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", "--cacert"])
        .arg(certs.join("ca.pem"));
    if client_cert {
        cmd.arg("--cert")
            .arg(certs.join("prometheus.pem"))
            .arg("--key")
            .arg(certs.join("prometheus.key"));
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("curl runs (Debian's curl package)");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, code) = text.rsplit_once('\n').expect("curl printed the status");
    let code = code
        .parse()
        .unwrap_or_else(|_| panic!("{url}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (code, body.to_string())
}

/// Samples by series (`name{labels}` exactly as written) to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample is `series value`");
            (series.to_string(), value.parse().expect("a numeric value"))
        })
        .collect()
}

/// The sum of every sample of `name` whose labels include each of `labels`.
fn sum(scrape: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    scrape
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

/// `promtool check metrics` on one scrape: the format and Prometheus' naming conventions.
fn promtool_check(name: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed on {name}'s scrape:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scrape_all(certs: &Path) -> BTreeMap<&'static str, (String, BTreeMap<String, f64>)> {
    TARGETS
        .iter()
        .map(|(name, url)| {
            let (code, body) = get(url, certs, true);
            assert_eq!(code, 200, "{name} at {url}: {body}");
            let parsed = samples(&body);
            (*name, (body, parsed))
        })
        .collect()
}

#[test]
fn every_process_of_a_pair_deployment_serves_metrics_that_match_the_meeting() {
    let dir = std::env::temp_dir().join(format!("connector-scrape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state: PathBuf = dir.join("state");
    let certs = state.join("certs");
    let mut up = Command::new(env!("CARGO_BIN_EXE_connector"))
        .args([
            "up",
            "--pair",
            "--demo",
            "3",
            "--demo-secs",
            "8",
            "--exit-after-demo",
        ])
        .args(["--ports", "unprivileged", "--state-dir"])
        .arg(&state)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let (tx, lines) = mpsc::channel();
    let stdout = up.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    // The demo prints a line a second once media flows: scrape after the first and the third.
    let mut wait_for_tick = |tick: u32| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no demo tick {tick} ({e}); so far:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if line.trim_start().starts_with(&format!("t={tick:>2}s")) {
            break line;
        }
    };
    let tick = wait_for_tick(2);
    assert!(tick.contains("participants 3"), "{tick}");
    let first = scrape_all(&certs);
    wait_for_tick(4);
    let second = scrape_all(&certs);

    for (name, (text, _)) in first.iter().chain(&second) {
        promtool_check(name, text);
    }
    let (cloud, c1, c2, mmr1) = (
        &second["cloud"].1,
        &second["controller-1"].1,
        &second["controller-2"].1,
        &second["mmr-1"].1,
    );
    // The cloud issued the three tickets and sees both controllers live.
    assert!(
        sum(cloud, "mc_cloud_tickets_issued_total", &[]) >= 3.0,
        "{:?}",
        cloud
    );
    assert!(
        sum(
            cloud,
            "mc_cloud_api_requests_total",
            &[
                r#"route="/v1/meetings/{id}/tickets""#,
                r#"status_class="2xx""#
            ]
        ) >= 3.0
    );
    assert_eq!(
        sum(cloud, "mc_cloud_controllers", &[r#"state="live""#]),
        2.0
    );
    // The controllers admitted exactly who joined, hold leases, and are linked to the cloud.
    let zc = |n: &str, l: &[&str]| sum(c1, n, l) + sum(c2, n, l);
    assert_eq!(
        zc("mc_zc_participants", &[]),
        3.0,
        "controller-1: {c1:?}\ncontroller-2: {c2:?}"
    );
    assert_eq!(zc("mc_zc_meetings", &[]), 1.0);
    assert!(zc("mc_zc_joins_total", &[r#"outcome="admitted""#]) >= 3.0);
    assert!(zc("mc_zc_join_duration_seconds_count", &[]) >= 3.0);
    // Measured, not rounded away: a loopback join takes well under a millisecond, but not zero.
    let took_s = zc("mc_zc_join_duration_seconds_sum", &[]);
    assert!(took_s > 0.0 && took_s < 5.0, "joins took {took_s} s in all");
    assert_eq!(zc("mc_ha_meetings_owned", &[]), 1.0);
    for c in [c1, c2] {
        assert_eq!(sum(c, "mc_ready", &[]), 1.0);
        assert_eq!(sum(c, "mc_ha_fenced", &[]), 0.0);
        assert_eq!(sum(c, "mc_ha_peer_up", &[]), 1.0);
        assert!(sum(c, "mc_ha_lease_remaining_seconds", &[]) > 0.0);
        assert_eq!(
            sum(
                c,
                "mc_link_path",
                &[r#"link="status_sync""#, r#"path="dedicated""#]
            ),
            1.0
        );
        assert_eq!(
            sum(c, "mc_link_path", &[r#"link="peer""#, r#"path="down""#]),
            0.0
        );
    }
    // Wherever the meeting was placed, the MMRs hold the three participants, over UDP, and the
    // packets they forward grow between scrapes.
    let mmrs = |scrape: &BTreeMap<&str, (String, BTreeMap<String, f64>)>, n: &str, l: &[&str]| {
        ["controller-1", "controller-2", "mmr-1"]
            .iter()
            .map(|p| sum(&scrape[p].1, n, l))
            .sum::<f64>()
    };
    assert_eq!(mmrs(&second, "mc_mmr_participants", &[]), 3.0);
    assert_eq!(
        mmrs(
            &second,
            "mc_mmr_participants_by_transport",
            &[r#"transport="udp""#]
        ),
        3.0
    );
    let out = |s| mmrs(s, "mc_mmr_rtp_packets_total", &[r#"direction="out""#]);
    assert!(
        out(&second) > out(&first) && out(&first) > 0.0,
        "{} then {}",
        out(&first),
        out(&second)
    );
    let bytes = |s| mmrs(s, "mc_mmr_rtp_bytes_total", &[r#"direction="in""#]);
    assert!(bytes(&second) > bytes(&first));
    assert_eq!(
        sum(
            mmr1,
            "mc_link_path",
            &[r#"link="mmr_link""#, r#"path="dedicated""#]
        ),
        1.0
    );
    assert_eq!(sum(mmr1, "mc_ready", &[]), 1.0);
    assert_eq!(sum(mmr1, "mc_mmr_capacity_participants", &[]), 200.0);

    // Without the scraper's certificate, nothing is given away.
    for (name, url) in TARGETS {
        let (code, body) = get(url, &certs, false);
        assert_eq!(code, 403, "{name} without a client certificate: {body}");
    }
    // The shipped monitoring config uses only metrics a deployment serves.
    let names = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/metric-names.txt");
    let listed =
        std::fs::read_to_string(&names).expect("deploy/metric-names.txt is in the repository");
    let served: String = first
        .values()
        .chain(second.values())
        .map(|(t, _)| t.as_str())
        .collect();
    for name in listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(
            served.contains(&format!("# TYPE {name} ")),
            "deploy/metric-names.txt lists {name}, which no process serves"
        );
    }

    // The README's first command, with a second controller: the pair came up on its fixed
    // loopback addresses, every participant heard the other two, and the command exits.
    let status = up.wait().unwrap();
    for line in lines.iter() {
        seen.push(line);
    }
    let out = seen.join("\n");
    assert!(status.success(), "{out}");
    assert!(
        out.contains("controller-2  ZC signalling     127.0.0.3:8802"),
        "{out}"
    );
    let heard = seen
        .iter()
        .filter(|l| l.contains("received") && l.contains("from 2 others"))
        .count();
    assert_eq!(heard, 3, "every participant hears the other two: {out}");
    for (f, line) in [
        ("controller-1.toml", "peer_host = \"127.0.0.3\""),
        ("controller-2.toml", "peer_host = \"127.0.0.2\""),
        ("mmr-1.toml", "peer_controller_host = \"127.0.0.3\""),
    ] {
        let text = std::fs::read_to_string(state.join(f)).unwrap();
        assert!(
            text.contains(line),
            "{f} names the other controller: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
