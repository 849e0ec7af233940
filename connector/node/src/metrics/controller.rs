//! `mc_zc_*`, `mc_ha_*` and `mc_ready` of a controller: its published status read at scrape time,
//! and the join outcomes and latencies its driver sees go by.

use super::encode::{bool_value, gauge, gauges};
use super::Metrics;
use crate::monitor::LinkTable;
use mc_core::controller::{ConnId, Event, Status};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Labels = Vec<(&'static str, String)>;

/// Join latency buckets, in seconds: a join on a quiet zone takes milliseconds; one parked behind
/// an ownership claim or a busy MMR link takes up to seconds.
const JOIN_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// What a controller counts as it happens. Owned by its driver task.
pub struct ControllerMetrics {
    joins: Family<Labels, Counter>,
    rejections: Family<Labels, Counter>,
    join_duration: Histogram,
    fences: Counter,
    /// When each session that asked to join did so, until it hears the answer. The seam's
    /// monotonic clock: a join on a quiet zone takes well under the wall clock's millisecond.
    asked: BTreeMap<ConnId, mc_rt::Instant>,
}

impl ControllerMetrics {
    /// Registers the controller's metrics in `metrics`, with `status` and `links` read at each
    /// scrape.
    pub(crate) fn register(
        metrics: &Metrics,
        status: Arc<Mutex<Status>>,
        links: LinkTable,
        cloud_link: &'static str,
    ) -> ControllerMetrics {
        let m = ControllerMetrics {
            joins: Family::default(),
            rejections: Family::default(),
            join_duration: Histogram::new(JOIN_BUCKETS_S),
            fences: Counter::default(),
            asked: BTreeMap::new(),
        };
        // Every outcome and reason from zero, so a rate over them is defined from the first scrape.
        for o in ["admitted", "rejected", "redirected"] {
            m.joins
                .get_or_create(&vec![("outcome", o.to_string())])
                .get();
        }
        for r in mc_wire::signal::RejectReason::ALL {
            m.rejections
                .get_or_create(&vec![("reason", r.as_str().to_string())])
                .get();
        }
        metrics.register(
            "mc_zc_joins",
            "Join requests answered, by outcome (admitted, rejected, redirected)",
            m.joins.clone(),
        );
        metrics.register(
            "mc_zc_join_rejections",
            "Join requests rejected, by typed reason",
            m.rejections.clone(),
        );
        metrics.register(
            "mc_zc_join_duration_seconds",
            "Time from a client's join request to its admission",
            m.join_duration.clone(),
        );
        metrics.register(
            "mc_ha_fences",
            "Times this controller's lease ran out and it fenced (stopped hosting)",
            m.fences.clone(),
        );
        metrics.collect(StatusCollector {
            status,
            links,
            cloud_link,
        });
        m
    }

    /// A session asked to join.
    pub(crate) fn join_asked(&mut self, conn: ConnId) {
        self.asked.insert(conn, mc_rt::Instant::now());
    }

    /// A session heard `joined`.
    pub(crate) fn joined(&mut self, conn: ConnId) {
        if let Some(asked) = self.asked.remove(&conn) {
            self.join_duration.observe(asked.elapsed().as_secs_f64());
        }
    }

    /// A connection closed: whatever it asked is answered or moot.
    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.asked.remove(&conn);
    }

    /// Counts what an event says about joins and fencing.
    pub(crate) fn observe(&mut self, event: &Event) {
        let outcome = |o: &str| vec![("outcome", o.to_string())];
        match event {
            Event::Admitted { .. } => {
                self.joins.get_or_create(&outcome("admitted")).inc();
            }
            Event::Rejected {
                session, reason, ..
            } => {
                self.asked.remove(session);
                self.joins.get_or_create(&outcome("rejected")).inc();
                let reason = vec![("reason", reason.as_str().to_string())];
                self.rejections.get_or_create(&reason).inc();
            }
            Event::Redirected { session, .. } => {
                self.asked.remove(session);
                self.joins.get_or_create(&outcome("redirected")).inc();
            }
            Event::Fenced { .. } => {
                self.fences.inc();
            }
            _ => {}
        }
    }
}

struct StatusCollector {
    status: Arc<Mutex<Status>>,
    links: LinkTable,
    cloud_link: &'static str,
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusCollector").finish_non_exhaustive()
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let st = self.status.lock().unwrap().clone();
        let ready = st.ready && self.links.is_up(self.cloud_link);
        gauge(
            &mut enc,
            "mc_ready",
            "1 when this node takes new work",
            bool_value(ready),
        )?;
        gauge(
            &mut enc,
            "mc_zc_meetings",
            "Meetings hosted now",
            st.load.meetings as i64,
        )?;
        gauge(
            &mut enc,
            "mc_zc_participants",
            "Participants admitted now",
            st.load.participants as i64,
        )?;
        gauge(
            &mut enc,
            "mc_zc_capacity_meetings",
            "Meetings this controller may host",
            st.capacity.meetings as i64,
        )?;
        gauge(
            &mut enc,
            "mc_zc_capacity_participants",
            "Participants the MMRs linked to this controller may hold",
            st.capacity.participants as i64,
        )?;
        let mmr = |id: &mc_wire::MmrId| vec![("mmr", id.0.clone())];
        gauges(
            &mut enc,
            "mc_zc_mmr_participants",
            "Participants on each linked MMR, as this controller places them",
            st.zone
                .mmrs
                .iter()
                .map(|(id, (p, _, _))| (mmr(id), *p as i64)),
        )?;
        gauges(
            &mut enc,
            "mc_zc_mmr_capacity_participants",
            "Participants each linked MMR may hold",
            st.zone
                .mmrs
                .iter()
                .map(|(id, (_, c, _))| (mmr(id), *c as i64)),
        )?;
        gauge(
            &mut enc,
            "mc_zc_draining",
            "1 while an operator has this controller drained",
            bool_value(st.draining),
        )?;
        let Some(ha) = &st.ha else { return Ok(()) };
        let now_ms = mc_rt::unix_now_ms();
        let until_ms = st.lease_until_ms.unwrap_or(0);
        let remaining_s = until_ms.saturating_sub(now_ms) as f64 / 1000.0;
        gauge(
            &mut enc,
            "mc_ha_lease_remaining_seconds",
            "How long this controller may go on hosting without an ack from the cloud or its peer",
            remaining_s,
        )?;
        gauge(
            &mut enc,
            "mc_ha_fenced",
            "1 while the lease has run out: the controller hosts and admits nobody",
            bool_value(until_ms <= now_ms),
        )?;
        gauge(
            &mut enc,
            "mc_ha_meetings_owned",
            "Meetings the ownership registry grants this controller",
            ha.owned.len() as i64,
        )?;
        gauge(
            &mut enc,
            "mc_ha_ownership_epoch",
            "The newest ownership epoch among the meetings this controller owns (0: none)",
            ha.owned.iter().map(|o| o.epoch).max().unwrap_or(0) as i64,
        )?;
        gauge(
            &mut enc,
            "mc_ha_peer_up",
            "1 while the HA peer answers",
            bool_value(ha.peer_up),
        )?;
        super::encode::counters(
            &mut enc,
            "mc_ha_takeovers",
            "Meetings this controller took over from its peer",
            [(Vec::new(), ha.takeovers)],
        )
    }
}
