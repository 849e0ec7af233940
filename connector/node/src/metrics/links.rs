//! `mc_link_*`: the path each outgoing link uses now, and its reconnects.

use super::encode::{counters, gauges};
use crate::monitor::LinkTable;
use mc_wire::monitor::LinkPath;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

const PATHS: [LinkPath; 3] = [LinkPath::Dedicated, LinkPath::Fallback, LinkPath::Down];

#[derive(Debug)]
pub(crate) struct LinkCollector(pub LinkTable);

impl Collector for LinkCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let links = self.0.with_reconnects();
        // A state set: one series per possible path, 1 for the one in use, so an alert can say
        // "on fallback for 15 minutes" without knowing the previous value.
        gauges(
            &mut enc,
            "mc_link_path",
            "Path each outgoing link uses now (1) among dedicated, fallback (port 443) and down",
            links.iter().flat_map(|(name, path, _)| {
                PATHS.iter().map(move |p| {
                    let labels = vec![("link", name.clone()), ("path", p.to_string())];
                    (labels, (p == path) as i64)
                })
            }),
        )?;
        counters(
            &mut enc,
            "mc_link_reconnects",
            "Times each outgoing link came up again, or moved between paths",
            links
                .iter()
                .map(|(name, _, n)| (vec![("link", name.clone())], *n)),
        )
    }
}
