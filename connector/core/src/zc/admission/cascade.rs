//! Meetings larger than one MMR (DESIGN §5): a meeting whose MMRs are full extends onto another
//! MMR with room, and the MMRs of one meeting link to each other, each forwarding its own
//! participants' packets once to every other and what it receives from them to its own
//! participants only — so every participant sends one stream, hears everyone, and no packet
//! loops. Every participant counts against the MMR it sits on: capacity stays exact, and a
//! meeting is refused only when no MMR of the zone has a seat. An MMR a meeting no longer uses
//! (its last participant there left, or it died) drops out of the cascade; the others go on.
//!
//! A meeting whose size hint exceeds the free seats of its first MMR is spread from its first
//! join over enough MMRs to hold the hint ([`spread_for`](crate::zc::placement::spread_for)),
//! all linked at once, and each participant of a hinted meeting sits on its least filled MMR,
//! so the meeting grows evenly and losing one MMR moves the fewest. Until its crowd arrives
//! such a meeting may be linked on MMRs that hold none of its participants: that is harmless
//! (an MMR forwards a linked meeting with no participants of its own to nobody, no seat is
//! counted, no grant exists to repeat), and the first departure from the meeting drops every
//! MMR that still holds none of it, as an MMR whose last participant left is dropped.

use super::{Meeting, Zc, ZcOutput};
use crate::zc::placement::{by_load, place_new_meeting};
use crate::zc::MmrCommand;
use mc_wire::link::CascadePeer;
use mc_wire::signal::RejectReason;
use mc_wire::{MeetingId, MmrId};
use std::collections::{BTreeMap, BTreeSet};

impl Zc {
    /// Where the next participant of an existing meeting sits: on one of its MMRs with room
    /// (the first, then the others in order; for a hinted meeting the least filled), or else on
    /// a new MMR it extends onto (`true`).
    pub(super) fn seat_for(
        &self,
        meeting_id: MeetingId,
        m: &Meeting,
    ) -> Result<(super::MmrId, bool), (RejectReason, String)> {
        let mut ours = std::iter::once(&m.mmr)
            .chain(&m.cascade)
            .filter_map(|id| self.mmrs.get_key_value(id))
            .filter(|(_, s)| s.healthy && s.has_room());
        let seat = match m.expected_participants {
            Some(_) => ours.min_by(|a, b| by_load(*a, *b)),
            None => ours.next(),
        };
        if let Some((id, _)) = seat {
            return Ok((id.clone(), false));
        }
        let home = &self.mmrs[&m.mmr];
        let full = || {
            (
                RejectReason::MeetingFull,
                format!(
                    "meeting {meeting_id} is full: its MMR {} hosts {} of {} participants, and no other MMR of the zone has room for it to extend onto",
                    m.mmr, home.participants, home.capacity
                ),
            )
        };
        // Only MMRs that take part in cascades, and that this meeting is not on already.
        let cascading = |id: &MmrId| self.mmrs[id].cascade_port.is_some();
        if !cascading(&m.mmr) {
            return Err(full());
        }
        let others: BTreeMap<MmrId, _> = self
            .mmrs
            .iter()
            .filter(|(id, _)| cascading(id) && **id != m.mmr && !m.cascade.contains(*id))
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        match place_new_meeting(&others, None) {
            Ok(id) => Ok((id, true)),
            Err(_) => Err(full()),
        }
    }

    /// Every MMR of the meeting, its first one first.
    pub fn meeting_mmrs(&self, meeting: MeetingId) -> Vec<MmrId> {
        self.meetings
            .get(&meeting)
            .map(|m| std::iter::once(&m.mmr).chain(&m.cascade).cloned().collect())
            .unwrap_or_default()
    }

    /// The meeting no longer uses `mmr` (nobody of it sits there): it leaves the cascade.
    pub(super) fn leave_mmr(&mut self, meeting: MeetingId, mmr: &MmrId) {
        self.leave_mmrs(meeting, std::slice::from_ref(mmr));
    }

    /// Someone left a cascaded meeting that goes on: every MMR of it where none of its
    /// participants sits (the leaver's, or one it was spread over that nobody came to) leaves
    /// the cascade.
    pub(super) fn leave_unused(&mut self, meeting: MeetingId) {
        let Some(m) = self
            .meetings
            .get(&meeting)
            .filter(|m| !m.cascade.is_empty())
        else {
            return;
        };
        let used: BTreeSet<&MmrId> = m
            .participants
            .iter()
            .map(|pid| &self.participants[pid].mmr)
            .collect();
        let unused: Vec<MmrId> = std::iter::once(&m.mmr)
            .chain(&m.cascade)
            .filter(|id| !used.contains(id))
            .cloned()
            .collect();
        if !unused.is_empty() {
            self.leave_mmrs(meeting, &unused);
        }
    }

    /// The meeting leaves `gone` (all of them but at least one of its MMRs). A first MMR that
    /// leaves hands its role to the next.
    fn leave_mmrs(&mut self, meeting: MeetingId, gone: &[MmrId]) {
        let Some(m) = self.meetings.get_mut(&meeting) else {
            return;
        };
        let mut kept = std::iter::once(&m.mmr)
            .chain(&m.cascade)
            .filter(|id| !gone.contains(id))
            .cloned();
        let Some(first) = kept.next() else {
            return;
        };
        let cascade: BTreeSet<MmrId> = kept.collect();
        if first == m.mmr && cascade == m.cascade {
            return;
        }
        let left: Vec<MmrId> = std::iter::once(&m.mmr)
            .chain(&m.cascade)
            .filter(|id| gone.contains(id))
            .cloned()
            .collect();
        m.mmr = first;
        m.cascade = cascade;
        self.cascade_changed(meeting, &left);
    }

    /// The meeting's MMRs changed: each is told the others (and each one it left, that there
    /// are none).
    pub(super) fn cascade_changed(&mut self, meeting: MeetingId, left: &[MmrId]) {
        let all = self.meeting_mmrs(meeting);
        let peers: Vec<CascadePeer> = all.iter().filter_map(|id| self.cascade_peer(id)).collect();
        for id in &all {
            let others = peers.iter().filter(|p| &p.mmr != id).cloned().collect();
            self.outputs.push_back(ZcOutput::Mmr {
                mmr: id.clone(),
                cmd: MmrCommand::Cascade {
                    meeting,
                    peers: others,
                },
            });
        }
        for left in left
            .iter()
            .filter(|l| self.mmrs.get(*l).is_some_and(|s| s.healthy))
        {
            self.outputs.push_back(ZcOutput::Mmr {
                mmr: left.clone(),
                cmd: MmrCommand::Cascade {
                    meeting,
                    peers: Vec::new(),
                },
            });
        }
    }

    fn cascade_peer(&self, id: &MmrId) -> Option<CascadePeer> {
        let s = self.mmrs.get(id)?;
        Some(CascadePeer {
            mmr: id.clone(),
            host: s.media.host.clone(),
            port: s.cascade_port?,
            fallback_port: s.media.tls_port,
        })
    }
}
