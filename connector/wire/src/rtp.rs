//! RTP (RFC 3550) packets.
//!
//! The MMR treats payloads as opaque: it parses only enough to know the packet is well formed and
//! who sent it (SSRC), then forwards the original bytes unchanged.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers (CC × 32)   |
//! | [extension: profile u16, length u16 (words), data]            |
//! | payload ...                          | [padding, last = count]|
//! ```

use crate::DecodeError;

pub const VERSION: u8 = 2;
const FIXED_HEADER_BYTES: usize = 12;
const WHAT: &str = "RTP packet";

/// A parsed RTP header plus where its payload lies in the packet it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc: Vec<u32>,
    /// Header extension: (profile-defined id, data).
    pub extension: Option<(u16, Vec<u8>)>,
    /// Byte range of the payload within the parsed packet (padding excluded).
    pub payload_offset: usize,
    pub payload_len: usize,
    pub padding_len: usize,
}

impl RtpHeader {
    /// Parses and validates a whole RTP packet.
    pub fn parse(p: &[u8]) -> Result<RtpHeader, DecodeError> {
        DecodeError::need(WHAT, FIXED_HEADER_BYTES, p.len())?;
        let version = p[0] >> 6;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let has_padding = p[0] & 0x20 != 0;
        let has_extension = p[0] & 0x10 != 0;
        let csrc_count = (p[0] & 0x0f) as usize;
        let mut offset = FIXED_HEADER_BYTES;
        DecodeError::need(WHAT, offset + 4 * csrc_count, p.len())?;
        let csrc = (0..csrc_count)
            .map(|i| be32(&p[offset + 4 * i..]))
            .collect();
        offset += 4 * csrc_count;
        let extension = if has_extension {
            DecodeError::need(WHAT, offset + 4, p.len())?;
            let profile = u16::from_be_bytes([p[offset], p[offset + 1]]);
            let words = u16::from_be_bytes([p[offset + 2], p[offset + 3]]) as usize;
            offset += 4;
            DecodeError::need(WHAT, offset + 4 * words, p.len())?;
            let data = p[offset..offset + 4 * words].to_vec();
            offset += 4 * words;
            Some((profile, data))
        } else {
            None
        };
        let padding_len = if has_padding {
            let count = *p.last().expect("length checked above") as usize;
            if count == 0 || offset + count > p.len() {
                return Err(DecodeError::malformed(
                    WHAT,
                    format!("invalid padding count {count}"),
                ));
            }
            count
        } else {
            0
        };
        Ok(RtpHeader {
            marker: p[1] & 0x80 != 0,
            payload_type: p[1] & 0x7f,
            sequence: u16::from_be_bytes([p[2], p[3]]),
            timestamp: be32(&p[4..]),
            ssrc: be32(&p[8..]),
            csrc,
            extension,
            payload_offset: offset,
            payload_len: p.len() - offset - padding_len,
            padding_len,
        })
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// An RTP packet to send. Encodes without padding or extension; CSRCs are kept (at most 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc: Vec<u32>,
    pub payload: Vec<u8>,
}

impl RtpPacket {
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.csrc.len() <= 15, "RTP carries at most 15 CSRCs");
        assert!(self.payload_type <= 0x7f, "RTP payload type is 7 bits");
        let mut out =
            Vec::with_capacity(FIXED_HEADER_BYTES + 4 * self.csrc.len() + self.payload.len());
        out.push(VERSION << 6 | self.csrc.len() as u8);
        out.push((self.marker as u8) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrc {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses a whole packet into an owned value (padding and extension are dropped).
    pub fn decode(p: &[u8]) -> Result<RtpPacket, DecodeError> {
        let h = RtpHeader::parse(p)?;
        Ok(RtpPacket {
            marker: h.marker,
            payload_type: h.payload_type,
            sequence: h.sequence,
            timestamp: h.timestamp,
            ssrc: h.ssrc,
            payload: p[h.payload_offset..h.payload_offset + h.payload_len].to_vec(),
            csrc: h.csrc,
        })
    }
}
