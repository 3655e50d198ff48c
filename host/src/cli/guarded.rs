//! `redplate exec` and `redplate flush`: clap structs and printing; the
//! work is in `ops::exec` and `ops::flush`.

use super::Format;
use super::print::{outln, write_out};
use super::record;
use super::runtime;
use crate::exit::{ExitStatus, Failure};
use crate::ops;
use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum GuardedCommand {
    /// Run one Redis command on a deployment (filtered, audited): `redplate exec orders -- GET key`.
    Exec(ExecArgs),
    /// Delete every key of a deployment (or of one tenant): first without
    /// `--confirm` to see what would go and get a token, then again with it.
    Flush {
        /// The deployment.
        name: String,
        /// Delete only this tenant's keys; the tenant and its user stay.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// The token the first call printed (valid 5 minutes).
        #[arg(long, value_name = "TOKEN")]
        confirm: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The deployment.
    pub name: String,
    /// Run on this node (default: the master; in a cluster, the one serving the key).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Let destructive commands through (FLUSHALL, CONFIG SET, ACL SETUSER, KEYS, …).
    #[arg(long)]
    pub allow_dangerous: bool,
    /// How long the command may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(command: &GuardedCommand, quiet: bool) -> Result<ExitStatus, Failure> {
    match command {
        GuardedCommand::Exec(a) => {
            let record = record(&a.name)?;
            let request = ops::exec::ExecRequest {
                args: a.command.clone(),
                node: a.node.clone(),
                allow_dangerous: a.allow_dangerous,
                timeout: Duration::from_millis(a.timeout_ms),
                actor: ops::audit::actor(),
            };
            let result = runtime()?.block_on(ops::exec::exec(&record, &request))?;
            match a.format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&result).unwrap_or_default()),
                Format::Human => write_out(format_args!("{}", ops::exec::format_reply(&result.reply))),
            }
            Ok(ExitStatus::Ok)
        }
        GuardedCommand::Flush { name, tenant, confirm, format } => {
            let home = crate::secrets::redplate_home();
            let actor = ops::audit::actor();
            let report = match tenant {
                None => {
                    let record = record(name)?;
                    runtime()?.block_on(ops::flush::flush(&home, &record, confirm.as_deref(), &actor))?
                }
                Some(id) => {
                    let bar = super::tenant::Bar::new(quiet || *format == Format::Json);
                    super::tenant::until_interrupted(|cancel| async move {
                        ops::tenant::flush(&home, name, id, confirm.as_deref(), &actor, &bar, &cancel).await
                    })??
                }
            };
            if *format == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                return Ok(ExitStatus::Ok);
            }
            for (node, keys) in &report.keys {
                eprintln!("  {node}: {}", super::print::count(*keys as usize, "key"));
            }
            let keys = super::print::count(report.total_keys as usize, "key");
            let (what, again) = match tenant {
                None => (format!("`{name}`"), format!("redplate flush {name}")),
                Some(id) => (format!("tenant `{id}` of `{name}`"), format!("redplate flush {name} --tenant {id}")),
            };
            match (&report.token, tenant) {
                (Some(token), _) => {
                    eprintln!("nothing changed: this would delete {keys} of {what}; to do it, within 5 minutes run:");
                    outln!("{again} --confirm {token}");
                }
                (None, None) => {
                    eprintln!("flushed {what}: {keys} deleted (FLUSHALL ASYNC on every master; replicas follow)")
                }
                (None, Some(_)) => eprintln!(
                    "flushed {what}: {} deleted; the tenant and its user stay",
                    super::print::count(report.deleted as usize, "key")
                ),
            }
            Ok(ExitStatus::Ok)
        }
    }
}
