//! `redplate warm`: loads keys into a running deployment from a JSONL or
//! CSV file or from another Redis, with the TTLs its cache strategy decides
//! (its key rules, jitter by the plugin's `decide`), into a tenant's prefix
//! when asked — pipelined, paced so replicas keep up ([`pace`]), and
//! resumable: a checkpoint after every acknowledged batch lets a rerun with
//! the same source continue where an interrupted one stopped.
//!
//! A reader thread parses and decides (CPU: the plugin runs there) while
//! the async side sends the previous batch, so the two overlap.

mod checkpoint;
mod csv;
mod pace;
mod reader;
mod remote;
mod source;
mod ttl;
mod write;

pub use source::{Bad, Format};
pub use ttl::{glob, strategy_of};

use crate::client::Node;
use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::deploy::failure;
use crate::plugin::PluginHost;
use crate::registry::{DeployState, Registry};
use checkpoint::Checkpoint;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use reader::Origin;
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use ttl::TtlFrom;
use write::Router;

/// How many failure reasons a summary lists; the rest are counted.
pub const MAX_REASONS: usize = 20;
/// Keys per batch (one pipeline per master), unless the rate cap asks for fewer.
pub const BATCH: usize = 1000;
/// Batches sent before the oldest one's replies are read.
const IN_FLIGHT: usize = 2;

/// What `warm` was asked.
#[derive(Debug, Clone, Default)]
pub struct WarmRequest {
    pub deployment: String,
    /// A `.jsonl`/`.csv` file, or `redis://host:port[/db]`.
    pub from: String,
    pub tenant: Option<String>,
    /// At most this many keys per second.
    pub rate: Option<u64>,
    /// Ignore (and remove) a checkpoint: start from the beginning.
    pub restart: bool,
    /// Third-party plugin folders (a strategy may come from one).
    pub plugin_dirs: Vec<PathBuf>,
}

/// Where a load reports to (the CLI draws a progress bar).
pub trait Progress: Sync {
    /// The work ahead: `total` of `unit` (`bytes` of a file, `keys` of a Redis).
    fn start(&self, _total: u64, _done: u64, _unit: &'static str) {}
    /// Progress so far, and the keys written in this run.
    fn at(&self, _done: u64, _written: u64) {}
    /// Something worth saying (a pause and why).
    fn note(&self, _message: &str) {}
}

/// A progress sink that shows nothing.
pub struct Silent;

impl Progress for Silent {}

/// How often and how long the load held back for the deployment's sake.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Throttled {
    /// Pauses because a replica fell behind.
    pub replica_lag: u64,
    /// Pauses because a replica's output buffer filled.
    pub output_buffer: u64,
    /// Seconds spent paused (rate cap not included).
    pub seconds: f64,
}

/// What a load did.
#[derive(Debug, Clone, Serialize)]
pub struct Warmed {
    pub deployment: String,
    /// The source (a Redis address without its password).
    pub source: String,
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The cache strategy that decided TTLs (none: keys without a TTL in the source get none).
    pub strategy: Option<String>,
    /// Lines (or source keys) done by earlier, interrupted runs and not read again.
    pub resumed_after: Option<u64>,
    /// Keys written by this run.
    pub written: u64,
    /// Records this run could not load (bad lines, refused writes).
    pub failed: u64,
    /// Keys that vanished from the source Redis between `SCAN` and `DUMP`.
    pub skipped: u64,
    /// Over this run and the interrupted ones it continues.
    pub written_total: u64,
    pub failed_total: u64,
    /// The first [`MAX_REASONS`] failures, with line numbers.
    pub failures: Vec<Bad>,
    /// Failures not listed.
    pub failures_not_listed: u64,
    pub ttl_from_source: u64,
    pub ttl_from_strategy: u64,
    pub no_ttl: u64,
    pub masters: Vec<String>,
    pub throttled: Throttled,
    /// Full resyncs the masters counted during the load (`sync_full` of `INFO stats`).
    pub full_resyncs: u64,
    /// Whether every record was read.
    pub complete: bool,
    /// Why the load stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub seconds: f64,
    pub keys_per_second: f64,
}

fn refuse(code: &str, message: String, hint: &str) -> Failure {
    Failure::invalid(vec![Diagnostic::error(code, "", message).with_hint(hint)])
}

/// Loads `request.from` into `request.deployment`; `cancel` stops it
/// between two batches (the checkpoint keeps its place).
pub async fn warm(
    home: &Path,
    host: &PluginHost,
    request: &WarmRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Warmed, Failure> {
    let started = Instant::now();
    let name = request.deployment.as_str();
    let record = Registry::new(home).load(name).map_err(failure)?;
    if record.state != DeployState::Running {
        return Err(refuse(
            "warm.not-running",
            format!("`{name}` is {}: keys are loaded into its running nodes", record.state),
            &format!("start it with `redplate start {name}`"),
        ));
    }
    let resolved = crate::ops::stored::load(&record)?;
    let config = &resolved.config;
    let prefix = match &request.tenant {
        None => None,
        Some(id) => {
            crate::ops::tenant::check_id(id)?;
            crate::ops::tenant::check_isolation(config, name)?;
            crate::ops::tenant::find(config, name, id)?;
            Some(crate::ops::tenant::prefix(config, id))
        }
    };
    let (origin, identity) = reader::origin(&request.from)?;
    if request.restart {
        checkpoint::clear(&record.state_dir)?;
    }
    let resume = checkpoint::load(&record.state_dir, &identity, request.tenant.as_deref()).unwrap_or_else(|| {
        Checkpoint { source: identity.clone(), tenant: request.tenant.clone(), ..Checkpoint::default() }
    });
    let resumed_after = (resume.line > 0).then_some(resume.line);

    let (strategy, ttls) = ttl::for_deployment(host, &record, &resolved, request)?;
    let found = masters(&record).await?;
    let names: Vec<String> = found.iter().map(|(n, _)| n.name.clone()).collect();
    let nodes: Vec<Node> = found.into_iter().map(|(_, c)| c).collect();
    let router = if record.mode == Mode::Cluster && nodes.len() > 1 {
        let ports: Vec<u16> = nodes.iter().map(|n| n.endpoint().port).collect();
        let layout = crate::client::cluster_masters(&nodes[0]).await.map_err(unreachable)?;
        Some(Router::new(&layout, &ports))
    } else {
        None
    };
    let mut limits = Vec::with_capacity(nodes.len());
    for n in &nodes {
        limits.push(pace::limits(n).await.map_err(unreachable)?);
    }
    let syncs_before = pace::sync_full(&nodes).await.map_err(unreachable)?;

    let mut rate = pace::Rate::new(request.rate);
    let batch = rate.batch(BATCH);
    let mut warmed = Warmed {
        deployment: name.to_owned(),
        source: match &origin {
            Origin::File { path, .. } => crate::text::clean(&path.display().to_string(), 500),
            Origin::Redis(a) => a.shown(),
        },
        format: match &origin {
            Origin::File { format: Format::Jsonl, .. } => "jsonl".into(),
            Origin::File { format: Format::Csv, .. } => "csv".into(),
            Origin::Redis(_) => "redis".into(),
        },
        tenant: request.tenant.clone(),
        prefix: prefix.clone(),
        strategy,
        resumed_after,
        written: 0,
        failed: 0,
        skipped: 0,
        written_total: resume.written,
        failed_total: resume.failed,
        failures: Vec::new(),
        failures_not_listed: 0,
        ttl_from_source: 0,
        ttl_from_strategy: 0,
        no_ttl: 0,
        masters: names.clone(),
        throttled: Throttled::default(),
        full_resyncs: 0,
        complete: false,
        stopped: None,
        seconds: 0.0,
        keys_per_second: 0.0,
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<reader::Prepared, Failure>>(4);
    let source_size = match &origin {
        Origin::Redis(address) => {
            let cursor = resume.cursor.clone().filter(|_| resume.line > 0);
            let probe = remote::Remote::open(address, cursor, resume.line).await.map_err(reader::source_unreachable)?;
            probe.size().await.map_err(reader::source_unreachable)?
        }
        Origin::File { .. } => 0,
    };
    let setup = reader::Setup {
        origin,
        resume: resume.clone(),
        prefix: prefix.map(String::into_bytes),
        ttls,
        batch,
        source_size,
    };
    let handle = reader::spawn(setup, tx, progress)?;
    let mut state = resume;
    let mut last_check: Option<Instant> = None;
    let outcome: Result<(), Failure> = async {
        // Up to IN_FLIGHT batches are sent before the oldest is answered, so
        // Redis always has the next one queued; they complete (and are
        // checkpointed) in order.
        let mut in_flight = FuturesOrdered::new();
        let mut more = true;
        loop {
            if more && in_flight.len() < IN_FLIGHT && warmed.stopped.is_none() {
                let Some(prepared) = rx.recv().await else {
                    more = false;
                    continue;
                };
                let mut prepared = prepared?;
                if cancel.load(Ordering::Relaxed) {
                    warmed.stopped = Some("interrupted".into());
                    continue;
                }
                let wait = rate.wait_for(prepared.entries.len());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                if last_check.is_none_or(|t| t.elapsed() >= pace::CHECK_EVERY) {
                    let held = pace::hold_back(&nodes, &names, &limits, &mut warmed.throttled, progress, cancel);
                    if let Some(reason) = held.await? {
                        warmed.stopped = Some(reason);
                        continue;
                    }
                    last_check = Some(Instant::now());
                }
                let entries = std::mem::take(&mut prepared.entries);
                let (nodes, router) = (&nodes, router.as_ref());
                in_flight.push_back(async move { (write::send(nodes, router, entries).await, prepared) });
                continue;
            }
            let Some((done, prepared)) = in_flight.next().await else { break };
            let done = done.map_err(unreachable)?;
            for b in prepared.bad {
                note_failure(&mut warmed, b);
            }
            warmed.skipped += prepared.gone;
            for from in &done.written {
                match from {
                    TtlFrom::Source => warmed.ttl_from_source += 1,
                    TtlFrom::Strategy => warmed.ttl_from_strategy += 1,
                    TtlFrom::None => warmed.no_ttl += 1,
                }
            }
            warmed.written += done.written.len() as u64;
            for b in done.failed {
                note_failure(&mut warmed, b);
            }
            state.line = prepared.line;
            state.offset = prepared.offset;
            state.cursor = prepared.cursor;
            state.written = warmed.written_total + warmed.written;
            state.failed = warmed.failed_total + warmed.failed;
            checkpoint::save(&record.state_dir, &state)?;
            progress.at(if warmed.format == "redis" { state.line } else { state.offset }, warmed.written);
        }
        warmed.complete = warmed.stopped.is_none();
        Ok(())
    }
    .await;
    drop(rx);
    let joined = tokio::task::spawn_blocking(move || handle.join()).await;
    outcome?;
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => return Err(Failure::panicked("the warm reader", &*payload)),
        Err(e) => return Err(Failure::panicked("waiting for the warm reader", &e.to_string())),
    }
    warmed.written_total += warmed.written;
    warmed.failed_total += warmed.failed;
    if warmed.complete {
        checkpoint::clear(&record.state_dir)?;
    }
    let syncs_after = pace::sync_full(&nodes).await.map_err(unreachable)?;
    warmed.full_resyncs = syncs_after.iter().zip(&syncs_before).map(|(a, b)| a.saturating_sub(*b)).sum();
    warmed.seconds = started.elapsed().as_secs_f64();
    warmed.keys_per_second = warmed.written as f64 / warmed.seconds.max(1e-9);
    Ok(warmed)
}

fn note_failure(warmed: &mut Warmed, bad: Bad) {
    warmed.failed += 1;
    if warmed.failures.len() < MAX_REASONS {
        warmed.failures.push(bad);
    } else {
        warmed.failures_not_listed += 1;
    }
}
