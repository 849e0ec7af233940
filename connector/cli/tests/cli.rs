//! The real `connector` binary: how its commands fail, and with which exit code.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

use std::path::PathBuf;
use std::process::{Command, Output};

fn connector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_connector"))
        .args(args)
        .env_remove("CONNECTOR_API_KEY")
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the system temp dir, unique to this test process and `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("connector-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn load_refuses_a_bad_spec_or_missing_key_with_exit_code_2() {
    let o = connector(&["load", "--api-key", "0123456789abcdef", "--meetings", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("meetings: must be at least 1"),
        "{}",
        stderr(&o)
    );

    let o = connector(&["load", "--arrivals-per-s", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("arrivals_per_s"), "{}", stderr(&o));

    let o = connector(&["load", "--ca", "/nonexistent/ca.pem"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no API key"), "{}", stderr(&o));
}

#[test]
fn load_that_cannot_reach_the_cloud_fails_with_exit_code_1() {
    let dir = scratch("load-unreachable");
    let certs = dir.join("certs");
    let o = connector(&["certs", "init", certs.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let ca = certs.join("ca.pem");
    let o = connector(&[
        "load",
        "--api-key",
        "0123456789abcdef",
        "--ca",
        ca.to_str().unwrap(),
        "--cloud",
        "127.0.0.1",
        "--cloud-port",
        &port,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the load did not run: creating meeting 1 of 2"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "no report when the load did not run");
    let _ = std::fs::remove_dir_all(&dir);
}
