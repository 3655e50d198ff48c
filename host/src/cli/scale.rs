//! `redplate scale <deployment> --replicas N | --memory SIZE | --shards N`:
//! clap struct, dispatch to `ops::scale`, `ops::vertical` and
//! `ops::shards`, and how their results look (a progress bar while slots
//! move).

use super::plugin_host as host;
use super::print::json;
use super::print::{count, outln};
use super::{Format, GlobalArgs};
use crate::exit::{ExitStatus, Failure};
use crate::ops;
use clap::{ArgGroup, Args};
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

/// Change a running deployment's size: replicas per master, memory per
/// node (no restart), or the number of cluster shards (slots move while
/// clients keep working).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("size").required(true).args(["replicas", "memory", "shards"])))]
pub struct ScaleArgs {
    pub name: String,
    /// Replicas per master (`replication.replicas`, or
    /// `cluster.replicas_per_shard`): new ones are added, the last ones removed.
    #[arg(long, value_name = "N")]
    pub replicas: Option<u8>,
    /// Memory per data node (`resources.memory`, e.g. `2gb`): `maxmemory`
    /// follows on every data node with `CONFIG SET`, no restart.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Cluster shards (`cluster.shards`): new shards start and get an even
    /// share of the slots; shards that go hand theirs to all that stay.
    #[arg(long, value_name = "N")]
    pub shards: Option<u8>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// A spinner for steps that becomes a bar while slots move; nothing
/// without a terminal or with `--quiet`.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(global: &GlobalArgs) -> Bar {
        if global.quiet || !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Bar { bar: Some(bar) }
    }
}

impl crate::backend::Progress for Bar {
    fn step(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.set_message(message.to_owned());
        }
    }
}

impl ops::shards::Progress for Bar {
    fn slots(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(0);
            let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} slots ({eta} left)");
            if let Ok(s) = style {
                b.set_style(s.progress_chars("=> "));
            }
        }
    }

    fn moved(&self, slots: u64) {
        if let Some(b) = &self.bar {
            b.inc(slots);
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

/// Runs `redplate scale`.
pub fn run(args: &ScaleArgs, global: &GlobalArgs) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    let host = host(global)?;
    let started = Instant::now();
    let bar = Bar::new(global);
    let ctx = ops::deploy::Context { home, host: &host, plugin_dirs: &global.plugin_dir, progress: &bar };
    let name = &args.name;
    if let Some(replicas) = args.replicas {
        let record = ops::scale::scale(&ctx, name, replicas)?;
        drop(bar);
        match args.format {
            Format::Json => json(&record),
            Format::Human if !global.quiet => eprintln!(
                "scaled `{name}` to {} per master ({}) in {:.1} s",
                count(usize::from(replicas), "replica"),
                count(record.data_nodes().count(), "data node"),
                started.elapsed().as_secs_f64()
            ),
            Format::Human => {}
        }
    } else if let Some(size) = &args.memory {
        let resized = ops::vertical::scale_memory(&ctx, name, size)?;
        drop(bar);
        match args.format {
            Format::Json => json(&resized),
            Format::Human => {
                let limit = resized.maxmemory.map_or_else(|| "no limit".to_owned(), |b| format!("{b} bytes"));
                outln!(
                    "scaled `{name}` from {} to {} of memory per node: maxmemory {limit} ({}) on {}",
                    resized.memory_before,
                    resized.memory,
                    resized.maxmemory_setting,
                    count(resized.used_memory.len(), "data node")
                );
                for line in &resized.actions {
                    outln!("  {}", crate::text::clean(line, 400));
                }
            }
        }
    } else if let Some(shards) = args.shards {
        let done = ops::shards::scale_shards(&ctx, name, shards, &bar)?;
        drop(bar);
        match args.format {
            Format::Json => json(&done),
            Format::Human => {
                if let Some(j) = &done.resumed {
                    outln!(
                        "finished an interrupted scale from {} to {} shards (it was at `{}`)",
                        j.from,
                        j.to,
                        j.phase
                    );
                }
                for line in &done.closed_slots {
                    outln!("{line}");
                }
                outln!(
                    "scaled `{name}` from {} to {} shards in {:.1} s: {} moved ({})",
                    done.from_shards,
                    done.to_shards,
                    done.seconds,
                    count(usize::try_from(done.slots_moved).unwrap_or(usize::MAX), "slot"),
                    count(usize::try_from(done.keys_moved).unwrap_or(usize::MAX), "key")
                );
                let slots: Vec<String> = done.slots.iter().map(|(n, s)| format!("{n} {s}")).collect();
                outln!("slots per master: {}", slots.join(", "));
            }
        }
    }
    Ok(ExitStatus::Ok)
}
