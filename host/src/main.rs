//! The `redplate` binary: parse, run, exit with the documented code.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = redplate::cli::Cli::parse();
    cli.run().into()
}
