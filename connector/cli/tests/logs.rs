//! The logs an operator ships: real `connector cloud`, `controller` and `client` processes, each
//! with its stderr in a file, as a service manager or a log shipper would have it.
// Real processes: simulations live in sim/.
#![cfg(not(madsim))]

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const API_KEY: &str = "logs-test-api-key-0001";

/// A fresh directory, removed at the end and kept (and named) when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("connector-logs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the test failed; its files are in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The binary, with colour and log settings from the test's own environment removed.
fn connector() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_connector"));
    c.env_remove("NO_COLOR")
        .env_remove("MC_LOG_FORMAT")
        .env_remove("CONNECTOR_API_KEY")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    c
}

/// A long-running role, its stdout and stderr each in a file; killed when dropped.
struct Role {
    child: Child,
    stderr: PathBuf,
}

impl Role {
    fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Role {
        let stderr = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdout(std::fs::File::create(dir.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Role { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_for(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exited ({status}) before {needle:?}:\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no {needle:?} within 15 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cloud and a controller VM on loopback, each started by `configure` (its flags, environment
/// and configuration file), and a participant's configuration file.
struct Deployment {
    dir: TempDir,
    cloud: Role,
    controller: Role,
    client_toml: PathBuf,
}

/// How one role is started: extra arguments, environment and configuration-file lines.
#[derive(Default, Clone)]
struct Start {
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
    config: &'static str,
}

impl Deployment {
    fn start(name: &str, cloud: Start, controller: Start) -> Deployment {
        let dir = TempDir::new(name);
        let certs = dir.0.join("certs");
        let o = connector()
            .args(["certs", "init"])
            .arg(&certs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

        // Picked while all are held, so they differ; free again when the cloud binds them.
        let held: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let [https, status, notify] = [0, 1, 2].map(|i| held[i].local_addr().unwrap().port());
        drop(held);
        let cloud_toml = dir.0.join("cloud.toml");
        std::fs::write(
            &cloud_toml,
            format!(
                "https_port = {https}\nstatus_sync_port = {status}\nnotification_port = {notify}\n\
                 api_key = \"{API_KEY}\"\n{}\n",
                cloud.config
            ),
        )
        .unwrap();
        // The controller on 127.0.0.2 and its ports chosen by the system: participants learn
        // them from the cloud. Participants connect from 127.0.0.1.
        let controller_toml = dir.0.join("controller.toml");
        std::fs::write(
            &controller_toml,
            format!(
                "listen = \"127.0.0.2\"\nsignal_port = 0\ntls_port = 0\nmedia_udp_port = 0\n\
                 media_tcp_port = 0\ncloud_status_sync_port = {status}\n\
                 cloud_notification_port = {notify}\ncloud_https_port = {https}\n{}\n",
                controller.config
            ),
        )
        .unwrap();
        let client_toml = dir.0.join("client.toml");
        std::fs::write(
            &client_toml,
            format!("cloud_https_port = {https}\napi_key = \"{API_KEY}\"\n"),
        )
        .unwrap();

        let role = |role: &str, file: &Path, start: &Start| {
            let mut c = connector();
            c.arg(role)
                .arg("--config")
                .arg(file)
                .arg("--certs")
                .arg(&certs)
                .args(&start.args)
                .envs(start.env.iter().copied());
            Role::spawn(c, &dir.0, role)
        };
        let cloud = role("cloud", &cloud_toml, &cloud);
        let mut controller = role("controller", &controller_toml, &controller);
        controller.wait_for("registered");
        Deployment {
            dir,
            cloud,
            controller,
            client_toml,
        }
    }

    /// Creates a meeting and runs one participant in it for a second, its stderr in a file;
    /// returns that stderr.
    fn participant(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
        let ca = self.dir.0.join("certs").join("ca.pem");
        let o = connector()
            .args(["meeting", "create", "--config"])
            .arg(&self.client_toml)
            .arg("--ca")
            .arg(&ca)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let meeting = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let stderr = self.dir.0.join(format!("{name}.stderr"));
        let o: Output = connector()
            .args(["client", "--config"])
            .arg(&self.client_toml)
            .arg("--ca")
            .arg(&ca)
            .args([
                "--meeting",
                &meeting,
                "--name",
                name,
                "--duration-ms",
                "1000",
            ])
            .args(args)
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .output()
            .unwrap();
        let log = std::fs::read(&stderr).unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&log)
        );
        log
    }
}

/// Every line of a log as a JSON object; fails on a line that is not one.
fn json_lines(who: &str, log: &str) -> Vec<serde_json::Map<String, Value>> {
    assert!(!log.is_empty(), "{who} logged nothing");
    log.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => {
                for key in ["timestamp", "level", "message"] {
                    assert!(o[key].is_string(), "{who}: no {key} in {line}");
                }
                o
            }
            _ => panic!("{who} wrote a line that is not a JSON object: {line:?}\n{log}"),
        })
        .collect()
}

/// The one line of kind `event`, whose `ids` are fields and not in its message.
fn event_with_ids<'a>(
    who: &str,
    lines: &'a [serde_json::Map<String, Value>],
    event: &str,
    ids: &[&str],
) -> &'a serde_json::Map<String, Value> {
    let line = lines
        .iter()
        .find(|l| l.get("event").and_then(Value::as_str) == Some(event))
        .unwrap_or_else(|| panic!("{who} logged no {event} event: {lines:#?}"));
    let message = line["message"].as_str().unwrap();
    for id in ids {
        let value = line
            .get(*id)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{who}'s {event} line has no {id}: {line:?}"));
        assert!(
            !message.contains(value),
            "{who}'s {event} message repeats {id} {value}: {line:?}"
        );
    }
    line
}

#[test]
fn json_logs_carry_ids_as_fields_and_redact_participant_addresses() {
    // The three ways to ask for JSON: the flag (cloud), the configuration file (controller, also
    // redacting), the environment (participant).
    let d = Deployment::start(
        "json",
        Start {
            args: vec!["--log-format", "json"],
            ..Start::default()
        },
        Start {
            // Debug shows where each signalling session comes from.
            env: vec![("RUST_LOG", "info,mc_node=debug")],
            config: "log_format = \"json\"\nlog_redact_addresses = true",
            ..Start::default()
        },
    );
    let client = d.participant("ada", &[], &[("MC_LOG_FORMAT", "json")]);
    let client = json_lines("the participant", &String::from_utf8(client).unwrap());
    let joined = event_with_ids(
        "the participant",
        &client,
        "joined",
        &["meeting", "participant"],
    );
    assert_eq!(joined["node"], "ada", "{joined:?}");

    let controller_log = d.controller.log();
    let controller = json_lines("the controller", &controller_log);
    let admitted = event_with_ids(
        "the controller",
        &controller,
        "admitted",
        &["meeting", "participant", "mmr"],
    );
    assert_eq!(
        (
            &admitted["meeting"],
            &admitted["participant"],
            &admitted["node"]
        ),
        (
            &joined["meeting"],
            &joined["participant"],
            &Value::from("controller-1")
        ),
        "the controller and the participant name one admission alike"
    );
    let cloud = json_lines("the cloud", &d.cloud.log());
    event_with_ids(
        "the cloud",
        &cloud,
        "ticket_issued",
        &["meeting", "participant"],
    );

    // Redaction: the participant connected from 127.0.0.1; the controller's lines about it say
    // where from only as a token.
    let opened: Vec<_> = controller
        .iter()
        .filter(|l| l["message"] == "signalling session opened")
        .collect();
    assert!(
        !opened.is_empty(),
        "no signalling session logged:\n{controller_log}"
    );
    for line in &opened {
        let addr = line["client_addr"].as_str().unwrap_or_default();
        assert!(addr.starts_with("redacted-"), "{line:?}");
    }
    for line in controller
        .iter()
        .filter(|l| l.contains_key("client_addr") || l.contains_key("participant"))
    {
        let text = Value::Object((*line).clone()).to_string();
        assert!(
            !text.contains("127.0.0."),
            "a participant's address: {text}"
        );
    }
}

#[test]
fn text_logs_in_files_have_no_colour_codes_and_events_read_as_before() {
    let d = Deployment::start("text", Start::default(), Start::default());
    let client = d.participant("grace", &[], &[]);
    let controller = d.controller.log();
    for (who, log) in [
        ("the participant", String::from_utf8(client).unwrap()),
        ("the controller", controller.clone()),
        ("the cloud", d.cloud.log()),
    ] {
        assert!(log.contains(" INFO "), "{who} logged at info:\n{log}");
        assert!(
            !log.contains('\x1b'),
            "{who} wrote colour codes into a file:\n{log:?}"
        );
        assert!(
            !log.contains("summary=") && !log.contains("event="),
            "{who}: a text line says an event's ids once:\n{log}"
        );
    }
    let admitted = controller
        .lines()
        .find(|l| l.contains(" INFO admitted p"))
        .unwrap_or_else(|| panic!("no admission:\n{controller}"));
    assert!(
        admitted.ends_with("on controller-1-mmr node=controller-1"),
        "{admitted}"
    );
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_field() {
    let dir = TempDir::new("bad-format");
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "log_format = \"yaml\"\n").unwrap();
    for role in ["cloud", "controller", "mmr", "client"] {
        let o = connector()
            .args([role, "--config"])
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{role}: {err}");
        assert!(
            err.contains("log_format \"yaml\" is unknown: use \"text\" or \"json\""),
            "{role}: {err}"
        );
    }
    let o = connector()
        .args(["--log-format", "yaml", "cloud"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("'--log-format <FORMAT>'"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_json_log_ends_with_its_error_as_a_json_line() {
    let o = connector()
        .args(["client", "--meeting", "1", "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let lines = json_lines("the participant", &String::from_utf8(o.stderr).unwrap());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("no API key: pass --api-key"),
        "{lines:?}"
    );
}
