//! `connector meeting list` against a cloud holding more meetings than one answer carries: the
//! API pages them, and the CLI prints them all.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

use mc_node::client::ManagementApi;
use mc_node::config::CloudConfig;
use mc_node::{cloud, EventLog};
use std::process::Command;

const API_KEY: &str = "meeting-list-key-0123456789";

#[test]
fn meeting_list_prints_every_meeting_of_a_long_list() {
    let dir = std::env::temp_dir().join(format!("connector-cli-{}-list", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    let init = Command::new(env!("CARGO_BIN_EXE_connector"))
        .args(["certs", "init", certs.to_str().unwrap()])
        .args(["--host", "cloud=127.0.0.1"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    mc_rt::block_on(async {
        let config = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            ..Default::default()
        };
        let identity = mc_rt::certs::load_identity(&certs, "cloud").unwrap();
        let handle = cloud::start(config, identity, EventLog::tracing_only("cloud"))
            .await
            .unwrap();
        let api = ManagementApi {
            host: "127.0.0.1".into(),
            port: handle.https_addr.port(),
            api_key: API_KEY.into(),
            ca: mc_rt::certs::load_ca(&certs.join("ca.pem")).unwrap(),
            timeout_ms: 5_000,
        };
        // Long topics, so the list is far over what one answer of the old API carried (64 KiB).
        for n in 1..=500 {
            api.create_meeting(&format!(
                "{n:03} {}",
                "a weekly planning meeting ".repeat(7)
            ))
            .await
            .unwrap();
        }
        // The runtime's workers serve the cloud while this thread waits for the CLI.
        let out = Command::new(env!("CARGO_BIN_EXE_connector"))
            .args([
                "meeting",
                "list",
                "--ca",
                certs.join("ca.pem").to_str().unwrap(),
            ])
            .args(["--cloud", "127.0.0.1", "--cloud-port"])
            .arg(handle.https_addr.port().to_string())
            .env("CONNECTOR_API_KEY", API_KEY)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            out.stdout.len() > 100 * 1024,
            "{} bytes printed",
            out.stdout.len()
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<u64> = listed["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (1..=500).collect::<Vec<_>>());
    });
    let _ = std::fs::remove_dir_all(&dir);
}
