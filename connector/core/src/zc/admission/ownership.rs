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
}

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
        let waiting = own.parked.entry(meeting).or_default();
        if waiting.is_empty() {
            self.outputs.push_back(ZcOutput::Claim { meeting });
        }
        waiting.push((session, claims.clone()));
        Gate::Parked
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
        match outcome {
            ClaimOutcome::Granted { epoch } => {
                own.owned.insert(meeting, epoch);
                for (session, claims) in waiting {
                    if let Err((reason, message)) = self.admit_verified(now_ms, session, claims) {
                        self.refuse(session, reason, message);
                    }
                }
                // Every waiting join was refused or left: give the meeting back.
                if !self.meetings.contains_key(&meeting) {
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
            ClaimOutcome::Retry { message } => self.refuse_waiting(waiting, &message),
        }
    }

    /// A claim could not be asked or answered (the cloud link is down).
    pub fn claim_failed(&mut self, meeting: MeetingId, reason: &str) {
        let waiting = self
            .ownership
            .as_mut()
            .and_then(|o| o.parked.remove(&meeting))
            .unwrap_or_default();
        self.refuse_waiting(
            waiting,
            &format!("cannot claim meeting {meeting} from the cloud: {reason}; retry shortly"),
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

    fn refuse_waiting(&mut self, waiting: Vec<(SessionId, TicketClaims)>, message: &str) {
        for (session, _) in waiting {
            self.outputs.push_back(ZcOutput::Reply {
                session,
                msg: ZcToClient::Rejected {
                    reason: RejectReason::NotReady,
                    message: message.to_string(),
                },
            });
            self.outputs.push_back(ZcOutput::Close { session });
        }
    }

    /// A meeting left this ZC (it emptied or its MMR died): release its ownership.
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
