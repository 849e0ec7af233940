//! Where a mutual-TLS link or report meets its peer's certificate: the peer must be of the role
//! the link expects and be the node it says it is (see [`mc_rt::identity`]). A refusal is logged,
//! counted in `mc_identity_refusals_total{link,reason}`, and the caller changes nothing.

use crate::metrics::Metrics;
use mc_rt::identity::IdentityError;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::net::SocketAddr;

type Labels = Vec<(&'static str, String)>;

/// The `link` label of each checked link (a bounded set).
pub(crate) mod link {
    /// The cloud's status sync, from a controller.
    pub const STATUS_SYNC: &str = "status_sync";
    /// The cloud's notification service, from a controller.
    pub const NOTIFICATION: &str = "notification";
    /// A monitoring report to the cloud, from a controller or MMR VM.
    pub const MONITORING: &str = "monitoring";
    /// The link between an MMR VM and a controller (either end).
    pub const MMR_LINK: &str = "mmr_link";
    /// The HA peer link between two controllers (either end).
    pub const PEER: &str = "peer";
    /// `GET /metrics` and `GET /v1/health`: a scraper's.
    pub const METRICS: &str = "metrics";
}

/// One node's identity checks. Cloning shares the counters.
#[derive(Clone)]
pub(crate) struct IdentityGate {
    refusals: Family<Labels, Counter>,
}

impl IdentityGate {
    /// Registers `mc_identity_refusals_total` with every `links` × reason at zero, so a rate over
    /// it is defined from the first scrape.
    pub fn register(metrics: &Metrics, links: &[&'static str]) -> IdentityGate {
        let refusals = Family::<Labels, Counter>::default();
        for l in links {
            for r in IdentityError::REASONS {
                let _ = refusals.get_or_create(&labels(l, r));
            }
        }
        metrics.register(
            "mc_identity_refusals",
            "Mutual-TLS peers and reports refused because the certificate is not of the role the link expects or names another node, by link and reason",
            refusals.clone(),
        );
        IdentityGate { refusals }
    }

    /// Passes `checked` through; a refusal is logged and counted first.
    pub fn check<T>(
        &self,
        link: &'static str,
        peer: SocketAddr,
        checked: Result<T, IdentityError>,
    ) -> Result<T, IdentityError> {
        if let Err(e) = &checked {
            self.refused(link, peer, e);
        }
        checked
    }

    pub fn refused(&self, link: &'static str, peer: SocketAddr, e: &IdentityError) {
        // Anonymous callers of /metrics are everyday noise; the rest is worth an operator's look.
        if matches!(e, IdentityError::NoCertificate) {
            tracing::debug!(link, client_addr = %peer, "refused: {e}");
        } else {
            tracing::warn!(link, client_addr = %peer, "refused a peer's identity: {e}");
        }
        self.refusals.get_or_create(&labels(link, e.reason())).inc();
    }
}

fn labels(link: &str, reason: &str) -> Labels {
    vec![("link", link.to_string()), ("reason", reason.to_string())]
}
