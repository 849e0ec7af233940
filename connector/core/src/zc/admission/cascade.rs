//! Meetings larger than one MMR (DESIGN §5): a meeting whose MMRs are full extends onto another
//! MMR with room, and the MMRs of one meeting link to each other, each forwarding its own
//! participants' packets once to every other and what it receives from them to its own
//! participants only — so every participant sends one stream, hears everyone, and no packet
//! loops. Every participant counts against the MMR it sits on: capacity stays exact, and a
//! meeting is refused only when no MMR of the zone has a seat. An MMR a meeting no longer uses
//! (its last participant there left, or it died) drops out of the cascade; the others go on.

use super::{Meeting, Zc, ZcOutput};
use crate::zc::placement::place_new_meeting;
use crate::zc::MmrCommand;
use mc_wire::link::CascadePeer;
use mc_wire::signal::RejectReason;
use mc_wire::{MeetingId, MmrId};
use std::collections::BTreeMap;

impl Zc {
    /// Where the next participant of an existing meeting sits: on one of its MMRs with room
    /// (the first, then the others in order), or else on a new MMR it extends onto (`true`).
    pub(super) fn seat_for(
        &self,
        meeting_id: MeetingId,
        m: &Meeting,
    ) -> Result<(super::MmrId, bool), (RejectReason, String)> {
        let ours = std::iter::once(&m.mmr).chain(&m.cascade);
        for id in ours {
            if self.mmrs.get(id).is_some_and(|s| s.healthy && s.has_room()) {
                return Ok((id.clone(), false));
            }
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

    /// The meeting no longer uses `mmr` (nobody of it sits there): it leaves the cascade. A
    /// first MMR that leaves hands its role to the next.
    pub(super) fn leave_mmr(&mut self, meeting: MeetingId, mmr: &MmrId) {
        let Some(m) = self.meetings.get_mut(&meeting) else {
            return;
        };
        if &m.mmr == mmr {
            let Some(next) = m.cascade.pop_first() else {
                return;
            };
            m.mmr = next;
        } else if !m.cascade.remove(mmr) {
            return;
        }
        self.cascade_changed(meeting, Some(mmr.clone()));
    }

    /// The meeting's MMRs changed: each is told the others (and one it left, that there are
    /// none).
    pub(super) fn cascade_changed(&mut self, meeting: MeetingId, left: Option<MmrId>) {
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
        if let Some(left) = left.filter(|l| self.mmrs.get(l).is_some_and(|s| s.healthy)) {
            self.outputs.push_back(ZcOutput::Mmr {
                mmr: left,
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
