//! `mc_cloud_*`: the cloud's API traffic, tickets, notification backlog and controllers.

use super::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Labels = Vec<(&'static str, String)>;

/// Why an API request was refused by a limit: the `reason` of `mc_cloud_api_refused_total`.
pub(crate) const REFUSAL_REASONS: [&str; 4] = [
    "rate_limited",
    "rate_limited_source",
    "body_too_large",
    "headers_too_large",
];

/// The cloud's metrics. Cloning shares them.
#[derive(Clone)]
pub struct CloudMetrics {
    pub metrics: Metrics,
    api_requests: Family<Labels, Counter>,
    api_refused: Family<Labels, Counter>,
    pub(crate) tickets: Counter,
    pub(crate) reports: Counter,
    pub(crate) takeovers: Counter,
    /// Refused peers of status sync, notification, monitoring and `/metrics`.
    pub(crate) identity: crate::identity_gate::IdentityGate,
    backlog: Gauge,
    subscriber_count: Gauge,
    controllers: Family<Labels, Gauge>,
    /// The newest notification each subscribed controller has been sent, by subscription.
    subscribers: Arc<Mutex<BTreeMap<u64, u64>>>,
    next_subscriber: Arc<AtomicU64>,
}

/// What a scrape reads from the cloud's state (in its turn).
pub(crate) struct CloudGauges {
    pub latest_notification: u64,
    pub controllers_live: usize,
    pub controllers_down: usize,
}

impl CloudMetrics {
    pub fn new() -> CloudMetrics {
        let metrics = Metrics::new("cloud");
        use crate::identity_gate::{link, IdentityGate};
        let identity = IdentityGate::register(
            &metrics,
            &[
                link::STATUS_SYNC,
                link::NOTIFICATION,
                link::MONITORING,
                link::METRICS,
            ],
        );
        let m = CloudMetrics {
            metrics,
            identity,
            api_requests: Family::default(),
            api_refused: Family::default(),
            tickets: Counter::default(),
            reports: Counter::default(),
            takeovers: Counter::default(),
            backlog: Gauge::default(),
            subscriber_count: Gauge::default(),
            controllers: Family::default(),
            subscribers: Arc::default(),
            next_subscriber: Arc::default(),
        };
        let r = &m.metrics;
        r.register(
            "mc_cloud_api_requests",
            "HTTPS API requests, by route template, method and status class",
            m.api_requests.clone(),
        );
        r.register(
            "mc_cloud_api_refused",
            "HTTPS API requests refused by a limit, by reason (rate_limited: over its API key's rate; rate_limited_source: over its address's rate, without a valid key; body_too_large; headers_too_large)",
            m.api_refused.clone(),
        );
        r.register(
            "mc_cloud_tickets_issued",
            "Join tickets issued",
            m.tickets.clone(),
        );
        r.register(
            "mc_cloud_monitoring_reports",
            "Monitoring reports accepted from deployment hosts",
            m.reports.clone(),
        );
        r.register(
            "mc_cloud_takeovers",
            "Meetings whose ownership status sync moved from a silent controller to another",
            m.takeovers.clone(),
        );
        r.register(
            "mc_cloud_notification_backlog",
            "Notifications not yet sent to the slowest subscribed controller",
            m.backlog.clone(),
        );
        r.register(
            "mc_cloud_notification_subscribers",
            "Controllers subscribed to notifications now",
            m.subscriber_count.clone(),
        );
        r.register(
            "mc_cloud_controllers",
            "Controllers registered with status sync, by state (live, down)",
            m.controllers.clone(),
        );
        // Every reason from the start, at 0: the family is served before the first refusal, and
        // a rate over it is 0 rather than absent.
        for reason in REFUSAL_REASONS {
            let _ = m
                .api_refused
                .get_or_create(&vec![("reason", reason.to_string())]);
        }
        let ready = Gauge::<i64>::default();
        ready.set(1);
        r.register(
            "mc_ready",
            "1 when this node takes new work (the cloud always does while it runs)",
            ready,
        );
        m
    }

    /// Counts one answered API request. `path` is reduced to its route template, so ids never
    /// become labels.
    pub(crate) fn api_request(&self, method: &hyper::Method, path: &str, status: u16) {
        let method = match *method {
            hyper::Method::GET => "GET",
            hyper::Method::POST => "POST",
            hyper::Method::DELETE => "DELETE",
            hyper::Method::PUT => "PUT",
            hyper::Method::PATCH => "PATCH",
            hyper::Method::HEAD => "HEAD",
            _ => "other",
        };
        let labels = vec![
            ("route", route_template(path).to_string()),
            ("method", method.to_string()),
            ("status_class", format!("{}xx", status / 100)),
        ];
        self.api_requests.get_or_create(&labels).inc();
    }

    /// Counts a request refused by one of the API's limits; `reason` is one of a fixed few.
    pub(crate) fn api_refused(&self, reason: &'static str) {
        debug_assert!(REFUSAL_REASONS.contains(&reason), "{reason}");
        self.api_refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// A controller subscribed to notifications; the guard tracks what it was sent.
    pub(crate) fn subscriber(&self, sent_seq: u64) -> Subscriber {
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.subscribers.lock().unwrap().insert(id, sent_seq);
        Subscriber {
            id,
            subscribers: self.subscribers.clone(),
        }
    }

    /// The scrape, with the gauges read from the cloud's state now.
    pub(crate) fn render(&self, g: CloudGauges) -> String {
        let subs = self.subscribers.lock().unwrap();
        let slowest = subs
            .values()
            .min()
            .copied()
            .unwrap_or(g.latest_notification);
        self.backlog
            .set(g.latest_notification.saturating_sub(slowest) as i64);
        self.subscriber_count.set(subs.len() as i64);
        drop(subs);
        let state = |s: &str| vec![("state", s.to_string())];
        self.controllers
            .get_or_create(&state("live"))
            .set(g.controllers_live as i64);
        self.controllers
            .get_or_create(&state("down"))
            .set(g.controllers_down as i64);
        self.metrics.render()
    }
}

impl Default for CloudMetrics {
    fn default() -> Self {
        CloudMetrics::new()
    }
}

/// One notification subscription's progress; forgotten when dropped.
pub(crate) struct Subscriber {
    id: u64,
    subscribers: Arc<Mutex<BTreeMap<u64, u64>>>,
}

impl Subscriber {
    pub fn sent(&self, seq: u64) {
        self.subscribers.lock().unwrap().insert(self.id, seq);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.subscribers.lock().unwrap().remove(&self.id);
    }
}

/// The route a request path belongs to, with ids replaced: label values stay a short fixed set.
fn route_template(path: &str) -> &'static str {
    let seg: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match seg.as_slice() {
        ["healthz"] => "/healthz",
        ["metrics"] => "/metrics",
        ["v1", "users"] => "/v1/users",
        ["v1", "users", _] => "/v1/users/{id}",
        ["v1", "meetings"] => "/v1/meetings",
        ["v1", "meetings", _] => "/v1/meetings/{id}",
        ["v1", "meetings", _, "end"] => "/v1/meetings/{id}/end",
        ["v1", "meetings", _, "tickets"] => "/v1/meetings/{id}/tickets",
        ["v1", "meetings", _, "participants", _] => "/v1/meetings/{id}/participants/{pid}",
        ["v1", "controllers", _, "drain"] => "/v1/controllers/{id}/drain",
        ["v1", "mmrs", _, "drain"] => "/v1/mmrs/{id}/drain",
        ["v1", "status"] => "/v1/status",
        ["v1", "zone"] => "/v1/zone",
        ["v1", "events"] => "/v1/events",
        ["v1", "monitoring", "reports"] => "/v1/monitoring/reports",
        ["v1", "openapi.json"] => "/v1/openapi.json",
        ["dashboard"] => "/dashboard",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_hide_ids_and_unknown_paths() {
        assert_eq!(
            route_template("/v1/meetings/42/tickets"),
            "/v1/meetings/{id}/tickets"
        );
        assert_eq!(
            route_template("/v1/meetings/42/participants/7/"),
            "/v1/meetings/{id}/participants/{pid}"
        );
        assert_eq!(
            route_template("/v1/controllers/controller-1/drain"),
            "/v1/controllers/{id}/drain"
        );
        assert_eq!(route_template("/v1/meetings/42/x"), "other");
        assert_eq!(route_template("/../etc/passwd"), "other");
    }

    #[test]
    fn refusals_are_counted_by_reason_and_the_family_is_served_before_any() {
        let m = CloudMetrics::new();
        let gauges = || CloudGauges {
            latest_notification: 0,
            controllers_live: 0,
            controllers_down: 0,
        };
        let text = m.render(gauges());
        assert!(
            text.contains("mc_cloud_api_refused_total{reason=\"headers_too_large\"} 0\n"),
            "{text}"
        );
        m.api_refused("rate_limited");
        m.api_refused("rate_limited");
        m.api_refused("body_too_large");
        let text = m.render(gauges());
        assert!(
            text.contains("mc_cloud_api_refused_total{reason=\"rate_limited\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mc_cloud_api_refused_total{reason=\"body_too_large\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn backlog_is_what_the_slowest_subscriber_has_not_been_sent() {
        let m = CloudMetrics::new();
        let (a, b) = (m.subscriber(3), m.subscriber(5));
        let gauges = |latest| CloudGauges {
            latest_notification: latest,
            controllers_live: 1,
            controllers_down: 0,
        };
        assert!(m
            .render(gauges(9))
            .contains("mc_cloud_notification_backlog 6\n"));
        a.sent(9);
        assert!(m
            .render(gauges(9))
            .contains("mc_cloud_notification_backlog 4\n"));
        drop(b);
        let text = m.render(gauges(9));
        assert!(text.contains("mc_cloud_notification_backlog 0\n"), "{text}");
        assert!(
            text.contains("mc_cloud_notification_subscribers 1\n"),
            "{text}"
        );
    }
}
