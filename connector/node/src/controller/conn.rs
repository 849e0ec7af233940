//! One connection's task: it reads whole messages and queues them for the core, and writes what
//! the core sends, until the core closes the connection.

use super::driver::{Cmd, CoreTx, Write};
use crate::framed::{FrameReader, LinkError};
use mc_core::controller::{Closed, ConnId, Input};
use mc_rt::sync::{mpsc, oneshot};
use mc_rt::{AsyncRead, AsyncWrite, AsyncWriteExt};
use serde::de::DeserializeOwned;

/// Runs a connection: `open` tells the core it exists, each message `M` read becomes `input(M)`.
/// `leave`, when it fires, tells the core the shell is moving the link elsewhere. Returns once
/// the core has closed the connection (or stopped).
pub(super) async fn run<S, M>(
    stream: S,
    core: &CoreTx,
    conn: ConnId,
    open: Input,
    input: impl Fn(M) -> Input,
    leave: Option<oneshot::Receiver<Closed>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    M: DeserializeOwned,
{
    let (writer, mut writes) = mpsc::unbounded_channel();
    if !core
        .send(Cmd::Open {
            writer,
            input: open,
        })
        .await
    {
        return;
    }
    let (rd, mut wr) = mc_rt::split(stream);
    let mut rd = FrameReader::new(rd);
    // Once the reading side is over the core has been told, and only its writes remain.
    let mut reading = true;
    let mut leave = leave;
    loop {
        mc_rt::select! {
            // Branches are polled in order, never at random: one seed, one run.
            biased;
            write = writes.recv() => match write {
                Some(Write::Frame(bytes)) => {
                    let written = match wr.write_all(&bytes).await {
                        Ok(()) => wr.flush().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = written {
                        if reading {
                            reading = false;
                            let closed = Input::Closed { conn, why: Closed::Io(LinkError::Io(e).to_string()) };
                            core.send(Cmd::Input(closed)).await;
                        }
                    }
                }
                Some(Write::Close) | None => return,
            },
            why = async { leave.as_mut().expect("guarded").await }, if reading && leave.is_some() => {
                leave = None;
                if let Ok(why) = why {
                    reading = false;
                    core.send(Cmd::Input(Input::Closed { conn, why })).await;
                }
            }
            msg = rd.next::<M>(), if reading => {
                let next = match msg {
                    Ok(Some(msg)) => input(msg),
                    Ok(None) => Input::Closed { conn, why: Closed::Clean },
                    Err(e @ LinkError::Malformed(_)) => Input::Closed { conn, why: Closed::Malformed(e.to_string()) },
                    Err(e @ LinkError::Io(_)) => Input::Closed { conn, why: Closed::Io(e.to_string()) },
                };
                reading = !matches!(next, Input::Closed { .. });
                if !core.send(Cmd::Input(next)).await {
                    return;
                }
            }
        }
    }
}
