//! The cloud's OpenAPI document (`connector/node/src/cloud/openapi.json`) held to the server: it
//! is served as kept, it describes every route of the API's table in `cloud/api.rs` and nothing
//! else, and the running cloud answers exactly the methods it describes — so the document cannot
//! silently fall behind the code. `ci/contract-test` then fuzzes a running cloud from it.
// Real sockets: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use bytes::Bytes;
use common::{Deployment, API_KEY};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mc_wire::ports::alpn;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const KEPT: &str = include_str!("../src/cloud/openapi.json");
const API_SOURCE: &str = include_str!("../src/cloud/api.rs");

struct Answer {
    status: u16,
    content_type: String,
    allow: Option<String>,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} answered with a body that is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of an answer in the API's error shape, checked against the document's list.
    fn error_code(&self, doc: &Value) -> String {
        let v = self.json();
        let keys: BTreeSet<&str> = v
            .as_object()
            .unwrap_or_else(|| panic!("{v}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["error", "message"]), "{v}");
        let code = v["error"].as_str().unwrap().to_string();
        let codes = &doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"];
        assert!(
            codes.as_array().unwrap().contains(&json!(code)),
            "error code {code:?} is not in the document's Error schema"
        );
        code
    }
}

/// One request to the cloud's HTTPS port, with or without a key and `who`'s certificate.
async fn call(
    d: &Deployment,
    method: &str,
    path: &str,
    key: Option<&str>,
    who: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let stream = d.dial(d.cloud.https_addr, who, alpn::HTTP1).await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    let driver = mc_rt::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "127.0.0.1");
    if let Some(key) = key {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (status, content_type, allow) = (
        resp.status().as_u16(),
        header(hyper::header::CONTENT_TYPE).unwrap_or_default(),
        header(hyper::header::ALLOW),
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    driver.abort();
    Answer {
        status,
        content_type,
        allow,
        body,
    }
}

fn kept() -> Value {
    serde_json::from_str(KEPT).expect("openapi.json is JSON")
}

/// The operations a document describes, as (METHOD, path template).
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The rows of the route table in `cloud/api.rs`'s module comment, as (METHOD, path template).
fn api_table() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for line in API_SOURCE.lines().take_while(|l| l.starts_with("//!")) {
        let cells: Vec<&str> = line.trim_start_matches("//!").split('|').collect();
        let [_, methods, paths, ..] = cells.as_slice() else {
            continue;
        };
        let (methods, paths) = (methods.trim(), paths.trim());
        if methods == "method" || methods.starts_with("---") {
            continue;
        }
        for m in methods.split(", ") {
            for p in paths.split(", ") {
                routes.insert((m.to_string(), p.to_string()));
            }
        }
    }
    routes
}

#[test]
fn the_cloud_serves_the_document_kept_in_the_repository_without_a_key() {
    let doc = kept();
    let version = doc["openapi"].as_str().expect("an openapi field");
    assert!(version.starts_with("3.1."), "OpenAPI {version}, not 3.1");
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let served = call(&d, "GET", "/v1/openapi.json", None, None, None).await;
        assert_eq!(served.status, 200);
        assert_eq!(served.content_type, "application/json");
        assert!(
            served.body == KEPT.as_bytes(),
            "the served document differs from openapi.json"
        );
    });
}

#[test]
fn the_document_describes_every_route_of_the_api_table_and_no_other() {
    let table = api_table();
    assert!(
        table.len() >= 18,
        "the route table in cloud/api.rs was not read: {table:?}"
    );
    let doc = described(&kept());
    let undescribed: Vec<_> = table.difference(&doc).collect();
    assert!(
        undescribed.is_empty(),
        "routes in cloud/api.rs's table missing from openapi.json: {undescribed:?}"
    );
    let unlisted: Vec<_> = doc.difference(&table).collect();
    assert!(
        unlisted.is_empty(),
        "operations in openapi.json missing from cloud/api.rs's table: {unlisted:?}"
    );
}

#[test]
fn the_cloud_answers_every_described_operation_and_refuses_other_methods_with_allow() {
    let doc = kept();
    let operations = described(&doc);
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let meeting = d.api().create_meeting("described").await.unwrap();
        let user = d
            .api()
            .call(
                "POST",
                "/v1/users",
                Some(json!({ "email": "ada@example.org", "display_name": "Ada" })),
            )
            .await
            .unwrap()["user"]["id"]
            .clone();
        let paths: BTreeSet<&String> = operations.iter().map(|(_, p)| p).collect();
        for template in paths {
            let path = template
                .replace("/meetings/{id}", &format!("/meetings/{}", meeting.0))
                .replace("/users/{id}", &format!("/users/{user}"))
                .replace("/controllers/{id}", "/controllers/controller-1")
                .replace("/mmrs/{id}", "/mmrs/mmr-1")
                .replace("{pid}", "1");
            assert!(!path.contains('{'), "no value for {template}");
            let allowed: BTreeSet<&str> = operations
                .iter()
                .filter(|(_, p)| p == template)
                .map(|(m, _)| m.as_str())
                .collect();
            for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
                let a = call(
                    &d,
                    method,
                    &path,
                    Some(API_KEY),
                    // A deployment host's certificate.
                    Some("mmr-1"),
                    Some("{}"),
                )
                .await;
                // An answer to HEAD has no body to read the error code from.
                let body = method != "HEAD";
                if allowed.contains(method) {
                    // Answered by the route: whatever it makes of an empty request, it is not
                    // "no such resource" or "no such method".
                    assert_ne!(a.status, 405, "{method} {path}");
                    if a.status >= 400 && body {
                        let code = a.error_code(&doc);
                        assert_ne!(code, "not_found", "{method} {path}");
                    }
                } else {
                    assert_eq!(a.status, 405, "{method} {path} is not described");
                    if body {
                        assert_eq!(a.error_code(&doc), "method_not_allowed");
                    }
                    let allow: BTreeSet<&str> = a
                        .allow
                        .as_deref()
                        .unwrap_or_else(|| panic!("405 without Allow for {method} {path}"))
                        .split(", ")
                        .collect();
                    assert_eq!(allow, allowed, "Allow of {path}");
                }
            }
        }
        let nothing = call(&d, "GET", "/v1/nothing", Some(API_KEY), None, None).await;
        assert_eq!(
            (nothing.status, nothing.error_code(&doc).as_str()),
            (404, "not_found")
        );
    });
}

#[test]
fn metrics_and_monitoring_reports_need_a_deployment_certificate() {
    let doc = kept();
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let anonymous = call(&d, "GET", "/metrics", Some(API_KEY), None, None).await;
        assert_eq!(
            (anonymous.status, anonymous.error_code(&doc).as_str()),
            (403, "certificate_required")
        );
        let report = call(
            &d,
            "POST",
            "/v1/monitoring/reports",
            Some(API_KEY),
            None,
            Some("{}"),
        )
        .await;
        assert_eq!(
            (report.status, report.error_code(&doc).as_str()),
            (401, "unauthenticated")
        );
        let scrape = call(&d, "GET", "/metrics", None, Some("prometheus"), None).await;
        assert_eq!(scrape.status, 200);
        let documented = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap();
        assert!(
            documented.contains_key(&scrape.content_type),
            "{} is not the documented content type {documented:?}",
            scrape.content_type
        );
    });
}

#[test]
fn a_request_body_that_is_not_a_json_object_is_refused_and_changes_nothing() {
    let doc = kept();
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let m = d.api().create_meeting("stays").await.unwrap().0;
        let (end, tickets) = (
            format!("/v1/meetings/{m}/end"),
            format!("/v1/meetings/{m}/tickets"),
        );
        // serde would read each of these as the struct's fields in order; and a body that is
        // JSON but no object is no request either.
        for (path, body) in [
            ("/v1/meetings", r#"["standup"]"#),
            ("/v1/meetings", " \r\n\t[\"standup\"]"),
            ("/v1/meetings", r#""standup""#),
            ("/v1/meetings", "null"),
            ("/v1/meetings", "5"),
            ("/v1/users", r#"["ada@example.org", "Ada"]"#),
            (end.as_str(), r#"["over"]"#),
            (tickets.as_str(), r#"["Ada"]"#),
            ("/v1/controllers/controller-1/drain", "[5]"),
            ("/v1/mmrs/mmr-1/drain", "[]"),
        ] {
            let a = call(&d, "POST", path, Some(API_KEY), None, Some(body)).await;
            assert_eq!(
                (a.status, a.error_code(&doc).as_str()),
                (400, "invalid_json"),
                "POST {path} {body}"
            );
        }
        let meetings = d.api().call("GET", "/v1/meetings", None).await.unwrap();
        assert_eq!(
            meetings["meetings"].as_array().unwrap().len(),
            1,
            "{meetings}"
        );
        assert_eq!(meetings["meetings"][0]["ended"], Value::Null, "{meetings}");
        let zone = d.api().call("GET", "/v1/zone", None).await.unwrap();
        assert!(!zone["events"].to_string().contains("drain"), "{zone:#}");
        let users = d.api().call("GET", "/v1/users", None).await.unwrap();
        assert_eq!(users["users"], json!([]), "{users}");
    });
}

#[test]
fn the_document_states_every_limit_the_api_answers_with() {
    let doc = kept();
    let unlimited = ["/healthz", "/dashboard", "/metrics", "/v1/openapi.json"];
    let resolve = |r: &Value| -> Value {
        let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        doc["components"]["responses"][name].clone()
    };
    for (method, path) in described(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let responses = &op["responses"];
        assert!(responses.get("431").is_some(), "{method} {path}: no 431");
        if unlimited.contains(&path.as_str()) {
            continue;
        }
        let limited = resolve(&responses["429"]);
        assert_eq!(
            limited["headers"]["Retry-After"]["required"], true,
            "{method} {path}: 429 without Retry-After"
        );
        assert_eq!(
            limited["content"]["application/json"]["schema"]["properties"]["error"]["enum"],
            json!(["rate_limited"])
        );
    }
    for path in ["/v1/meetings", "/v1/users"] {
        let op = &doc["paths"][path]["get"];
        let params: BTreeSet<&str> = op["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path} has no parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(params, BTreeSet::from(["limit", "after"]), "GET {path}");
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(schema["properties"].get("next").is_some(), "GET {path}");
        assert_eq!(
            resolve(&op["responses"]["400"])["content"]["application/json"]["schema"]["properties"]
                ["error"]["enum"],
            json!(["invalid_query"])
        );
    }
    for method in ["post", "delete"] {
        let r = &doc["paths"]["/v1/mmrs/{id}/drain"][method]["responses"]["404"];
        assert_eq!(
            resolve(r)["content"]["application/json"]["schema"]["properties"]["error"]["enum"],
            json!(["no_such_mmr"])
        );
    }
}
