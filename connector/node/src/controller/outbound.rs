//! Supervision of a link this controller dials (cloud status sync, cloud notification, the peer):
//! the dedicated port first, then the fallback (DESIGN §3); back off while every port fails;
//! while on the fallback, re-probe the dedicated port and move the link back when it answers.

use super::Ctx;
use mc_core::controller::Closed;
use mc_core::fallback::{Backoff, Ladder};
use mc_rt::net::TcpStream;
use mc_rt::sync::oneshot;
use mc_rt::tls::{self, ClientConfig, ClientTlsStream};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(super) type Stream = ClientTlsStream<TcpStream>;

/// How often a link on its fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;
/// How often a link on its fallback port asks whether a re-probe is due.
const REPROBE_CHECK_MS: u64 = 1_000;

/// The retry policy of the links to the cloud.
pub(super) const CLOUD_BACKOFF: Backoff = Backoff::doubling(500, 10_000);

pub(super) struct Dial {
    /// The link's name in the link table.
    pub link: &'static str,
    pub host: String,
    /// Dedicated port, then fallback.
    pub ports: [u16; 2],
    pub tls: Arc<ClientConfig>,
    pub backoff: Backoff,
}

/// A link being run on an established connection.
pub(super) struct Linked {
    pub stream: Stream,
    pub port: u16,
    pub dedicated: bool,
    /// Fires when the supervisor moves the link to the dedicated port: the link should end.
    pub leave: oneshot::Receiver<Closed>,
}

/// Dials and re-dials for as long as the controller runs; `run_link` carries one connection
/// until it ends. `unreachable(backoff_ms, first)` is called when every port failed.
pub(super) async fn supervise<F, Fut>(
    ctx: Ctx,
    dial: Dial,
    mut run_link: F,
    unreachable: impl Fn(&Ctx, u64, bool),
) where
    F: FnMut(Linked) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ladder = Ladder::new(vec![0usize, 1], REPROBE_INTERVAL_MS);
    let mut backoff_ms = dial.backoff.first_ms;
    let mut failing_since_up = false;
    let mut next: Option<(usize, Stream)> = None;
    loop {
        let (which, stream) = match next.take() {
            Some(n) => n,
            None => {
                let Some(&which) = ladder.next_to_try() else {
                    ctx.links.down(dial.link);
                    unreachable(&ctx, backoff_ms, !failing_since_up);
                    failing_since_up = true;
                    mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(dial.backoff.max_ms);
                    ladder.reset();
                    continue;
                };
                match connect(&ctx, &dial, dial.ports[which]).await {
                    Ok(s) => (which, s),
                    Err(e) => {
                        tracing::warn!(link = dial.link, port = dial.ports[which], "{e}");
                        ladder.attempt_failed(&which);
                        continue;
                    }
                }
            }
        };
        ladder.established(mc_rt::unix_now_ms(), &which);
        backoff_ms = dial.backoff.first_ms;
        failing_since_up = false;
        let (leave_tx, leave) = oneshot::channel();
        let link = run_link(Linked {
            stream,
            port: dial.ports[which],
            dedicated: which == 0,
            leave,
        });
        let mut link = std::pin::pin!(link);
        let mut leave_tx = Some(leave_tx);
        let mut reprobe = mc_rt::interval(Duration::from_millis(REPROBE_CHECK_MS));
        loop {
            mc_rt::select! {
                // Branches are polled in order, never at random: one seed, one run.
                biased;
                () = &mut link => break,
                _ = reprobe.tick(), if which != 0 && leave_tx.is_some() => {
                    if ladder.reprobe_due(mc_rt::unix_now_ms()).is_some() {
                        if let Ok(s) = connect(&ctx, &dial, dial.ports[0]).await {
                            next = Some((0, s));
                            let port = dial.ports[0];
                            let _ = leave_tx.take().expect("guarded").send(Closed::Moving { port });
                        }
                    }
                }
            }
        }
        if next.is_none() {
            ctx.links.down(dial.link);
            ladder.lost();
            mc_rt::sleep(Duration::from_millis(backoff_ms)).await;
        }
    }
}

async fn connect(ctx: &Ctx, dial: &Dial, port: u16) -> Result<Stream, String> {
    let addr = mc_rt::net::resolve(&dial.host, port)
        .await
        .map_err(|e| format!("resolving {}: {e}", dial.host))?;
    let timeout = Duration::from_millis(ctx.config.connect_timeout_ms);
    tls::connect(addr, &dial.host, dial.tls.clone(), timeout)
        .await
        .map_err(|e| e.to_string())
}
