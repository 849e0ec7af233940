//! `bench`: the meeting connector's benchmarks over real loopback sockets, each figure printed
//! beside a baseline measured in the same run (see `benches/README.md`).
//!
//! ```text
//! cargo run --release -p mc-benches -- [mmr|cascade|memory|join|crypto|all] [--seconds N] [--joins K] [--concurrency C] [--json]
//! ```
//!
//! Nothing here asserts on speed: machines are shared and noisy, so the ratio to the baseline is
//! the figure to read. Under `--cfg madsim` there are no real sockets to measure and the binary
//! only says so.
#![forbid(unsafe_code)]

#[cfg(not(madsim))]
mod bare;
#[cfg(not(madsim))]
mod cascade;
#[cfg(not(madsim))]
mod cli;
#[cfg(not(madsim))]
mod cpu;
#[cfg(not(madsim))]
mod crypto;
#[cfg(not(madsim))]
mod isolated;
#[cfg(not(madsim))]
mod join;
#[cfg(not(madsim))]
mod memory;
#[cfg(not(madsim))]
mod mmr;
#[cfg(not(madsim))]
mod report;
#[cfg(not(madsim))]
mod traffic;

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(madsim)]
fn main() {
    eprintln!("the benchmarks measure real sockets; build them without --cfg madsim");
}
