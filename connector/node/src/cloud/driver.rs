//! The one task that owns the cloud's decision state ([`CloudState`]: management, status sync,
//! the notification log, monitoring reports). HTTP requests and the status and notification
//! sessions hand it work through one bounded queue and wait for the answer, so every decision
//! runs in the order it was asked for, at one `now_ms`, and nothing else touches that state.

use super::CloudState;
use mc_rt::sync::{mpsc, oneshot};

/// Work queued for the cloud before callers wait: enough for a burst of joins.
const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce(&mut CloudState, u64) + Send>;

/// The way into the cloud's state, for request handlers and sessions.
#[derive(Clone)]
pub(crate) struct CloudTx {
    tx: mpsc::Sender<Job>,
}

/// The cloud has stopped: nothing can be decided any more.
#[derive(Debug, thiserror::Error)]
#[error("the cloud is stopping")]
pub(crate) struct Stopped;

impl CloudTx {
    /// Runs `work` on the cloud's state at the driver's clock (`now_ms`), in turn with every
    /// other caller, and returns its answer.
    pub async fn call<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut CloudState, u64) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |state, now_ms| {
            let _ = reply.send(work(state, now_ms));
        });
        self.tx.send(job).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

/// Starts the task that owns `state`.
pub(crate) fn start(mut state: CloudState) -> CloudTx {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
    mc_rt::spawn(async move {
        while let Some(job) = rx.recv().await {
            job(&mut state, mc_rt::unix_now_ms());
        }
    });
    CloudTx { tx }
}
