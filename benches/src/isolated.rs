//! A server under test on a runtime of its own, in threads of its own, so that its CPU time can
//! be read apart from the load generator's (which shares the process, and on a small machine the
//! cores).
//!
//! The server's runtime is a second `mc_rt::block_on` on a dedicated OS thread. Its threads are
//! told apart by their ids: those that appeared while it started. That holds as long as nothing
//! else in the process starts a thread meanwhile, which the benchmarks ensure by waiting for the
//! server before doing anything else.
//! The runtime is the seam's, as production runs: one worker thread per core.

use crate::cpu;
use mc_rt::sync::oneshot;
use std::future::Future;

pub struct Isolated<T> {
    /// What the start function returned (handles, addresses, counters).
    pub value: T,
    tids: Vec<u32>,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<()>,
}

impl<T: Send + 'static> Isolated<T> {
    /// Runs `start` on a new runtime in a thread named `name` and keeps that runtime alive (with
    /// every task `start` spawned) until [`Isolated::stop`].
    pub async fn start<F, Fut>(name: &str, start: F) -> Isolated<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let before = cpu::thread_ids();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                mc_rt::block_on(async move {
                    let _ = ready_tx.send(start().await);
                    let _ = stop_rx.await;
                });
                // `block_on` has dropped its runtime by now: every task is gone, every socket closed.
                let _ = stopped_tx.send(());
            })
            .expect("the OS starts a thread");
        let value = ready_rx
            .await
            .unwrap_or_else(|_| panic!("{name} failed to start (its thread panicked; see above)"));
        let tids = cpu::thread_ids().difference(&before).copied().collect();
        Isolated {
            value,
            tids,
            stop,
            stopped,
        }
    }

    /// CPU time used so far by the server's threads, in nanoseconds.
    pub fn cpu_ns(&self) -> Option<u64> {
        if self.tids.is_empty() {
            return None;
        }
        self.tids.iter().map(|t| cpu::thread_cpu_ns(*t)).sum()
    }

    /// Context switches (voluntary and not) of the server's threads so far.
    pub fn context_switches(&self) -> Option<u64> {
        if self.tids.is_empty() {
            return None;
        }
        self.tids
            .iter()
            .map(|t| cpu::thread_context_switches(*t))
            .sum()
    }

    /// Shuts the server's runtime down and waits until it is gone.
    pub async fn stop(self) -> T {
        let _ = self.stop.send(());
        let _ = self.stopped.await;
        self.value
    }
}
