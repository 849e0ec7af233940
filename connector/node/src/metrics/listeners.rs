//! `mc_listener_*`: each TCP listener's open connections, and those it refused or closed itself
//! (caps, deadlines), by reason. Read from the listeners' gates at scrape time.

use super::encode::{counters, gauges};
use crate::listen::Gate;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

#[derive(Debug)]
pub(crate) struct ListenerCollector(pub Vec<Gate>);

impl Collector for ListenerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let snaps: Vec<_> = self.0.iter().map(Gate::snapshot).collect();
        gauges(
            &mut enc,
            "mc_listener_connections_open",
            "Connections each TCP listener holds now (under max_conns_per_listener)",
            snaps
                .iter()
                .map(|s| (vec![("listener", s.listener.to_string())], s.open as i64)),
        )?;
        counters(
            &mut enc,
            "mc_listener_connections_closed",
            "Connections a TCP listener refused (a cap) or closed itself (a deadline), by reason",
            snaps.iter().flat_map(|s| {
                s.closed.iter().map(|(reason, n)| {
                    let labels = vec![
                        ("listener", s.listener.to_string()),
                        ("reason", reason.as_str().to_string()),
                    ];
                    (labels, *n)
                })
            }),
        )
    }
}
