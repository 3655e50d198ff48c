//! Command-line arguments (clap structs only) and their dispatch to `ops`.
//! Presentation — human text or JSON — lives in [`print`].

mod backup;
mod data;
mod deploy;
mod gateway;
mod guarded;
mod observe;
mod print;
mod scale;
mod serve;
mod tenant;
mod warm;

use crate::exit::{ExitStatus, Failure};
use crate::ops;
use crate::plugin::{HostOptions, Limits, PluginHost, default_cache_dir};
use clap::{Args, Parser, Subcommand, ValueEnum};
use redplate_config::model::Environment;
use redplate_config::{Diagnostic, Target};
use std::path::{Path, PathBuf};
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
    /// Check a template: host rules and every plugin's `validate`.
    Validate {
        #[command(flatten)]
        template: TemplateArgs,
        /// Check the host rules only, without running plugins.
        #[arg(long)]
        no_plugins: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Render the artifacts for one target or all of them.
    Render {
        /// The template (YAML, JSON or TOML); with `--batch`, a folder of templates.
        template: PathBuf,
        /// The preset to layer under it (overrides the template's `extends`).
        #[arg(long, value_name = "ENV")]
        preset: Option<Environment>,
        /// Set a value: `--set memory.maxmemory_policy=allkeys-lru` (repeatable; typed).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Which target to render for.
        #[arg(long, value_enum, default_value_t = TargetArg::All)]
        target: TargetArg,
        /// The folder to write: created, or replaced whole (atomically; left as
        /// it was on failure) if redplate wrote it and it holds no other files.
        #[arg(long, value_name = "DIR", required_unless_present = "stdout", conflicts_with = "stdout")]
        out: Option<PathBuf>,
        /// Replace the `--out` folder even if redplate did not write it or it
        /// holds files redplate did not write: everything in it is deleted.
        #[arg(long, requires = "out")]
        replace: bool,
        /// Print a multi-document YAML stream instead of writing files.
        #[arg(long)]
        stdout: bool,
        /// Render every template in the folder TEMPLATE into OUT/<name>/, in parallel.
        #[arg(long, conflicts_with_all = ["stdout", "preset", "sets"])]
        batch: bool,
        /// Worker threads for `--batch` [default: the number of cores].
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Override plugin templates with `NAME.hbs` files from this folder.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Also write the JSON document the generators receive (for the first
        /// target) to FILE, for `redplate plugins test --input FILE`.
        #[arg(long, value_name = "FILE")]
        emit_input: Option<PathBuf>,
        /// Print where the time went (each phase, and each plugin call's wall
        /// time and fuel) to stderr.
        #[arg(long)]
        timings: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print the JSON Schema of templates (for editors: `# yaml-language-server: $schema=…`).
    Schema {
        /// Write it to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List or show the environment presets.
    #[command(subcommand)]
    Presets(PresetsCommand),
    /// Show what moving a template to another environment changes, and write the adapted template.
    Adapt {
        /// The template.
        template: PathBuf,
        /// The environment to adapt to.
        #[arg(long)]
        to: Environment,
        /// Write the adapted template here (default: print it).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the resolved template as canonical JSON (of a template file, or
    /// the stored template of a deployment: `redplate export <deployment>`).
    Export {
        #[command(flatten)]
        template: TemplateArgs,
    },
    /// Read a canonical JSON export, check it, and print it back canonically.
    Import {
        /// The JSON file.
        file: PathBuf,
    },
    /// Work with plugins: list, inspect, test.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    #[command(flatten)]
    Deployments(deploy::DeployCommand),
    #[command(flatten)]
    Observe(observe::ObserveCommand),
    #[command(flatten)]
    Guarded(guarded::GuardedCommand),
    #[command(flatten)]
    Backup(backup::BackupCommand),
    #[command(flatten)]
    Data(data::DataCommand),
    /// Tenants of a running deployment: create, list, show, stats, exec, remove.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Serve the REST API (`/api/v1/…`, OpenAPI at `/openapi.json`).
    Serve(serve::ServeArgs),
    /// API tokens: create, list, revoke.
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Load keys into a running deployment from a JSONL or CSV file or
    /// another Redis, with the cache strategy's TTLs, paced for the replicas
    /// and resumable: `redplate warm orders --from keys.jsonl`.
    Warm(warm::WarmArgs),
    /// Run the tenant gateway of a deployment in the foreground: tenants
    /// connect to it with their own users; it holds them to their
    /// connection, ops/s and memory quotas (`tenancy.gateway: true` starts
    /// it with the deployment).
    Gateway(gateway::GatewayArgs),
}

/// A template and its layers.
#[derive(Debug, Clone, Args)]
pub struct TemplateArgs {
    /// The template (YAML, JSON or TOML).
    pub template: PathBuf,
    /// The preset to layer under it (overrides the template's `extends`).
    #[arg(long, value_name = "ENV")]
    pub preset: Option<Environment>,
    /// Set a value: `--set memory.maxmemory_policy=allkeys-lru` (repeatable; typed).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PresetsCommand {
    /// List the presets.
    List,
    /// Print a preset, comments included.
    Show { environment: Environment },
}

/// A render target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    Local,
    Compose,
    Kubernetes,
    All,
}

impl TargetArg {
    fn targets(self) -> Vec<Target> {
        match self {
            TargetArg::Local => vec![Target::Local],
            TargetArg::Compose => vec![Target::Compose],
            TargetArg::Kubernetes => vec![Target::Kubernetes],
            TargetArg::All => vec![Target::Local, Target::Compose, Target::Kubernetes],
        }
    }
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
        /// Replace the `--out` folder even if redplate did not write it.
        #[arg(long, requires = "out")]
        replace: bool,
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

/// The async runtime an operation runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    crate::client::runtime().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
    })
}

/// The registry record of deployment `name`.
pub(crate) fn record(name: &str) -> Result<crate::registry::Record, Failure> {
    crate::registry::Registry::new(&crate::secrets::redplate_home()).load(name).map_err(ops::deploy::failure)
}

/// The plugin engine with the global options and default limits.
pub(crate) fn plugin_host(global: &GlobalArgs) -> Result<PluginHost, Failure> {
    plugin_host_with(global, Limits::default(), None)
}

/// The plugin engine: the cache folder the options name (none with
/// `--no-cache`), `limits`, and user template overrides.
pub(crate) fn plugin_host_with(
    global: &GlobalArgs,
    limits: Limits,
    templates: Option<PathBuf>,
) -> Result<PluginHost, Failure> {
    let cache_dir = if global.no_cache { None } else { global.cache_dir.clone().or_else(default_cache_dir) };
    PluginHost::new(HostOptions { cache_dir, limits, templates_dir: templates })
        .map_err(|e| Failure::could_not_run(Diagnostic::error("host.start", "", e.to_string())))
}

impl Cli {
    /// Runs the command; returns the exit status after printing.
    pub fn run(self) -> ExitStatus {
        let quiet = self.global.quiet;
        match self.dispatch() {
            Ok(status) => status,
            Err(failure) => {
                print::diagnostics(&failure.diagnostics, quiet);
                failure.status
            }
        }
    }

    fn host(&self, limits: Limits, templates: Option<PathBuf>) -> Result<PluginHost, Failure> {
        plugin_host_with(&self.global, limits, templates)
    }

    fn dispatch(&self) -> Result<ExitStatus, Failure> {
        let dirs = &self.global.plugin_dir;
        let store = || crate::secrets::SecretStore::new(&crate::secrets::redplate_home());
        let load = |t: &TemplateArgs| ops::config::load(Some(&t.template), t.preset, &t.sets);
        match &self.command {
            Command::Validate { template, no_plugins, format } => {
                let resolved = load(template)?;
                let validation = if *no_plugins {
                    ops::config::validate(&resolved, None)?
                } else {
                    let host = self.host(Limits::default(), None)?;
                    ops::config::validate_with_plugins(&host, &resolved, Some(&template.template), dirs)?
                };
                print::validation(&validation, &template.template, *format, self.global.quiet);
                Ok(if validation.valid { ExitStatus::Ok } else { ExitStatus::Invalid })
            }
            Command::Render {
                template,
                preset,
                sets,
                target,
                out,
                replace,
                stdout,
                batch,
                jobs,
                templates,
                emit_input,
                timings,
                limits,
            } => {
                let mut clock = print::Timings::new(*timings);
                let host = self.host(limits.limits(), templates.clone())?;
                clock.lap("start the plugin engine");
                let targets = target.targets();
                if *batch {
                    let out = out.as_deref().unwrap_or(Path::new("."));
                    let list = ops::batch::batch_templates(template)?;
                    let set = ops::render::PluginSet::load_all(&host, dirs)?;
                    let threads = jobs.unwrap_or_else(ops::batch::default_threads).max(1);
                    let started = std::time::Instant::now();
                    let items =
                        ops::batch::render_batch(&host, &set, &list, &targets, out, *replace, &store(), threads)?;
                    let failed: Vec<_> = items.iter().filter(|i| i.status != ExitStatus::Ok).collect();
                    for item in &failed {
                        eprintln!("{}:", item.template.display());
                        print::diagnostics(&item.diagnostics, self.global.quiet);
                    }
                    if !self.global.quiet {
                        let files: usize = items.iter().map(|i| i.files).sum();
                        eprintln!(
                            "rendered {} of {} ({}) into {} in {:.0} ms on {}",
                            items.len() - failed.len(),
                            print::count(items.len(), "template"),
                            print::count(files, "file"),
                            out.display(),
                            started.elapsed().as_secs_f64() * 1000.0,
                            print::count(threads, "thread")
                        );
                    }
                    print::diagnostics(&ops::render::unused_overrides(&host), self.global.quiet);
                    clock.lap("render the batch");
                    return Ok(ops::batch::worst(&items));
                }
                let resolved = ops::config::load(Some(template), *preset, sets)?;
                clock.lap("load and check the template");
                let extra = ops::render::template_plugins(&resolved.config, Some(template));
                let set =
                    ops::render::PluginSet::load(&host, &targets, Some(&resolved.config.cache.strategy), &extra, dirs)?;
                clock.lap("load the plugins");
                let rendered = ops::render::render(&host, &set, &resolved, &targets, &store(), true)?;
                clock.lap("render");
                clock.calls(&rendered.reports);
                if let Some(path) = emit_input {
                    let input = ops::render::emit_input(&host, &set, &resolved, targets[0], &store())?;
                    ops::config::write_file(path, input.as_bytes())?;
                }
                print::diagnostics(&rendered.diagnostics, self.global.quiet);
                print::diagnostics(&ops::render::unused_overrides(&host), self.global.quiet);
                if *stdout {
                    print::out!("{}", ops::render::yaml_stream(&rendered.artifacts));
                } else if let Some(out) = out {
                    rendered.artifacts.write_atomically(out, *replace).map_err(|e| Failure::output(out, e))?;
                    if !self.global.quiet {
                        eprintln!(
                            "rendered {} files ({} bytes) into {}",
                            rendered.artifacts.len(),
                            rendered.artifacts.total_bytes(),
                            out.display()
                        );
                    }
                }
                clock.lap("write the output");
                clock.total();
                Ok(ExitStatus::Ok)
            }
            Command::Schema { out } => {
                let text = serde_json::to_string_pretty(&redplate_config::schema()).unwrap_or_default() + "\n";
                match out {
                    Some(path) => ops::config::write_file(path, text.as_bytes())?,
                    None => print::out!("{text}"),
                }
                Ok(ExitStatus::Ok)
            }
            Command::Presets(PresetsCommand::List) => {
                for p in redplate_config::presets::list() {
                    print::outln!("{:12} {}", p.environment.to_string(), p.summary);
                }
                Ok(ExitStatus::Ok)
            }
            Command::Presets(PresetsCommand::Show { environment }) => {
                print::out!("{}", redplate_config::presets::show(*environment));
                Ok(ExitStatus::Ok)
            }
            Command::Adapt { template, to, out } => {
                let resolved = ops::config::load(Some(template), None, &[])?;
                let adaptation = ops::config::adapt(&resolved, *to, out.as_deref())?;
                for line in &adaptation.diff {
                    eprintln!("{line}");
                }
                print::diagnostics(&adaptation.diagnostics, self.global.quiet);
                if out.is_none() {
                    print::out!("{}", adaptation.yaml);
                }
                let invalid = adaptation.diagnostics.iter().any(Diagnostic::is_error);
                Ok(if invalid { ExitStatus::Invalid } else { ExitStatus::Ok })
            }
            Command::Export { template } => {
                let home = crate::secrets::redplate_home();
                let resolved = match ops::stored::deployment_named(&home, &template.template) {
                    Some(record) => ops::stored::load_with(&record, template.preset, &template.sets)?,
                    None => load(template)?,
                };
                print::outln!("{}", redplate_config::export(&resolved.config));
                Ok(ExitStatus::Ok)
            }
            Command::Import { file } => {
                let config = ops::config::import(file)?;
                // `import` keeps the config only; its warnings are what
                // `validate` says of the same file (an export holds every
                // key, so it loads as a template of its own, lines kept).
                let findings = ops::config::validate(&ops::config::load(Some(file), None, &[])?, None)?;
                print::diagnostics(&findings.diagnostics, self.global.quiet);
                print::outln!("{}", redplate_config::export(&config));
                Ok(ExitStatus::Ok)
            }
            Command::Deployments(command) => deploy::run(command, &self.global),
            Command::Observe(command) => observe::run(command, &self.global),
            Command::Guarded(command) => guarded::run(command, self.global.quiet),
            Command::Backup(command) => backup::run(command),
            Command::Data(command) => data::run(command),
            Command::Tenant(command) => tenant::run(command, &self.global, || self.host(Limits::default(), None)),
            Command::Serve(args) => serve::serve(args, self.host(Limits::default(), None)?, dirs),
            Command::Token(command) => serve::token(command),
            Command::Warm(args) => warm::run(args, &self.global, || self.host(Limits::default(), None)),
            Command::Gateway(args) => gateway::run(args, || self.host(Limits::default(), None)),
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
            Command::Plugins(PluginsCommand::Test { path, input, templates, out, replace, limits, format }) => {
                let host = self.host(limits.limits(), templates.clone())?;
                let report = ops::plugins::test(&host, path, input, out.as_deref(), *replace)?;
                print::test_report(&report, *format);
                Ok(if report.passed() { ExitStatus::Ok } else { ExitStatus::Invalid })
            }
        }
    }
}
