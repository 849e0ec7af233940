//! Every typed event as structured log fields: a stable kind, the ids it concerns, and a summary
//! that says the rest. A JSON log line carries the ids as fields and the summary as its message,
//! so a log shipper can index a meeting or a participant without parsing text. The display of
//! an event (its line in the event log, hashed by the simulations) is not this and never changes
//! with it.

use super::kinds::{ClientEvent, CloudEvent, HarnessEvent, LinkEvent, LoadEvent, MmrEvent};
use super::Typed;
use mc_core::client::session;
use mc_wire::{MeetingId, ParticipantId};

/// What one event says, split for a structured log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields<'a> {
    /// A stable snake_case name of what happened (`admitted`, `fenced`, `link_lost`).
    pub kind: &'static str,
    /// The event's line without the ids below.
    pub summary: String,
    pub meeting: Option<MeetingId>,
    pub participant: Option<ParticipantId>,
    /// The controller the event is about, or the one that acted on a participant.
    pub controller: Option<&'a str>,
    /// Where something moved to: a redirect's target, a meeting's new owner.
    pub to_controller: Option<&'a str>,
    pub mmr: Option<&'a str>,
    /// A controller's connection (signalling session or link) number, as in its tracing lines.
    pub conn: Option<u64>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(kind: &'static str, summary: impl Into<String>) -> Fields<'a> {
        Fields {
            kind,
            summary: summary.into(),
            ..Fields::default()
        }
    }

    pub(super) fn meeting(mut self, m: MeetingId) -> Self {
        self.meeting = Some(m);
        self
    }

    pub(super) fn participant(mut self, p: ParticipantId) -> Self {
        self.participant = Some(p);
        self
    }

    pub(super) fn controller(mut self, c: &'a str) -> Self {
        self.controller = Some(c);
        self
    }

    pub(super) fn moved_to(mut self, c: &'a str) -> Self {
        self.to_controller = Some(c);
        self
    }

    pub(super) fn mmr(mut self, m: &'a str) -> Self {
        self.mmr = Some(m);
        self
    }

    pub(super) fn conn(mut self, c: u64) -> Self {
        self.conn = Some(c);
        self
    }
}

impl Typed {
    /// This event as structured log fields.
    pub fn fields(&self) -> Fields<'_> {
        match self {
            Typed::Controller(e) => super::controller_fields::fields(e),
            Typed::Link(e) => link(e),
            Typed::Mmr(e) => mmr(e),
            Typed::Cloud(e) => cloud(e),
            Typed::Client(e) => client(e),
            Typed::Load(e) => load(e),
            Typed::Harness(e) => harness(e),
        }
    }
}

// A client's events name it first; its name is the `node` of its log, so summaries leave it out.
fn client(e: &ClientEvent) -> Fields<'_> {
    match e {
        ClientEvent::Joined {
            name: _,
            meeting,
            participant,
            controller,
            port,
            media,
        } => Fields::new(
            "joined",
            format!("joined the meeting on signalling port {port}; media over {media}"),
        )
        .meeting(*meeting)
        .participant(*participant)
        .controller(controller),
        ClientEvent::Redirected {
            name: _,
            by,
            to,
            message,
        } => Fields::new("redirected", format!("redirected: {message}"))
            .controller(by)
            .moved_to(&to.0),
        ClientEvent::Refused {
            name: _,
            by,
            reason,
            message,
        } => Fields::new("refused", format!("refused: {reason}: {message}")).controller(by),
        ClientEvent::Session { name: _, event } => {
            let kind = match event {
                session::Event::Joined { rejoin: false } => "in_meeting",
                session::Event::Joined { rejoin: true } => "back_in_meeting",
                session::Event::Retrying { .. } => "join_retrying",
                session::Event::Rejoining { .. } => "rejoining",
                session::Event::UdpLost => "udp_lost",
                session::Event::MediaMoved { .. } => "media_moved",
            };
            Fields::new(kind, event.to_string())
        }
        ClientEvent::Left {
            name: _,
            meeting,
            sent,
            received,
            sources,
            ended,
        } => {
            let mut summary =
                format!("left the meeting: sent {sent} received {received} from {sources} sources");
            if let Some(r) = ended {
                summary.push_str(&format!(" (ended: {r})"));
            }
            Fields::new("left", summary).meeting(*meeting)
        }
    }
}

fn cloud(e: &CloudEvent) -> Fields<'_> {
    match e {
        CloudEvent::Listening { .. } => Fields::new("listening", e.to_string()),
        CloudEvent::TicketIssued {
            participant,
            meeting,
        } => Fields::new("ticket_issued", "join ticket issued")
            .participant(*participant)
            .meeting(*meeting),
        CloudEvent::MeetingEnded { meeting, reason } => {
            Fields::new("meeting_ended", format!("meeting ended: {reason}")).meeting(*meeting)
        }
        CloudEvent::Drain {
            kind,
            id,
            on,
            deadline_s,
        } => {
            let verb = if *on { "drain" } else { "undrain" };
            let f = Fields::new(verb, format!("{verb} {kind} within {deadline_s} s"));
            if kind == "mmr" {
                f.mmr(id)
            } else {
                f.controller(id)
            }
        }
        CloudEvent::Registered {
            controller,
            port,
            zone,
            signalling: s,
            capacity: c,
        } => Fields::new(
            "controller_registered",
            format!(
                "controller registered on port {port}: zone {zone}, signalling {}:{}/{}, capacity {} participants {} meetings",
                s.host, s.port, s.fallback_port, c.participants, c.meetings
            ),
        )
        .controller(&controller.0),
        CloudEvent::ReRegistered {
            controller,
            taken_over,
        } => Fields::new(
            "controller_reregistered",
            format!("controller re-registered with {taken_over} meetings taken over meanwhile"),
        )
        .controller(&controller.0),
        CloudEvent::ControllerDown { controller, reason } => {
            Fields::new("controller_down", format!("controller is down: {reason}"))
                .controller(&controller.0)
        }
        CloudEvent::PreviousConnectionClosed { controller, reason } => Fields::new(
            "previous_connection_closed",
            format!("controller's previous status connection closed: {reason}"),
        )
        .controller(&controller.0),
        CloudEvent::TakenOver(t) => Fields::new(
            "taken_over",
            format!("meeting taken over (epoch {})", t.epoch),
        )
        .meeting(t.meeting)
        .controller(&t.from.0)
        .moved_to(&t.to.0),
        CloudEvent::Subscribed {
            controller,
            port,
            after_seq,
        } => Fields::new(
            "notifications_subscribed",
            format!(
                "controller subscribed to notifications on port {port} after event {after_seq}"
            ),
        )
        .controller(&controller.0),
        CloudEvent::Unsubscribed { controller, reason } => Fields::new(
            "notifications_unsubscribed",
            format!("controller unsubscribed from notifications: {reason}"),
        )
        .controller(&controller.0),
    }
}

fn mmr(e: &MmrEvent) -> Fields<'_> {
    match e {
        MmrEvent::Listening { id, udp, tcp, tls } => Fields::new(
            "listening",
            format!("MMR listening: media udp {udp} tcp {tcp} tls {tls}"),
        )
        .mmr(id),
        MmrEvent::Linked { controller, port } => {
            Fields::new("linked", format!("linked to the controller on port {port}"))
                .controller(&controller.0)
        }
        MmrEvent::MovingBack { .. } => Fields::new("link_moving_back", e.to_string()),
        MmrEvent::LinkLost { .. } => Fields::new("link_lost", e.to_string()),
        MmrEvent::TargetUnreachable { .. } => Fields::new("controller_unreachable", e.to_string()),
        MmrEvent::NoneReachable { .. } => Fields::new("no_controller_reachable", e.to_string()),
    }
}

fn link(e: &LinkEvent) -> Fields<'_> {
    match e {
        LinkEvent::Listening {
            id,
            signalling,
            tls,
            udp,
            tcp,
        } => Fields::new(
            "listening",
            format!(
                "controller listening: signalling {signalling} tls {tls} media udp {udp} tcp {tcp}"
            ),
        )
        .controller(id),
        LinkEvent::CannotLink { .. } => Fields::new("cannot_link", e.to_string()),
        LinkEvent::CloudUnreachable { .. } => Fields::new("cloud_unreachable", e.to_string()),
        LinkEvent::PeerUnreachable { .. } => Fields::new("peer_unreachable", e.to_string()),
        LinkEvent::NotificationsSubscribed { .. } => {
            Fields::new("notifications_subscribed", e.to_string())
        }
        LinkEvent::NotificationsClosed { .. } => Fields::new("notifications_closed", e.to_string()),
    }
}

fn harness(e: &HarnessEvent) -> Fields<'_> {
    let kind = match e {
        HarnessEvent::Plan { .. } => "plan",
        HarnessEvent::Fault { .. } => "fault",
        HarnessEvent::CallFailed { .. } => "call_failed",
    };
    Fields::new(kind, e.to_string())
}

fn load(e: &LoadEvent) -> Fields<'_> {
    let kind = match e {
        LoadEvent::Planned { .. } => "load_planned",
        LoadEvent::MeetingsCreated(_) => "meetings_created",
        LoadEvent::Stopping { .. } => "load_stopping",
        LoadEvent::Done { .. } => "load_done",
    };
    Fields::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::controller::Event;
    use mc_wire::{ControllerId, MmrId};

    /// What an operator checks: the ids are fields, and the message does not say them again.
    fn ids_only_in_fields(f: &Fields<'_>) {
        let ids = [
            f.meeting.map(|m| m.to_string()),
            f.participant.map(|p| p.to_string()),
            f.controller.map(str::to_string),
            f.to_controller.map(str::to_string),
            f.mmr.map(str::to_string),
        ];
        for id in ids.into_iter().flatten() {
            assert!(
                !f.summary.contains(&id),
                "{} repeats {id}: {:?}",
                f.kind,
                f.summary
            );
        }
    }

    #[test]
    fn an_admission_carries_its_ids_as_fields_and_a_summary_without_them() {
        let e = Typed::from(Event::Admitted {
            participant: ParticipantId(3),
            meeting: MeetingId(12),
            mmr: MmrId("mmr-2".into()),
        });
        let f = e.fields();
        assert_eq!(
            (f.kind, f.meeting, f.participant, f.mmr),
            (
                "admitted",
                Some(MeetingId(12)),
                Some(ParticipantId(3)),
                Some("mmr-2")
            )
        );
        ids_only_in_fields(&f);
        assert_eq!(e.to_string(), "admitted p3 to m12 on mmr-2");
    }

    #[test]
    fn a_takeover_names_both_controllers_and_a_client_event_its_controller() {
        let t = Typed::from(CloudEvent::TakenOver(
            mc_core::cloud::status_sync::Takeover {
                meeting: MeetingId(4),
                from: ControllerId("controller-1".into()),
                to: ControllerId("controller-2".into()),
                epoch: 7,
            },
        ));
        let f = t.fields();
        assert_eq!(
            (f.kind, f.meeting, f.controller, f.to_controller),
            (
                "taken_over",
                Some(MeetingId(4)),
                Some("controller-1"),
                Some("controller-2")
            )
        );
        ids_only_in_fields(&f);

        let joined = Typed::from(ClientEvent::Joined {
            name: "ada".into(),
            meeting: MeetingId(4),
            participant: ParticipantId(9),
            controller: "controller-2".into(),
            port: 8802,
            media: mc_core::client::MediaPath::Udp,
        });
        let f = joined.fields();
        assert_eq!(
            (f.kind, f.meeting, f.participant, f.controller),
            (
                "joined",
                Some(MeetingId(4)),
                Some(ParticipantId(9)),
                Some("controller-2")
            )
        );
        ids_only_in_fields(&f);
        assert!(!f.summary.contains("ada"), "the name is the node: {f:?}");
    }

    #[test]
    fn kinds_are_snake_case_and_no_summary_repeats_its_ids() {
        let (m, p) = (MeetingId(21), ParticipantId(34));
        let (c1, c2) = (
            ControllerId("controller-1".into()),
            ControllerId("zc-b".into()),
        );
        let mmr = MmrId("mmr-7".into());
        let events = [
            Typed::from(Event::Fenced {
                lease_ms: 3600,
                meetings: 2,
            }),
            Typed::from(MmrEvent::LinkLost {
                reason: "closed".into(),
            }),
            Typed::from(Event::MeetingEndedByCloud {
                meeting: m,
                reason: "the host ended it".into(),
                participants: 3,
            }),
            Typed::from(Event::ParticipantRemovedByCloud {
                participant: p,
                meeting: m,
            }),
            Typed::from(Event::MovedMeeting {
                meeting: m,
                participants: 4,
                scope: mc_core::controller::DrainScope::Mmr(mmr.clone()),
            }),
            Typed::from(Event::Draining {
                scope: mc_core::controller::DrainScope::Controller(c1.clone()),
                on: true,
                deadline_ms: 60_000,
            }),
            Typed::from(Event::PeerDown {
                peer: c2.clone(),
                silent_ms: 2_000,
                meetings: 5,
                participants: 40,
            }),
            Typed::from(Event::TakingOver {
                peer: c2.clone(),
                meetings: 5,
                claimed: 5,
            }),
            Typed::from(Event::MmrDown {
                mmr: mmr.clone(),
                reason: "three reports missed".into(),
            }),
            Typed::from(Event::Redirected {
                session: 9,
                controller: c2.clone(),
            }),
            Typed::from(ClientEvent::Redirected {
                name: "ada".into(),
                by: c1.0.clone(),
                to: c2.clone(),
                message: "the meeting lives on its owner".into(),
            }),
            Typed::from(ClientEvent::Left {
                name: "ada".into(),
                meeting: m,
                sent: 10,
                received: 9,
                sources: 1,
                ended: None,
            }),
            Typed::from(ClientEvent::Session {
                name: "ada".into(),
                event: session::Event::UdpLost,
            }),
            Typed::from(CloudEvent::MeetingEnded {
                meeting: m,
                reason: "over".into(),
            }),
            Typed::from(CloudEvent::ControllerDown {
                controller: c1.clone(),
                reason: "silent".into(),
            }),
            Typed::from(LoadEvent::Stopping {
                started: 1,
                planned: 2,
            }),
        ];
        for e in &events {
            let f = e.fields();
            assert!(
                !f.kind.is_empty() && f.kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{:?}",
                f.kind
            );
            ids_only_in_fields(&f);
        }
        let kinds: Vec<_> = events.iter().map(|e| e.fields().kind).collect();
        assert_eq!(&kinds[..2], ["fenced", "link_lost"]);
    }
}
