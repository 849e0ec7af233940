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
    /// The link is refused or ended, and why.
    Refused { message: String },
    /// Sent every report interval: an MMR VM that hears nothing from its controller for three
    /// intervals drops its grants and links again (to the other controller of a pair if its own
    /// is gone), so a frozen or cut-off controller's meetings do not linger on it.
    #[serde(deserialize_with = "crate::signal::no_fields")]
    Keepalive,
}
