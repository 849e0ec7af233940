//! Client ↔ ZC signalling messages (inside [`crate::frame`]s on TLS 8802 or 443 `mc-signal/1`).
//!
//! The client sends `Join` once, then may send `Leave`; closing the connection also leaves. The ZC
//! answers `Joined`, `Rejected`, or `Redirect` (the meeting is hosted by the other controller of
//! an HA pair: join there with the same ticket), and may later send `Ended` (the meeting ended or
//! moved, or the participant was removed) before closing. A joined client sends `Ping` every
//! second or so and the ZC answers `Pong`: a client that hears nothing for a few pings knows its
//! controller is gone and joins again. While joined, the ZC may send `Rekey` at any time.

use crate::srtp::MediaKey;
use crate::MediaToken;
use crate::{ControllerId, MeetingId, ParticipantId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientToZc {
    Join {
        ticket: String,
    },
    /// Joins again with a rejoin pass (from `joined` or `rejoin_pass`) instead of a cloud
    /// ticket: to the controller that issued it or to its HA peer, while the cloud may be
    /// unreachable.
    Rejoin {
        pass: String,
    },
    // `deny_unknown_fields` does not reach unit variants of an internally tagged enum (serde
    // accepts any extra members there), so `leave` checks for them itself.
    #[serde(deserialize_with = "no_fields")]
    Leave,
    #[serde(deserialize_with = "no_fields")]
    Ping,
}

/// Accepts an object with no members besides the tag, as `deny_unknown_fields` would.
pub(crate) fn no_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(|NoFields {}| ())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZcToClient {
    Joined {
        meeting: MeetingId,
        participant: ParticipantId,
        /// Where the meeting's MMR takes media, in the order the client should try them.
        media: MediaEndpoints,
        /// Proves the participant's binding to the MMR (the HMAC key of its binding requests).
        media_token: MediaToken,
        /// The meeting's media key now: every RTP packet is sealed under it.
        media_key: MediaKey,
        /// Admits this participant to this meeting again, here or at the HA peer, until it
        /// expires, without a cloud ticket (PROTOCOL §3.4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejoin_pass: Option<String>,
    },
    /// A fresh rejoin pass, before the one held runs out.
    RejoinPass { pass: String },
    /// The meeting's media key changed (someone left): seal with this one from now on, and
    /// open what others seal with it. Keys only move forward; the old one opens late packets.
    Rekey { media_key: MediaKey },
    Rejected {
        reason: RejectReason,
        message: String,
        /// When the refusal is passing and the controller knows when it passes (a meeting that
        /// moves here once its dead host's lease has run out): try again after this long,
        /// rather than on the client's own backoff.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The session is over. With `rejoin`, the meeting goes on elsewhere (e.g. its MMR died):
    /// ask the cloud for a new ticket and join again.
    Ended {
        reason: String,
        #[serde(default)]
        rejoin: bool,
    },
    /// This controller does not host the meeting; `controller` does. The ticket was not used.
    Redirect {
        controller: ControllerId,
        host: String,
        port: u16,
        fallback_port: u16,
        message: String,
    },
    #[serde(deserialize_with = "no_fields")]
    Pong,
}

/// Why a join was refused. Stable snake_case names: tools and reports key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The ticket is not well formed or its signature does not verify.
    TicketInvalid,
    TicketExpired,
    /// This ticket was already used.
    TicketReplayed,
    /// The meeting's MMR has no room for another participant.
    MeetingFull,
    /// No MMR in the zone has room for the meeting.
    ZoneFull,
    /// The controller hosts as many meetings as it may.
    ControllerMeetingLimit,
    /// No healthy MMR is linked.
    NoMmrAvailable,
    /// The client sent something other than a join first.
    ProtocolViolation,
    /// The controller is not registered with the cloud yet, so it cannot verify tickets.
    NotReady,
    /// The controller is being drained for maintenance and takes no new meetings.
    ControllerDraining,
}

impl RejectReason {
    /// Every reason, for metrics that show each one from zero.
    pub const ALL: [RejectReason; 10] = [
        RejectReason::TicketInvalid,
        RejectReason::TicketExpired,
        RejectReason::TicketReplayed,
        RejectReason::MeetingFull,
        RejectReason::ZoneFull,
        RejectReason::ControllerMeetingLimit,
        RejectReason::NoMmrAvailable,
        RejectReason::ProtocolViolation,
        RejectReason::NotReady,
        RejectReason::ControllerDraining,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TicketInvalid => "ticket_invalid",
            RejectReason::TicketExpired => "ticket_expired",
            RejectReason::TicketReplayed => "ticket_replayed",
            RejectReason::MeetingFull => "meeting_full",
            RejectReason::ZoneFull => "zone_full",
            RejectReason::ControllerMeetingLimit => "controller_meeting_limit",
            RejectReason::NoMmrAvailable => "no_mmr_available",
            RejectReason::ProtocolViolation => "protocol_violation",
            RejectReason::NotReady => "not_ready",
            RejectReason::ControllerDraining => "controller_draining",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An MMR's media addresses. `host` is an IP address or DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaEndpoints {
    pub host: String,
    pub udp_port: u16,
    pub tcp_port: u16,
    /// TLS with ALPN `mc-media/1`, normally 443.
    pub tls_port: u16,
}
