//! Sending RTP with proper sequence numbers and timestamps, and counting what arrives per source
//! (SSRC), with loss estimated from sequence-number gaps (RFC 3550 A.3, simplified).

use mc_wire::rtp::{RtpHeader, RtpPacket};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// How a participant's media reaches its MMR, best first (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaPath {
    Udp,
    Tcp,
    Tls,
}

impl fmt::Display for MediaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaPath::Udp => "udp",
            MediaPath::Tcp => "tcp",
            MediaPath::Tls => "tls",
        })
    }
}

/// Opus-like defaults: 20 ms packets on a 48 kHz clock.
pub const PAYLOAD_TYPE: u8 = 111;
pub const TIMESTAMP_STEP: u32 = 960;

#[derive(Debug, Clone)]
pub struct RtpSender {
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
    pub sent: u64,
}

impl RtpSender {
    /// `ssrc`, first sequence number and first timestamp are random per RFC 3550; the caller draws them.
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> RtpSender {
        RtpSender {
            ssrc,
            sequence: first_sequence,
            timestamp: first_timestamp,
            sent: 0,
        }
    }

    pub fn next_packet(&mut self, payload: Vec<u8>) -> Vec<u8> {
        let p = RtpPacket {
            marker: self.sent == 0,
            payload_type: PAYLOAD_TYPE,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrc: vec![],
            payload,
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(TIMESTAMP_STEP);
        self.sent += 1;
        p.encode()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    pub received: u64,
    /// Packets the sequence numbers say were sent but never arrived (so far).
    pub lost: u64,
    /// The longest time between two packets of this source that arrived, in milliseconds: how
    /// long the receiver heard nothing from it while both were in the meeting (a failover shows
    /// here as one long gap).
    pub longest_gap_ms: u64,
    #[serde(skip)]
    highest_extended: Option<u64>,
    #[serde(skip)]
    last_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaStats {
    pub by_source: BTreeMap<u32, SourceStats>,
    pub malformed: u64,
}

impl MediaStats {
    /// Counts a packet that arrived at `now_ms`; the source's SSRC, or `None` when it is not RTP.
    pub fn on_packet(&mut self, now_ms: u64, packet: &[u8]) -> Option<u32> {
        let Ok(h) = RtpHeader::parse(packet) else {
            self.malformed += 1;
            return None;
        };
        let s = self.by_source.entry(h.ssrc).or_default();
        s.received += 1;
        if let Some(last) = s.last_at_ms.replace(now_ms) {
            s.longest_gap_ms = s.longest_gap_ms.max(now_ms.saturating_sub(last));
        }
        match s.highest_extended {
            None => s.highest_extended = Some(h.sequence as u64 + (1 << 16)),
            Some(high) => {
                // Place the 16-bit sequence in the 64-bit space nearest to the highest seen.
                let base = high & !0xffff;
                let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
                let ext = candidates
                    .iter()
                    .map(|b| b + h.sequence as u64)
                    .min_by_key(|c| c.abs_diff(high))
                    .expect("three candidates");
                if ext > high {
                    s.lost += ext - high - 1;
                    s.highest_extended = Some(ext);
                } else if s.lost > 0 {
                    // A late (reordered) packet fills a gap we had counted as lost.
                    s.lost -= 1;
                }
            }
        }
        Some(h.ssrc)
    }

    pub fn received_total(&self) -> u64 {
        self.by_source.values().map(|s| s.received).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_as_loss_across_wraparound_and_late_packets_fill_them() {
        let mut tx = RtpSender::new(42, 65_530, 0);
        let packets: Vec<_> = (0..12).map(|_| tx.next_packet(vec![1, 2, 3])).collect();
        let mut rx = MediaStats::default();
        // One packet every 20 ms; packets 3 and 8 are lost, so those gaps are 40 ms.
        for (i, p) in packets.iter().enumerate() {
            if i != 3 && i != 8 {
                rx.on_packet(i as u64 * 20, p);
            }
        }
        let s = &rx.by_source[&42];
        assert_eq!((s.received, s.lost, s.longest_gap_ms), (10, 2, 40));
        rx.on_packet(500, &packets[3]);
        assert_eq!(rx.by_source[&42].lost, 1);
        assert_eq!(
            rx.by_source[&42].longest_gap_ms,
            500 - 11 * 20,
            "the late packet came after a silence"
        );
        assert_eq!(rx.on_packet(600, &[0u8; 3]), None);
        assert_eq!(rx.malformed, 1);
    }
}
