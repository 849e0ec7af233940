//! `plan`: sizes a deployment for a forecast and checks it by simulation (`ci/plan`).
//!
//! ```text
//! ci/plan fixtures/forecasts/campus.toml --out plan-report
//! ```
//! Built only for simulation (`--cfg madsim`); `ci/plan` builds and runs it.
#![forbid(unsafe_code)]

#[cfg(not(madsim))]
fn main() {
    eprintln!("plan runs simulations: build it with --cfg madsim, e.g. through ci/plan");
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(mc_sim::plan::cli::main());
}
