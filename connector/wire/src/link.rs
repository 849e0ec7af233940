//! MMR VM ↔ controller link messages (inside [`crate::frame`]s on mutual TLS 8802 or 443
//! `mc-link/1`). The MMR VM says hello with its capacity and media addresses; the controller
//! welcomes it and from then on sends grants and revocations; the MMR VM reports its load every
//! interval, and a controller that hears nothing for three intervals declares it down. The
//! controller sends a keepalive every interval, and an MMR VM that hears nothing for three
//! intervals drops its grants and links again.

use crate::signal::MediaEndpoints;
use crate::MediaToken;
use crate::{ControllerId, MeetingId, MmrId, ParticipantId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MmrToController {
    Hello {
        mmr: MmrId,
        capacity: u32,
        media: MediaEndpoints,
        /// Where other MMRs link to this one to carry a meeting cascaded across them (mutual
        /// TLS, ALPN `mc-cascade/1`; its fallback is `media.tls_port`). Absent: this MMR takes
        /// no part in cascades.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cascade_port: Option<u16>,
    },
    Load {
        participants: u32,
        rtp_in: u64,
        rtp_out: u64,
        dropped: u64,
    },
    /// The grant with this token is in place: the controller may now tell the client.
    Admitted { token: MediaToken },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControllerToMmr {
    Welcome {
        controller: ControllerId,
        report_interval_ms: u64,
    },
    /// Accept bindings with this media token for this participant of this meeting.
    Admit {
        token: MediaToken,
        meeting: MeetingId,
        participant: ParticipantId,
    },
    /// Forget this token and stop forwarding to and from its holder.
    Revoke { token: MediaToken },
    /// The meeting also runs on these other MMRs (its participants did not fit on one): send
    /// each packet of a participant here once to each of them, and what they send to the
    /// participants here only. An empty list ends the meeting's cascade on this MMR.
    Cascade {
        meeting: MeetingId,
        peers: Vec<CascadePeer>,
    },
    /// The link is refused or ended, and why.
    Refused { message: String },
    /// Sent every report interval: an MMR VM that hears nothing from its controller for three
    /// intervals drops its grants and links again (to the other controller of a pair if its own
    /// is gone), so a frozen or cut-off controller's meetings do not linger on it.
    #[serde(deserialize_with = "crate::signal::no_fields")]
    Keepalive,
}

/// Another MMR of a cascaded meeting, and where to link to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadePeer {
    pub mmr: MmrId,
    pub host: String,
    /// The dedicated cascade port, then the fallback (TLS 443, ALPN `mc-cascade/1`).
    pub port: u16,
    pub fallback_port: u16,
}
