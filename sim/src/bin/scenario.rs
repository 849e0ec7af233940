//! `scenario`: runs scenario files over many seeds, in parallel, and reports.
//!
//! ```text
//! ci/scenario run scenarios/*.toml --seeds 1..=20 --jobs 2 --out target/scenarios
//! ci/scenario run scenarios/udp-blocked.toml --seed 7          # replay one seed
//! ci/scenario determinism scenarios/udp-blocked.toml --seed 7  # run it twice, compare logs
//! ```
//! Built only for simulation (`--cfg madsim`); `ci/scenario` builds and runs it.
#![forbid(unsafe_code)]

#[cfg(not(madsim))]
fn main() {
    eprintln!("scenario runs simulations: build it with --cfg madsim, e.g. through ci/scenario");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(mc_sim::cli::main());
}
