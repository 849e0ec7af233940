//! The media token: the secret a participant binds its media with (PROTOCOL §8.2).

use crate::hex;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest token accepted from a peer (the ZC makes 16-byte ones).
pub const MAX_TOKEN_BYTES: usize = 64;

/// One representation end to end: bytes in memory, lowercase hex in the JSON messages that carry
/// it (`joined`, the MMR link's grants), the raw bytes inside a binding request. A malformed one
/// fails the message that carries it, at decoding. `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaToken(Vec<u8>);

impl MediaToken {
    pub fn from_bytes(bytes: Vec<u8>) -> MediaToken {
        MediaToken(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Lets maps keyed by tokens be searched with the bytes of a binding request.
impl std::borrow::Borrow<[u8]> for MediaToken {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MediaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaToken({} bytes)", self.0.len())
    }
}

impl Serialize for MediaToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for MediaToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MediaToken, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.is_empty() || text.len() > 2 * MAX_TOKEN_BYTES {
            return Err(de::Error::custom(format!(
                "a media token is 1 to {MAX_TOKEN_BYTES} bytes of hex"
            )));
        }
        hex::decode("media token", &text)
            .map(MediaToken)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_on_the_wire_bytes_in_memory_and_no_secret_in_debug() {
        let t = MediaToken::from_bytes(vec![0xab, 0x01]);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"ab01\"");
        let back: MediaToken = serde_json::from_str("\"ab01\"").unwrap();
        assert_eq!(back.as_bytes(), [0xab, 0x01]);
        assert_eq!(format!("{t:?}"), "MediaToken(2 bytes)");
        for bad in [
            "\"\"",
            "\"xyz1\"",
            "\"abc\"",
            &format!("\"{}\"", "00".repeat(65)),
        ] {
            assert!(serde_json::from_str::<MediaToken>(bad).is_err(), "{bad}");
        }
    }
}
