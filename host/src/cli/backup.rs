//! `redplate backup`, `backups` and `restore`: clap structs and printing;
//! the work is in `ops::backup`.

use super::Format;
use super::print::json;
use super::print::{count, outln};
use super::record;
use super::runtime;
use crate::exit::{ExitStatus, Failure};
use crate::ops;
use crate::ops::backup::pitr;
use clap::Subcommand;
use redplate_config::Diagnostic;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up a deployment now: one compressed, checksummed snapshot per
    /// shard (from a replica when there is one), plus the AOF when it is on.
    Backup {
        /// The deployment.
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List a deployment's backups: id, time, size, checksum, source node.
    Backups {
        /// The deployment.
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Replace a deployment's data with a backup: first without `--confirm`
    /// to see what would be replaced and get a token, then again with it.
    Restore {
        /// The deployment.
        name: String,
        /// The backup's id (`redplate backups <name>`).
        backup: String,
        /// Restore the data as it was at this second (UTC, `2026-12-04T10:15:00Z`), from the backup's AOF copy.
        #[arg(long, value_name = "TIME")]
        to_time: Option<String>,
        /// The token the first call printed (valid 5 minutes).
        #[arg(long, value_name = "TOKEN")]
        confirm: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// Text from manifests (files anyone may edit) or Redis, safe for a terminal.
fn clean(text: &str) -> String {
    crate::text::clean(text, 200)
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

pub fn run(command: &BackupCommand) -> Result<ExitStatus, Failure> {
    match command {
        BackupCommand::Backup { name, format } => {
            let record = record(name)?;
            let taken = runtime()?.block_on(ops::backup::take(&record))?;
            if *format == Format::Json {
                json(&taken);
                return Ok(ExitStatus::Ok);
            }
            let b = &taken.backup;
            eprintln!(
                "backed up `{name}` in {:.1} s: {} in {} shard(s), {}{}",
                taken.seconds,
                count(b.keys() as usize, "key"),
                b.parts.len(),
                bytes(b.size()),
                if b.point_in_time() { ", with the AOF (point-in-time restores possible)" } else { "" }
            );
            eprintln!("  in {} ({})", taken.destination.dir.display(), taken.destination.why);
            for p in &b.parts {
                eprintln!(
                    "  shard {}: {} from `{}` (sha256 {})",
                    p.shard,
                    clean(&p.file),
                    clean(&p.source),
                    clean(&p.sha256)
                );
            }
            outln!("{}", clean(&b.id));
            Ok(ExitStatus::Ok)
        }
        BackupCommand::Backups { name, format } => {
            let listing = ops::backup::list(&record(name)?)?;
            if *format == Format::Json {
                json(&listing);
                return Ok(ExitStatus::Ok);
            }
            eprintln!("backups of `{name}` in {} ({})", listing.destination.dir.display(), listing.destination.why);
            if listing.backups.is_empty() {
                eprintln!("  none yet: take one with `redplate backup {name}`");
            }
            for b in &listing.backups {
                let sources: Vec<String> = b.parts.iter().map(|p| clean(&p.source)).collect();
                let sums: Vec<String> =
                    b.parts.iter().map(|p| clean(&p.sha256.chars().take(16).collect::<String>())).collect();
                outln!(
                    "{}  {}  {:>10}  {:>9} keys  sha256 {}  from {}{}",
                    clean(&b.id),
                    clean(&b.time),
                    bytes(b.size()),
                    b.keys(),
                    sums.join(","),
                    sources.join(","),
                    if b.point_in_time() { "  +aof" } else { "" }
                );
            }
            Ok(ExitStatus::Ok)
        }
        BackupCommand::Restore { name, backup, to_time, confirm, format } => {
            let to_time = match to_time {
                Some(t) => Some(pitr::parse_rfc3339(t).map_err(|m| {
                    Failure::invalid(vec![
                        Diagnostic::error("restore.bad-time", "", format!("--to-time: {m}"))
                            .with_hint("give a UTC time to the second, e.g. `--to-time 2026-12-04T10:15:00Z`"),
                    ])
                })?),
                None => None,
            };
            let record = record(name)?;
            let home = crate::secrets::redplate_home();
            let report = runtime()?.block_on(ops::backup::restore(
                &home,
                &record,
                backup,
                to_time,
                confirm.as_deref(),
                &ops::audit::actor(),
            ))?;
            if *format == Format::Json {
                json(&report);
                return Ok(ExitStatus::Ok);
            }
            for r in &report.replaced {
                let now = r.keys_now.map_or_else(|| "not answering".to_owned(), |k| count(k as usize, "key"));
                eprintln!("  {} (shard {}): {now} now, {} in the backup", clean(&r.node), r.shard, r.keys_in_backup);
            }
            let backup = clean(backup);
            let what = match &report.to_time {
                Some(t) => format!("backup `{backup}` as of {t}"),
                None => format!("backup `{backup}`"),
            };
            match &report.token {
                Some(token) => {
                    eprintln!(
                        "nothing changed: this would replace the data of `{name}` with {what}; to do it, within 5 minutes run:"
                    );
                    let t = report.to_time.as_ref().map(|t| format!(" --to-time {t}")).unwrap_or_default();
                    outln!("redplate restore {name} {backup}{t} --confirm {token}");
                }
                None => {
                    eprintln!(
                        "restored `{name}` from {what} in {:.1} s{}",
                        report.seconds,
                        if report.resumed { " (finishing an interrupted restore)" } else { "" }
                    );
                    for c in &report.checks {
                        eprintln!("  checked {}: {} keys, {} matches", clean(&c.node), c.keys_found, c.method);
                    }
                    if !report.replicas_in_sync.is_empty() {
                        eprintln!("  replicas in sync: {}", report.replicas_in_sync.join(", "));
                    }
                }
            }
            Ok(ExitStatus::Ok)
        }
    }
}
