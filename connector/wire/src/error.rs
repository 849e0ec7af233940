//! The one decode error type of the wire formats. Every variant is the peer's fault: the bytes we
//! were given are not a valid message. Receivers drop such input, count it, and carry on.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("{what}: truncated, need {needed} bytes but have {have}")]
    Truncated {
        what: &'static str,
        needed: usize,
        have: usize,
    },
    #[error("{what}: {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion { what: &'static str, version: u8 },
    #[error("{what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

impl DecodeError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Malformed {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn need(what: &'static str, needed: usize, have: usize) -> Result<(), Self> {
        if have < needed {
            Err(DecodeError::Truncated { what, needed, have })
        } else {
            Ok(())
        }
    }
}
