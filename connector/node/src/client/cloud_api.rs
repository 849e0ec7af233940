//! The client's side of cloud management: join tickets, and the REST API the CLI and tests use.

use super::ClientError;
use crate::config::ClientConfig;
use crate::dial::dial_tls;
use crate::http::{request_json, HttpError};
use mc_rt::tls;
use mc_wire::ports::alpn;
use mc_wire::{MeetingId, ParticipantId};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

/// What management answers a ticket request with.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketGrant {
    pub participant: ParticipantId,
    pub ticket: String,
    pub expires_at_ms: u64,
    pub controllers: Vec<ControllerAddr>,
}

/// A live controller, as status sync lists it to clients.
#[derive(Debug, Clone, Deserialize)]
pub struct ControllerAddr {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub fallback_port: u16,
}

/// Asks cloud management for a join ticket, as a client would.
pub async fn fetch_ticket(
    config: &ClientConfig,
    ca: &CertificateDer<'static>,
) -> Result<TicketGrant, ClientError> {
    let api = ManagementApi {
        host: config.cloud_host.clone(),
        port: config.cloud_https_port,
        api_key: config.api_key.clone(),
        ca: ca.clone(),
        timeout_ms: config.connect_timeout_ms,
    };
    let body = serde_json::json!({ "display_name": config.display_name });
    let value = api
        .call_typed(
            "POST",
            &format!("/v1/meetings/{}/tickets", config.meeting),
            Some(body),
        )
        .await
        .map_err(|e| match e {
            CallError::Refused(m) => ClientError::TicketRefused(m),
            CallError::Unavailable(m) => ClientError::Ticket(m),
        })?;
    serde_json::from_value(value)
        .map_err(|e| ClientError::Ticket(format!("unexpected answer: {e}")))
}

/// A caller of the cloud's management API (the CLI, tests and clients use it).
#[derive(Debug, Clone)]
pub struct ManagementApi {
    pub host: String,
    pub port: u16,
    pub api_key: String,
    pub ca: CertificateDer<'static>,
    pub timeout_ms: u64,
}

/// How many times a call over the cloud's rate limit is asked again, and the longest wait
/// between tries a `Retry-After` gets.
pub const RATE_LIMITED_RETRIES: u32 = 3;
pub const MAX_RETRY_AFTER_S: u64 = 10;

/// A `next` cursor as a query value: the cloud's are integers; a string is sent as it is.
fn cursor_text(cursor: &serde_json::Value) -> String {
    match cursor {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a call to the cloud's API failed, by whether asking again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The cloud could not be reached or did not answer properly (connection, TLS, timeout,
    /// a 5xx or an unreadable answer): it may answer later.
    Unavailable(String),
    /// The cloud answered and refused (a 4xx): asking again will not change the answer.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unavailable(m) | CallError::Refused(m) => f.write_str(m),
        }
    }
}

impl ManagementApi {
    /// One request on a fresh HTTPS connection; the error names the step that failed.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        self.call_typed(method, path, body)
            .await
            .map_err(|e| e.to_string())
    }

    /// [`ManagementApi::call`], telling a refusal from an unavailable cloud. A 429 (over the
    /// cloud's rate limit: nothing was done) is asked again after its `Retry-After`, up to
    /// [`RATE_LIMITED_RETRIES`] times.
    pub async fn call_typed(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, CallError> {
        let mut retries = 0;
        loop {
            match self.call_once(method, path, body.clone()).await {
                Err((_, Some(wait_s))) if retries < RATE_LIMITED_RETRIES => {
                    retries += 1;
                    let wait_s = wait_s.clamp(1, MAX_RETRY_AFTER_S);
                    mc_rt::sleep(std::time::Duration::from_secs(wait_s)).await;
                }
                other => return other.map_err(|(e, _)| e),
            }
        }
    }

    /// One attempt; a 429's error comes with how long to wait, in seconds.
    async fn call_once(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, (CallError, Option<u64>)> {
        let unavailable = |e: String| (CallError::Unavailable(e), None);
        let tls_config = tls::client_config(&self.ca, None, alpn::HTTP1)
            .map_err(|e| unavailable(e.to_string()))?;
        let stream = dial_tls(&self.host, self.port, tls_config, self.timeout_ms)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        request_json(stream, method, &self.host, path, Some(&self.api_key), body)
            .await
            .map_err(|e| match &e {
                HttpError::Status {
                    status,
                    retry_after_s,
                    ..
                } if *status == hyper::StatusCode::TOO_MANY_REQUESTS => (
                    CallError::Unavailable(e.to_string()),
                    Some(retry_after_s.unwrap_or(1)),
                ),
                // 408 says "not now", not "no".
                HttpError::Status { status, .. }
                    if status.is_client_error()
                        && *status != hyper::StatusCode::REQUEST_TIMEOUT =>
                {
                    (CallError::Refused(e.to_string()), None)
                }
                _ => unavailable(e.to_string()),
            })
    }

    /// Every item of a paged list (`GET /v1/meetings`, `GET /v1/users`): `field` of each page,
    /// following `next` until the last page. Each page is a request of its own, well within what
    /// a client reads of one answer.
    pub async fn list_all(
        &self,
        path: &str,
        field: &str,
    ) -> Result<Vec<serde_json::Value>, String> {
        let mut items = Vec::new();
        let mut after: Option<serde_json::Value> = None;
        loop {
            let page_path = match &after {
                Some(cursor) => format!("{path}?after={}", cursor_text(cursor)),
                None => path.to_string(),
            };
            let page = self.call("GET", &page_path, None).await?;
            let got = page[field].as_array().ok_or_else(|| {
                format!("unexpected answer to GET {page_path}: no {field:?} list")
            })?;
            items.extend(got.iter().cloned());
            match page.get("next") {
                Some(next) if !next.is_null() => {
                    if after.as_ref() == Some(next) {
                        return Err(format!(
                            "GET {page_path}: the cloud returned the same page twice"
                        ));
                    }
                    after = Some(next.clone());
                }
                _ => return Ok(items),
            }
        }
    }

    pub async fn create_meeting(&self, topic: &str) -> Result<MeetingId, String> {
        self.create_meeting_expecting(topic, None).await
    }

    /// Creates a meeting with a size hint: controllers spread one expected to outgrow an MMR
    /// over several from its first join.
    pub async fn create_meeting_expecting(
        &self,
        topic: &str,
        expected_participants: Option<u32>,
    ) -> Result<MeetingId, String> {
        let mut body = serde_json::json!({ "topic": topic });
        if let Some(n) = expected_participants {
            body["expected_participants"] = n.into();
        }
        let v = self.call("POST", "/v1/meetings", Some(body)).await?;
        v["id"]
            .as_u64()
            .map(MeetingId)
            .ok_or_else(|| format!("unexpected answer: {v}"))
    }
}
