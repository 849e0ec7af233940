//! What a controller did that an operator or a checker cares about, typed. The display of each
//! event is its line in the event log; checkers match on the variants, not on the text.

use super::ConnId;
use mc_wire::monitor::LinkPath;
use mc_wire::signal::RejectReason;
use mc_wire::{ControllerId, MeetingId, MmrId, ParticipantId};
use std::fmt;

/// What an operator's drain applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainScope {
    Controller(ControllerId),
    Mmr(MmrId),
}

impl fmt::Display for DrainScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainScope::Controller(id) => write!(f, "controller {id}"),
            DrainScope::Mmr(id) => write!(f, "MMR {id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Rejected {
        session: ConnId,
        reason: RejectReason,
        message: String,
    },
    Ended {
        session: ConnId,
        reason: String,
    },
    Redirected {
        session: ConnId,
        controller: ControllerId,
    },
    Admitted {
        participant: ParticipantId,
        meeting: MeetingId,
        mmr: MmrId,
    },
    MmrLinked {
        mmr: MmrId,
        from: String,
        capacity: u32,
        media: String,
    },
    MmrDown {
        mmr: MmrId,
        reason: String,
    },
    Registered {
        port: u16,
        path: LinkPath,
    },
    TakenOverMeanwhile {
        meetings: usize,
    },
    CloudLinkLost {
        reason: String,
    },
    CloudLinkMoving {
        port: u16,
    },
    PeerLinkUp {
        host: String,
        port: u16,
    },
    PeerLinkMoving {
        host: String,
        port: u16,
    },
    PeerLinkLost {
        host: String,
        reason: String,
    },
    PeerRefusedUnconfigured {
        controller: ControllerId,
    },
    PeerDown {
        peer: ControllerId,
        silent_ms: u64,
        meetings: usize,
        participants: u32,
    },
    /// The silent peer's lease has run out: its meetings are claimed here before their
    /// participants return (`claimed` of the `meetings` it hosted; the rest exceed the meeting
    /// limit or are claimed already).
    TakingOver {
        peer: ControllerId,
        meetings: usize,
        claimed: usize,
    },
    Fenced {
        lease_ms: u64,
        meetings: usize,
    },
    MeetingEndedByCloud {
        meeting: MeetingId,
        reason: String,
        participants: usize,
    },
    ParticipantRemovedByCloud {
        participant: ParticipantId,
        meeting: MeetingId,
    },
    Draining {
        scope: DrainScope,
        on: bool,
        deadline_ms: u64,
    },
    MovedMeeting {
        meeting: MeetingId,
        participants: usize,
        scope: DrainScope,
    },
    Drained {
        scope: DrainScope,
    },
    // Diagnostics: traced for an operator, kept out of the event log.
    SessionNeverJoined {
        session: ConnId,
    },
    SessionMalformed {
        session: ConnId,
        error: String,
    },
    MmrLinkWithoutHello {
        conn: ConnId,
    },
    PeerLinkRefused {
        conn: ConnId,
        why: &'static str,
    },
    CommandForUnlinkedMmr {
        mmr: MmrId,
    },
}

impl Event {
    /// Whether the event belongs in the event log (the rest are diagnostics for tracing only).
    pub fn logged(&self) -> bool {
        !matches!(
            self,
            Event::SessionNeverJoined { .. }
                | Event::SessionMalformed { .. }
                | Event::MmrLinkWithoutHello { .. }
                | Event::PeerLinkRefused { .. }
                | Event::CommandForUnlinkedMmr { .. }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Rejected {
                session,
                reason,
                message,
            } => write!(f, "rejected session {session}: {reason}: {message}"),
            Event::Ended { session, reason } => write!(f, "ended session {session}: {reason}"),
            Event::Redirected {
                session,
                controller,
            } => write!(f, "redirected session {session} to {controller}"),
            Event::Admitted {
                participant,
                meeting,
                mmr,
            } => write!(f, "admitted {participant} to {meeting} on {mmr}"),
            Event::MmrLinked {
                mmr,
                from,
                capacity,
                media,
            } => write!(
                f,
                "MMR {mmr} linked from {from}: capacity {capacity}, media {media}"
            ),
            Event::MmrDown { mmr, reason } => write!(f, "MMR {mmr} is down: {reason}"),
            Event::Registered { port, path } => write!(
                f,
                "registered with the cloud on port {port} ({:?})",
                path
            ),
            Event::TakenOverMeanwhile { meetings } => write!(
                f,
                "the cloud says {meetings} of this controller's meetings were taken over meanwhile"
            ),
            Event::CloudLinkLost { reason } => write!(f, "cloud link lost: {reason}"),
            Event::CloudLinkMoving { port } => write!(f, "cloud link moving back to port {port}"),
            Event::PeerLinkUp { host, port } => {
                write!(f, "peer link to {host} up on port {port}")
            }
            Event::PeerLinkMoving { host, port } => {
                write!(f, "peer link to {host} moving back to port {port}")
            }
            Event::PeerLinkLost { host, reason } => {
                write!(f, "peer link to {host} lost: {reason}")
            }
            Event::PeerRefusedUnconfigured { controller } => write!(
                f,
                "refused a peer link from {controller}: this controller has no peer configured"
            ),
            Event::PeerDown {
                peer,
                silent_ms,
                meetings,
                participants,
            } => write!(
                f,
                "peer {peer} is down (silent {silent_ms} ms): its {meetings} meetings with {participants} participants move here once its lease has run out and the cloud agrees"
            ),
            Event::TakingOver {
                peer,
                meetings,
                claimed,
            } => write!(
                f,
                "peer {peer}'s lease has run out: claiming {claimed} of the {meetings} meetings it hosted, ahead of their participants"
            ),
            Event::Fenced { lease_ms, meetings } => write!(
                f,
                "fenced: lease of {lease_ms} ms ran out with neither the cloud nor the peer reachable; stopped hosting {meetings} meetings"
            ),
            Event::MeetingEndedByCloud {
                meeting,
                reason,
                participants,
            } => write!(
                f,
                "meeting {meeting} ended by the cloud ({reason}): {participants} participants disconnected"
            ),
            Event::ParticipantRemovedByCloud {
                participant,
                meeting,
            } => write!(f, "{participant} removed from {meeting} by the cloud"),
            Event::Draining {
                scope,
                on,
                deadline_ms,
            } => write!(
                f,
                "{scope} {} (deadline {deadline_ms} ms)",
                if *on { "draining" } else { "undrained" }
            ),
            Event::MovedMeeting {
                meeting,
                participants,
                scope,
            } => write!(
                f,
                "moved meeting {meeting} ({participants} participants) off {scope}"
            ),
            Event::Drained { scope } => write!(f, "{scope} drained"),
            Event::SessionNeverJoined { session } => write!(
                f,
                "closing signalling session {session}, which sent no join in time"
            ),
            Event::SessionMalformed { session, error } => {
                write!(f, "closing signalling session {session}: {error}")
            }
            Event::MmrLinkWithoutHello { conn } => write!(
                f,
                "closed MMR link {conn}: the first message on an MMR link must be a hello"
            ),
            Event::PeerLinkRefused { conn, why } => write!(f, "closed peer link {conn}: {why}"),
            Event::CommandForUnlinkedMmr { mmr } => {
                write!(f, "a command for MMR {mmr}, whose link is gone, was dropped")
            }
        }
    }
}
