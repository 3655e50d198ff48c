//! `redplate warm`: clap struct, progress bar and summary; the work is in
//! `ops::warm`. Failure reasons and keys were cleaned by the operation.

use super::print::{count, outln};
use super::{Format, GlobalArgs};
use crate::exit::{ExitStatus, Failure};
use crate::ops::warm::{self, WarmRequest, Warmed};
use crate::plugin::PluginHost;
use clap::Args;
use redplate_config::Diagnostic;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// The deployment.
    pub deployment: String,
    /// Where the keys come from: `FILE.jsonl`, `FILE.csv` or
    /// `redis://[user:password@]host:port[/db]` (see the README for the formats).
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// Load into this tenant's key prefix.
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
    /// At most this many keys per second (default: as fast as the replicas keep up).
    #[arg(long, value_name = "N/s", value_parser = parse_rate)]
    pub rate: Option<u64>,
    /// Start from the beginning even if an interrupted load of this source left a checkpoint.
    #[arg(long)]
    pub restart: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `5000`, `5000/s` or `5k/s`.
fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches("/s");
    let (digits, scale) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1000),
        None => (t, 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n * scale),
        _ => Err(format!("`{text}` is not a rate: give keys per second above 0, e.g. `5000` or `5k/s`")),
    }
}

/// Runs `warm`; `host` starts the plugin engine (the strategy decides TTLs).
pub fn run(
    args: &WarmArgs,
    global: &GlobalArgs,
    host: impl FnOnce() -> Result<PluginHost, Failure>,
) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    let host = host()?;
    let request = WarmRequest {
        deployment: args.deployment.clone(),
        from: args.from.clone(),
        tenant: args.tenant.clone(),
        rate: args.rate,
        restart: args.restart,
        plugin_dirs: global.plugin_dir.clone(),
    };
    let runtime = crate::client::runtime().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
    })?;
    let bar = Bar::new(global.quiet || args.format == Format::Json);
    let cancel = Arc::new(AtomicBool::new(false));
    let result = runtime.block_on(async {
        let flag = cancel.clone();
        // Ctrl-C stops between two batches; the checkpoint keeps the place.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        warm::warm(&home, &host, &request, &bar, &cancel).await
    });
    drop(bar);
    let warmed = result?;
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&warmed) {
            Ok(text) => outln!("{text}"),
            Err(e) => eprintln!("error: cannot print JSON: {e}"),
        },
        Format::Human => summary(&warmed),
    }
    if let Some(reason) = &warmed.stopped {
        return Err(Failure::could_not_run(
            Diagnostic::error(
                "warm.stopped",
                "",
                format!("the load of `{}` stopped early: {reason}", warmed.deployment),
            )
            .with_hint(format!(
                "run the same `redplate warm {} --from …` again to continue where it stopped (`--restart` starts over)",
                warmed.deployment
            )),
        ));
    }
    Ok(if warmed.failed > 0 { ExitStatus::Invalid } else { ExitStatus::Ok })
}

fn summary(w: &Warmed) {
    for b in &w.failures {
        let key = b.key.as_deref().map(|k| format!(" `{k}`")).unwrap_or_default();
        let place = if w.format == "redis" { "key" } else { "line" };
        eprintln!("  {place} {}{key}: {}", b.line, b.reason);
    }
    if w.failures_not_listed > 0 {
        eprintln!("  … and {} more", count(w.failures_not_listed as usize, "failure"));
    }
    let into = w.prefix.as_deref().map(|p| format!(" under `{}`", crate::text::clean(p, 200))).unwrap_or_default();
    outln!(
        "warmed `{}` from {}{into}: {} written, {} failed, {} skipped in {:.1} s ({:.0} keys/s)",
        w.deployment,
        w.source,
        count(w.written as usize, "key"),
        w.failed,
        w.skipped,
        w.seconds,
        w.keys_per_second
    );
    if let Some(line) = w.resumed_after {
        let unit = if w.format == "redis" { "keys" } else { "lines" };
        outln!(
            "  resumed after {line} {unit} done by an interrupted run; {} written in all",
            count(w.written_total as usize, "key")
        );
    }
    let strategy = w.strategy.as_deref().map(|s| format!("`{s}`")).unwrap_or_else(|| "no strategy".into());
    outln!(
        "  TTLs: {} from the source, {} from {strategy}, {} without",
        w.ttl_from_source,
        w.ttl_from_strategy,
        w.no_ttl
    );
    let t = &w.throttled;
    if t.replica_lag + t.output_buffer > 0 {
        outln!(
            "  paused {:.1} s for the replicas ({} times lagging, {} times a full output buffer)",
            t.seconds,
            t.replica_lag,
            t.output_buffer
        );
    }
    outln!("  full resyncs of replicas meanwhile: {}", w.full_resyncs);
}

/// The load's progress on stderr, only on a terminal and without `--quiet`.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(hidden: bool) -> Bar {
        if hidden || !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.enable_steady_tick(Duration::from_millis(100));
        Bar { bar: Some(bar) }
    }
}

impl warm::Progress for Bar {
    fn start(&self, total: u64, done: u64, unit: &'static str) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
            let template = if unit == "bytes" {
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)"
            } else {
                "{msg} [{bar:30}] {pos}/{len} keys ({eta} left)"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                b.set_style(style.progress_chars("=> "));
            }
        }
    }

    fn at(&self, done: u64, written: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("{written} keys written"));
        }
    }

    fn note(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.set_message(message.to_owned());
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

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_read_as_keys_per_second() {
        assert_eq!(parse_rate("5000"), Ok(5000));
        assert_eq!(parse_rate("5k/s"), Ok(5000));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
