//! A controller core's events as structured log fields (see `fields`). Kept in the shell: the
//! core's events stay plain values, and how a log presents them is the shell's business.

use super::fields::Fields;
use mc_core::controller::{DrainScope, Event};

pub(super) fn fields(e: &Event) -> Fields<'_> {
    match e {
        Event::Rejected {
            session,
            reason,
            message,
        } => Fields::new(
            "session_rejected",
            format!("rejected session: {reason}: {message}"),
        )
        .conn(*session),
        Event::Ended { session, reason } => {
            Fields::new("session_ended", format!("ended session: {reason}")).conn(*session)
        }
        Event::Redirected {
            session,
            controller,
        } => Fields::new("session_redirected", "redirected session")
            .conn(*session)
            .moved_to(&controller.0),
        Event::Admitted {
            participant,
            meeting,
            mmr,
        } => Fields::new("admitted", "admitted a participant to a meeting on an MMR")
            .participant(*participant)
            .meeting(*meeting)
            .mmr(&mmr.0),
        Event::MmrLinked {
            mmr,
            from,
            capacity,
            media,
        } => Fields::new(
            "mmr_linked",
            format!("MMR linked from {from}: capacity {capacity}, media {media}"),
        )
        .mmr(&mmr.0),
        Event::MmrDown { mmr, reason } => {
            Fields::new("mmr_down", format!("MMR is down: {reason}")).mmr(&mmr.0)
        }
        Event::Registered { .. } => Fields::new("registered", e.to_string()),
        Event::TakenOverMeanwhile { .. } => Fields::new("taken_over_meanwhile", e.to_string()),
        Event::CloudLinkLost { .. } => Fields::new("cloud_link_lost", e.to_string()),
        Event::CloudLinkMoving { .. } => Fields::new("cloud_link_moving_back", e.to_string()),
        // The peer is named by its host here, an address of the deployment, not an id.
        Event::PeerLinkUp { .. } => Fields::new("peer_link_up", e.to_string()),
        Event::PeerLinkMoving { .. } => Fields::new("peer_link_moving_back", e.to_string()),
        Event::PeerLinkLost { .. } => Fields::new("peer_link_lost", e.to_string()),
        Event::PeerRefusedUnconfigured { controller } => Fields::new(
            "peer_refused_unconfigured",
            "refused a peer link: this controller has no peer configured",
        )
        .controller(&controller.0),
        Event::PeerDown {
            peer,
            silent_ms,
            meetings,
            participants,
        } => Fields::new(
            "peer_down",
            format!(
                "peer is down (silent {silent_ms} ms): its {meetings} meetings with {participants} participants move here once its lease has run out and the cloud agrees"
            ),
        )
        .controller(&peer.0),
        Event::TakingOver {
            peer,
            meetings,
            claimed,
        } => Fields::new(
            "taking_over",
            format!(
                "peer's lease has run out: claiming {claimed} of the {meetings} meetings it hosted, ahead of their participants"
            ),
        )
        .controller(&peer.0),
        Event::Fenced { .. } => Fields::new("fenced", e.to_string()),
        Event::MeetingEndedByCloud {
            meeting,
            reason,
            participants,
        } => Fields::new(
            "meeting_ended_by_cloud",
            format!(
                "meeting ended by the cloud ({reason}): {participants} participants disconnected"
            ),
        )
        .meeting(*meeting),
        Event::ParticipantRemovedByCloud {
            participant,
            meeting,
        } => Fields::new(
            "participant_removed_by_cloud",
            "participant removed from the meeting by the cloud",
        )
        .participant(*participant)
        .meeting(*meeting),
        Event::Draining {
            scope,
            on,
            deadline_ms,
        } => {
            let (kind, verb) = if *on {
                ("draining", "draining")
            } else {
                ("undrained", "undrained")
            };
            scoped(
                Fields::new(
                    kind,
                    format!("{} {verb} (deadline {deadline_ms} ms)", what(scope)),
                ),
                scope,
            )
        }
        Event::MovedMeeting {
            meeting,
            participants,
            scope,
        } => scoped(
            Fields::new(
                "moved_meeting",
                format!(
                    "moved a meeting ({participants} participants) off the draining {}",
                    what(scope)
                ),
            )
            .meeting(*meeting),
            scope,
        ),
        Event::Drained { scope } => scoped(
            Fields::new("drained", format!("{} drained", what(scope))),
            scope,
        ),
        Event::SessionNeverJoined { session } => Fields::new(
            "session_never_joined",
            "closing a signalling session, which sent no join in time",
        )
        .conn(*session),
        Event::SessionMalformed { session, error } => Fields::new(
            "session_malformed",
            format!("closing a signalling session: {error}"),
        )
        .conn(*session),
        Event::MmrLinkWithoutHello { conn } => Fields::new(
            "mmr_link_without_hello",
            "closed an MMR link: the first message on an MMR link must be a hello",
        )
        .conn(*conn),
        Event::PeerLinkRefused { conn, why } => {
            Fields::new("peer_link_refused", format!("closed a peer link: {why}")).conn(*conn)
        }
        Event::CommandForUnlinkedMmr { mmr } => Fields::new(
            "command_for_unlinked_mmr",
            "a command for an MMR whose link is gone was dropped",
        )
        .mmr(&mmr.0),
    }
}

fn what(scope: &DrainScope) -> &'static str {
    match scope {
        DrainScope::Controller(_) => "controller",
        DrainScope::Mmr(_) => "MMR",
    }
}

fn scoped<'a>(f: Fields<'a>, scope: &'a DrainScope) -> Fields<'a> {
    match scope {
        DrainScope::Controller(c) => f.controller(&c.0),
        DrainScope::Mmr(m) => f.mmr(&m.0),
    }
}
