//! What each role's shell records, as values. The display of each is its line in the log (the
//! text operators and the determinism hashes have always seen).

use mc_core::client::session;
use mc_core::client::MediaPath;
use mc_core::cloud::status_sync::Takeover;
use mc_wire::signal::RejectReason;
use mc_wire::status::{Load, SignallingEndpoints};
use mc_wire::{ControllerId, MeetingId, ParticipantId};
use std::fmt;
use std::net::SocketAddr;

/// A participant's events; `name` is its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Joined {
        name: String,
        meeting: MeetingId,
        participant: ParticipantId,
        controller: String,
        port: u16,
        media: MediaPath,
    },
    Redirected {
        name: String,
        by: String,
        to: ControllerId,
        message: String,
    },
    Refused {
        name: String,
        by: String,
        reason: RejectReason,
        message: String,
    },
    /// What its session core decided.
    Session { name: String, event: session::Event },
    Left {
        name: String,
        meeting: MeetingId,
        sent: u64,
        received: u64,
        sources: usize,
        ended: Option<String>,
    },
}

impl fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEvent::Joined {
                name,
                meeting,
                participant,
                controller,
                port,
                media,
            } => write!(
                f,
                "{name} joined {meeting} as {participant} via {controller} port {port}; media over {media}"
            ),
            ClientEvent::Redirected {
                name,
                by,
                to,
                message,
            } => write!(f, "{name} redirected by {by} to {to}: {message}"),
            ClientEvent::Refused {
                name,
                by,
                reason,
                message,
            } => write!(f, "{name} refused by {by}: {reason}: {message}"),
            ClientEvent::Session { name, event } => write!(f, "{name} {event}"),
            ClientEvent::Left {
                name,
                meeting,
                sent,
                received,
                sources,
                ended,
            } => {
                write!(
                    f,
                    "{name} left {meeting}: sent {sent} received {received} from {sources} sources"
                )?;
                match ended {
                    Some(r) => write!(f, " (ended: {r})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The cloud's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudEvent {
    Listening {
        https: SocketAddr,
        status_sync: SocketAddr,
        notification: SocketAddr,
    },
    TicketIssued {
        participant: ParticipantId,
        meeting: MeetingId,
    },
    MeetingEnded {
        meeting: MeetingId,
        reason: String,
    },
    /// An operator drained (`on`) or undrained a controller or an MMR.
    Drain {
        kind: String,
        id: String,
        on: bool,
        deadline_s: u64,
    },
    Registered {
        controller: ControllerId,
        port: u16,
        zone: String,
        signalling: SignallingEndpoints,
        capacity: Load,
    },
    ReRegistered {
        controller: ControllerId,
        taken_over: usize,
    },
    ControllerDown {
        controller: ControllerId,
        reason: String,
    },
    /// A status connection ended after the controller had registered again on another.
    PreviousConnectionClosed {
        controller: ControllerId,
        reason: String,
    },
    TakenOver(Takeover),
    Subscribed {
        controller: ControllerId,
        port: u16,
        after_seq: u64,
    },
    Unsubscribed {
        controller: ControllerId,
        reason: String,
    },
}

impl fmt::Display for CloudEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudEvent::Listening {
                https,
                status_sync,
                notification,
            } => write!(
                f,
                "cloud listening: https {https} status-sync {status_sync} notification {notification}"
            ),
            CloudEvent::TicketIssued {
                participant,
                meeting,
            } => write!(f, "ticket issued for {participant} in {meeting}"),
            CloudEvent::MeetingEnded { meeting, reason } => {
                write!(f, "meeting {meeting} ended: {reason}")
            }
            CloudEvent::Drain {
                kind,
                id,
                on,
                deadline_s,
            } => write!(
                f,
                "{} {kind}/{id} within {deadline_s} s",
                if *on { "drain" } else { "undrain" }
            ),
            CloudEvent::Registered {
                controller,
                port,
                zone,
                signalling: s,
                capacity: c,
            } => write!(
                f,
                "controller {controller} registered on port {port}: zone {zone}, signalling {}:{}/{}, capacity {} participants {} meetings",
                s.host, s.port, s.fallback_port, c.participants, c.meetings
            ),
            CloudEvent::ReRegistered {
                controller,
                taken_over,
            } => write!(
                f,
                "controller {controller} re-registered with {taken_over} meetings taken over meanwhile"
            ),
            CloudEvent::ControllerDown { controller, reason } => {
                write!(f, "controller {controller} is down: {reason}")
            }
            CloudEvent::PreviousConnectionClosed { controller, reason } => write!(
                f,
                "controller {controller}'s previous status connection closed: {reason}"
            ),
            CloudEvent::TakenOver(t) => write!(
                f,
                "meeting {} taken over by {} from {} (epoch {})",
                t.meeting, t.to, t.from, t.epoch
            ),
            CloudEvent::Subscribed {
                controller,
                port,
                after_seq,
            } => write!(
                f,
                "controller {controller} subscribed to notifications on port {port} after event {after_seq}"
            ),
            CloudEvent::Unsubscribed { controller, reason } => write!(
                f,
                "controller {controller} unsubscribed from notifications: {reason}"
            ),
        }
    }
}

/// An MMR VM's events, and its link to a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MmrEvent {
    Listening {
        id: String,
        udp: SocketAddr,
        tcp: SocketAddr,
        tls: SocketAddr,
    },
    Linked {
        controller: ControllerId,
        port: u16,
    },
    MovingBack {
        port: u16,
    },
    LinkLost {
        reason: String,
    },
    /// Every port of one controller failed; the other of the pair is next.
    TargetUnreachable {
        failed: String,
        next: String,
    },
    NoneReachable {
        retry_in_ms: u64,
    },
}

impl fmt::Display for MmrEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmrEvent::Listening { id, udp, tcp, tls } => {
                write!(f, "MMR {id} listening: media udp {udp} tcp {tcp} tls {tls}")
            }
            MmrEvent::Linked { controller, port } => {
                write!(f, "linked to controller {controller} on port {port}")
            }
            MmrEvent::MovingBack { port } => {
                write!(f, "link to controller moving back to port {port}")
            }
            MmrEvent::LinkLost { reason } => write!(f, "link to controller lost: {reason}"),
            MmrEvent::TargetUnreachable { failed, next } => write!(
                f,
                "controller {failed} unreachable on both ports; trying {next}"
            ),
            MmrEvent::NoneReachable { retry_in_ms } => write!(
                f,
                "no controller reachable on any port; retrying in {retry_in_ms} ms"
            ),
        }
    }
}

/// A controller's own shell events: where it listens, and the links it dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    Listening {
        id: String,
        signalling: SocketAddr,
        tls: SocketAddr,
        udp: SocketAddr,
        tcp: SocketAddr,
    },
    /// A link cannot even be configured (its TLS settings are invalid): it is not started.
    CannotLink {
        to: &'static str,
        error: String,
    },
    CloudUnreachable {
        retry_in_ms: u64,
    },
    PeerUnreachable {
        host: String,
        ports: [u16; 2],
    },
    NotificationsSubscribed {
        port: u16,
        oldest: u64,
        latest: u64,
    },
    NotificationsClosed {
        port: u16,
        reason: String,
    },
}

impl fmt::Display for LinkEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEvent::Listening {
                id,
                signalling,
                tls,
                udp,
                tcp,
            } => write!(
                f,
                "controller {id} listening: signalling {signalling} tls {tls} media udp {udp} tcp {tcp}"
            ),
            LinkEvent::CannotLink { to, error } => write!(f, "cannot link to {to}: {error}"),
            LinkEvent::CloudUnreachable { retry_in_ms } => write!(
                f,
                "cloud status sync unreachable on every port; retrying in {retry_in_ms} ms"
            ),
            LinkEvent::PeerUnreachable { host, ports } => write!(
                f,
                "peer {host} unreachable on ports {} and {}; retrying",
                ports[0], ports[1]
            ),
            LinkEvent::NotificationsSubscribed {
                port,
                oldest,
                latest,
            } => write!(
                f,
                "subscribed to cloud notifications on port {port} (events {oldest}..={latest})"
            ),
            LinkEvent::NotificationsClosed { port, reason } => {
                write!(f, "cloud notification link on port {port} closed: {reason}")
            }
        }
    }
}

/// What a simulation harness records around the nodes: its plan, each fault it injects, and
/// operator calls of its own that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessEvent {
    Plan {
        description: String,
    },
    Fault {
        action: String,
    },
    CallFailed {
        method: String,
        path: String,
        error: String,
    },
}

impl fmt::Display for HarnessEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessEvent::Plan { description } => write!(f, "plan: {description}"),
            HarnessEvent::Fault { action } => write!(f, "fault: {action}"),
            HarnessEvent::CallFailed {
                method,
                path,
                error,
            } => write!(f, "{method} {path} failed: {error}"),
        }
    }
}

/// The load generator's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadEvent {
    Planned {
        meetings: u32,
        participants_per_meeting: u32,
        arrivals_per_s: String,
        duration_ms: u64,
        packets_per_s: u32,
        seed: u64,
    },
    MeetingsCreated(Vec<MeetingId>),
    Stopping {
        started: u64,
        planned: u64,
    },
    Done {
        wall_ms: u64,
        admitted: u64,
        attempted: u64,
        rejected: u64,
        failed: u64,
        sent: u64,
        received: u64,
        lost: u64,
    },
}

impl fmt::Display for LoadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadEvent::Planned {
                meetings,
                participants_per_meeting,
                arrivals_per_s,
                duration_ms,
                packets_per_s,
                seed,
            } => write!(
                f,
                "load: {meetings} meetings × {participants_per_meeting} participants, {arrivals_per_s} joins/s, {duration_ms} ms each, {packets_per_s} RTP packets/s, seed {seed}"
            ),
            LoadEvent::MeetingsCreated(ids) => {
                f.write_str("load: created meetings ")?;
                for (i, m) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{m}")?;
                }
                Ok(())
            }
            LoadEvent::Stopping { started, planned } => write!(
                f,
                "load: stopping; {started} of {planned} participants had started"
            ),
            LoadEvent::Done {
                wall_ms,
                admitted,
                attempted,
                rejected,
                failed,
                sent,
                received,
                lost,
            } => write!(
                f,
                "load: done in {wall_ms} ms: {admitted} of {attempted} admitted, {rejected} rejected, {failed} failed; {sent} RTP packets sent, {received} received, {lost} lost"
            ),
        }
    }
}
