//! `tessera` binary: parse the command line, run it, print one line on error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tessera::db::init_crypto();
    let cli = tessera::cli::Cli::parse();
    match tessera::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tessera: error: {message}");
            ExitCode::FAILURE
        }
    }
}
