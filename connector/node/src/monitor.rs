//! Reporting to cloud monitoring: every interval, a process POSTs a [`Report`] over HTTPS with its
//! deployment certificate. A failed report is logged and the next one tries again; monitoring
//! being down never affects meetings.

use crate::dial::{dial_tls_as, DialError};
use crate::http::{request_json, HttpError};
use mc_rt::identity::IdentityError;
use mc_rt::tls::{self, Identity};
use mc_wire::monitor::{LinkPath, LinkState, RecentEvent, RecentKind, Report};
use mc_wire::ports::alpn;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The path each outgoing link of a process uses now, and how often each came back up, for
/// reports, status and metrics. A link changing path is also an operator event.
#[derive(Clone, Default)]
pub struct LinkTable {
    links: Arc<Mutex<Links>>,
    recent: RecentEvents,
}

#[derive(Default)]
struct Links {
    state: BTreeMap<String, LinkState>,
    /// Times each link came up again after it had been up before; a link is here once it has
    /// been up.
    reconnects: BTreeMap<String, u64>,
}

impl std::fmt::Debug for LinkTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl LinkTable {
    /// A table whose path changes go to `recent`.
    pub fn new(recent: RecentEvents) -> LinkTable {
        LinkTable {
            links: Arc::default(),
            recent,
        }
    }

    pub fn up(&self, link: &str, path: LinkPath, port: u16) {
        let mut links = self.links.lock().unwrap();
        let was = links
            .state
            .insert(link.to_string(), LinkState { path, port });
        // A move between paths while up (back to the dedicated port) is a new connection too.
        // The first time a link comes up (even after failed dials marked it down) is not.
        let changed = was
            .as_ref()
            .is_some_and(|w| w.path == LinkPath::Down || w.path != path || w.port != port);
        match links.reconnects.get_mut(link) {
            Some(n) if changed => *n += 1,
            Some(_) => {}
            None => {
                links.reconnects.insert(link.to_string(), 0);
            }
        }
        drop(links);
        if was.is_none_or(|w| w.path != path || w.port != port) {
            let how = match path {
                LinkPath::Fallback => " (fallback: the dedicated port did not answer)",
                _ => "",
            };
            let text = format!("{link} up on port {port}, {path}{how}");
            self.recent.push(RecentKind::Link, text);
        }
    }

    pub fn down(&self, link: &str) {
        let was = self.links.lock().unwrap().state.insert(
            link.to_string(),
            LinkState {
                path: LinkPath::Down,
                port: 0,
            },
        );
        if was.is_some_and(|w| w.path != LinkPath::Down) {
            self.recent.push(RecentKind::Link, format!("{link} down"));
        }
    }

    pub fn is_up(&self, link: &str) -> bool {
        self.links
            .lock()
            .unwrap()
            .state
            .get(link)
            .is_some_and(|l| l.path != LinkPath::Down)
    }

    pub fn snapshot(&self) -> BTreeMap<String, LinkState> {
        self.links.lock().unwrap().state.clone()
    }

    /// Each link's path now and its reconnects so far.
    pub fn with_reconnects(&self) -> Vec<(String, LinkPath, u64)> {
        let links = self.links.lock().unwrap();
        links
            .state
            .iter()
            .map(|(name, l)| {
                let n = links.reconnects.get(name).copied().unwrap_or(0);
                (name.clone(), l.path, n)
            })
            .collect()
    }
}

/// How many operator events a process keeps for its reports.
pub const RECENT_EVENTS: usize = 20;

/// The last few operator events of a process (fences, takeovers, drains, links changing path),
/// for its monitoring report and so the zone dashboard. Bounded: the oldest falls out.
#[derive(Clone, Default)]
pub struct RecentEvents(Arc<Mutex<VecDeque<RecentEvent>>>);

impl RecentEvents {
    pub fn push(&self, kind: RecentKind, text: impl Into<String>) {
        let mut ring = self.0.lock().unwrap();
        if ring.len() == RECENT_EVENTS {
            ring.pop_front();
        }
        ring.push_back(RecentEvent {
            at_ms: mc_rt::unix_now_ms(),
            kind,
            text: for_operator(text.into()),
        });
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<RecentEvent> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

/// Longest event text a report carries: the ring must stay well inside a report's body limit.
const RECENT_TEXT_CHARS: usize = 160;

/// An event's text as the dashboard shows it: without the documentation links some library
/// errors append (rustls' close_notify message), and at most [`RECENT_TEXT_CHARS`] characters.
fn for_operator(text: String) -> String {
    let text = match text.find(": https://") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if text.chars().count() <= RECENT_TEXT_CHARS {
        return text;
    }
    let cut: String = text.chars().take(RECENT_TEXT_CHARS - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_count_comebacks_and_path_moves_not_the_first_connection() {
        let links = LinkTable::default();
        let n = |t: &LinkTable| t.with_reconnects()[0].2;
        // Dials failed before the cloud was up: down, then up for the first time.
        links.down("status_sync");
        links.up("status_sync", LinkPath::Fallback, 443);
        assert_eq!(n(&links), 0);
        links.up("status_sync", LinkPath::Fallback, 443);
        assert_eq!(
            n(&links),
            0,
            "a repeated report of the same path is no reconnect"
        );
        links.up("status_sync", LinkPath::Dedicated, 8803);
        assert_eq!(
            n(&links),
            1,
            "moving back to the dedicated port is a new connection"
        );
        links.down("status_sync");
        links.up("status_sync", LinkPath::Dedicated, 8803);
        assert_eq!(n(&links), 2);
    }

    #[test]
    fn event_texts_lose_doc_links_and_stay_short() {
        let closed = "MMR mmr-2 is down: peer closed connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof";
        assert_eq!(
            for_operator(closed.into()),
            "MMR mmr-2 is down: peer closed connection without sending TLS close_notify"
        );
        let long = "é".repeat(500);
        let short = for_operator(long);
        assert_eq!(short.chars().count(), RECENT_TEXT_CHARS);
        assert!(short.ends_with('…'));
    }
}

/// Why one report was not delivered.
#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Where and how often to report.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub cloud_host: String,
    pub cloud_https_port: u16,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Reports go to the cloud only: its certificate is checked, refusals counted here.
    pub identity: crate::identity_gate::IdentityGate,
}

impl Reporter {
    /// Spawns the reporting loop; `report` is called for each report.
    pub fn spawn(self, identity: &Identity, report: impl Fn() -> Report + Send + 'static) {
        let config = match tls::client_config(&identity.ca, Some(identity), alpn::HTTP1) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("monitoring disabled: {e}");
                return;
            }
        };
        let cloud = crate::dial::Expect {
            role: mc_rt::identity::CertRole::Cloud,
            link: crate::identity_gate::link::MONITORING,
            gate: self.identity.clone(),
        };
        mc_rt::spawn(async move {
            let mut tick = mc_rt::interval(Duration::from_millis(self.interval_ms));
            let mut failing = false;
            loop {
                tick.tick().await;
                let body = serde_json::to_value(report()).expect("reports serialize");
                let sent = async {
                    let (host, port) = (&self.cloud_host, self.cloud_https_port);
                    let stream =
                        dial_tls_as(host, port, config.clone(), self.timeout_ms, &cloud).await?;
                    let path = "/v1/monitoring/reports";
                    request_json(stream, "POST", host, path, None, Some(body)).await?;
                    Ok::<(), ReportError>(())
                };
                match mc_rt::timeout(Duration::from_millis(self.timeout_ms * 2), sent).await {
                    Ok(Ok(_)) => failing = false,
                    Ok(Err(e)) if !failing => {
                        tracing::warn!("monitoring report not delivered: {e}");
                        failing = true;
                    }
                    Err(_) if !failing => {
                        tracing::warn!("monitoring report timed out");
                        failing = true;
                    }
                    _ => {}
                }
            }
        });
    }
}

/// Who asked a node's health listener: only a scraper may read its metrics and full report.
#[derive(Clone)]
pub(crate) struct HealthCaller {
    pub addr: std::net::SocketAddr,
    pub identity: Result<mc_rt::identity::PeerIdentity, IdentityError>,
    pub gate: crate::identity_gate::IdentityGate,
}

impl HealthCaller {
    fn scraper(&self) -> Result<(), IdentityError> {
        let role = self
            .identity
            .clone()
            .and_then(|id| id.expect_role(mc_rt::identity::CertRole::Scraper));
        let link = crate::identity_gate::link::METRICS;
        self.gate.check(link, self.addr, role).map(|_| ())
    }
}

/// Local health probes, for a load balancer or an orchestrator on the premises: they answer
/// whether or not the cloud is reachable, so a cloud outage never makes a healthy node look dead.
/// Served as HTTP/1.1 (ALPN `http/1.1`) on the node's TLS ports:
///
/// - `GET /livez`: 200 while the process works.
/// - `GET /readyz`: 200 when the node can take work, 503 (with the reason) when it cannot.
/// - `GET /v1/health`: the full [`Report`] (load, links and their paths); it needs a scraper's
///   client certificate from the deployment CA, because these ports are open to participants.
/// - `GET /metrics`: the node's Prometheus metrics; the same certificate is needed.
pub(crate) async fn serve_health<S>(
    stream: S,
    caller: HealthCaller,
    metrics: crate::metrics::Metrics,
    report: impl Fn() -> Report + Send + Sync + 'static,
) where
    S: mc_rt::AsyncRead + mc_rt::AsyncWrite + Unpin + Send + 'static,
{
    use crate::http::json_response;
    use hyper::{Method, StatusCode};
    let report = Arc::new(report);
    let served = crate::http::serve(stream, move |req| {
        let (report, metrics, caller) = (report.clone(), metrics.clone(), caller.clone());
        async move {
            // `status` is a stable name for tools; `message` is for people.
            let reply = |status: StatusCode, name: &str, message: &str| {
                json_response(
                    status,
                    &serde_json::json!({ "status": name, "message": message }),
                )
            };
            match (req.method(), req.uri().path()) {
                (&Method::GET, "/livez") => reply(StatusCode::OK, "live", "the process works"),
                (&Method::GET, "/readyz") => {
                    let r = report();
                    if r.ready {
                        reply(StatusCode::OK, "ready", "it takes new work")
                    } else {
                        let down: Vec<&str> = r
                            .links
                            .iter()
                            .filter(|(_, l)| l.path == LinkPath::Down)
                            .map(|(name, _)| name.as_str())
                            .collect();
                        let message = format!(
                            "live, but takes no new work: drained, not registered yet, or links down {down:?}"
                        );
                        reply(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &message)
                    }
                }
                (&Method::GET, "/metrics") => crate::metrics::response(caller.scraper(), &metrics),
                (&Method::GET, "/v1/health") => match caller.scraper() {
                    Ok(()) => json_response(StatusCode::OK, &report()),
                    Err(IdentityError::NoCertificate) => reply(
                        StatusCode::FORBIDDEN,
                        "certificate_required",
                        "the full health report needs a client certificate from the deployment CA",
                    ),
                    Err(e) => reply(StatusCode::FORBIDDEN, "identity_refused", &e.to_string()),
                },
                (&Method::GET, path) => reply(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no resource at {path}; try /livez, /readyz, /v1/health or /metrics"),
                ),
                (method, _) => reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    &format!("{method} is not supported here"),
                ),
            }
        }
    })
    .await;
    if let Err(e) = served {
        tracing::debug!("health connection ended: {e}");
    }
}
