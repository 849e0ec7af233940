//! Supervision of a link this controller dials (cloud status sync, cloud notification, the peer):
//! the dedicated port first, then the fallback (DESIGN §3); back off while every port fails;
//! while on the fallback, re-probe the dedicated port and move the link back when it answers.

use super::Ctx;
use crate::dial::{dial_tls_as, sleep_until_ms, DialError, Expect};
use mc_core::controller::Closed;
use mc_core::fallback::{Backoff, DialFailed, Step, Supervisor};
use mc_rt::net::TcpStream;
use mc_rt::sync::oneshot;
use mc_rt::tls::{ClientConfig, ClientTlsStream};
use mc_wire::monitor::LinkPath;
use std::future::Future;
use std::sync::Arc;

pub(super) type Stream = ClientTlsStream<TcpStream>;

/// How often a link on its fallback port tries the dedicated port again.
const REPROBE_INTERVAL_MS: u64 = 30_000;

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
    /// Who must answer: the cloud, or the peer controller.
    pub expect: Expect,
}

/// A link being run on an established connection.
pub(super) struct Linked {
    pub stream: Stream,
    pub port: u16,
    pub path: LinkPath,
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
    // The paths are indices into `dial.ports`.
    let mut sup = Supervisor::new(1, vec![0usize, 1], dial.backoff, REPROBE_INTERVAL_MS);
    // The dedicated port answered a re-probe: the link moves there once the running one left.
    let mut moving: Option<(usize, Stream)> = None;
    loop {
        let (which, stream) = match moving.take() {
            Some(m) => m,
            None => match sup.next_step(mc_rt::unix_now_ms()) {
                Step::Wait { until_ms } => {
                    sleep_until_ms(Some(until_ms)).await;
                    continue;
                }
                Step::Dial { path: which, .. } => {
                    match connect(&ctx, &dial, dial.ports[which]).await {
                        Ok(s) => {
                            sup.established(mc_rt::unix_now_ms(), &which);
                            (which, s)
                        }
                        Err(e) => {
                            tracing::warn!(link = dial.link, port = dial.ports[which], "{e}");
                            let failed = sup.dial_failed(mc_rt::unix_now_ms(), &which);
                            if let DialFailed::Unreachable { retry_in_ms, first } = failed {
                                ctx.links.down(dial.link);
                                unreachable(&ctx, retry_in_ms, first);
                            }
                            continue;
                        }
                    }
                }
            },
        };
        let (leave_tx, leave) = oneshot::channel();
        let link = run_link(Linked {
            stream,
            port: dial.ports[which],
            path: if which == 0 {
                LinkPath::Dedicated
            } else {
                LinkPath::Fallback
            },
            leave,
        });
        let mut link = std::pin::pin!(link);
        let mut leave_tx = Some(leave_tx);
        loop {
            mc_rt::select! {
                // Branches are polled in order, never at random: one seed, one run.
                biased;
                () = &mut link => break,
                () = sleep_until_ms(sup.poll_timeout()), if leave_tx.is_some() => {
                    if let Some((_, best)) = sup.reprobe_due(mc_rt::unix_now_ms()) {
                        if let Ok(s) = connect(&ctx, &dial, dial.ports[best]).await {
                            sup.established(mc_rt::unix_now_ms(), &best);
                            moving = Some((best, s));
                            let port = dial.ports[best];
                            let _ = leave_tx.take().expect("guarded").send(Closed::Moving { port });
                        }
                    }
                }
            }
        }
        if moving.is_none() {
            ctx.links.down(dial.link);
            sup.lost(mc_rt::unix_now_ms());
        }
    }
}

async fn connect(ctx: &Ctx, dial: &Dial, port: u16) -> Result<Stream, DialError> {
    let timeout_ms = ctx.config.connect_timeout_ms;
    dial_tls_as(&dial.host, port, dial.tls.clone(), timeout_ms, &dial.expect).await
}
