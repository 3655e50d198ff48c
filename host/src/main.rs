//! The `redplate` binary: parse, run, exit with the documented code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = redplate::cli::Cli::parse();
    cli.run().into()
}
