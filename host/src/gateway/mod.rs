//! The tenant gateway: a RESP proxy tenants connect to instead of Redis. It
//! enforces what Redis cannot per ACL user — each tenant's connections,
//! ops/s and memory quotas — answers `SCAN`/`KEYS` with the tenant's own
//! keys, gives writes without an expiry to keys a cache rule covers the
//! rule's TTL (jittered by the strategy plugin's `decide`, one reused
//! instance per worker), and counts per tenant for the metrics. Redis's ACL
//! stays the authority on what a tenant may touch: every tenant connection
//! is forwarded on an upstream connection authenticated as that tenant.
//!
//! Supported: standalone and Sentinel deployments (following failovers),
//! RESP2 and RESP3, TLS on both sides when the deployment uses TLS, tenants
//! isolated by key prefix. Not (yet): cluster mode, `isolation: instance`.

mod commands;
mod link;
mod mux;
pub mod quota;
pub mod resp;
mod session;
mod tls;
mod upstream;

use crate::exit::Failure;
use crate::plugin::{Decider, KeyRule, PluginHost};
use crate::registry::{Record, Registry};
use quota::{Limits, Tenant, TenantSnapshot};
use redplate_config::model::{Isolation, Mode};
use redplate_config::{Config, Diagnostic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Connections open at once (all tenants, authenticated or not).
    pub max_connections: usize,
    /// A connection that has not authenticated within this is closed.
    pub auth_timeout: Duration,
    /// An authenticated connection idle for this long is closed (zero: never).
    pub idle_timeout: Duration,
    /// A command over the ops/s quota waits at most this long for its turn, then is refused.
    pub max_delay: Duration,
    /// A client that takes no reply for this long is cut off.
    pub write_timeout: Duration,
    /// The largest argument of a command.
    pub max_bulk: usize,
    /// Bytes all connections may hold in buffers past their first MiB each.
    pub buffer_budget: usize,
    /// How often each tenant's keys are measured (sooner after deletes).
    pub sample_interval: Duration,
    /// How long a command waits for a master to come back (a failover).
    pub failover_wait: Duration,
    /// Upstream connections each tenant's stateless sessions share, per
    /// protocol (0: every session has a connection of its own).
    pub shared_upstreams: usize,
}

impl Options {
    pub fn new(listen: SocketAddr) -> Options {
        Options {
            listen,
            max_connections: 10_000,
            auth_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_delay: Duration::from_millis(100),
            write_timeout: Duration::from_secs(30),
            max_bulk: 64 << 20,
            buffer_budget: 512 << 20,
            sample_interval: Duration::from_secs(5),
            failover_wait: Duration::from_secs(30),
            shared_upstreams: 1,
        }
    }
}

/// What every connection shares.
pub struct Shared {
    pub options: Options,
    limits: resp::Limits,
    max_request: usize,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    upstream: Arc<upstream::Upstream>,
    commands: commands::Table,
    rules: Vec<KeyRule>,
    deciders: Vec<Mutex<Decider>>,
    seed: u64,
    open: AtomicUsize,
    buffered: AtomicUsize,
    pools: mux::Pools,
    /// Kept alive for the deciders (its epoch ticker bounds each `decide`).
    _host: Option<PluginHost>,
}

impl Shared {
    /// The TTL a write of `key` gets from the cache rules (the first rule
    /// whose pattern matches; its TTL jittered by the strategy's `decide`).
    fn ttl_for(&self, key: &[u8], tenant: &str) -> Option<u64> {
        let base = self.rules.iter().find(|r| crate::ops::warm::glob(r.pattern.as_bytes(), key))?.ttl_ms?;
        if self.deciders.is_empty() {
            return Some(base);
        }
        let start = key.len() % self.deciders.len();
        let mut guard = None;
        for i in 0..self.deciders.len() {
            if let Ok(g) = self.deciders[(start + i) % self.deciders.len()].try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut decider = match guard {
            Some(g) => g,
            None => self.deciders[start].lock().unwrap_or_else(|p| p.into_inner()),
        };
        match decider.decide(&String::from_utf8_lossy(key), Some(tenant), base, self.seed) {
            Ok(d) => d.ttl_ms,
            Err(e) => {
                tracing::warn!(error = %e, "the cache strategy's decide failed: the rule's TTL is used as it is");
                Some(base)
            }
        }
    }
}

/// The gateway's counters, written to the deployment's state folder every
/// second for `redplate metrics` and `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub pid: u32,
    pub listen: String,
    pub tls: bool,
    pub written_unix_ms: u64,
    pub connections: usize,
    pub tenants: Vec<TenantSnapshot>,
}

/// Where the snapshot is kept.
pub fn snapshot_path(record: &Record) -> PathBuf {
    record.path("gateway/metrics.json")
}

/// The gateway's last snapshot, when it is fresh (written in the last 5 s).
pub fn read_snapshot(record: &Record) -> Option<Snapshot> {
    let text = std::fs::read_to_string(snapshot_path(record)).ok()?;
    let s: Snapshot = serde_json::from_str(&text).ok()?;
    let now = now_ms();
    (now.saturating_sub(s.written_unix_ms) < 5_000).then_some(s)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn refuse(code: &str, message: String, hint: &str) -> Failure {
    Failure::invalid(vec![Diagnostic::error(code, "/tenancy", message).with_hint(hint)])
}

/// What the gateway can front: tenancy by key prefix on a standalone or
/// Sentinel deployment.
pub fn check(config: &Config, deployment: &str, mode: Mode) -> Result<(), Failure> {
    if !config.tenancy.enabled {
        return Err(refuse(
            "gateway.tenancy-off",
            format!("`{deployment}` has tenancy off: the gateway fronts tenants"),
            "set `tenancy.enabled: true` and declare tenants, then `redplate apply`",
        ));
    }
    if config.tenancy.isolation != Isolation::KeyPrefix {
        return Err(refuse(
            "gateway.isolation",
            format!(
                "`{deployment}` isolates tenants by {:?}: the gateway fronts key-prefix tenants",
                config.tenancy.isolation
            ),
            "with `isolation: instance` each tenant has a redis-server of its own: connect to it directly",
        ));
    }
    if mode == Mode::Cluster {
        return Err(refuse(
            "gateway.cluster",
            format!("`{deployment}` is a Redis Cluster: the gateway fronts standalone and Sentinel deployments"),
            "connect cluster tenants to the nodes directly (their ACL users hold them to their keys)",
        ));
    }
    Ok(())
}

/// The tenants of the stored template, with their limits.
fn tenants_of(config: &Config, record: &Record) -> Vec<(String, Limits, String, String)> {
    config
        .tenancy
        .tenants
        .iter()
        .map(|t| {
            let info = crate::ops::tenant::info(config, record, t);
            let limits = Limits {
                connections: info.quotas.connections,
                ops_per_second: info.quotas.ops_per_second,
                memory_bytes: info.quotas.memory_bytes,
            };
            (info.user, limits, info.id, info.prefix)
        })
        .collect()
}

/// Brings the tenant table in line with the stored template: new tenants
/// appear, removed ones go (their open connections end when Redis drops
/// their user), changed quotas apply at once.
fn sync_tenants(shared: &Shared, config: &Config, record: &Record) {
    let wanted = tenants_of(config, record);
    let mut tenants = shared.tenants.write().unwrap_or_else(|p| p.into_inner());
    tenants.retain(|user, _| wanted.iter().any(|(u, ..)| u == user));
    for (user, limits, id, prefix) in wanted {
        match tenants.get(&user) {
            Some(t) => t.set_limits(limits),
            None => {
                tenants.insert(user.clone(), Arc::new(Tenant::new(id, user, prefix, limits)));
            }
        }
    }
}

/// Runs the gateway of `deployment` until the process is told to stop.
pub async fn run(home: &Path, deployment: &str, options: Options, host: Option<PluginHost>) -> Result<(), Failure> {
    let registry = Registry::new(home);
    let record = registry.load(deployment).map_err(crate::ops::deploy::failure)?;
    let resolved = crate::ops::stored::load(&record)?;
    let config = &resolved.config;
    check(config, deployment, record.mode)?;
    let upstream = Arc::new(upstream::Upstream::new(&record).map_err(|m| {
        Failure::could_not_run(Diagnostic::error("gateway.upstream", "", m).with_hint(
            "check the deployment's TLS files and records with `redplate status`; redeploy if they are gone",
        ))
    })?);
    upstream.refresh().await;
    let admin = upstream.admin().await.map_err(crate::ops::connect::unreachable)?;
    let commands = commands::Table::load(&admin).await.map_err(crate::ops::connect::unreachable)?;
    if commands.is_empty() {
        return Err(Failure::could_not_run(
            Diagnostic::error("gateway.commands", "", "the master listed no commands (`COMMAND`)").with_hint(
                "the gateway needs the command table to know which commands write: check redplate's admin user's ACL",
            ),
        ));
    }
    let (rules, deciders) = match &host {
        Some(h) => cache_rules(h, &record, &resolved)?,
        None => (Vec::new(), Vec::new()),
    };
    let acceptor = match &record.tls {
        Some(t) if config.security.tls.enabled => {
            let files = crate::client::TlsFiles {
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
            };
            Some(tls::acceptor(&files, config.security.tls.client_auth).map_err(|m| {
                Failure::could_not_run(
                    Diagnostic::error("gateway.tls", "", m)
                        .with_hint("the gateway serves TLS with the deployment's files"),
                )
            })?)
        }
        _ => None,
    };
    let listener = TcpListener::bind(options.listen).await.map_err(|e| {
        Failure::could_not_run(
            Diagnostic::error("gateway.listen", "", format!("cannot listen on {}: {e}", options.listen))
                .with_hint("choose another address with `--listen`"),
        )
    })?;
    let seed = getrandom::u64().unwrap_or(0x5eed);
    let shared = Arc::new(Shared {
        limits: resp::Limits { max_bulk: options.max_bulk, ..resp::Limits::default() },
        max_request: options.max_bulk.saturating_mul(2).max(1 << 20),
        options,
        tenants: RwLock::new(HashMap::new()),
        upstream: Arc::clone(&upstream),
        commands,
        rules,
        deciders,
        seed,
        open: AtomicUsize::new(0),
        buffered: AtomicUsize::new(0),
        pools: mux::Pools::default(),
        _host: host,
    });
    sync_tenants(&shared, config, &record);
    upstream.watch();
    spawn_housekeeping(Arc::clone(&shared), home.to_owned(), deployment.to_owned(), acceptor.is_some());
    tracing::info!(
        listen = %shared.options.listen,
        tls = acceptor.is_some(),
        tenants = shared.tenants.read().map(|t| t.len()).unwrap_or(0),
        commands = shared.commands.len(),
        rules = shared.rules.len(),
        "the tenant gateway is listening"
    );
    eprintln!(
        "gateway of `{deployment}` listening on {}{}",
        shared.options.listen,
        if acceptor.is_some() { " (TLS)" } else { "" }
    );
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => break,
        };
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors: wait for connections to close.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let open = shared.open.fetch_add(1, Ordering::AcqRel) + 1;
            let _guard = OpenGuard(&shared.open);
            if open > shared.options.max_connections {
                use tokio::io::AsyncWriteExt;
                let mut tcp = tcp;
                let _ = tcp.write_all(b"-ERR max number of clients reached\r\n").await;
                return;
            }
            let stream: upstream::Stream = match acceptor {
                None => Box::new(tcp),
                Some(a) => match tokio::time::timeout(shared.options.auth_timeout, tls::accept(&a, tcp)).await {
                    Ok(Ok(s)) => Box::new(s),
                    _ => return,
                },
            };
            session::Session::new(Arc::clone(&shared), stream).run().await;
        });
    }
    let _ = std::fs::remove_file(snapshot_path(&record));
    Ok(())
}

struct OpenGuard<'a>(&'a AtomicUsize);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The strategy's key rules and one `decide` instance per worker thread.
fn cache_rules(
    host: &PluginHost,
    record: &Record,
    resolved: &redplate_config::Resolved,
) -> Result<(Vec<KeyRule>, Vec<Mutex<Decider>>), Failure> {
    let instances = crate::ops::batch::default_threads().max(1);
    let Some(strategy) = crate::ops::warm::strategy_of(host, record, resolved, &[], instances)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    // Rules at the end that give no TTL decide nothing (the first match
    // wins, and no match means no TTL too): most writes then skip the globs.
    let mut rules = strategy.rules;
    while rules.last().is_some_and(|r| r.ttl_ms.is_none()) {
        rules.pop();
    }
    Ok((rules, strategy.deciders.into_iter().map(Mutex::new).collect()))
}

/// Every second: the metrics snapshot; every 250 ms: memory samples of the
/// tenants due one; every 2 s: the stored template's tenants and quotas.
fn spawn_housekeeping(shared: Arc<Shared>, home: PathBuf, deployment: String, tls: bool) {
    let sampler = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut last: HashMap<String, std::time::Instant> = HashMap::new();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let due: Vec<Arc<Tenant>> = {
                let tenants = sampler.tenants.read().unwrap_or_else(|p| p.into_inner());
                tenants
                    .values()
                    .filter(|t| {
                        t.dirty.load(Ordering::Acquire)
                            || last.get(&t.id).is_none_or(|at| at.elapsed() >= sampler.options.sample_interval)
                    })
                    .cloned()
                    .collect()
            };
            for t in due {
                last.insert(t.id.clone(), std::time::Instant::now());
                if let Err(e) = sample(&sampler, &t).await {
                    tracing::warn!(tenant = %t.id, error = %e, "measuring the tenant's keys failed");
                    sampler.upstream.drop_admin().await;
                }
            }
        }
    });
    // File work (the registry, the stored template, a synced snapshot):
    // on a thread of its own, so it never holds up the sessions' runtime.
    let spawned = std::thread::Builder::new().name("gateway-files".into()).spawn(move || {
        let registry = Registry::new(&home);
        let mut tick = 0u64;
        loop {
            if tick > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            tick += 1;
            let Ok(record) = registry.load(&deployment) else { continue };
            if tick.is_multiple_of(2)
                && let Ok(resolved) = crate::ops::stored::load(&record)
            {
                sync_tenants(&shared, &resolved.config, &record);
            }
            let tenants: Vec<TenantSnapshot> = {
                let t = shared.tenants.read().unwrap_or_else(|p| p.into_inner());
                let mut all: Vec<TenantSnapshot> = t.values().map(|t| t.snapshot()).collect();
                all.sort_by(|a, b| a.tenant.cmp(&b.tenant));
                all
            };
            let snapshot = Snapshot {
                pid: std::process::id(),
                listen: shared.options.listen.to_string(),
                tls,
                written_unix_ms: now_ms(),
                connections: shared.open.load(Ordering::Acquire),
                tenants,
            };
            let path = snapshot_path(&record);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(bytes) = serde_json::to_vec(&snapshot) {
                let _ = crate::registry::write_atomic(&path, &bytes, false);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the thread that writes the metrics snapshot; tenants' quotas are not reloaded");
    }
}

/// Measures one tenant's keys (a paced `SCAN MATCH` and `MEMORY USAGE` of
/// up to 1,000 of them, scaled to the key count).
async fn sample(shared: &Shared, tenant: &Tenant) -> Result<(), String> {
    let admin = shared.upstream.admin().await.map_err(|e| e.to_string())?;
    let started = tenant.sample_started();
    let pattern = crate::ops::tenant::match_pattern(&tenant.prefix);
    let m = crate::ops::tenant::measure(&admin, pattern, 1000).await.map_err(|e| e.to_string())?;
    tenant.sample_done(started, m.bytes(), m.keys);
    Ok(())
}
