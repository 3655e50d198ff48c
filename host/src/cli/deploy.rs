//! Deployment commands (deploy, list, status, logs, stop, start, destroy,
//! apply, scale): clap structs, their dispatch to `ops` (deploy, lifecycle,
//! apply, scale), and how their results look (connection info, status
//! tables, JSON).

use super::plugin_host as host;
use super::print::count;
use super::print::json;
use super::{Format, GlobalArgs};
use crate::backend::{Progress, Silent, Status};
use crate::exit::{ExitStatus, Failure};
use crate::ops::deploy as ops;
use crate::ops::lifecycle;
use crate::registry::Record;
use clap::Subcommand;
use redplate_config::Diagnostic;
use redplate_config::model::Environment;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (`redplate status x | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Deploy a template: render it for its backend (`local` processes, or a
    /// `compose` project run by docker or podman), start every node on free
    /// ports and wait until it is ready.
    Deploy {
        /// The template (YAML, JSON or TOML).
        template: PathBuf,
        /// The deployment's name (default: the template's `deployment.name`).
        #[arg(long)]
        name: Option<String>,
        /// The preset to layer under it (overrides the template's `extends`).
        #[arg(long, value_name = "ENV")]
        preset: Option<Environment>,
        /// Set a value: `--set sentinel.down_after=2s` (repeatable; typed).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Where it runs: `local` processes, or a `compose` project (docker
        /// compose or podman-compose); recorded, and used by every later command.
        #[arg(long, value_parser = ["local", "compose"], default_value = "local")]
        backend: String,
        /// Print the connection info as text or JSON (the registry record).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List the deployments.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show every node: role, pid, port, up/down, memory, replication, sentinels' view, cluster slots.
    Status {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Print the end of each node's log (or one node's).
    Logs {
        name: String,
        /// Only this node.
        #[arg(long)]
        node: Option<String>,
        /// How many lines per node.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
    /// Stop every process of a deployment; its data is kept when it has
    /// persistence (`persistence.mode` other than `none`), else it says so first.
    Stop { name: String },
    /// Start the processes of a deployment that are not running, on its kept
    /// ports; all or nothing.
    Start {
        name: String,
        /// Move the stopped deployment to free ports first (when another
        /// program took one of its ports): its node files are rewritten and
        /// the new ports recorded.
        #[arg(long)]
        new_ports: bool,
    },
    /// Stop a deployment and forget it; its data stays unless `--purge`.
    Destroy {
        name: String,
        /// Remove the data, logs and generated passwords too.
        #[arg(long)]
        purge: bool,
    },
    /// Change a running deployment's size: replicas per master, memory per
    /// node (no restart), or the number of cluster shards.
    Scale(super::scale::ScaleArgs),
    /// Re-render a changed template and apply the difference to a running deployment.
    Apply {
        name: String,
        /// The changed template.
        template: PathBuf,
        /// Set a value (repeatable), on top of those given at deploy time.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
}

/// A spinner on stderr, shown only on a terminal and without `--quiet`.
struct Spinner {
    bar: indicatif::ProgressBar,
}

impl Spinner {
    fn new(global: &GlobalArgs) -> Option<Spinner> {
        if global.quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(Spinner { bar })
    }
}

impl Progress for Spinner {
    fn step(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Runs a deployment command.
pub fn run(command: &DeployCommand, global: &GlobalArgs) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    let spinner = Spinner::new(global);
    let progress: &dyn Progress = match &spinner {
        Some(s) => s,
        None => &Silent,
    };
    let started = Instant::now();
    match command {
        DeployCommand::Deploy { template, name, preset, sets, backend, format } => {
            let host = host(global)?;
            let ctx = ops::Context { home, host: &host, plugin_dirs: &global.plugin_dir, progress };
            let req = ops::DeployRequest {
                template: template.clone(),
                name: name.clone(),
                preset: *preset,
                sets: sets.clone(),
                backend: Some(backend.clone()),
            };
            let record = ops::deploy(&ctx, &req)?;
            drop(spinner);
            match format {
                Format::Json => json(&record),
                Format::Human => connection_info(&record, started.elapsed()),
            }
        }
        DeployCommand::List { format } => {
            let (records, warnings) = lifecycle::list(&home);
            super::print::diagnostics(&warnings, global.quiet);
            match format {
                Format::Json => json(&records),
                Format::Human => {
                    out!("{:20} {:12} {:10} {:6} {:6} STATE FOLDER", "NAME", "MODE", "STATE", "NODES", "PORT");
                    for r in &records {
                        let port = r.data_nodes().next().map(|n| n.port).unwrap_or(0);
                        out!(
                            "{:20} {:12} {:10} {:6} {:6} {}",
                            r.name,
                            mode_name(r.mode),
                            r.state.to_string(),
                            r.nodes.len(),
                            port,
                            r.state_dir.display()
                        );
                    }
                }
            }
        }
        DeployCommand::Status { name, format } => {
            let (record, status) = lifecycle::status(&home, name)?;
            match format {
                Format::Json => json(&status),
                Format::Human => print_status(&record, &status),
            }
        }
        DeployCommand::Logs { name, node, lines } => {
            for (node, text) in lifecycle::logs(&home, name, node.as_deref(), *lines)? {
                // A log holds what clients and peers sent: escaped, as every outside text.
                out!("==> {node} <==");
                out!("{}", crate::text::clean_lines(&text, usize::MAX));
            }
        }
        DeployCommand::Stop { name } => {
            let warn = |d: &Diagnostic| {
                let show = || super::print::diagnostics(std::slice::from_ref(d), global.quiet);
                match &spinner {
                    Some(s) => s.bar.suspend(show),
                    None => show(),
                }
            };
            let (record, lost) = lifecycle::stop(&home, name, progress, &warn)?;
            drop(spinner);
            if !global.quiet {
                let data = if lost.is_empty() {
                    "data kept".to_owned()
                } else if lost.len() == record.data_nodes().count() {
                    "data not kept: no persistence".to_owned()
                } else {
                    format!("data not kept on {}: no persistence", lost.join(", "))
                };
                eprintln!("stopped `{name}` in {:.1} s ({data})", started.elapsed().as_secs_f64());
            }
        }
        DeployCommand::Start { name, new_ports } => {
            let record = lifecycle::start(&home, name, *new_ports, progress)?;
            drop(spinner);
            if !global.quiet {
                let moved = match record.data_nodes().next() {
                    Some(n) if *new_ports => format!(" on new ports (`{}` on port {})", n.name, n.port),
                    _ => String::new(),
                };
                eprintln!("started `{name}`{moved} in {:.1} s", started.elapsed().as_secs_f64());
            }
        }
        DeployCommand::Destroy { name, purge } => {
            lifecycle::destroy(&home, name, *purge, progress)?;
            drop(spinner);
            if !global.quiet {
                let what = if *purge { "destroyed, data removed" } else { "destroyed, data kept" };
                eprintln!("`{name}` {what}");
            }
        }
        DeployCommand::Scale(args) => {
            drop(spinner);
            return super::scale::run(args, global);
        }
        DeployCommand::Apply { name, template, sets } => {
            let host = host(global)?;
            let ctx = ops::Context { home, host: &host, plugin_dirs: &global.plugin_dir, progress };
            let applied = crate::ops::apply::apply(&ctx, name, template, sets)?;
            drop(spinner);
            for line in &applied.actions {
                // They may quote what a node answered.
                out!("{}", crate::text::clean(line, 4096));
            }
            if !applied.kept_tenants.is_empty() {
                out!(
                    "kept {} made at run time that the template does not list: {} (`redplate tenant remove {name} <id>` removes one)",
                    count(applied.kept_tenants.len(), "tenant"),
                    applied.kept_tenants.join(", ")
                );
            }
        }
    }
    Ok(ExitStatus::Ok)
}

fn connection_info(r: &Record, took: Duration) {
    let data: Vec<_> = r.data_nodes().collect();
    let sentinels: Vec<_> = r.sentinels().collect();
    out!(
        "deployed `{}` ({}, {}{}) in {:.1} s",
        r.name,
        mode_name(r.mode),
        count(data.len(), "data node"),
        if sentinels.is_empty() { String::new() } else { format!(", {}", count(sentinels.len(), "sentinel")) },
        took.as_secs_f64()
    );
    out!("  state folder: {}", r.state_dir.display());
    out!("  host:         127.0.0.1");
    for n in &data {
        let role = match n.role {
            redplate_config::Role::Master => "master ",
            _ => "replica",
        };
        out!("  {role}       {} port {}{}", n.name, n.port, if n.tls { " (TLS)" } else { "" });
    }
    for s in &sentinels {
        out!("  sentinel      {} port {}{}", s.name, s.port, if s.tls { " (TLS)" } else { "" });
    }
    if let Some(m) = &r.master_name {
        out!("  master name:  {m}");
    }
    if !r.users.is_empty() {
        out!("  users:        {} (passwords in {}/secrets/<user>.password)", r.users.join(", "), r.state_dir.display());
    }
    if let (Some(u), Some(f)) = (&r.admin_user, &r.admin_password_file) {
        out!("  admin user:   {u} (local use only; password in {})", r.path(f).display());
    }
    for a in &r.adjustments {
        out!("  adjusted:     {a}");
    }
    if let Some(n) = data.first() {
        let mut cmd = String::new();
        if let Some(f) = &r.admin_password_file {
            cmd.push_str(&format!("REDISCLI_AUTH=$(cat {}) ", r.path(f).display()));
        }
        cmd.push_str(&format!("redis-cli -p {}", n.port));
        if r.mode == redplate_config::model::Mode::Cluster {
            cmd.push_str(" -c");
        }
        if let Some(t) = r.tls.as_ref().filter(|_| n.tls) {
            cmd.push_str(&format!(
                " --tls --cacert {} --cert {} --key {}",
                t.ca_file.display(),
                t.cert_file.display(),
                t.key_file.display()
            ));
        }
        if let Some(u) = &r.admin_user {
            cmd.push_str(&format!(" --user {u}"));
        }
        out!("  try:          {cmd} ping");
    }
}

fn print_status(r: &Record, s: &Status) {
    out!("{} ({}, {}): {}", s.name, mode_name(s.mode), r.backend, s.state);
    out!(
        "{:24} {:9} {:>8} {:>6} {:5} {:>10} {:>12} {:>8}  MASTER / SLOTS",
        "NODE",
        "ROLE",
        "PID",
        "PORT",
        "UP",
        "MEMORY",
        "OFFSET",
        "LAG"
    );
    let dash = || "-".to_owned();
    for n in &s.nodes {
        out!(
            "{:24} {:9} {:>8} {:>6} {:5} {:>10} {:>12} {:>8}  {}",
            n.name,
            role_name(n.role),
            n.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            n.port,
            if n.up { "up" } else { "DOWN" },
            n.used_memory.map(human_bytes).unwrap_or_else(dash),
            n.repl_offset.map(|o| o.to_string()).unwrap_or_else(dash),
            n.lag_bytes.map(|o| o.to_string()).unwrap_or_else(dash),
            n.master.clone().or_else(|| n.slots.clone()).unwrap_or_default()
        );
    }
    for v in &s.sentinel_views {
        let name = r.master_name.as_deref().unwrap_or("");
        out!("sentinel {} sees master `{name}` at {}", v.sentinel, v.master.as_deref().unwrap_or("(down)"));
    }
    if let Some(c) = &s.cluster_state {
        out!("cluster_state: {c}");
    }
    if let Some(g) = &s.gateway {
        let how = if g.tls { "TLS, " } else { "" };
        match (g.up, g.pid) {
            (true, Some(pid)) => {
                out!("gateway {} up ({how}pid {pid}): {} connections", g.listen, g.connections.unwrap_or_default())
            }
            (false, Some(pid)) => out!("gateway {} starting or stalled (pid {pid}): no recent counters", g.listen),
            _ => out!("gateway {} DOWN: `redplate start {}` starts it", g.listen, r.name),
        }
        for t in &g.tenants {
            let rejected: Vec<String> =
                t.rejected.iter().filter(|(_, n)| *n > 0).map(|(why, n)| format!("{n} over {why}")).collect();
            out!(
                "  tenant {:16} {:>4}/{:<4} connections  {:>9} of {:<9} memory  {:>10} commands{}",
                t.tenant,
                t.connections,
                t.quota_connections,
                human_bytes(t.memory_bytes),
                human_bytes(t.quota_memory_bytes),
                t.commands,
                if rejected.is_empty() { String::new() } else { format!("  refused: {}", rejected.join(", ")) }
            );
        }
    }
}

fn mode_name(m: redplate_config::model::Mode) -> String {
    format!("{m:?}").to_lowercase()
}

fn role_name(r: redplate_config::Role) -> &'static str {
    match r {
        redplate_config::Role::Master => "master",
        redplate_config::Role::Replica => "replica",
        redplate_config::Role::Sentinel => "sentinel",
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}
