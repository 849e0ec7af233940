//! `mc_mmr_*`: what one MMR forwards, drops and holds, read from its forwarding table.

use super::encode::{counters, gauge, gauges, Labels};
use crate::mmr::{MediaPath, Mmr};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

const PATHS: [MediaPath; 3] = [MediaPath::Udp, MediaPath::Tcp, MediaPath::Tls];

pub(crate) struct MmrCollector {
    pub mmr: Mmr,
    pub capacity: u32,
}

impl std::fmt::Debug for MmrCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmrCollector").finish_non_exhaustive()
    }
}

fn by_path(path: MediaPath) -> Labels {
    vec![("transport", path.to_string())]
}

impl Collector for MmrCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = self.mmr.metrics_snapshot();
        let c = &s.counters;
        gauge(
            &mut enc,
            "mc_mmr_participants",
            "Participants granted on this MMR now",
            s.participants as i64,
        )?;
        gauge(
            &mut enc,
            "mc_mmr_meetings",
            "Meetings with participants on this MMR now",
            s.meetings as i64,
        )?;
        gauge(
            &mut enc,
            "mc_mmr_capacity_participants",
            "Participants this MMR may hold",
            self.capacity as i64,
        )?;
        let dir = |d: &str| vec![("direction", d.to_string())];
        counters(
            &mut enc,
            "mc_mmr_rtp_packets",
            "RTP packets received from participants (in) and copies sent to them (out)",
            [(dir("in"), c.rtp_in), (dir("out"), c.rtp_out)],
        )?;
        counters(
            &mut enc,
            "mc_mmr_rtp_bytes",
            "RTP bytes received from participants (in) and sent to them (out)",
            [(dir("in"), c.rtp_bytes_in), (dir("out"), c.rtp_bytes_out)],
        )?;
        let reason = |r: &str| vec![("reason", r.to_string())];
        counters(
            &mut enc,
            "mc_mmr_dropped_packets",
            "Packets not forwarded, by reason; queue_full counts copies a slow stream lost; rate_limited_* what a source sent over its media_*_per_s",
            [
                (reason("malformed"), c.dropped_malformed),
                (reason("unbound"), c.dropped_unbound),
                (reason("bad_token"), c.refused_bad_token),
                (reason("replayed"), c.refused_replayed),
                (reason("unexpected"), c.dropped_unexpected),
                (reason("queue_full"), s.stream_queue_drops),
                (reason("rate_limited_unbound"), s.guard.rate_limited_unbound),
                (reason("rate_limited_binding"), s.guard.rate_limited_bindings),
            ],
        )?;
        gauges(
            &mut enc,
            "mc_mmr_participants_by_transport",
            "Bound participants by how their media reaches this MMR",
            PATHS.map(|p| {
                (
                    by_path(p),
                    s.bound_by_path.get(&p).copied().unwrap_or(0) as i64,
                )
            }),
        )?;
        counters(
            &mut enc,
            "mc_mmr_bindings",
            "Binding requests answered (first bindings and consent refreshes), by transport",
            PATHS.map(|p| (by_path(p), s.bindings_by_path.get(&p).copied().unwrap_or(0))),
        )?;
        counters(
            &mut enc,
            "mc_mmr_transport_changes",
            "Participants whose media moved between transports (fallback, or back to UDP)",
            s.path_changes.iter().map(|((from, to), n)| {
                (vec![("from", from.to_string()), ("to", to.to_string())], *n)
            }),
        )
    }
}
