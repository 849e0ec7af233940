//! Control frames over an async stream: read whole messages, write and flush each one.

use mc_rt::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use mc_wire::frame::{self, FrameDecoder};
use mc_wire::DecodeError;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("the peer sent a malformed message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("the connection failed: {0}")]
    Io(#[from] std::io::Error),
}

pub struct FrameReader<R> {
    rd: R,
    dec: FrameDecoder,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R) -> FrameReader<R> {
        FrameReader {
            rd,
            dec: FrameDecoder::default(),
            buf: vec![0; 8 * 1024],
        }
    }

    /// The next message, or `None` when the peer closed cleanly between messages. Cancel-safe:
    /// bytes are only consumed from the socket and handed to the decoder in one step.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LinkError> {
        loop {
            if let Some(msg) = self.dec.next_message()? {
                return Ok(Some(msg));
            }
            let n = self.rd.read(&mut self.buf).await?;
            if n == 0 {
                if self.dec.buffered() > 0 {
                    return Err(LinkError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed mid-message",
                    )));
                }
                return Ok(None);
            }
            self.dec.push(&self.buf[..n]);
        }
    }
}

/// What one read with a deadline gave: one typed result instead of nested `Result`s.
#[derive(Debug)]
pub enum Read<T> {
    Message(T),
    /// The peer closed cleanly between messages.
    Closed,
    /// The peer sent something that does not decode.
    Malformed(DecodeError),
    /// The connection failed.
    Io(std::io::Error),
    /// Nothing arrived within the deadline.
    Timeout,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// The next message, or why there is none, within `deadline`.
    pub async fn next_within<T: DeserializeOwned>(&mut self, deadline: Duration) -> Read<T> {
        match mc_rt::timeout(deadline, self.next()).await {
            Ok(Ok(Some(msg))) => Read::Message(msg),
            Ok(Ok(None)) => Read::Closed,
            Ok(Err(LinkError::Malformed(e))) => Read::Malformed(e),
            Ok(Err(LinkError::Io(e))) => Read::Io(e),
            Err(_) => Read::Timeout,
        }
    }
}

/// Writes one message and flushes it (madsim sends stream data only on flush).
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> std::io::Result<()> {
    w.write_all(&frame::encode(msg)).await?;
    w.flush().await
}
