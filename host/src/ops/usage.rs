//! What each tenant uses, for `metrics`: keys, memory and connections per
//! tenant of the deployment's stored template (`tenancy.tenants`).
//!
//! `key_prefix` tenants are counted by one paced `SCAN` of every master,
//! bounded by a time budget (a fixed `COUNT` would take unbounded time on a
//! big keyspace: docs/defaults.md, "Key analysis"); each key is given to the
//! tenant whose prefix (`tenancy.prefix_pattern`) it carries. When the
//! budget ends first, the counts are extrapolated from the share of the
//! keyspace scanned. Memory is sampled: `MEMORY USAGE` of a few keys per
//! batch, their mean times the tenant's key count. Connections come from
//! `CLIENT LIST` (the tenant's ACL user `tenant-<id>`). `database` tenants'
//! keys come from `INFO keyspace`. `instance` tenants are not counted here.

use super::connect::endpoint;
use super::probe::{all, int, text};
use super::stats::Stats;
use crate::client::{Endpoint, Node};
use crate::registry::Record;
use redplate_config::model::{Isolation, Tenancy};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys sampled with `MEMORY USAGE` per `SCAN` batch.
pub const SAMPLES_PER_BATCH: usize = 16;
/// `SCAN … COUNT`: about a millisecond of server time per batch.
const SCAN_COUNT: &str = "1000";

/// How much the usage scan may cost.
#[derive(Debug, Clone)]
pub struct UsageOptions {
    /// Wall time for the key scan of each master (they run side by side).
    pub scan_budget: Duration,
    /// Tenants named in the series; the others are summed as `overflow`.
    pub max_series: usize,
}

impl Default for UsageOptions {
    fn default() -> Self {
        UsageOptions { scan_budget: Duration::from_millis(500), max_series: 100 }
    }
}

/// One tenant's use (or the sum of those past the cap, as `overflow`).
#[derive(Debug, Clone, Serialize)]
pub struct TenantUsage {
    pub tenant: String,
    /// Exact when the scan completed, else extrapolated.
    pub keys: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<f64>,
    pub connections: u64,
}

/// Every tenant's use and how it was measured.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReport {
    pub declared: usize,
    /// Whether the scan covered every master's whole keyspace.
    pub complete: bool,
    pub scanned_keys: u64,
    pub took_ms: f64,
    /// Most keys first, capped at `max_series` plus `overflow`.
    pub tenants: Vec<TenantUsage>,
}

/// What one master's scan found: per tenant (in declaration order) keys,
/// sampled bytes and samples.
struct Scan {
    keys: Vec<u64>,
    sampled_bytes: Vec<u64>,
    samples: Vec<u64>,
    scanned: u64,
    complete: bool,
}

/// Measures every tenant of `tenancy` on `record`'s masters (as `stats` found them).
pub async fn tenants(record: &Record, stats: &Stats, tenancy: &Tenancy, opts: &UsageOptions) -> TenantReport {
    let started = Instant::now();
    let ids: Vec<String> = tenancy.tenants.iter().map(|t| t.id.clone()).collect();
    let index: Arc<HashMap<String, usize>> = Arc::new(ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect());
    let by_prefix = tenancy.isolation == Isolation::KeyPrefix;
    let (before, after) = match tenancy.prefix_pattern.split_once("{tenantId}") {
        Some((b, a)) => (b.to_owned(), a.to_owned()),
        None => (tenancy.prefix_pattern.clone(), String::new()),
    };
    let masters: Vec<(Endpoint, u64)> = stats
        .nodes
        .iter()
        .filter_map(|n| {
            let l = n.live.as_ref().filter(|l| l.role == "master")?;
            let keys = l.databases.get("db0").map_or(0, |d| d.keys);
            Some((endpoint(record, record.node(&n.name)?), keys))
        })
        .collect();
    let scans = masters
        .into_iter()
        .filter(|_| by_prefix)
        .map(|(ep, keys)| {
            let (index, before, after, budget) = (index.clone(), before.clone(), after.clone(), opts.scan_budget);
            async move { scan(ep, keys, &index, &before, &after, budget).await }
        })
        .collect();
    let users: Vec<_> = stats
        .nodes
        .iter()
        .filter(|n| n.up)
        .filter_map(|n| record.node(&n.name).map(|r| endpoint(record, r)))
        .map(|ep| {
            let index = index.clone();
            async move { connections(ep, &index).await }
        })
        .collect();
    let (scans, users) = tokio::join!(all(scans), all(users));

    let n = ids.len();
    let mut keys = vec![0.0; n];
    let (mut bytes, mut samples, mut conns) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let (mut scanned, mut complete) = (0, true);
    for s in &scans {
        for i in 0..n {
            keys[i] += s.keys[i] as f64;
            bytes[i] += s.sampled_bytes[i];
            samples[i] += s.samples[i];
        }
        scanned += s.scanned;
        complete &= s.complete;
    }
    for per_node in users.iter().flatten() {
        for i in 0..n {
            conns[i] += per_node[i];
        }
    }
    let mut rows: Vec<TenantUsage> = tenancy
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (k, memory) = match (t.database, by_prefix) {
                (_, true) => (keys[i], (samples[i] > 0).then(|| bytes[i] as f64 / samples[i] as f64 * keys[i])),
                (Some(db), false) => (database_keys(stats, db), None),
                (None, false) => (0.0, None),
            };
            TenantUsage {
                tenant: t.id.clone(),
                keys: k,
                memory_bytes: memory.or(by_prefix.then_some(0.0)),
                connections: conns[i],
            }
        })
        .collect();
    rows.sort_by(|a, b| b.keys.total_cmp(&a.keys).then_with(|| a.tenant.cmp(&b.tenant)));
    let tenants = cap(rows, opts.max_series);
    TenantReport {
        declared: n,
        complete: complete || !by_prefix,
        scanned_keys: scanned,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        tenants,
    }
}

/// The first `max` rows, and the rest summed as `overflow`.
fn cap(mut rows: Vec<TenantUsage>, max: usize) -> Vec<TenantUsage> {
    if rows.len() <= max {
        return rows;
    }
    let rest = rows.split_off(max);
    let memory = rest.iter().map(|r| r.memory_bytes).sum::<Option<f64>>();
    rows.push(TenantUsage {
        tenant: "overflow".into(),
        keys: rest.iter().map(|r| r.keys).sum(),
        memory_bytes: memory,
        connections: rest.iter().map(|r| r.connections).sum(),
    });
    rows
}

fn database_keys(stats: &Stats, db: u16) -> f64 {
    let name = format!("db{db}");
    stats
        .nodes
        .iter()
        .filter_map(|n| n.live.as_ref().filter(|l| l.role == "master"))
        .filter_map(|l| l.databases.get(&name))
        .map(|d| d.keys as f64)
        .sum()
}

/// The tenant a key belongs to: the id between the pattern's two halves.
fn tenant_of<'k>(key: &'k str, before: &str, after: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(before)?;
    if after.is_empty() {
        return None;
    }
    rest.find(after).map(|end| &rest[..end])
}

/// One master's paced scan: batches of `SCAN COUNT 1000`, each followed by
/// a pause as long as it took (so the scan takes at most about half of the
/// server's time), until the keyspace is done or `budget` is spent.
async fn scan(
    ep: Endpoint,
    total: u64,
    index: &HashMap<String, usize>,
    before: &str,
    after: &str,
    budget: Duration,
) -> Scan {
    let n = index.len();
    let mut s = Scan { keys: vec![0; n], sampled_bytes: vec![0; n], samples: vec![0; n], scanned: 0, complete: false };
    let Ok(node) = Node::connect(&ep).await else { return s };
    let started = Instant::now();
    let mut cursor = "0".to_owned();
    loop {
        let batch = Instant::now();
        let Ok(reply) = node.call(&["SCAN", cursor.as_str(), "COUNT", SCAN_COUNT]).await else { break };
        let redis::Value::Array(parts) = reply else { break };
        let (Some(next), Some(redis::Value::Array(keys))) = (parts.first().and_then(text), parts.get(1)) else { break };
        let mut sample: Vec<(usize, Vec<u8>)> = Vec::new();
        let every = (keys.len() / SAMPLES_PER_BATCH).max(1);
        for (k, key) in keys.iter().enumerate() {
            s.scanned += 1;
            let Some(name) = text(key) else { continue };
            let Some(&t) = tenant_of(&name, before, after).and_then(|id| index.get(id)) else { continue };
            s.keys[t] += 1;
            if k % every == 0 && sample.len() < SAMPLES_PER_BATCH {
                sample.push((t, name.into_bytes()));
            }
        }
        if !sample.is_empty() {
            let commands: Vec<Vec<Vec<u8>>> =
                sample.iter().map(|(_, k)| vec![b"MEMORY".to_vec(), b"USAGE".to_vec(), k.clone()]).collect();
            if let Ok(sizes) = node.pipeline(&commands, super::probe::PROBE_TIMEOUT).await {
                for ((t, _), size) in sample.iter().zip(sizes) {
                    if let Some(bytes) = int(&size) {
                        s.sampled_bytes[*t] += bytes;
                        s.samples[*t] += 1;
                    }
                }
            }
        }
        cursor = next;
        if cursor == "0" {
            s.complete = true;
            break;
        }
        if started.elapsed() >= budget {
            break;
        }
        tokio::time::sleep(batch.elapsed()).await;
    }
    if !s.complete && s.scanned > 0 {
        // Extrapolate: each key seen stands for total / scanned keys.
        let scale = total as f64 / s.scanned as f64;
        for k in &mut s.keys {
            *k = (*k as f64 * scale).round() as u64;
        }
    }
    s
}

/// Connections per tenant on one node, from `CLIENT LIST`'s `user=` field.
async fn connections(ep: Endpoint, index: &HashMap<String, usize>) -> Option<Vec<u64>> {
    let node = Node::connect(&ep).await.ok()?;
    let list = text(&node.call_within(&["CLIENT", "LIST"], super::probe::PROBE_TIMEOUT).await.ok()?)?;
    let mut out = vec![0; index.len()];
    for line in list.lines() {
        let user = line.split(' ').find_map(|f| f.strip_prefix("user="));
        if let Some(&i) = user.and_then(|u| u.strip_prefix("tenant-")).and_then(|id| index.get(id)) {
            out[i] += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_to_the_tenant_whose_prefix_they_carry() {
        assert_eq!(tenant_of("tenant:acme:user:1", "tenant:", ":"), Some("acme"));
        assert_eq!(tenant_of("tenant:acme", "tenant:", ":"), None);
        assert_eq!(tenant_of("other:acme:x", "tenant:", ":"), None);
        assert_eq!(tenant_of("t-acme/x", "t-", "/"), Some("acme"));
    }

    #[test]
    fn past_the_cap_tenants_are_summed_as_overflow() {
        let row = |t: &str, keys: f64| TenantUsage { tenant: t.into(), keys, memory_bytes: Some(10.0), connections: 1 };
        let rows = cap(vec![row("a", 9.0), row("b", 5.0), row("c", 2.0), row("d", 1.0)], 2);
        assert_eq!(rows.iter().map(|r| r.tenant.as_str()).collect::<Vec<_>>(), ["a", "b", "overflow"]);
        assert_eq!((rows[2].keys, rows[2].memory_bytes, rows[2].connections), (3.0, Some(20.0), 2));
        assert_eq!(cap(vec![row("a", 1.0)], 2).len(), 1);
    }
}
