//! Reporting to cloud monitoring: every interval, a process POSTs a [`Report`] over HTTPS with its
//! deployment certificate. A failed report is logged and the next one tries again; monitoring
//! being down never affects meetings.

use crate::http::request_json;
use mc_rt::tls::{self, Identity};
use mc_wire::monitor::{LinkState, Report};
use mc_wire::ports::alpn;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The path each outgoing link of a process uses now, for reports and status.
#[derive(Clone, Default)]
pub struct LinkTable(Arc<Mutex<BTreeMap<String, LinkState>>>);

impl LinkTable {
    pub fn up(&self, link: &str, dedicated: bool, port: u16) {
        let path = if dedicated { "dedicated" } else { "fallback" };
        self.0.lock().unwrap().insert(
            link.to_string(),
            LinkState {
                path: path.into(),
                port,
            },
        );
    }

    pub fn down(&self, link: &str) {
        self.0.lock().unwrap().insert(
            link.to_string(),
            LinkState {
                path: "down".into(),
                port: 0,
            },
        );
    }

    pub fn is_up(&self, link: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .get(link)
            .is_some_and(|l| l.path != "down")
    }

    pub fn snapshot(&self) -> BTreeMap<String, LinkState> {
        self.0.lock().unwrap().clone()
    }
}

/// Where and how often to report.
#[derive(Clone)]
pub struct Reporter {
    pub cloud_host: String,
    pub cloud_https_port: u16,
    pub interval_ms: u64,
    pub timeout_ms: u64,
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
        mc_rt::spawn(async move {
            let mut tick = mc_rt::interval(Duration::from_millis(self.interval_ms));
            let mut failing = false;
            loop {
                tick.tick().await;
                let body = serde_json::to_value(report()).expect("reports serialize");
                let sent = async {
                    let addr = mc_rt::net::resolve(&self.cloud_host, self.cloud_https_port)
                        .await
                        .map_err(|e| e.to_string())?;
                    let stream = tls::connect(
                        addr,
                        &self.cloud_host,
                        config.clone(),
                        Duration::from_millis(self.timeout_ms),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    request_json(
                        stream,
                        "POST",
                        &self.cloud_host,
                        "/v1/monitoring/reports",
                        None,
                        Some(body),
                    )
                    .await
                    .map_err(|e| e.to_string())
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
