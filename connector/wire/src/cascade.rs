//! The cascade link between two MMRs of a meeting too large for one (mutual TLS on the MMR's
//! cascade port, or TLS 443 with ALPN `mc-cascade/1`): RFC 4571 frames (PROTOCOL §14), each a
//! one-byte kind and its body. The dialling MMR sends `hello` with its MMR id, the other answers
//! with its own; then either side sends `media` frames: the meeting's id and one sealed RTP
//! packet of it, exactly as a participant sent it.

use crate::{DecodeError, MeetingId, MmrId};

const HELLO: u8 = 1;
const MEDIA: u8 = 2;
const WHAT: &str = "cascade frame";
/// An MMR id is a node name: at most 64 bytes.
const MAX_ID_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CascadeFrame<'a> {
    Hello {
        mmr: MmrId,
    },
    Media {
        meeting: MeetingId,
        packet: &'a [u8],
    },
}

impl CascadeFrame<'_> {
    /// The frame's body, to be framed by RFC 4571.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            CascadeFrame::Hello { mmr } => {
                let mut v = vec![HELLO];
                v.extend_from_slice(mmr.0.as_bytes());
                v
            }
            CascadeFrame::Media { meeting, packet } => media(*meeting, packet),
        }
    }

    pub fn decode(body: &[u8]) -> Result<CascadeFrame<'_>, DecodeError> {
        match body.split_first() {
            Some((&HELLO, id)) => {
                if id.is_empty() || id.len() > MAX_ID_BYTES {
                    return Err(DecodeError::malformed(
                        WHAT,
                        "hello: an MMR id of 1 to 64 bytes",
                    ));
                }
                let id = std::str::from_utf8(id)
                    .map_err(|_| DecodeError::malformed(WHAT, "hello: the MMR id is not UTF-8"))?;
                Ok(CascadeFrame::Hello {
                    mmr: MmrId(id.to_string()),
                })
            }
            Some((&MEDIA, rest)) if rest.len() > 8 => Ok(CascadeFrame::Media {
                meeting: MeetingId(u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"))),
                packet: &rest[8..],
            }),
            Some((&MEDIA, _)) => Err(DecodeError::malformed(
                WHAT,
                "media: a meeting id and a packet",
            )),
            Some((kind, _)) => Err(DecodeError::malformed(WHAT, format!("unknown kind {kind}"))),
            None => Err(DecodeError::malformed(WHAT, "empty")),
        }
    }
}

/// A media frame's body, RFC 4571 framed: what an MMR writes on a link for each packet.
pub fn media_framed(meeting: MeetingId, packet: &[u8]) -> Vec<u8> {
    crate::rfc4571::encode(&media(meeting, packet))
}

fn media(meeting: MeetingId, packet: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + packet.len());
    v.push(MEDIA);
    v.extend_from_slice(&meeting.0.to_be_bytes());
    v.extend_from_slice(packet);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused_by_name() {
        let hello = CascadeFrame::Hello {
            mmr: MmrId("mmr-3".into()),
        };
        assert_eq!(CascadeFrame::decode(&hello.encode()), Ok(hello));
        let media = CascadeFrame::Media {
            meeting: MeetingId(4242),
            packet: &[0x80, 96, 0, 1],
        };
        assert_eq!(CascadeFrame::decode(&media.encode()), Ok(media.clone()));
        assert_eq!(
            media_framed(MeetingId(4242), &[0x80, 96, 0, 1])[2..],
            media.encode()[..]
        );
        for bad in [
            &[][..],
            &[9, 1],
            &[MEDIA, 0, 0, 0, 0, 0, 0, 0, 1],
            &[HELLO],
            &[HELLO, 0xff],
        ] {
            assert!(CascadeFrame::decode(bad).is_err(), "{bad:?}");
        }
    }
}
