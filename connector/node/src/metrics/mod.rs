//! Prometheus metrics (DESIGN §10): each node keeps its own registry — never a global one, since
//! simulated nodes share a process — and serves it at `GET /metrics` on the TLS listener that
//! answers its health probes, in the Prometheus text format.
//!
//! Most figures are views of state the node already keeps (the controller's published status,
//! the MMR's forwarding counters, the link table): collectors read them at scrape time, so they
//! cost nothing between scrapes and cannot drift from what the node decides on. Only what no
//! state holds — joins by outcome, join latency, fences — is counted as it happens.

mod cloud;
mod controller;
mod encode;
mod links;
mod listeners;
mod mmr;

pub(crate) use cloud::CloudGauges;
pub use cloud::CloudMetrics;
pub use controller::ControllerMetrics;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// The `Content-Type` of a scrape (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One node's registry. Cloning shares it.
#[derive(Clone)]
pub struct Metrics(Arc<Mutex<Registry>>);

impl Metrics {
    /// A registry carrying `mc_build_info{role,version}`.
    pub fn new(role: &'static str) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "mc_build",
            "Which connector role and version this process runs",
            Info::new(vec![
                ("role", role.to_string()),
                ("version", env!("CARGO_PKG_VERSION").to_string()),
            ]),
        );
        Metrics(Arc::new(Mutex::new(registry)))
    }

    pub(crate) fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.0.lock().unwrap().register(name, help, metric);
    }

    pub(crate) fn collect(&self, collector: impl Collector) {
        self.0
            .lock()
            .unwrap()
            .register_collector(Box::new(collector));
    }

    /// The scrape: every metric in the text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.0.lock().unwrap())
            .expect("writing to a String cannot fail");
        text
    }
}

/// `mc_ready` for a node whose readiness is one question asked at scrape time.
pub(crate) struct Ready(pub Box<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ready")
    }
}

impl Collector for Ready {
    fn encode(&self, mut enc: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        let ready = encode::bool_value((self.0)());
        encode::gauge(
            &mut enc,
            "mc_ready",
            "1 when this node takes new work",
            ready,
        )
    }
}

/// Registers an MMR's metrics (`mc_mmr_*`) and a link table's (`mc_link_*`).
pub fn register_mmr(metrics: &Metrics, mmr: crate::mmr::Mmr, capacity: u32) {
    metrics.collect(mmr::MmrCollector { mmr, capacity });
}

pub(crate) fn register_links(metrics: &Metrics, links: crate::monitor::LinkTable) {
    metrics.collect(links::LinkCollector(links));
}

/// Registers the node's TCP listeners' metrics (`mc_listener_*`), one series per listener.
pub(crate) fn register_listeners(metrics: &Metrics, gates: Vec<crate::listen::Gate>) {
    metrics.collect(listeners::ListenerCollector(gates));
}

/// The answer to `GET /metrics` on a node's health listener: the scrape for a scraper's
/// certificate, 403 for anyone else (these ports are open to participants, and the figures
/// describe the deployment).
pub(crate) fn response(
    scraper: Result<(), mc_rt::identity::IdentityError>,
    metrics: &Metrics,
) -> hyper::Response<crate::http::Body> {
    use hyper::StatusCode;
    let refused = |status: &str, message: String| {
        crate::http::json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "status": status, "message": message }),
        )
    };
    match scraper {
        Ok(()) => text_response(metrics.render()),
        Err(mc_rt::identity::IdentityError::NoCertificate) => refused(
            "certificate_required",
            "metrics need a client certificate from the deployment CA".into(),
        ),
        Err(e) => refused("identity_refused", e.to_string()),
    }
}

/// A scrape's text as an HTTP answer.
pub(crate) fn text_response(text: String) -> hyper::Response<crate::http::Body> {
    hyper::Response::builder()
        .status(hyper::StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(crate::http::Body::from(text))
        .expect("valid response")
}
