//! Meeting ownership for a controller of an HA pair (DESIGN §5). Before hosting a meeting the ZC
//! claims it from cloud status sync; the joins that asked for it wait for the answer. A meeting
//! that empties is released. When the shell finds the controller's lease has run out, the ZC
//! fences: it stops hosting everything, because the peer may take the meetings over.

use super::{SessionId, Zc, ZcOutput};
use mc_wire::peer::HostedMeeting;
use mc_wire::signal::{RejectReason, ZcToClient};
use mc_wire::status::{ClaimOutcome, OwnedMeeting};
use mc_wire::ticket::TicketClaims;
use mc_wire::MeetingId;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct Ownership {
    /// Meetings granted to this controller, with their epochs.
    owned: BTreeMap<MeetingId, u64>,
    /// Joins waiting for the answer to a claim, by meeting, with their verified tickets.
    parked: BTreeMap<MeetingId, Vec<(SessionId, TicketClaims)>>,
    /// Meetings claimed ahead of their participants (taken over from a dead peer), each held
    /// owned until this time for them to come back, and given back then if none did.
    adopted: BTreeMap<MeetingId, u64>,
}

/// How long a meeting taken over from a dead peer stays owned here, with nobody in it yet, for
/// its participants to come back: they rejoin within seconds, and a few may take longer
/// (the cloud briefly unreachable, a long retry).
pub const ADOPTION_HOLD_MS: u64 = 30_000;

pub(super) enum Gate {
    /// Owned: admit now.
    Owned,
    /// Parked until the claim is answered.
    Parked,
}

impl Zc {
    /// Makes this ZC one of an HA pair: it claims meetings before hosting them.
    pub fn enable_ownership(&mut self) {
        self.ownership.get_or_insert_with(Ownership::default);
    }

    /// Checks ownership of a meeting about to be placed here: owned, or parked behind a claim.
    pub(super) fn gate(&mut self, session: SessionId, claims: &TicketClaims) -> Gate {
        let meeting = claims.meeting;
        let Some(own) = self.ownership.as_mut() else {
            return Gate::Owned;
        };
        if own.owned.contains_key(&meeting) {
            return Gate::Owned;
        }
        // A claim may be in flight with nobody waiting on it yet (a takeover).
        if !own.parked.contains_key(&meeting) {
            self.outputs.push_back(ZcOutput::Claim { meeting });
        }
        let waiting = own.parked.entry(meeting).or_default();
        waiting.push((session, claims.clone()));
        Gate::Parked
    }

    /// Claims `meeting` before anyone asks to join it: the dead peer hosted it, and its
    /// participants are on their way back. Held owned for [`ADOPTION_HOLD_MS`] once granted.
    /// Nothing is claimed beyond the meeting limit, or twice.
    pub fn adopt(&mut self, now_ms: u64, meeting: MeetingId) -> bool {
        let max_meetings = self.limits.max_meetings as usize;
        let Some(own) = self.ownership.as_mut() else {
            return false;
        };
        let claimed = own.owned.len() + own.parked.len();
        if own.owned.contains_key(&meeting)
            || own.parked.contains_key(&meeting)
            || claimed >= max_meetings
        {
            return false;
        }
        own.parked.insert(meeting, Vec::new());
        own.adopted.insert(meeting, now_ms + ADOPTION_HOLD_MS);
        self.outputs.push_back(ZcOutput::Claim { meeting });
        true
    }

    /// When the next meeting taken over ahead of its participants is due to be given back if
    /// still empty.
    pub fn adoption_due_ms(&self) -> Option<u64> {
        let own = self.ownership.as_ref()?;
        own.adopted.values().min().copied()
    }

    /// Gives back every meeting taken over ahead of its participants whose hold ran out with
    /// nobody in it; a meeting hosted by then is an ordinary one.
    pub fn adoptions_due(&mut self, now_ms: u64) {
        let Some(own) = self.ownership.as_mut() else {
            return;
        };
        let due: Vec<MeetingId> = own
            .adopted
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(m, _)| *m)
            .collect();
        for meeting in due {
            own.adopted.remove(&meeting);
        }
        let empty: Vec<MeetingId> = own
            .owned
            .keys()
            .filter(|m| !own.adopted.contains_key(m) && !own.parked.contains_key(m))
            .copied()
            .collect();
        for meeting in empty {
            if !self.meetings.contains_key(&meeting) {
                self.meeting_removed(meeting);
            }
        }
    }

    pub(super) fn is_parked(&self, session: SessionId) -> bool {
        self.ownership.as_ref().is_some_and(|o| {
            o.parked
                .values()
                .any(|w| w.iter().any(|(s, _)| *s == session))
        })
    }

    pub(super) fn unpark(&mut self, session: SessionId) {
        if let Some(own) = self.ownership.as_mut() {
            for waiting in own.parked.values_mut() {
                waiting.retain(|(s, _)| *s != session);
            }
        }
    }

    /// The cloud answered a claim.
    pub fn claim_answered(&mut self, now_ms: u64, meeting: MeetingId, outcome: ClaimOutcome) {
        let Some(own) = self.ownership.as_mut() else {
            return;
        };
        let waiting = own.parked.remove(&meeting).unwrap_or_default();
        if !matches!(outcome, ClaimOutcome::Granted { .. }) {
            // Not ours (yet): its participants claim it again when they come.
            own.adopted.remove(&meeting);
        }
        match outcome {
            ClaimOutcome::Granted { epoch } => {
                own.owned.insert(meeting, epoch);
                for (session, claims) in waiting {
                    if let Err((reason, message)) = self.admit_verified(now_ms, session, claims) {
                        self.refuse(session, reason, message);
                    }
                }
                // Every waiting join was refused or left: give the meeting back, unless it
                // was taken over ahead of its participants.
                let adopted = own_adopted(&self.ownership, meeting);
                if !self.meetings.contains_key(&meeting) && !adopted {
                    self.meeting_removed(meeting);
                }
            }
            ClaimOutcome::HostedBy {
                controller,
                signalling,
            } => {
                for (session, _) in waiting {
                    let message = format!("meeting {meeting} is hosted by controller {controller}");
                    self.outputs.push_back(ZcOutput::Reply {
                        session,
                        msg: ZcToClient::Redirect {
                            controller: controller.clone(),
                            host: signalling.host.clone(),
                            port: signalling.port,
                            fallback_port: signalling.fallback_port,
                            message,
                        },
                    });
                    self.outputs.push_back(ZcOutput::Close { session });
                }
            }
            ClaimOutcome::Retry {
                message,
                retry_after_ms,
            } => self.refuse_waiting(waiting, &message, retry_after_ms),
        }
    }

    /// A claim could not be asked or answered (the cloud link is down).
    pub fn claim_failed(&mut self, meeting: MeetingId, reason: &str) {
        let waiting = self
            .ownership
            .as_mut()
            .and_then(|o| {
                o.adopted.remove(&meeting);
                o.parked.remove(&meeting)
            })
            .unwrap_or_default();
        self.refuse_waiting(
            waiting,
            &format!("cannot claim meeting {meeting} from the cloud: {reason}; retry shortly"),
            None,
        );
    }

    /// Every outstanding claim failed (the cloud link was lost).
    pub fn claims_failed(&mut self, reason: &str) {
        let meetings: Vec<MeetingId> = self
            .ownership
            .as_ref()
            .map(|o| o.parked.keys().copied().collect())
            .unwrap_or_default();
        for m in meetings {
            self.claim_failed(m, reason);
        }
    }

    fn refuse_waiting(
        &mut self,
        waiting: Vec<(SessionId, TicketClaims)>,
        message: &str,
        retry_after_ms: Option<u64>,
    ) {
        for (session, _) in waiting {
            self.outputs.push_back(ZcOutput::Reply {
                session,
                msg: ZcToClient::Rejected {
                    reason: RejectReason::NotReady,
                    message: message.to_string(),
                    retry_after_ms,
                },
            });
            self.outputs.push_back(ZcOutput::Close { session });
        }
    }

    /// A meeting left this ZC because its MMR died: its participants are told to come straight
    /// back, so its ownership is held for them as for a meeting taken over (and given back if
    /// none has returned when the hold runs out). Claiming it again could need the cloud, which
    /// may be unreachable just then.
    pub(super) fn hold_for_rejoin(&mut self, now_ms: u64, meeting: MeetingId) {
        match self.ownership.as_mut() {
            Some(own) if own.owned.contains_key(&meeting) => {
                own.adopted.insert(meeting, now_ms + ADOPTION_HOLD_MS);
            }
            _ => self.meeting_removed(meeting),
        }
    }

    /// A meeting left this ZC (it emptied or was moved): release its ownership.
    pub(super) fn meeting_removed(&mut self, meeting: MeetingId) {
        if let Some(epoch) = self
            .ownership
            .as_mut()
            .and_then(|o| o.owned.remove(&meeting))
        {
            self.outputs.push_back(ZcOutput::Release { meeting, epoch });
        }
    }

    /// The lease ran out: stop hosting every meeting now, before the peer may take them over.
    /// Participants are told to join again; nothing is released (the cloud is unreachable, and
    /// the registry hands the meetings over on its own). Returns the meetings fenced.
    pub fn fence(&mut self, reason: &str) -> usize {
        let Some(own) = self.ownership.as_mut() else {
            return 0;
        };
        own.owned.clear();
        own.adopted.clear();
        let parked: Vec<MeetingId> = own.parked.keys().copied().collect();
        for m in parked {
            self.claim_failed(m, reason);
        }
        let meetings = self.meetings_on(None);
        for m in &meetings {
            self.move_meeting(*m, &format!("controller fenced: {reason}; join again"));
        }
        meetings.len()
    }

    /// The cloud says these meetings were taken over while this controller was away: their
    /// participants go to the new owner.
    pub fn revoked(&mut self, meetings: &[MeetingId]) {
        for m in meetings {
            if let Some(own) = self.ownership.as_mut() {
                own.owned.remove(m);
                own.adopted.remove(m);
            }
            self.move_meeting(
                *m,
                "the meeting was taken over by the other controller; join again",
            );
        }
    }

    /// Whether this ZC owns any meeting (hosted, or granted and about to be).
    pub fn owns_any(&self) -> bool {
        self.ownership.as_ref().is_some_and(|o| !o.owned.is_empty())
    }

    /// What this ZC owns, to list when it registers.
    pub fn owned(&self) -> Vec<OwnedMeeting> {
        self.ownership
            .iter()
            .flat_map(|o| o.owned.iter())
            .map(|(meeting, epoch)| OwnedMeeting {
                meeting: *meeting,
                epoch: *epoch,
            })
            .collect()
    }

    /// Whether [`owned`](Self::owned) would give `owned` now, found without building it.
    pub fn owned_is(&self, owned: &[OwnedMeeting]) -> bool {
        let mine = self.ownership.iter().flat_map(|o| o.owned.iter());
        mine.clone().count() == owned.len()
            && mine
                .zip(owned)
                .all(|((meeting, epoch), o)| o.meeting == *meeting && o.epoch == *epoch)
    }

    /// Every hosted meeting with its epoch, MMR and participants, for the peer.
    pub fn hosted(&self) -> Vec<HostedMeeting> {
        self.meetings
            .iter()
            .map(|(id, m)| HostedMeeting {
                meeting: *id,
                epoch: self
                    .ownership
                    .as_ref()
                    .and_then(|o| o.owned.get(id).copied())
                    .unwrap_or(0),
                mmr: m.mmr.clone(),
                participants: m.participants.len() as u32,
            })
            .collect()
    }
}

fn own_adopted(ownership: &Option<Ownership>, meeting: MeetingId) -> bool {
    ownership
        .as_ref()
        .is_some_and(|o| o.adopted.contains_key(&meeting))
}
