//! `redplate tenant …`: clap structs, each command run on the client's tokio
//! runtime as one `ops::tenant` function, and how the results look.

use super::print::json;
use super::print::{self, outln, write_out};
use super::runtime;
use super::{Format, GlobalArgs};
use crate::exit::{ExitStatus, Failure};
use crate::ops::tenant as ops;
use crate::plugin::PluginHost;
use clap::Subcommand;
use redplate_config::units::ByteSize;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: an ACL user bound to its key prefix and channels on
    /// every data node, kept in the deployment's stored template.
    Create {
        /// The deployment.
        deployment: String,
        /// The tenant id (lowercase letters, digits, `-`, `_`).
        id: String,
        /// Memory quota (e.g. `256mb`) [default: `tenancy.memory_per_tenant`].
        #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
        memory: Option<ByteSize>,
        /// Connection quota [default: `tenancy.connections_per_tenant`].
        #[arg(long, value_name = "N")]
        connections: Option<u32>,
        /// Operations-per-second quota [default: `tenancy.ops_per_second_per_tenant`].
        #[arg(long, value_name = "N")]
        ops_per_second: Option<u32>,
        /// A file holding the tenant's password [default: generated and kept].
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List the tenants of a deployment.
    List {
        deployment: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show a tenant: prefix, user (and its state on every node), quotas, where its password is.
    Show {
        deployment: String,
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// A tenant's keys, memory and connections, beside its quotas.
    Stats {
        deployment: String,
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Run one command as the tenant's own user: `redplate tenant exec orders acme -- GET tenant:acme:k`.
    Exec {
        deployment: String,
        id: String,
        /// How long the command may take, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        timeout_ms: u64,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Change a tenant's quotas, or give it a new generated password.
    Update {
        deployment: String,
        id: String,
        /// A new memory quota (e.g. `512mb`).
        #[arg(long, value_name = "SIZE", value_parser = ByteSize::parse)]
        memory: Option<ByteSize>,
        #[arg(long, value_name = "N")]
        connections: Option<u32>,
        #[arg(long, value_name = "N")]
        ops_per_second: Option<u32>,
        /// Set a new generated password on every data node (and keep it).
        #[arg(long)]
        rotate_password: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Remove a tenant: its user off and its clients disconnected, its keys
    /// deleted in paced batches, then the user and the tenant. Ctrl-C stops
    /// between two batches; running it again finishes.
    Remove {
        deployment: String,
        id: String,
        /// Count the keys and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove the user and the tenant but keep its keys.
        #[arg(long)]
        keep_data: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// Runs a tenant command; `host` starts the plugin engine (only `create` renders).
pub fn run(
    command: &TenantCommand,
    global: &GlobalArgs,
    host: impl FnOnce() -> Result<PluginHost, Failure>,
) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    match command {
        TenantCommand::Create { deployment, id, memory, connections, ops_per_second, password_file, format } => {
            let renderer = ops::Renderer { host: Arc::new(host()?), plugin_dirs: global.plugin_dir.clone() };
            let request = ops::CreateRequest {
                id: id.clone(),
                memory: *memory,
                connections: *connections,
                ops_per_second: *ops_per_second,
                password_file: password_file.clone(),
            };
            let created = runtime()?.block_on(ops::create(&home, &renderer, deployment, &request))?;
            print::diagnostics(&created.warnings, global.quiet);
            match format {
                Format::Json => json(&created),
                Format::Human => {
                    match &created.tenant.instance {
                        Some(instance) => outln!(
                            "created tenant `{id}` of `{deployment}`: its own redis-server, the deployment \
                             `{instance}` (maxmemory {})",
                            created.tenant.quotas.memory
                        ),
                        None => outln!(
                            "created tenant `{id}` on `{deployment}`: user set on {} (acl saved on {})",
                            print::count(created.nodes.len(), "data node"),
                            print::count(created.persisted.len(), "node")
                        ),
                    }
                    tenant_lines(&created.tenant);
                }
            }
        }
        TenantCommand::List { deployment, format } => {
            let tenants = ops::list(&home, deployment)?;
            match format {
                Format::Json => json(&tenants),
                Format::Human => {
                    outln!("{:20} {:28} {:24} {:>10} {:>8} {:>8}", "ID", "USER", "PREFIX", "MEMORY", "CONNS", "OPS/S");
                    for t in &tenants {
                        outln!(
                            "{:20} {:28} {:24} {:>10} {:>8} {:>8}",
                            t.id,
                            t.user,
                            t.prefix,
                            t.quotas.memory,
                            t.quotas.connections,
                            t.quotas.ops_per_second
                        );
                    }
                }
            }
        }
        TenantCommand::Show { deployment, id, format } => {
            let shown = runtime()?.block_on(ops::show(&home, deployment, id))?;
            match format {
                Format::Json => json(&shown),
                Format::Human => {
                    outln!("tenant `{id}` of `{deployment}`");
                    tenant_lines(&shown.tenant);
                    for (node, state) in &shown.nodes {
                        outln!("  on {node}: {}", crate::text::clean(state, 512));
                    }
                }
            }
        }
        TenantCommand::Stats { deployment, id, format } => {
            let s = runtime()?.block_on(ops::stats(&home, deployment, id))?;
            match format {
                Format::Json => json(&s),
                Format::Human => {
                    let estimated = match s.memory_sampled_keys {
                        Some(n) => format!(" (estimated from {})", print::count(n as usize, "key")),
                        None => String::new(),
                    };
                    outln!("tenant `{}` of `{}` ({}*)", s.tenant, s.deployment, s.prefix);
                    outln!("  keys:        {}", s.keys);
                    outln!("  memory:      {} of {}{estimated}", human(s.memory_bytes), human(s.quotas.memory_bytes));
                    outln!("  connections: {} of {}", s.connections, s.quotas.connections);
                    outln!(
                        "  ops/s:       not measurable in redis (no per-user counts); quota {}",
                        s.quotas.ops_per_second
                    );
                    for n in &s.nodes {
                        let keys = n.keys.map(|k| format!("{k} keys, ")).unwrap_or_default();
                        outln!("  {}: {keys}{}", n.node, print::count(n.connections as usize, "connection"));
                    }
                }
            }
        }
        TenantCommand::Exec { deployment, id, timeout_ms, format, command } => {
            let request =
                ops::TenantExec { id: id.clone(), args: command.clone(), timeout: Duration::from_millis(*timeout_ms) };
            let result = runtime()?.block_on(ops::exec(&home, deployment, &request))?;
            match format {
                Format::Json => json(&result),
                Format::Human => write_out(format_args!("{}", crate::ops::exec::format_reply(&result.reply))),
            }
        }
        TenantCommand::Update { deployment, id, memory, connections, ops_per_second, rotate_password, format } => {
            let request = ops::UpdateRequest {
                id: id.clone(),
                memory: *memory,
                connections: *connections,
                ops_per_second: *ops_per_second,
                rotate_password: *rotate_password,
            };
            let updated = runtime()?.block_on(ops::update(&home, deployment, &request))?;
            match format {
                Format::Json => json(&updated),
                Format::Human => {
                    let rotated = if updated.password_rotated { "; a new password is set and kept" } else { "" };
                    outln!("updated tenant `{id}` of `{deployment}`{rotated}");
                    tenant_lines(&updated.tenant);
                }
            }
        }
        TenantCommand::Remove { deployment, id, dry_run, keep_data, format } => {
            let request = ops::RemoveRequest { id: id.clone(), dry_run: *dry_run, keep_data: *keep_data };
            let bar = Bar::new(global.quiet || *format == Format::Json);
            let removed =
                until_interrupted(
                    |cancel| async move { ops::remove(&home, deployment, &request, &bar, &cancel).await },
                )?;
            let removed = removed?;
            print::diagnostics(&removed.warnings, global.quiet);
            match format {
                Format::Json => json(&removed),
                Format::Human => {
                    for (node, keys) in &removed.keys {
                        eprintln!("  {node}: {}", print::count(*keys as usize, "key"));
                    }
                    let keys = print::count(removed.total_keys as usize, "key");
                    if removed.dry_run {
                        outln!(
                            "nothing changed: removing tenant `{id}` would delete {keys} under `{}`",
                            removed.prefix
                        );
                    } else if removed.kept_data {
                        outln!("removed tenant `{id}` from `{deployment}`; its {keys} were kept");
                    } else {
                        outln!(
                            "removed tenant `{id}` from `{deployment}`: {} deleted in {:.1} s",
                            print::count(removed.deleted as usize, "key"),
                            removed.seconds
                        );
                    }
                }
            }
        }
    }
    Ok(ExitStatus::Ok)
}

fn tenant_lines(t: &ops::TenantInfo) {
    if let Some(instance) = &t.instance {
        outln!("  instance: {instance} (a deployment of its own: `redplate status {instance}`)");
    }
    outln!("  user:     {}", t.user);
    outln!("  keys:     {}*", t.prefix);
    outln!("  channels: {}", t.channels.as_deref().unwrap_or("none"));
    outln!("  scripts:  {}", if t.scripts { "EVAL/EVALSHA on its own keys" } else { "no" });
    outln!(
        "  quotas:   memory {}, {} connections, {} ops/s (recorded for the gateway; redis does not enforce them)",
        t.quotas.memory,
        t.quotas.connections,
        t.quotas.ops_per_second
    );
    let origin = t.password.origin.as_deref().map(|o| format!(" from {o}")).unwrap_or_default();
    outln!("  password: {} ({}{origin})", t.password.file.display(), t.password.source);
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Runs `work` on a runtime; Ctrl-C sets the flag it gets, so it stops
/// between two batches and leaves a state that running it again finishes.
pub(super) fn until_interrupted<T, F: Future<Output = T>>(
    work: impl FnOnce(Arc<AtomicBool>) -> F,
) -> Result<T, Failure> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    Ok(runtime()?.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        work(cancel).await
    }))
}

/// A long deletion's progress on stderr: a spinner with the step, then a
/// bar of deleted keys; only on a terminal and without `--quiet`.
pub(super) struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    pub(super) fn new(hidden: bool) -> Bar {
        if hidden || !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Bar { bar: Some(bar) }
    }
}

impl ops::Progress for Bar {
    fn step(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.set_message(message.to_owned());
        }
    }

    fn total(&self, keys: u64) {
        if let Some(b) = &self.bar {
            b.set_length(keys);
            b.set_position(0);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} keys ({per_sec}, {eta} left)")
            {
                b.set_style(style.progress_chars("=> "));
            }
        }
    }

    fn deleted(&self, keys: u64) {
        if let Some(b) = &self.bar {
            b.inc(keys);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
