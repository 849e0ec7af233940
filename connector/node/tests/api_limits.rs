//! The cloud's management API tried as a hostile client would: huge bodies and headers, a key
//! hammering it, many wrong keys, drains of MMRs that do not exist, lists too long for one answer.
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use bytes::Bytes;
use common::{sample, Deployment, API_KEY};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mc_node::client::ManagementApi;
use mc_rt::tls;
use mc_rt::{AsyncReadExt, AsyncWriteExt};
use mc_wire::ports::alpn;
use serde_json::{json, Value};
use std::time::Duration;

const TEN_MB: usize = 10 * 1000 * 1000;

async fn connect(d: &Deployment) -> tls::ClientTlsStream<mc_rt::net::TcpStream> {
    d.dial(d.cloud.https_addr, None, alpn::HTTP1).await
}

/// An answer as a client reads it.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    connection: Option<String>,
    body: Value,
}

/// Requests on one keep-alive connection, with hyper's client (which reads the answer while it
/// still sends the body, as browsers and curl do).
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(d: &Deployment) -> Conn {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(connect(d).await))
            .await
            .unwrap();
        mc_rt::spawn(async move {
            let _ = conn.await;
        });
        Conn { sender }
    }

    async fn send(&mut self, method: &str, path: &str, key: Option<&str>, body: Bytes) -> Answer {
        self.sender.ready().await.expect("the connection is open");
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "127.0.0.1");
        if let Some(key) = key {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let resp = self
            .sender
            .send_request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the connection dropped: {e:?}"));
        let header = |name| {
            resp.headers()
                .get(name)
                .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let (status, retry_after, connection) = (
            resp.status().as_u16(),
            header(hyper::header::RETRY_AFTER),
            header(hyper::header::CONNECTION),
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{status} with a body that is not JSON ({e}): {body:?}"));
        Answer {
            status,
            retry_after,
            connection,
            body,
        }
    }
}

async fn once(d: &Deployment, method: &str, path: &str, key: Option<&str>, body: &str) -> Answer {
    Conn::open(d)
        .await
        .send(method, path, key, Bytes::from(body.to_string()))
        .await
}

/// The API's one error shape, with this code.
fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{a:?}");
    let keys: Vec<&String> = a.body.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["error", "message"], "{a:?}");
    assert_eq!(a.body["error"], code, "{a:?}");
}

/// A raw exchange as the most naive client does it: the whole request is written, and only then
/// is the answer read (until the server closes). Returns the head and the body.
async fn write_all_then_read(d: &Deployment, head: &str, body_bytes: usize) -> (String, String) {
    let mut stream = connect(d).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'['; 64 * 1024];
    let mut left = body_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).await.unwrap_or_else(|e| {
            panic!("the cloud dropped the connection with {left} bytes left to send: {e}")
        });
        left -= n;
    }
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("the answer was cut off ({} bytes read): {e}", answer.len()));
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {answer:?}"));
    (head.to_string(), body.to_string())
}

/// `name{labels}` from the cloud's scrape (taken with the scraper's certificate, the role metrics
/// need), 0 when absent.
async fn metric(d: &Deployment, series: &str) -> u64 {
    let (_, scrape) = d.scrape(d.cloud.https_addr, "prometheus").await;
    sample(&scrape, series) as u64
}

#[test]
fn a_ten_megabyte_body_gets_a_413_json_error_every_time_never_a_dropped_connection() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let big = Bytes::from(vec![b' '; TEN_MB]);
        for _ in 0..5 {
            // Declared up front: refused before a byte of it is read.
            let a = Conn::open(&d)
                .await
                .send("POST", "/v1/meetings", Some(API_KEY), big.clone())
                .await;
            assert_error(&a, 413, "body_too_large");
            assert!(
                a.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("at most 65536 (api_max_body_bytes)"),
                "{a:?}"
            );
            assert_eq!(a.connection.as_deref(), Some("close"), "{a:?}");
        }
        // Chunked, so its size shows only as it is read; and sent whole before the answer is
        // read. The cloud reads up to its limit, answers, and closes without a reset.
        for _ in 0..5 {
            let head = format!(
                "POST /v1/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                TEN_MB
            );
            let (head, body) = write_all_then_read(&d, &head, TEN_MB).await;
            assert!(head.starts_with("HTTP/1.1 413"), "{head}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"], "body_too_large", "{v}");
        }
        for _ in 0..3 {
            let head = format!(
                "POST /v1/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\nContent-Length: {TEN_MB}\r\n\r\n"
            );
            let (head, body) = write_all_then_read(&d, &head, TEN_MB).await;
            assert!(head.starts_with("HTTP/1.1 413"), "{head}");
            assert!(body.contains("\"body_too_large\""), "{body}");
        }
        assert_eq!(
            metric(&d, "mc_cloud_api_refused_total{reason=\"body_too_large\"}").await,
            13
        );
        // Nothing was created, and the cloud serves on.
        let meetings = d.api().call("GET", "/v1/meetings", None).await.unwrap();
        assert_eq!(meetings["meetings"], json!([]));
    });
}

#[test]
fn a_body_just_under_the_configured_limit_is_read_and_one_byte_over_is_refused() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, c| c.api_max_body_bytes = 2048).await;
        let padded = |len: usize| {
            let topic = "t";
            let body = format!("{{\"topic\":\"{topic}\"}}");
            format!("{body}{}", " ".repeat(len - body.len()))
        };
        let a = once(&d, "POST", "/v1/meetings", Some(API_KEY), &padded(2048)).await;
        assert_eq!(a.status, 201, "{a:?}");
        let a = once(&d, "POST", "/v1/meetings", Some(API_KEY), &padded(2049)).await;
        assert_error(&a, 413, "body_too_large");
    });
}

#[test]
fn headers_over_the_limit_get_431_and_headers_under_it_are_served() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let request = |pad: usize| {
            format!(
                "GET /v1/meetings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
                "p".repeat(pad)
            )
        };
        let (head, _) = write_all_then_read(&d, &request(8 * 1024), 0).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (head, _) = write_all_then_read(&d, &request(20 * 1024), 0).await;
        assert!(head.starts_with("HTTP/1.1 431"), "{head}");
        assert_eq!(
            metric(
                &d,
                "mc_cloud_api_refused_total{reason=\"headers_too_large\"}"
            )
            .await,
            1
        );
    });
}

#[test]
fn draining_an_mmr_the_zone_does_not_know_is_404_and_changes_nothing() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        for method in ["POST", "DELETE"] {
            let a = once(&d, method, "/v1/mmrs/mmr-9/drain", Some(API_KEY), "{}").await;
            assert_error(&a, 404, "no_such_mmr");
            assert!(
                a.body["message"].as_str().unwrap().contains("mmr-9"),
                "{a:?}"
            );
        }
        let zone = d.api().call("GET", "/v1/zone", None).await.unwrap();
        assert!(
            !zone["events"].to_string().contains("mmr-9"),
            "an unknown MMR's drain is no event: {zone:#}"
        );
        // The controller's own MMR is known from its registration.
        let a = once(
            &d,
            "POST",
            "/v1/mmrs/controller-1-mmr/drain",
            Some(API_KEY),
            r#"{"deadline_s": 5}"#,
        )
        .await;
        assert_eq!(a.status, 202, "{a:?}");
        d.wait_for("MMR controller-1-mmr").await;
    });
}

#[test]
fn a_key_over_its_rate_gets_429_with_retry_after_while_other_keys_and_tickets_go_on() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, c| {
            c.api_rate_per_s = 5;
            c.api_burst = 20;
            c.api_source_rate_per_s = 2;
            c.api_source_burst = 10;
        })
        .await;
        let m = d.api().create_meeting("limited").await.unwrap();
        let member = d
            .api()
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "ada@example.org", "display_name": "Ada" })),
            )
            .await
            .unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_string();

        let mut conn = Conn::open(&d).await;
        let (mut ok, mut limited) = (0, 0);
        for _ in 0..100 {
            let a = conn
                .send("GET", "/v1/meetings", Some(API_KEY), Bytes::new())
                .await;
            if a.status == 200 {
                ok += 1;
                continue;
            }
            assert_error(&a, 429, "rate_limited");
            let wait: u64 = a.retry_after.as_deref().unwrap().parse().unwrap();
            assert!((1..=1).contains(&wait), "{a:?}");
            assert!(
                a.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("5 requests a second"),
                "{a:?}"
            );
            limited += 1;
        }
        // The burst, what refilled while they were sent, and no more.
        assert!((18..=30).contains(&ok), "{ok} admitted of 100");
        assert_eq!(ok + limited, 100);

        // Another key has its own bucket, and join tickets theirs.
        let a = once(&d, "GET", "/v1/meetings", Some(&member), "").await;
        assert_eq!(a.status, 200, "{a:?}");
        let ticket = format!("/v1/meetings/{}/tickets", m.0);
        let a = once(
            &d,
            "POST",
            &ticket,
            Some(API_KEY),
            r#"{"display_name":"Bo"}"#,
        )
        .await;
        assert_eq!(a.status, 201, "{a:?}");

        // Many wrong keys from one address: limited by the address.
        let (mut unauthenticated, mut limited_source) = (0, 0);
        for n in 0..60 {
            let key = format!("wrong-key-{n:04}-0123456789");
            let a = conn
                .send("GET", "/v1/meetings", Some(&key), Bytes::new())
                .await;
            match a.status {
                401 => unauthenticated += 1,
                _ => {
                    assert_error(&a, 429, "rate_limited");
                    assert!(a.retry_after.is_some(), "{a:?}");
                    limited_source += 1;
                }
            }
        }
        assert!(
            (10..=16).contains(&unauthenticated),
            "{unauthenticated} answered 401 of 60"
        );
        assert!(limited_source >= 44, "{limited_source}");

        // Waiting what it was told, the key is admitted again.
        mc_rt::sleep(Duration::from_secs(1)).await;
        let a = conn
            .send("GET", "/v1/meetings", Some(API_KEY), Bytes::new())
            .await;
        assert_eq!(a.status, 200, "{a:?}");

        // The client waits a 429's Retry-After and asks again.
        for _ in 0..30 {
            conn.send("GET", "/v1/status", Some(API_KEY), Bytes::new())
                .await;
        }
        let started = mc_rt::Instant::now();
        d.api().call("GET", "/v1/status", None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900));

        // The 100 above, most of the 30, and the client's first try.
        let refused = metric(&d, "mc_cloud_api_refused_total{reason=\"rate_limited\"}").await;
        assert!(
            (limited + 21..=limited + 31).contains(&refused),
            "{refused}"
        );
        assert_eq!(
            metric(
                &d,
                "mc_cloud_api_refused_total{reason=\"rate_limited_source\"}"
            )
            .await,
            limited_source
        );
    });
}

#[test]
fn with_the_defaults_a_key_sending_a_thousand_gets_at_once_is_limited() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let started = mc_rt::Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let d_addr = (d.cloud.https_addr, d.ca.clone());
                mc_rt::spawn(async move {
                    let config = tls::client_config(&d_addr.1, None, alpn::HTTP1).unwrap();
                    let stream =
                        tls::connect(d_addr.0, "127.0.0.1", config, Duration::from_secs(5))
                            .await
                            .unwrap();
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .unwrap();
                    mc_rt::spawn(async move {
                        let _ = conn.await;
                    });
                    let mut statuses = Vec::new();
                    for _ in 0..100 {
                        sender.ready().await.unwrap();
                        let req = hyper::Request::builder()
                            .uri("/v1/meetings")
                            .header(hyper::header::HOST, "127.0.0.1")
                            .header(hyper::header::AUTHORIZATION, format!("Bearer {API_KEY}"))
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        let resp = sender.send_request(req).await.unwrap();
                        statuses.push(resp.status().as_u16());
                        resp.into_body().collect().await.unwrap();
                    }
                    statuses
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.extend(t.await.unwrap());
        }
        let elapsed_s = started.elapsed().as_secs_f64();
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(ok + limited, 1000, "{statuses:?}");
        // api_burst 400 at once, then api_rate_per_s 200 a second.
        let most = 400.0 + 200.0 * elapsed_s + 5.0;
        assert!(
            (ok as f64) <= most,
            "{ok} of 1,000 admitted in {elapsed_s:.2} s; at most {most:.0}"
        );
        assert!(ok >= 400, "{ok}");
        eprintln!("1,000 GETs in {elapsed_s:.2} s: {ok} answered, {limited} refused with 429");
    });
}

#[test]
fn lists_come_in_pages_that_the_client_reads_whole() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let api = d.api();
        for n in 0..250 {
            api.create_meeting(&format!("m{n}")).await.unwrap();
        }
        let first = api.call("GET", "/v1/meetings", None).await.unwrap();
        assert_eq!(first["meetings"].as_array().unwrap().len(), 100);
        assert_eq!(first["next"], 100);
        let last = api
            .call("GET", "/v1/meetings?limit=60&after=200", None)
            .await
            .unwrap();
        assert_eq!(last["meetings"].as_array().unwrap().len(), 50);
        assert_eq!(last["meetings"][0]["id"], 201);
        assert_eq!(last["next"], Value::Null);
        let all = api.list_all("/v1/meetings", "meetings").await.unwrap();
        let ids: Vec<u64> = all.iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (1..=250).collect::<Vec<_>>());
        for bad in ["limit=0", "limit=501", "limit=x", "after=-1", "after=1.5"] {
            let a = once(&d, "GET", &format!("/v1/meetings?{bad}"), Some(API_KEY), "").await;
            assert_error(&a, 400, "invalid_query");
        }
        for n in 0..3 {
            api.call(
                "POST",
                "/v1/users",
                Some(json!({ "email": format!("u{n}@example.org"), "display_name": "U" })),
            )
            .await
            .unwrap();
        }
        let users = api.call("GET", "/v1/users?limit=2", None).await.unwrap();
        assert_eq!(users["users"].as_array().unwrap().len(), 2);
        assert_eq!(users["next"], 2);
        let all = ManagementApi { ..api }
            .list_all("/v1/users", "users")
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
    });
}
