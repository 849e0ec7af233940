//! A participant's media protection at its own edge: it seals what it sends under the meeting's
//! current key and opens what others send under any key it still holds, once each (PROTOCOL §9).
//! The MMR in between holds no key.

use mc_wire::srtp::{MediaKey, OpenError, ReplayWindow, Rollover, Sealed, StreamKey};
use mc_wire::DecodeError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Keys kept after a re-key, so packets sealed just before it still open. Keys only move forward:
/// the ZC hands out the next one when someone leaves.
const KEYS_KEPT: usize = 2;
/// Senders whose stream state is kept; only packets that opened create it, so a forger cannot
/// fill it. The oldest stream goes first.
const MAX_STREAMS: usize = 4096;

/// Packets that did not open, by why. A non-zero `forged` or `replayed` is someone on the
/// network; `unknown_key` a re-key racing its packets (a few at most) or a stale sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpenFailures {
    pub malformed: u64,
    pub unknown_key: u64,
    pub forged: u64,
    pub replayed: u64,
}

/// Why one packet did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Malformed(DecodeError),
    UnknownKey(u32),
    Forged,
    Replayed,
}

#[derive(Debug, Default)]
pub struct MediaCrypto {
    keys: BTreeMap<u32, MediaKey>,
    /// Per (key id, SSRC): the derived stream key, made once.
    streams: BTreeMap<(u32, u32), StreamKey>,
    sending: BTreeMap<u32, Rollover>,
    /// Per sender: what arrived already, across keys (the index runs on through a re-key).
    windows: BTreeMap<u32, ReplayWindow>,
    pub failures: OpenFailures,
}

impl MediaCrypto {
    pub fn new(key: MediaKey) -> MediaCrypto {
        let mut c = MediaCrypto::default();
        c.start(key);
        c
    }

    /// A new session (a join or rejoin, perhaps elsewhere): its key replaces every key held.
    /// What was sent is remembered (the rollover counters), so a key met again never sees the
    /// same nonce twice.
    pub fn start(&mut self, key: MediaKey) {
        self.keys.clear();
        self.streams.clear();
        self.windows.clear();
        self.keys.insert(key.id, key);
    }

    /// A key from `rekey`. A key older than the newest held is ignored.
    pub fn install(&mut self, key: MediaKey) {
        if self
            .keys
            .keys()
            .next_back()
            .is_some_and(|newest| *newest >= key.id)
        {
            return;
        }
        self.keys.insert(key.id, key);
        while self.keys.len() > KEYS_KEPT {
            let (oldest, _) = self.keys.pop_first().expect("more than kept");
            self.streams.retain(|(k, _), _| *k != oldest);
        }
    }

    /// The id of the key this participant seals with.
    pub fn current_key(&self) -> Option<u32> {
        self.keys.keys().next_back().copied()
    }

    fn stream(&mut self, key_id: u32, ssrc: u32) -> Option<&StreamKey> {
        let key = self.keys.get(&key_id)?;
        Some(
            self.streams
                .entry((key_id, ssrc))
                .or_insert_with(|| key.stream(ssrc)),
        )
    }

    /// Seals one plaintext RTP packet this participant sends (`None` before any session).
    pub fn seal(&mut self, packet: &[u8]) -> Option<Result<Vec<u8>, DecodeError>> {
        let key_id = self.current_key()?;
        Some(self.seal_with(key_id, packet))
    }

    fn seal_with(&mut self, key_id: u32, packet: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let h = mc_wire::rtp::RtpHeader::parse(packet)?;
        let roc = self.sending.entry(h.ssrc).or_default().next(h.sequence);
        self.stream(key_id, h.ssrc)
            .expect("the current key is held")
            .seal(roc, packet)
    }

    /// Opens one packet from the MMR into plaintext RTP; what does not open is counted.
    pub fn open(&mut self, packet: &[u8]) -> Result<Vec<u8>, Refused> {
        let opened = self.try_open(packet);
        if let Err(why) = &opened {
            let f = &mut self.failures;
            match why {
                Refused::Malformed(_) => f.malformed += 1,
                Refused::UnknownKey(_) => f.unknown_key += 1,
                Refused::Forged => f.forged += 1,
                Refused::Replayed => f.replayed += 1,
            }
        }
        opened
    }

    fn try_open(&mut self, packet: &[u8]) -> Result<Vec<u8>, Refused> {
        let sealed = Sealed::peek(packet).map_err(Refused::Malformed)?;
        if self
            .windows
            .get(&sealed.ssrc)
            .is_some_and(|w| !w.is_fresh(sealed.index()))
        {
            return Err(Refused::Replayed);
        }
        let known = self.streams.contains_key(&(sealed.key_id, sealed.ssrc));
        let stream = match self.streams.get(&(sealed.key_id, sealed.ssrc)) {
            Some(s) => s,
            None => {
                let key = self
                    .keys
                    .get(&sealed.key_id)
                    .ok_or(Refused::UnknownKey(sealed.key_id))?;
                // Derived for this packet only until it opens: forged SSRCs leave nothing behind.
                &key.stream(sealed.ssrc)
            }
        };
        let plain = stream.open(&sealed, packet).map_err(|e| match e {
            OpenError::Malformed(d) => Refused::Malformed(d),
            OpenError::WrongKey { got, .. } => Refused::UnknownKey(got),
            OpenError::Forged => Refused::Forged,
        })?;
        if !known {
            let key = self.keys[&sealed.key_id].stream(sealed.ssrc);
            self.streams.insert((sealed.key_id, sealed.ssrc), key);
        }
        if !self.windows.contains_key(&sealed.ssrc) && self.windows.len() >= MAX_STREAMS {
            self.windows.pop_first();
        }
        self.windows
            .entry(sealed.ssrc)
            .or_default()
            .accept(sealed.index());
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RtpSender;

    fn crypto(id: u32, secret: u8) -> MediaCrypto {
        MediaCrypto::new(MediaKey::new(id, [secret; 32]))
    }

    #[test]
    fn what_one_seals_the_others_open_once() {
        let (mut alice, mut bob) = (crypto(1, 9), crypto(1, 9));
        let mut tx = RtpSender::new(77, 65_534, 0);
        for _ in 0..5 {
            let plain = tx.next_packet(b"voice".to_vec());
            let sealed = alice.seal(&plain).unwrap().unwrap();
            assert_eq!(bob.open(&sealed).unwrap(), plain);
            assert_eq!(bob.open(&sealed), Err(Refused::Replayed));
        }
        assert_eq!(bob.failures.replayed, 5);
    }

    #[test]
    fn after_a_rekey_the_one_who_left_opens_nothing_new() {
        let (mut alice, mut bob, mut gone) = (crypto(1, 9), crypto(1, 9), crypto(1, 9));
        let mut tx = RtpSender::new(5, 0, 0);
        let before = alice.seal(&tx.next_packet(vec![1])).unwrap().unwrap();
        for c in [&mut alice, &mut bob] {
            c.install(MediaKey::new(2, [3; 32]));
        }
        let after = alice.seal(&tx.next_packet(vec![2])).unwrap().unwrap();
        assert!(
            bob.open(&before).is_ok(),
            "a packet from before the re-key still opens"
        );
        assert!(bob.open(&after).is_ok());
        assert_eq!(gone.open(&after), Err(Refused::UnknownKey(2)));
        assert!(gone.open(&before).is_ok());
        // An old key offered again changes nothing.
        bob.install(MediaKey::new(1, [9; 32]));
        assert_eq!(bob.current_key(), Some(2));
    }

    #[test]
    fn a_forged_packet_is_counted_and_leaves_no_state() {
        let mut bob = crypto(1, 9);
        let mut forger = crypto(1, 8);
        let mut tx = RtpSender::new(1234, 0, 0);
        for _ in 0..10 {
            let forged = forger.seal(&tx.next_packet(vec![0; 20])).unwrap().unwrap();
            assert_eq!(bob.open(&forged), Err(Refused::Forged));
        }
        assert_eq!(bob.failures.forged, 10);
        assert!(bob.streams.is_empty() && bob.windows.is_empty());
    }
}
