//! The runtime seam: the only crate that names the async runtime.
//!
//! Normally that is tokio; compiled with `--cfg madsim` it is madsim's deterministic simulator
//! (through `madsim-tokio`, renamed `tokio` in the workspace). Everything else imports sockets,
//! timers, spawning and TLS from here, so the same shells run for real and in simulation.
//! Simulation-only fault hooks live in [`fault`] and compile to nothing in real builds.
#![forbid(unsafe_code)]

#[cfg(all(target_os = "linux", not(madsim)))]
mod batch;
pub mod certs;
pub mod fault;
pub mod identity;
pub mod net;
#[cfg(madsim)]
pub mod simnet;
pub mod tls;

pub use tokio::io::{
    self, split, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf,
};
pub use tokio::select;
pub use tokio::sync;
pub use tokio::task::JoinHandle;
pub use tokio::time::{interval, sleep, timeout, Instant, MissedTickBehavior};

#[cfg(madsim)]
pub use madsim as sim;

/// Spawns a task on the current runtime (a simulated node's, under madsim).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// A spawned task that is cancelled when dropped, for work a loop starts in the background and
/// may abandon (a plain [`JoinHandle`] detaches instead, and the work would go on unseen).
pub struct Task<T>(JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    pub fn spawn<F>(future: F) -> Task<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
    {
        Task(spawn(future))
    }
}

impl<T> std::future::Future for Task<T> {
    /// `Err` only if the task panicked.
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wall-clock time as Unix milliseconds: real time, or the simulated clock under madsim. The
/// shells read it and hand it to the cores as `now_ms`.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The runtime's monotonic clock as a `std::time::Instant`, for libraries whose timer hooks
/// speak std (hyper's `Timer`): tokio's clock (which a test may pause) in real runs, the
/// simulated clock under madsim.
pub fn std_now() -> std::time::Instant {
    #[cfg(madsim)]
    {
        madsim::time::Instant::now()
    }
    #[cfg(not(madsim))]
    {
        Instant::now().into_std()
    }
}

/// A seed for a node that was given none: from the OS in real runs, from the simulation's seeded
/// RNG under madsim (so unseeded nodes are still reproducible there).
pub fn fresh_seed() -> u64 {
    #[cfg(madsim)]
    {
        madsim::rand::random::<u64>()
    }
    #[cfg(not(madsim))]
    {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .expect("the OS random source works");
        u64::from_le_bytes(b)
    }
}

/// Resolves when the process is asked to stop (Ctrl-C / SIGINT).
pub async fn ctrl_c() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// Runs a future to completion on a new multi-threaded tokio runtime: the entry point of real
/// processes and of real-network tests. (Simulations build their runtime with `fault::runtime`.)
#[cfg(not(madsim))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(future)
}
