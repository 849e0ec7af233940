#![forbid(unsafe_code)]

#[cfg(not(madsim))]
fn main() {
    std::process::exit(connector_cli::main(std::env::args_os()));
}

#[cfg(madsim)]
fn main() {
    eprintln!(
        "the connector CLI is not built for simulation; run the simulations with ci/test-sim"
    );
    std::process::exit(2);
}
