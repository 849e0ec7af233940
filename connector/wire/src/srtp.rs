//! Media protection: every RTP packet sealed with AES-256-GCM under a key derived per sender
//! stream from the meeting's media key, in the layout of SRTP AEAD (RFC 7714), so the MMR reads
//! the clear RTP header and forwards without the key.
//!
//! ```text
//! +----------------------+------------------------+---------+--------+-----+
//! | RTP header (clear,   | payload, AES-256-GCM   | tag     | key id | ROC |
//! | P bit clear)         | encrypted              | 16 B    | u32    | u32 |
//! +----------------------+------------------------+---------+--------+-----+
//!  \_____________ associated data: header ‖ key id ‖ ROC ______________/
//! ```
//!
//! - Stream key and salt: HKDF-SHA256 (RFC 5869) with salt `"mc media v1"` over the meeting
//!   key, info `"stream" ‖ SSRC` (big-endian), 44 bytes: the AES-256 key, then a 12-byte salt.
//! - Nonce (RFC 7714 §8.1): `00 00 ‖ SSRC ‖ ROC ‖ SEQ` XOR the salt; ROC is the sender's rollover
//!   counter of the 16-bit sequence number, so (SSRC, ROC, SEQ) never repeats under one key.
//! - The key id and ROC travel in a clear trailer (like SRTP's MKI, and RFC 4771's ROC) so a
//!   participant who joins mid-stream or after a re-key needs no guesswork; both are
//!   authenticated (in the associated data, and the ROC also in the nonce).
//! - RTP padding is dropped before sealing (it would be encrypted and mean nothing), so the MMR
//!   never mistakes a tag byte for a padding count.

use crate::rtp::RtpHeader;
use crate::{hex, DecodeError};
use ring::{aead, hkdf};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

pub const KEY_BYTES: usize = 32;
pub const TAG_BYTES: usize = 16;
/// Key id and rollover counter after the tag.
pub const TRAILER_BYTES: usize = 8;
/// What sealing adds to a packet.
pub const OVERHEAD_BYTES: usize = TAG_BYTES + TRAILER_BYTES;
pub const SALT_BYTES: usize = 12;
const HKDF_SALT: &[u8] = b"mc media v1";
const WHAT: &str = "sealed RTP packet";

/// A meeting's media key: made by the ZC from its seeded RNG, handed to each admitted
/// participant inside the TLS signalling, replaced (with the next id) when someone leaves. In
/// JSON `{"id": 3, "secret": "<64 hex digits>"}`; `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaKey {
    pub id: u32,
    secret: [u8; KEY_BYTES],
}

impl MediaKey {
    pub fn new(id: u32, secret: [u8; KEY_BYTES]) -> MediaKey {
        MediaKey { id, secret }
    }

    /// The AES-256 key and nonce salt of one sender (`ssrc`), as bytes (for the worked
    /// examples of the protocol document; senders and receivers use [`MediaKey::stream`]).
    pub fn derive(&self, ssrc: u32) -> ([u8; KEY_BYTES], [u8; SALT_BYTES]) {
        let mut okm = [0u8; KEY_BYTES + SALT_BYTES];
        hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT)
            .extract(&self.secret)
            .expand(&[b"stream", &ssrc.to_be_bytes()], OkmLen(okm.len()))
            .and_then(|o| o.fill(&mut okm))
            .expect("44 bytes is within HKDF-SHA256's output limit");
        let (key, salt) = okm.split_at(KEY_BYTES);
        (
            key.try_into().expect("32 bytes"),
            salt.try_into().expect("12 bytes"),
        )
    }

    /// The key one sender (`ssrc`) seals with and its receivers open with.
    pub fn stream(&self, ssrc: u32) -> StreamKey {
        let (key, salt) = self.derive(ssrc);
        let key =
            aead::UnboundKey::new(&aead::AES_256_GCM, &key).expect("32 bytes is an AES-256 key");
        StreamKey {
            key: aead::LessSafeKey::new(key),
            salt,
            key_id: self.id,
            ssrc,
        }
    }
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaKey(id {})", self.id)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaKeyJson<'a> {
    id: u32,
    #[serde(borrow)]
    secret: std::borrow::Cow<'a, str>,
}

impl Serialize for MediaKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MediaKeyJson {
            id: self.id,
            secret: hex::encode(&self.secret).into(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MediaKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MediaKey, D::Error> {
        let j = MediaKeyJson::deserialize(d)?;
        let bytes = hex::decode("media key", &j.secret).map_err(de::Error::custom)?;
        let secret = bytes.try_into().map_err(|b: Vec<u8>| {
            de::Error::custom(format!("a media key is {KEY_BYTES} bytes, not {}", b.len()))
        })?;
        Ok(MediaKey { id: j.id, secret })
    }
}

/// One sender's AES-256-GCM key and nonce salt.
pub struct StreamKey {
    key: aead::LessSafeKey,
    salt: [u8; SALT_BYTES],
    key_id: u32,
    ssrc: u32,
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StreamKey(key {}, ssrc {:#010x})",
            self.key_id, self.ssrc
        )
    }
}

/// What a sealed packet says in clear: enough to pick the key and place it in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub ssrc: u32,
    pub sequence: u16,
    pub key_id: u32,
    pub roc: u32,
    header_len: usize,
}

impl Sealed {
    /// Where the packet stands in its sender's stream: ROC and sequence number together.
    pub fn index(&self) -> u64 {
        (self.roc as u64) << 16 | self.sequence as u64
    }

    /// Reads the clear parts of a sealed packet.
    pub fn peek(p: &[u8]) -> Result<Sealed, DecodeError> {
        let h = RtpHeader::parse(p)?;
        if h.padding_len != 0 {
            return Err(DecodeError::malformed(WHAT, "the P bit is set"));
        }
        DecodeError::need(WHAT, h.payload_offset + OVERHEAD_BYTES, p.len())?;
        let t = &p[p.len() - TRAILER_BYTES..];
        Ok(Sealed {
            ssrc: h.ssrc,
            sequence: h.sequence,
            key_id: u32::from_be_bytes(t[..4].try_into().expect("4 bytes")),
            roc: u32::from_be_bytes(t[4..].try_into().expect("4 bytes")),
            header_len: h.payload_offset,
        })
    }
}

/// Why a sealed packet did not open: bytes that are not one, or a tag that does not check (the
/// wrong key, or a forgery).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    #[error("the packet is sealed for key {got}, this is key {want}")]
    WrongKey { got: u32, want: u32 },
    #[error("the packet's authentication tag does not check")]
    Forged,
}

impl StreamKey {
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    fn nonce(&self, roc: u32, sequence: u16) -> aead::Nonce {
        let mut iv = [0u8; SALT_BYTES];
        iv[2..6].copy_from_slice(&self.ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..].copy_from_slice(&sequence.to_be_bytes());
        for (b, s) in iv.iter_mut().zip(&self.salt) {
            *b ^= s;
        }
        aead::Nonce::assume_unique_for_key(iv)
    }

    /// Seals a plaintext RTP packet of this key's SSRC; `roc` is the sender's rollover counter
    /// for this packet's sequence number. Padding is dropped; the rest of the header is kept.
    pub fn seal(&self, roc: u32, packet: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let h = RtpHeader::parse(packet)?;
        if h.ssrc != self.ssrc {
            return Err(DecodeError::malformed(
                WHAT,
                format!(
                    "SSRC {:#010x} sealed with the key of {:#010x}",
                    h.ssrc, self.ssrc
                ),
            ));
        }
        let header_len = h.payload_offset;
        let mut out = Vec::with_capacity(header_len + h.payload_len + OVERHEAD_BYTES);
        out.extend_from_slice(&packet[..header_len]);
        out[0] &= !0x20;
        out.extend_from_slice(&packet[header_len..header_len + h.payload_len]);
        let trailer = self.trailer(roc);
        let aad = [&out[..header_len], &trailer[..]].concat();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.nonce(roc, h.sequence),
                aead::Aad::from(&aad),
                &mut out[header_len..],
            )
            .expect("RTP payloads are far below AES-GCM's limit");
        out.extend_from_slice(tag.as_ref());
        out.extend_from_slice(&trailer);
        Ok(out)
    }

    fn trailer(&self, roc: u32) -> [u8; TRAILER_BYTES] {
        let mut t = [0u8; TRAILER_BYTES];
        t[..4].copy_from_slice(&self.key_id.to_be_bytes());
        t[4..].copy_from_slice(&roc.to_be_bytes());
        t
    }

    /// Opens a sealed packet (read with [`Sealed::peek`]) into the plaintext RTP packet.
    pub fn open(&self, sealed: &Sealed, packet: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.key_id != self.key_id {
            return Err(OpenError::WrongKey {
                got: sealed.key_id,
                want: self.key_id,
            });
        }
        let (header_len, end) = (sealed.header_len, packet.len() - TRAILER_BYTES);
        let aad = [&packet[..header_len], &packet[end..]].concat();
        let mut body = packet[header_len..end].to_vec();
        let plain_len = self
            .key
            .open_in_place(
                self.nonce(sealed.roc, sealed.sequence),
                aead::Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| OpenError::Forged)?
            .len();
        let mut out = Vec::with_capacity(header_len + plain_len);
        out.extend_from_slice(&packet[..header_len]);
        out.extend_from_slice(&body[..plain_len]);
        Ok(out)
    }
}

/// A receiver's replay window for one sender stream (RFC 3711 §3.3.2): the highest index
/// accepted and which of the 64 before it were seen. Only packets that opened are recorded, so a
/// forger cannot move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit `i` set: index `highest - i` was accepted.
    seen: u64,
}

/// How far behind the newest packet a late one is still accepted.
pub const REPLAY_WINDOW_PACKETS: u64 = 64;

impl ReplayWindow {
    /// Whether a packet at `index` would be new.
    pub fn is_fresh(&self, index: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if index > h => true,
            Some(h) => {
                let behind = h - index;
                behind < REPLAY_WINDOW_PACKETS && self.seen & (1 << behind) == 0
            }
        }
    }

    /// Records an accepted packet (check [`ReplayWindow::is_fresh`] first).
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            None => {
                self.highest = Some(index);
                self.seen = 1;
            }
            Some(h) if index > h => {
                let ahead = index - h;
                self.seen = if ahead >= REPLAY_WINDOW_PACKETS {
                    1
                } else {
                    self.seen << ahead | 1
                };
                self.highest = Some(index);
            }
            Some(h) => {
                let behind = h - index;
                if behind < REPLAY_WINDOW_PACKETS {
                    self.seen |= 1 << behind;
                }
            }
        }
    }
}

/// A sender's rollover counter: how many times its 16-bit sequence number has wrapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollover {
    last: Option<u16>,
    roc: u32,
}

impl Rollover {
    /// The ROC of a packet sent with `sequence`. A sequence number ahead of the last (by less
    /// than half the space) moves the stream on, wrapping if it is numerically smaller; one
    /// behind it (a tool sending out of order) belongs to the stream as it was.
    pub fn next(&mut self, sequence: u16) -> u32 {
        let Some(last) = self.last else {
            self.last = Some(sequence);
            return self.roc;
        };
        if sequence.wrapping_sub(last) < 0x8000 {
            if sequence < last {
                self.roc = self.roc.wrapping_add(1);
            }
            self.last = Some(sequence);
            self.roc
        } else if sequence > last {
            self.roc.wrapping_sub(1)
        } else {
            self.roc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    fn packet(ssrc: u32, sequence: u16, payload: &[u8]) -> Vec<u8> {
        RtpPacket {
            marker: false,
            payload_type: 111,
            sequence,
            timestamp: 960,
            ssrc,
            csrc: vec![7],
            payload: payload.to_vec(),
        }
        .encode()
    }

    #[test]
    fn seals_the_payload_only_and_opens_to_the_same_packet() {
        let key = MediaKey::new(3, [5; 32]);
        let sk = key.stream(0x1122_3344);
        let plain = packet(0x1122_3344, 9, b"hello, meeting");
        let sealed = sk.seal(2, &plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + OVERHEAD_BYTES);
        assert_eq!(sealed[..16], plain[..16], "the header stays readable");
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let s = Sealed::peek(&sealed).unwrap();
        assert_eq!((s.key_id, s.roc, s.index()), (3, 2, 2 << 16 | 9));
        assert_eq!(sk.open(&s, &sealed).unwrap(), plain);
        // The MMR's parser still takes it as RTP from the same SSRC.
        assert_eq!(RtpHeader::parse(&sealed).unwrap().ssrc, 0x1122_3344);
    }

    #[test]
    fn a_wrong_key_a_flipped_bit_or_a_moved_index_does_not_open() {
        let key = MediaKey::new(1, [5; 32]);
        let sealed = key.stream(1).seal(0, &packet(1, 1, b"abc")).unwrap();
        let s = Sealed::peek(&sealed).unwrap();
        let other = MediaKey::new(1, [6; 32]).stream(1);
        assert_eq!(other.open(&s, &sealed), Err(OpenError::Forged));
        assert_eq!(
            MediaKey::new(2, [5; 32]).stream(1).open(&s, &sealed),
            Err(OpenError::WrongKey { got: 1, want: 2 })
        );
        for i in 0..sealed.len() {
            let mut forged = sealed.clone();
            forged[i] ^= 0x01;
            let opened = Sealed::peek(&forged)
                .map_err(OpenError::from)
                .and_then(|s| key.stream(s.ssrc).open(&s, &forged));
            assert!(opened.is_err(), "bit flipped at byte {i} still opened");
        }
    }

    #[test]
    fn padding_is_dropped_before_sealing() {
        let mut plain = packet(4, 1, b"abcd");
        plain[0] |= 0x20;
        plain.extend_from_slice(&[0, 0, 3]);
        let sk = MediaKey::new(1, [1; 32]).stream(4);
        let sealed = sk.seal(0, &plain).unwrap();
        let opened = sk.open(&Sealed::peek(&sealed).unwrap(), &sealed).unwrap();
        assert_eq!(opened, packet(4, 1, b"abcd"));
    }

    #[test]
    fn the_replay_window_takes_each_index_once_and_nothing_too_old() {
        let mut w = ReplayWindow::default();
        for i in [100, 98, 101, 99, 170] {
            assert!(w.is_fresh(i), "{i}");
            w.accept(i);
            assert!(!w.is_fresh(i), "{i} again");
        }
        assert!(!w.is_fresh(100) && !w.is_fresh(101));
        assert!(!w.is_fresh(106), "64 or more behind the newest");
        assert!(w.is_fresh(107) && w.is_fresh(169));
    }

    #[test]
    fn the_rollover_counter_counts_wraps() {
        let mut r = Rollover::default();
        assert_eq!(r.next(65_534), 0);
        assert_eq!(r.next(65_535), 0);
        assert_eq!(r.next(0), 1);
        assert_eq!(r.next(65_535), 0, "a late packet from before the wrap");
        assert_eq!(r.next(1), 1);
    }

    #[test]
    fn a_media_key_is_hex_in_json_and_secret_in_debug() {
        let k = MediaKey::new(7, [0xab; 32]);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(
            json,
            format!("{{\"id\":7,\"secret\":\"{}\"}}", "ab".repeat(32))
        );
        assert_eq!(serde_json::from_str::<MediaKey>(&json).unwrap(), k);
        assert_eq!(format!("{k:?}"), "MediaKey(id 7)");
        assert!(serde_json::from_str::<MediaKey>(r#"{"id":1,"secret":"abcd"}"#).is_err());
    }
}
