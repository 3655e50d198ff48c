//! Seeing how a deployment is doing (`stats`, `metrics`, `health`): clap
//! structs, the `ops` calls on a tokio runtime, and how the results look.
//! Text that came from Redis is escaped by the operations already.

use super::print::{out, outln};
use super::record;
use super::runtime;
use super::{Format, GlobalArgs};
use crate::exit::{ExitStatus, Failure};
use crate::ops::health::{self, HealthOptions, Verdict};
use crate::ops::metrics::{self, MetricsOptions};
use crate::ops::stats::{self, Stats, StatsOptions};
use crate::ops::usage::UsageOptions;
use crate::registry::Record;
use clap::Subcommand;
use redplate_config::Diagnostic;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum ObserveCommand {
    /// Show what every node is doing, and the total: ops/s, hit ratio,
    /// memory, clients, evictions, expirations, keys, replication offsets
    /// and lag, persistence, the slow log's worst entries, `LATENCY LATEST`.
    Stats {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Redraw every second until Ctrl-C (ops/s from the growth of
        /// `total_commands_processed`); with `--format json`, one line per second.
        #[arg(long)]
        watch: bool,
        /// The slowest slow log entries shown per node.
        #[arg(long, value_name = "N", default_value_t = 5)]
        slowlog: usize,
    },
    /// Print the deployment's metrics in the Prometheus text format, under
    /// redis_exporter's names (a `node` label per node), with per-tenant
    /// series and the health verdict as gauges.
    Metrics {
        name: String,
        /// Time budget of the tenant key scan, per master.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        scan_budget_ms: u64,
        /// Tenants named in the per-tenant series; the others are summed as `overflow`.
        #[arg(long, value_name = "N", default_value_t = 100)]
        max_tenants: usize,
        /// The replica lag bound of the health gauges.
        #[arg(long, value_name = "MS", default_value_t = 100)]
        max_lag_ms: u64,
    },
    /// Judge a deployment and say why: exit 0 healthy, 1 degraded, 2 down.
    Health {
        name: String,
        /// The most a replica may be behind its master, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 100)]
        max_lag_ms: u64,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

fn json<T: serde::Serialize>(value: &T, pretty: bool) {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    match text {
        Ok(text) => outln!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// Runs `stats`, `metrics` or `health`.
pub fn run(command: &ObserveCommand, global: &GlobalArgs) -> Result<ExitStatus, Failure> {
    match command {
        ObserveCommand::Stats { name, format, watch, slowlog } => {
            let record = record(name)?;
            let opts = StatsOptions { slowlog_entries: *slowlog, ..StatsOptions::default() };
            let rt = runtime()?;
            if *watch {
                return watch_stats(&rt, &record, &opts, *format);
            }
            let s = rt.block_on(stats::stats(&record, &opts));
            match format {
                Format::Json => json(&s, true),
                Format::Human => print_stats(&s),
            }
            Ok(ExitStatus::Ok)
        }
        ObserveCommand::Metrics { name, scan_budget_ms, max_tenants, max_lag_ms } => {
            let record = record(name)?;
            // Tenants come from the stored template; without it, the rest still shows.
            let tenancy = match crate::ops::stored::load(&record) {
                Ok(resolved) => Some(resolved.config.tenancy),
                Err(f) => {
                    let mut ds = f.diagnostics;
                    ds.push(Diagnostic::warning(
                        "metrics.no-tenants",
                        "",
                        format!("the stored template of `{name}` cannot be read: no per-tenant series"),
                    ));
                    super::print::diagnostics(&ds, global.quiet);
                    None
                }
            };
            let opts = MetricsOptions {
                usage: UsageOptions { scan_budget: Duration::from_millis(*scan_budget_ms), max_series: *max_tenants },
                max_lag: Duration::from_millis(*max_lag_ms),
            };
            let m = runtime()?.block_on(metrics::metrics(&record, tenancy.as_ref(), &opts));
            out!("{}", m.render());
            Ok(ExitStatus::Ok)
        }
        ObserveCommand::Health { name, max_lag_ms, format } => {
            // Exit 1 means degraded here: a deployment that cannot be judged exits 2, like one that is down.
            let record = record(name).map_err(|f| Failure { status: ExitStatus::CouldNotRun, ..f })?;
            let opts = HealthOptions { max_lag: Duration::from_millis(*max_lag_ms) };
            let h = runtime()?.block_on(health::health(&record, &opts));
            match format {
                Format::Json => json(&h, true),
                Format::Human => {
                    let n = h.reasons.len();
                    let why = if n == 0 { String::new() } else { format!(", {}", super::print::count(n, "reason")) };
                    outln!("`{}`: {}{why} ({:.0} ms)", h.deployment, h.verdict.as_str(), h.took_ms);
                    for r in &h.reasons {
                        outln!("  {:9} {:18} {}", r.verdict.as_str(), r.check, r.message);
                        if let Some(hint) = &r.hint {
                            outln!("  {:9} {:18} hint: {hint}", "", "");
                        }
                    }
                    let checks: Vec<String> =
                        h.checks.iter().map(|(c, ok)| format!("{c} {}", if *ok { "ok" } else { "FAILED" })).collect();
                    outln!("  checks: {}", checks.join(", "));
                }
            }
            // The verdict is the exit code: 0 healthy, 1 degraded, 2 down.
            Ok(match h.verdict {
                Verdict::Healthy => ExitStatus::Ok,
                Verdict::Degraded => ExitStatus::Invalid,
                Verdict::Down => ExitStatus::CouldNotRun,
            })
        }
    }
}

/// Redraws the stats every second until Ctrl-C, rates from the counters'
/// growth since the previous round.
fn watch_stats(
    rt: &tokio::runtime::Runtime,
    record: &Record,
    opts: &StatsOptions,
    format: Format,
) -> Result<ExitStatus, Failure> {
    let clear = format == Format::Human && std::io::stdout().is_terminal();
    rt.block_on(async {
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(|e| {
            Failure::could_not_run(Diagnostic::error("host.signal", "", format!("cannot watch for Ctrl-C: {e}")))
        })?;
        let mut previous: Option<Stats> = None;
        loop {
            let round = Instant::now();
            let mut s = tokio::select! {
                s = stats::stats(record, opts) => s,
                _ = interrupt.recv() => break,
            };
            if let Some(p) = &previous {
                s.rates_since(p);
            }
            match format {
                Format::Json => json(&s, false),
                Format::Human => {
                    if clear {
                        out!("\x1b[H\x1b[2J");
                    }
                    print_stats(&s);
                    outln!("(every second; Ctrl-C to stop)");
                }
            }
            previous = Some(s);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1).saturating_sub(round.elapsed())) => {}
                _ = interrupt.recv() => break,
            }
        }
        Ok(ExitStatus::Ok)
    })
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let (mut v, mut u) = (b as f64, 0);
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b}B") } else { format!("{v:.1}{}", UNITS[u]) }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn ago(unix: u64, now_ms: u64) -> String {
    if unix == 0 {
        return "never".into();
    }
    let s = (now_ms / 1000).saturating_sub(unix);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn print_stats(s: &Stats) {
    outln!("`{}` ({}), read in {:.1} ms", s.deployment, s.mode, s.took_ms);
    outln!(
        "{:24} {:8} {:>8} {:>7} {:>8} {:>8} {:>5} {:>8} {:>7} {:>9} {:>8} {:>8} {:>12}  LAG",
        "NODE",
        "ROLE",
        "OPS/S",
        "HIT",
        "USED",
        "PEAK",
        "FRAG",
        "MAXMEM",
        "CLIENTS",
        "KEYS",
        "EVICTED",
        "EXPIRED",
        "OFFSET"
    );
    for n in &s.nodes {
        let Some(l) = &n.live else {
            outln!("{:24} {:8} {}", n.name, "DOWN", n.error.as_deref().unwrap_or("no answer"));
            continue;
        };
        let r = &l.replication;
        let lag = match (r.master_link_up, r.lag_bytes, r.lag_ms) {
            (Some(false), ..) => "link down".to_owned(),
            (_, Some(b), Some(ms)) => format!("{b} B, {ms} ms"),
            (_, Some(b), None) => format!("{b} B"),
            _ if l.role == "master" => format!("{} replicas", r.connected_replicas),
            _ => "-".into(),
        };
        let m = &l.memory;
        outln!(
            "{:24} {:8} {:>8.0} {:>7} {:>8} {:>8} {:>5.2} {:>8} {:>7} {:>9} {:>8} {:>8} {:>12}  {lag}",
            n.name,
            l.role,
            l.ops_per_sec,
            percent(l.hit_ratio),
            bytes(m.used_bytes),
            bytes(m.peak_bytes),
            m.fragmentation_ratio,
            if m.max_bytes == 0 { "none".into() } else { bytes(m.max_bytes) },
            l.clients.connected,
            l.keys,
            l.evicted_keys,
            l.expired_keys,
            r.offset
        );
    }
    let t = &s.total;
    outln!(
        "{:24} {:8} {:>8.0} {:>7} {:>8} {:>8} {:>5} {:>8} {:>7} {:>9} {:>8} {:>8}",
        format!("total ({}/{} up)", t.nodes_up, t.nodes),
        "",
        t.ops_per_sec,
        percent(t.hit_ratio),
        bytes(t.used_memory_bytes),
        "",
        "",
        if t.max_memory_bytes == 0 { "none".into() } else { bytes(t.max_memory_bytes) },
        t.connected_clients,
        t.keys,
        t.evicted_keys,
        t.expired_keys
    );
    let live: Vec<_> = s.nodes.iter().filter_map(|n| n.live.as_ref().map(|l| (n, l))).collect();
    outln!("persistence");
    for (n, l) in &live {
        let p = &l.persistence;
        let rdb = if p.rdb_last_bgsave_ok { "ok" } else { "FAILED" };
        let aof = match (p.aof_enabled, p.aof_last_write_ok && p.aof_last_bgrewrite_ok) {
            (false, _) => "AOF off".to_owned(),
            (true, true) => {
                format!("AOF on, last write ok{}", if p.aof_rewrite_in_progress { ", rewriting" } else { "" })
            }
            (true, false) => "AOF on, last write or rewrite FAILED".to_owned(),
        };
        outln!(
            "  {:24} last save {} ({rdb}{}), {} changes since; {aof}",
            n.name,
            ago(p.rdb_last_save_unix, s.unix_ms),
            if p.rdb_bgsave_in_progress { ", saving" } else { "" },
            p.rdb_changes_since_last_save
        );
    }
    if live.iter().any(|(_, l)| !l.slowlog.worst.is_empty()) {
        outln!("slow log (slowest first)");
        for (n, l) in &live {
            for e in &l.slowlog.worst {
                let who =
                    if e.client_name.is_empty() { e.client.clone() } else { format!("{} {}", e.client, e.client_name) };
                outln!(
                    "  {:24} {:>9.3} ms  {:>10}  {}  ({who})",
                    n.name,
                    e.duration_us as f64 / 1000.0,
                    ago(e.unix, s.unix_ms),
                    e.command
                );
            }
        }
    }
    if live.iter().any(|(_, l)| !l.latency.is_empty()) {
        outln!("latency (LATENCY LATEST)");
        for (n, l) in &live {
            for e in &l.latency {
                outln!(
                    "  {:24} {}: latest {} ms ({}), max {} ms",
                    n.name,
                    e.event,
                    e.latest_ms,
                    ago(e.last_unix, s.unix_ms),
                    e.max_ms
                );
            }
        }
    }
    for (n, l) in &live {
        if let Some(c) = &l.cluster {
            let open = if c.open_slots.is_empty() {
                String::new()
            } else {
                format!(", open slots {}", c.open_slots.join(" "))
            };
            outln!(
                "cluster via {}: cluster_state:{}, {} slots assigned ({} ok, {} pfail, {} fail), {} known nodes{open}",
                n.name,
                c.state,
                c.slots_assigned,
                c.slots_ok,
                c.slots_pfail,
                c.slots_fail,
                c.known_nodes
            );
        }
    }
    for x in &s.sentinels {
        if !x.up {
            outln!("sentinel {:24} DOWN {}", x.name, x.error.as_deref().unwrap_or("no answer"));
            continue;
        }
        let quorum = match x.quorum_ok {
            Some(true) => "quorum ok".to_owned(),
            _ => format!("NO QUORUM: {}", x.quorum_message.as_deref().unwrap_or("")),
        };
        outln!(
            "sentinel {:24} master `{}` at {} ({}), {} replicas, {} sentinels, {quorum}{}",
            x.name,
            x.master_name,
            x.master.as_deref().unwrap_or("(unknown)"),
            x.master_status.as_deref().unwrap_or("?"),
            x.known_replicas,
            x.known_sentinels,
            if x.tilt { ", TILT" } else { "" }
        );
    }
}
