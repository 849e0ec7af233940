fn main() {
    std::process::exit(connector_cli::main(std::env::args_os()));
}
