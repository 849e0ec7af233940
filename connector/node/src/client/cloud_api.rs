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

    /// [`ManagementApi::call`], telling a refusal from an unavailable cloud.
    pub async fn call_typed(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, CallError> {
        let unavailable = |e: String| CallError::Unavailable(e);
        let tls_config = tls::client_config(&self.ca, None, alpn::HTTP1)
            .map_err(|e| unavailable(e.to_string()))?;
        let stream = dial_tls(&self.host, self.port, tls_config, self.timeout_ms)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        request_json(stream, method, &self.host, path, Some(&self.api_key), body)
            .await
            .map_err(|e| match &e {
                // 408 and 429 say "not now", not "no".
                HttpError::Status { status, .. }
                    if status.is_client_error()
                        && *status != hyper::StatusCode::REQUEST_TIMEOUT
                        && *status != hyper::StatusCode::TOO_MANY_REQUESTS =>
                {
                    CallError::Refused(e.to_string())
                }
                _ => unavailable(e.to_string()),
            })
    }

    pub async fn create_meeting(&self, topic: &str) -> Result<MeetingId, String> {
        let v = self
            .call(
                "POST",
                "/v1/meetings",
                Some(serde_json::json!({ "topic": topic })),
            )
            .await?;
        v["id"]
            .as_u64()
            .map(MeetingId)
            .ok_or_else(|| format!("unexpected answer: {v}"))
    }
}
