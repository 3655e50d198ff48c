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
mod pace;
mod remote;
mod source;
mod ttl;
mod write;

pub use source::{Bad, Format};

use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::deploy::failure;
use crate::plugin::PluginHost;
use crate::registry::{DeployState, Registry};
use checkpoint::Checkpoint;
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use ttl::{TtlFrom, Ttls};
use write::{Entry, Router};

/// How many failure reasons a summary lists; the rest are counted.
pub const MAX_REASONS: usize = 20;
/// Keys per batch (one pipeline per master), unless the rate cap asks for fewer.
pub const BATCH: usize = 1000;

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

/// Where the keys come from.
enum Origin {
    File { path: PathBuf, format: Format },
    Redis(remote::Address),
}

/// One batch from the reader: keys ready to send, bad records, and where
/// the source stands after it.
struct Prepared {
    entries: Vec<Entry>,
    bad: Vec<Bad>,
    gone: u64,
    line: u64,
    offset: u64,
    cursor: Option<String>,
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
    let (origin, identity) = origin(&request.from)?;
    if request.restart {
        checkpoint::clear(&record.state_dir)?;
    }
    let resume = checkpoint::load(&record.state_dir, &identity, request.tenant.as_deref())
        .unwrap_or_else(|| Checkpoint { source: identity.clone(), tenant: request.tenant.clone(), ..Checkpoint::default() });
    let resumed_after = (resume.line > 0).then_some(resume.line);

    let (strategy, ttls) = strategy_ttls(host, &record, &resolved, request)?;
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
    let syncs_before = sync_full(&nodes).await.map_err(unreachable)?;

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

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Prepared, Failure>>(4);
    let source_size = match &origin {
        Origin::Redis(address) => {
            let cursor = resume.cursor.clone().filter(|_| resume.line > 0);
            let probe = remote::Remote::open(address, cursor, resume.line).await.map_err(source_unreachable)?;
            probe.size().await.map_err(source_unreachable)?
        }
        Origin::File { .. } => 0,
    };
    let reader =
        spawn_reader(origin, resume.clone(), prefix.map(String::into_bytes), ttls, batch, tx, progress, source_size)?;
    let mut state = resume;
    let mut last_check: Option<Instant> = None;
    let outcome: Result<(), Failure> = async {
        while let Some(prepared) = rx.recv().await {
            let prepared = prepared?;
            if cancel.load(Ordering::Relaxed) {
                warmed.stopped = Some("interrupted".into());
                return Ok(());
            }
            let wait = rate.wait_for(prepared.entries.len());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if last_check.is_none_or(|t| t.elapsed() >= pace::CHECK_EVERY) {
                if let Some(reason) = hold_back(&nodes, &names, &limits, &mut warmed.throttled, progress, cancel).await? {
                    warmed.stopped = Some(reason);
                    return Ok(());
                }
                last_check = Some(Instant::now());
            }
            for b in prepared.bad {
                note_failure(&mut warmed, b);
            }
            warmed.skipped += prepared.gone;
            let done = write::send(&nodes, router.as_ref(), prepared.entries).await.map_err(unreachable)?;
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
        warmed.complete = true;
        Ok(())
    }
    .await;
    drop(rx);
    let joined = tokio::task::spawn_blocking(move || reader.join()).await;
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
    let syncs_after = sync_full(&nodes).await.map_err(unreachable)?;
    warmed.full_resyncs = syncs_after.iter().zip(&syncs_before).map(|(a, b)| a.saturating_sub(*b)).sum();
    warmed.seconds = started.elapsed().as_secs_f64();
    warmed.keys_per_second = warmed.written as f64 / warmed.seconds.max(1e-9);
    Ok(warmed)
}

/// The source Redis could not be read.
fn source_unreachable(e: ClientError) -> Failure {
    Failure::could_not_run(
        Diagnostic::error("warm.source-unreachable", "", e.to_string())
            .with_hint("check the `redis://` address, its user and password, and that the source Redis is running"),
    )
}

fn note_failure(warmed: &mut Warmed, bad: Bad) {
    warmed.failed += 1;
    if warmed.failures.len() < MAX_REASONS {
        warmed.failures.push(bad);
    } else {
        warmed.failures_not_listed += 1;
    }
}

/// The source named by `from` and what identifies it in a checkpoint.
fn origin(from: &str) -> Result<(Origin, String), Failure> {
    if from.starts_with("redis://") || from.starts_with("rediss://") {
        let address = remote::Address::parse(from).map_err(|reason| {
            refuse(
                "warm.bad-source",
                format!("cannot use `{}` as a source: {reason}", crate::text::clean(from.split('@').next_back().unwrap_or(""), 200)),
                "give `redis://[user:password@]host:port[/db]`",
            )
        })?;
        let identity = address.shown();
        return Ok((Origin::Redis(address), identity));
    }
    let path = PathBuf::from(from);
    let shown = crate::text::clean(from, 500);
    let Some(format) = Format::of(&path) else {
        return Err(refuse(
            "warm.unknown-format",
            format!("cannot tell the format of `{shown}` from its name"),
            "name the file `*.jsonl` (one JSON object per line) or `*.csv` (`key,value[,ttl_ms]`), or give `redis://host:port`",
        ));
    };
    let identity = checkpoint::file_identity(&path).map_err(|e| {
        Failure::could_not_run(
            Diagnostic::error("warm.read", "", format!("cannot read `{shown}`: {e}"))
                .with_hint("check the path (relative paths start from the current folder)"),
        )
    })?;
    Ok((Origin::File { path, format }, identity))
}

/// The strategy's name and TTL decider (key rules from its `plan`, one
/// reused plugin instance for `decide`).
fn strategy_ttls(
    host: &PluginHost,
    record: &crate::registry::Record,
    resolved: &redplate_config::Resolved,
    request: &WarmRequest,
) -> Result<(Option<String>, Ttls), Failure> {
    let seed = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let name = resolved.config.cache.strategy.as_str();
    if name.is_empty() || name == "none" {
        return Ok((None, Ttls::new(Vec::new(), None, request.tenant.clone(), seed)));
    }
    let extra = crate::ops::render::template_plugins(&resolved.config, Some(&record.template));
    let plugins = crate::ops::render::PluginSet::load(host, &[], Some(name), &extra, &request.plugin_dirs)?;
    let mut ignored = Vec::new();
    let config_value = serde_json::to_value(&resolved.config).map_err(|e| {
        Failure::could_not_run(Diagnostic::error("warm.internal", "", format!("cannot encode the template: {e}")))
    })?;
    let Some((plugin_name, plan)) =
        crate::ops::render::plan_strategy(host, &plugins, resolved, &config_value, &mut ignored)?
    else {
        return Ok((None, Ttls::new(Vec::new(), None, request.tenant.clone(), seed)));
    };
    let decider = match plugins.strategy(name) {
        Some(p) => Some(host.decider(p)?),
        None => None,
    };
    Ok((Some(plugin_name), Ttls::new(plan.key_rules, decider, request.tenant.clone(), seed)))
}

/// `sync_full` of every master.
async fn sync_full(nodes: &[Node]) -> Result<Vec<u64>, ClientError> {
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        out.push(n.info("stats").await?.uint("sync_full").unwrap_or(0));
    }
    Ok(out)
}

/// Waits while any master's replicas lag or buffer too much; `Some(reason)`
/// when the load must stop (memory near `maxmemory`, a wait too long).
async fn hold_back(
    nodes: &[Node],
    names: &[String],
    limits: &[pace::Limits],
    throttled: &mut Throttled,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<String>, Failure> {
    let started = Instant::now();
    loop {
        let mut verdict = pace::Verdict::Go;
        for ((node, name), limit) in nodes.iter().zip(names).zip(limits) {
            verdict = pace::check(name, node, limit).await.map_err(unreachable)?;
            if verdict != pace::Verdict::Go {
                break;
            }
        }
        let waited = started.elapsed();
        let message = match &verdict {
            pace::Verdict::Go => {
                throttled.seconds += waited.as_secs_f64();
                return Ok(None);
            }
            pace::Verdict::Memory { node, used, max } => {
                return Ok(Some(format!(
                    "`{node}` uses {used} of its {max} bytes of `maxmemory` ({:.0} %): the load stops at {:.0} % so \
                     it does not evict what the cache holds",
                    *used as f64 * 100.0 / (*max).max(1) as f64,
                    pace::MEMORY_STOP * 100.0
                )));
            }
            pace::Verdict::ReplicaLag { node, bytes } => {
                if waited.is_zero() {
                    throttled.replica_lag += 1;
                }
                format!("pausing: a replica of `{node}` is {bytes} bytes behind")
            }
            pace::Verdict::OutputBuffer { node, bytes } => {
                if waited.is_zero() {
                    throttled.output_buffer += 1;
                }
                format!("pausing: a replica's output buffer on `{node}` holds {bytes} bytes")
            }
        };
        progress.note(&message);
        if waited > pace::LONGEST_WAIT {
            throttled.seconds += waited.as_secs_f64();
            return Ok(Some(format!("{message} after {} s of waiting; gave up", waited.as_secs())));
        }
        if cancel.load(Ordering::Relaxed) {
            throttled.seconds += waited.as_secs_f64();
            return Ok(Some("interrupted".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the reader thread: parses (or scans the source Redis), decides
/// TTLs and sends batches until the source ends or the channel closes.
fn spawn_reader(
    origin: Origin,
    resume: Checkpoint,
    prefix: Option<Vec<u8>>,
    mut ttls: Ttls,
    batch: usize,
    tx: tokio::sync::mpsc::Sender<Result<Prepared, Failure>>,
    progress: &dyn Progress,
    source_size: u64,
) -> Result<std::thread::JoinHandle<()>, Failure> {
    let prepare = move |item: source::Item, ttls: &mut Ttls| -> Result<Entry, Failure> {
        let key = match &prefix {
            Some(p) => [p.as_slice(), &item.key].concat(),
            None => item.key,
        };
        let (ttl, from) = ttls.ttl(&key, item.ttl_ms)?;
        Ok(Entry { position: item.position, commands: write::commands(key.clone(), item.data, ttl), key, ttl: from })
    };
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name("redplate-warm-reader".into()).spawn(f).map_err(|e| {
            Failure::could_not_run(Diagnostic::error("warm.thread", "", format!("cannot start the reader thread: {e}")))
        })
    };
    match origin {
        Origin::File { path, format } => {
            let shown = crate::text::clean(&path.display().to_string(), 500);
            let read_error = move |e: std::io::Error| {
                Failure::could_not_run(Diagnostic::error("warm.read", "", format!("cannot read `{shown}`: {e}")))
            };
            let mut reader = source::FileReader::open(&path, format, resume.line, resume.offset).map_err(&read_error)?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            progress.start(size, resume.offset, "bytes");
            spawn(Box::new(move || {
                loop {
                    let mut p = Prepared { entries: Vec::new(), bad: Vec::new(), gone: 0, line: 0, offset: 0, cursor: None };
                    let mut end = false;
                    while p.entries.len() < batch && p.bad.len() < batch {
                        match reader.next_record() {
                            Err(e) => {
                                let _ = tx.blocking_send(Err(read_error(e)));
                                return;
                            }
                            Ok(None) => {
                                end = true;
                                break;
                            }
                            Ok(Some(source::Record::Nothing)) => {}
                            Ok(Some(source::Record::Bad(b))) => p.bad.push(b),
                            Ok(Some(source::Record::Item(item))) => match prepare(item, &mut ttls) {
                                Ok(e) => p.entries.push(e),
                                Err(f) => {
                                    let _ = tx.blocking_send(Err(f));
                                    return;
                                }
                            },
                        }
                    }
                    (p.line, p.offset) = (reader.line, reader.offset);
                    let empty = p.entries.is_empty() && p.bad.is_empty();
                    if (!empty || !end) && tx.blocking_send(Ok(p)).is_err() {
                        return;
                    }
                    if end {
                        return;
                    }
                }
            }))
        }
        Origin::Redis(address) => {
            // The reader thread opens its own connection on its own runtime;
            // this one only tells the progress bar how much there is.
            let cursor = resume.cursor.clone().filter(|_| resume.line > 0);
            progress.start(source_size, resume.line, "keys");
            let runtime = |e: std::io::Error| {
                Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
            };
            spawn(Box::new(move || {
                let opened = crate::client::runtime().map_err(runtime).and_then(|rt| {
                    let source =
                        rt.block_on(remote::Remote::open(&address, cursor, resume.line)).map_err(source_unreachable)?;
                    Ok((rt, source))
                });
                let (rt, mut source) = match opened {
                    Ok(o) => o,
                    Err(f) => {
                        let _ = tx.blocking_send(Err(f));
                        return;
                    }
                };
                loop {
                    let next = rt.block_on(source.next(batch));
                    let (items, bad, gone) = match next {
                        Err(e) => {
                            let _ = tx.blocking_send(Err(source_unreachable(e)));
                            return;
                        }
                        Ok(None) => return,
                        Ok(Some(found)) => found,
                    };
                    let mut p = Prepared {
                        entries: Vec::with_capacity(items.len()),
                        bad,
                        gone,
                        line: source.read,
                        offset: 0,
                        cursor: Some(source.cursor.clone()),
                    };
                    for item in items {
                        match prepare(item, &mut ttls) {
                            Ok(e) => p.entries.push(e),
                            Err(f) => {
                                let _ = tx.blocking_send(Err(f));
                                return;
                            }
                        }
                    }
                    if tx.blocking_send(Ok(p)).is_err() {
                        return;
                    }
                }
            }))
        }
    }
}
