//! Command-line arguments (clap structs only) and their dispatch to `ops`.
//! Presentation — human text or JSON — lives in [`print`].

mod print;

use crate::exit::{ExitStatus, Failure};
use crate::ops;
use crate::plugin::{HostOptions, Limits, PluginHost, default_cache_dir};
use clap::{Args, Parser, Subcommand, ValueEnum};
use redplate_config::Diagnostic;
use std::path::PathBuf;
use std::time::Duration;

/// Render, validate, deploy and operate production Redis from one typed
/// template, through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "redplate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder of compiled plugin code [default: the user's cache folder].
    #[arg(long, global = true, env = "REDPLATE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile plugins in memory only; read and write no cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Also load third-party plugins (`*.wasm`) from this folder.
    #[arg(long, global = true, value_name = "DIR")]
    pub plugin_dir: Vec<PathBuf>,
    /// Print less.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with plugins: list, inspect, test.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the built-in plugins and those in `--plugin-dir`.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show a plugin's name, version, kind, contract, exports, size and sha256.
    Inspect {
        /// A built-in's name, a plugin's name in `--plugin-dir`, or a path to a `.wasm` file.
        plugin: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Run a plugin twice on an input document, as CI would: fails if the
    /// outputs differ; reports fuel, peak memory, output size and wall time.
    Test {
        /// The plugin's `.wasm` file.
        path: PathBuf,
        /// The JSON input document (`{config, target, topology, strategy}`).
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Override the plugin's templates with `NAME.hbs` files from this folder.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Write the artifacts to this folder (atomically) if the test passes.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// The sandbox's limits per plugin call.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Fuel budget per call (≈ wasm instructions).
    #[arg(long, value_name = "UNITS", default_value_t = Limits::default().fuel)]
    pub fuel: u64,
    /// Wall-clock deadline per call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Limits::default().timeout.as_millis() as u64)]
    pub timeout_ms: u64,
    /// Memory cap per call, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = Limits::default().memory_bytes / (1024 * 1024))]
    pub memory_mb: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel,
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: self.memory_mb.saturating_mul(1024 * 1024),
            ..Limits::default()
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

impl Cli {
    /// Runs the command; returns the exit status after printing.
    pub fn run(self) -> ExitStatus {
        let quiet = self.quiet_or_json();
        match self.dispatch() {
            Ok(status) => status,
            Err(failure) => {
                print::diagnostics(&failure.diagnostics, quiet);
                failure.status
            }
        }
    }

    fn quiet_or_json(&self) -> bool {
        self.global.quiet
    }

    fn host(&self, limits: Limits, templates: Option<PathBuf>) -> Result<PluginHost, Failure> {
        let cache_dir =
            if self.global.no_cache { None } else { self.global.cache_dir.clone().or_else(default_cache_dir) };
        PluginHost::new(HostOptions { cache_dir, limits, templates_dir: templates })
            .map_err(|e| Failure::could_not_run(Diagnostic::error("host.start", "", e.to_string())))
    }

    fn dispatch(&self) -> Result<ExitStatus, Failure> {
        let dirs = &self.global.plugin_dir;
        match &self.command {
            Command::Plugins(PluginsCommand::List { format }) => {
                let host = self.host(Limits::default(), None)?;
                let (rows, problems) = ops::plugins::list(&host, dirs);
                print::plugin_list(&rows, *format);
                print::diagnostics(&problems, self.global.quiet);
                Ok(if problems.is_empty() { ExitStatus::Ok } else { ExitStatus::CouldNotRun })
            }
            Command::Plugins(PluginsCommand::Inspect { plugin, format }) => {
                let host = self.host(Limits::default(), None)?;
                let inspection = ops::plugins::inspect(&host, plugin, dirs)?;
                print::inspection(&inspection, *format);
                Ok(ExitStatus::Ok)
            }
            Command::Plugins(PluginsCommand::Test { path, input, templates, out, limits, format }) => {
                let host = self.host(limits.limits(), templates.clone())?;
                let report = ops::plugins::test(&host, path, input, out.as_deref())?;
                print::test_report(&report, *format);
                Ok(if report.passed() { ExitStatus::Ok } else { ExitStatus::Invalid })
            }
        }
    }
}
