//! The management REST API (JSON over HTTPS).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | /healthz | liveness, no authentication |
//! | POST | /v1/meetings | create a meeting: `{"topic": "..."}` |
//! | GET | /v1/meetings | list meetings |
//! | GET | /v1/meetings/{id} | one meeting |
//! | POST | /v1/meetings/{id}/tickets | join ticket + live controllers: `{"display_name": "..."}` |
//! | GET | /v1/status | controllers known to status sync, live or not |
//!
//! Every `/v1` call needs `Authorization: Bearer <api_key>`. Errors are JSON:
//! `{"error": "<code>", "message": "<what to do>"}`.

use super::Shared;
use crate::http::{json_response, read_body, Body};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use mc_core::cloud::management::ManagementError;
use mc_wire::MeetingId;
use serde::Deserialize;
use serde_json::json;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    json_response(status, &json!({ "error": code, "message": message.into() }))
}

/// Compares without an early exit, so response timing does not reveal how much of a key matched.
fn keys_match(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub(super) async fn handle(req: Request<Incoming>, shared: Shared) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if path == "/healthz" {
        return json_response(StatusCode::OK, &json!({ "status": "ok" }));
    }
    if !path.starts_with("/v1/") {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no resource at {path}"));
    }
    let api_key = shared.lock().unwrap().config.api_key.clone();
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => return error(StatusCode::UNAUTHORIZED, "unauthenticated", "send the API key as `Authorization: Bearer <key>`"),
        Some(k) if !keys_match(k.as_bytes(), api_key.as_bytes()) => {
            return error(StatusCode::UNAUTHORIZED, "unauthenticated", "the API key is not valid for this cloud")
        }
        Some(_) => {}
    }
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(msg) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", msg),
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let now_ms = mc_rt::unix_now_ms();
    match (&method, segments.as_slice()) {
        (&Method::POST, ["meetings"]) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Create {
                topic: String,
            }
            let create: Create = match parse(&body) {
                Ok(c) => c,
                Err(r) => return *r,
            };
            match shared.lock().unwrap().management.create_meeting(now_ms, &create.topic) {
                Ok(m) => json_response(StatusCode::CREATED, &m),
                Err(e) => management_error(e),
            }
        }
        (&Method::GET, ["meetings"]) => {
            let s = shared.lock().unwrap();
            json_response(StatusCode::OK, &json!({ "meetings": s.management.meetings().collect::<Vec<_>>() }))
        }
        (&Method::GET, ["meetings", id]) => {
            let Some(id) = meeting_id(id) else { return bad_id(id) };
            match shared.lock().unwrap().management.meeting(id) {
                Some(m) => json_response(StatusCode::OK, m),
                None => management_error(ManagementError::NoSuchMeeting(id)),
            }
        }
        (&Method::POST, ["meetings", id, "tickets"]) => {
            let Some(id) = meeting_id(id) else { return bad_id(id) };
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Join {
                display_name: String,
            }
            let join: Join = match parse(&body) {
                Ok(j) => j,
                Err(r) => return *r,
            };
            let mut s = shared.lock().unwrap();
            let controllers: Vec<_> = s
                .status
                .live_controllers(now_ms)
                .into_iter()
                .map(|c| json!({ "id": c.id, "host": c.signalling.host, "port": c.signalling.port, "fallback_port": c.signalling.fallback_port }))
                .collect();
            if controllers.is_empty() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "no_live_controller", "no controller is registered and live; start one or check its link to the cloud");
            }
            match s.management.issue_ticket(now_ms, id, &join.display_name) {
                Ok((participant, ticket, expires_at_ms)) => json_response(
                    StatusCode::CREATED,
                    &json!({ "meeting": id, "participant": participant, "ticket": ticket, "expires_at_ms": expires_at_ms, "controllers": controllers }),
                ),
                Err(e) => management_error(e),
            }
        }
        (&Method::GET, ["status"]) => {
            let s = shared.lock().unwrap();
            let controllers: Vec<_> = s
                .status
                .all()
                .map(|c| {
                    let mut v = serde_json::to_value(c).expect("serializable");
                    v["live"] = json!(s.status.is_live(now_ms, c));
                    v
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "controllers": controllers }))
        }
        (_, ["meetings"] | ["meetings", _] | ["meetings", _, "tickets"] | ["status"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{method} is not supported on {path}"))
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", format!("no resource at {path}")),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response<Body>>> {
    serde_json::from_slice(body).map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, "invalid_json", format!("request body: {e}"))))
}

fn meeting_id(s: &str) -> Option<MeetingId> {
    s.parse().ok().map(MeetingId)
}

fn bad_id(s: &str) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "invalid_id", format!("{s:?} is not a meeting id (a positive integer)"))
}

fn management_error(e: ManagementError) -> Response<Body> {
    let (status, code) = match &e {
        ManagementError::NoSuchMeeting(_) => (StatusCode::NOT_FOUND, "no_such_meeting"),
        ManagementError::MeetingEnded(_) => (StatusCode::CONFLICT, "meeting_ended"),
        ManagementError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
    };
    error(status, code, e.to_string())
}
