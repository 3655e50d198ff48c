//! Deployment commands (deploy, list, status, logs, stop, start, destroy,
//! apply): clap structs and their dispatch to `ops::deploy`.

use super::GlobalArgs;
use crate::exit::{ExitStatus, Failure};
use clap::Subcommand;
use redplate_config::Diagnostic;

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Deploy a template with the local backend.
    Deploy {
        /// The template.
        template: std::path::PathBuf,
    },
}

/// Runs a deployment command.
pub fn run(command: &DeployCommand, _global: &GlobalArgs) -> Result<ExitStatus, Failure> {
    match command {
        DeployCommand::Deploy { template } => Err(Failure::could_not_run(Diagnostic::error(
            "deploy.unavailable",
            "",
            format!("cannot deploy `{}`: the local backend is not built yet", template.display()),
        ))),
    }
}
