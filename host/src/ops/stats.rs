//! `redplate stats`: what every node of a running deployment is doing —
//! ops/s, hit ratio, memory, clients, evictions, expirations, keys,
//! replication offsets and lag, persistence, the slow log's worst entries
//! and `LATENCY LATEST` — per node and in total. This module holds the
//! snapshot and its totals; [`super::probe`] reads the nodes (all at once,
//! so a snapshot costs about one round trip). `metrics` and `health` read
//! the same snapshot.

use super::connect::endpoint;
use super::probe::{all, measure_lag, probe_data, probe_sentinel};
use crate::client::Info;
use crate::registry::Record;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to read besides `INFO`.
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// The worst slow log entries kept per node (0: skip the slow log).
    pub slowlog_entries: usize,
    /// Measure each replica's lag in milliseconds, waiting at most this long
    /// for a replica to reach its master's offset.
    pub lag_bound: Option<Duration>,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions { slowlog_entries: 5, lag_bound: Some(Duration::from_millis(100)) }
    }
}

/// One snapshot of a deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub deployment: String,
    pub mode: String,
    /// When the snapshot was taken (Unix time, milliseconds).
    pub unix_ms: u64,
    /// How long taking it took.
    pub took_ms: f64,
    /// Data nodes (masters and replicas), in topology order.
    pub nodes: Vec<NodeStats>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sentinels: Vec<SentinelStats>,
    pub total: Totals,
}

/// One data node; `live` is absent when it does not answer.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStats {
    pub name: String,
    pub port: u16,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub live: Option<Live>,
}

/// What an answering data node reports.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// `master` or `replica`, as the node reports it now.
    pub role: String,
    pub version: String,
    pub uptime_seconds: u64,
    /// `instantaneous_ops_per_sec`, or the rate since the previous snapshot (`--watch`).
    pub ops_per_sec: f64,
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// hits / (hits + misses); absent before the first lookup.
    pub hit_ratio: Option<f64>,
    pub memory: Memory,
    pub clients: Clients,
    pub evicted_keys: u64,
    pub expired_keys: u64,
    pub keys: u64,
    /// `db0` → keys and keys with a TTL.
    pub databases: BTreeMap<String, DbKeys>,
    pub replication: Replication,
    pub persistence: Persistence,
    pub slowlog: Slowlog,
    /// `LATENCY LATEST` (empty unless `latency-monitor-threshold` is set).
    pub latency: Vec<LatencyEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<NodeCluster>,
    /// Every `INFO` field, for `metrics`.
    #[serde(skip)]
    pub info: Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub used_bytes: u64,
    pub peak_bytes: u64,
    pub rss_bytes: u64,
    pub fragmentation_ratio: f64,
    /// `maxmemory`; 0 means no limit.
    pub max_bytes: u64,
    pub policy: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Clients {
    pub connected: u64,
    pub blocked: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbKeys {
    pub keys: u64,
    pub expires: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    /// `master_repl_offset` on a master, `slave_repl_offset` on a replica.
    pub offset: u64,
    pub connected_replicas: u64,
    /// A replica's master (`host:port`) and whether its link is up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_link_up: Option<bool>,
    /// Bytes behind the master's offset in this snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// Milliseconds the replica took to reach the offset its master had in
    /// this snapshot; at the bound when it did not get there in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// A master's replicas as it sees them (`slaveN:` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaLink {
    pub addr: String,
    pub state: String,
    pub offset: u64,
    /// Seconds since the replica's last acknowledgement.
    pub lag_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Persistence {
    /// The last successful RDB save (Unix time).
    pub rdb_last_save_unix: u64,
    pub rdb_last_bgsave_ok: bool,
    pub rdb_changes_since_last_save: u64,
    pub rdb_bgsave_in_progress: bool,
    pub aof_enabled: bool,
    pub aof_last_write_ok: bool,
    pub aof_last_bgrewrite_ok: bool,
    pub aof_rewrite_in_progress: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Slowlog {
    pub length: u64,
    /// The newest entry's id and duration.
    pub last_id: Option<u64>,
    pub last_duration_us: Option<u64>,
    /// The slowest entries, slowest first.
    pub worst: Vec<SlowEntry>,
}

/// One slow log entry; its text escaped and cut.
#[derive(Debug, Clone, Serialize)]
pub struct SlowEntry {
    pub id: u64,
    pub unix: u64,
    pub duration_us: u64,
    pub command: String,
    pub client: String,
    pub client_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyEvent {
    pub event: String,
    pub last_unix: u64,
    pub latest_ms: u64,
    pub max_ms: u64,
}

/// A cluster node's `CLUSTER INFO` and its own open slots.
#[derive(Debug, Clone, Serialize)]
pub struct NodeCluster {
    pub state: String,
    pub slots_assigned: u64,
    pub slots_ok: u64,
    pub slots_pfail: u64,
    pub slots_fail: u64,
    pub known_nodes: u64,
    pub size: u64,
    /// `[slot->-id]` (migrating) and `[slot-<-id]` (importing) on this node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_slots: Vec<String>,
    /// `CLUSTER NODES` as this node sees it.
    #[serde(skip)]
    pub nodes: String,
}

/// One sentinel; its view of the master.
#[derive(Debug, Clone, Serialize)]
pub struct SentinelStats {
    pub name: String,
    pub port: u16,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub master_name: String,
    /// `host:port` of the master it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// `ok`, `sdown` or `odown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_status: Option<String>,
    /// `SENTINEL CKQUORUM`: whether quorum and failover authorisation can be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum_message: Option<String>,
    pub known_replicas: u64,
    pub known_sentinels: u64,
    pub tilt: bool,
}

/// The deployment in total: rates, memory and clients over every node;
/// keys, evictions, expirations and `maxmemory` over the masters (replicas
/// hold copies of the same keys).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub nodes: usize,
    pub nodes_up: usize,
    pub ops_per_sec: f64,
    pub commands_processed: u64,
    pub hit_ratio: Option<f64>,
    pub used_memory_bytes: u64,
    pub max_memory_bytes: u64,
    pub connected_clients: u64,
    pub evicted_keys: u64,
    pub expired_keys: u64,
    pub keys: u64,
}

/// Takes a snapshot of every node of `record`. Nodes that do not answer are
/// reported as down, with why; this never fails as a whole.
pub async fn stats(record: &Record, opts: &StatsOptions) -> Stats {
    let started = Instant::now();
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let cluster = record.mode == redplate_config::model::Mode::Cluster;
    let master_name = record.master_name.clone().unwrap_or_else(|| "mymaster".into());
    let data: Vec<_> = record
        .data_nodes()
        .map(|n| {
            let (ep, keep) = (endpoint(record, n), opts.slowlog_entries);
            async move { probe_data(ep, cluster, keep).await }
        })
        .collect();
    let sentinels: Vec<_> = record
        .sentinels()
        .map(|n| {
            let (ep, name) = (endpoint(record, n), master_name.clone());
            async move { probe_sentinel(ep, name).await }
        })
        .collect();
    let (data, sentinel_results) = tokio::join!(all(data), all(sentinels));

    let mut nodes = Vec::new();
    let mut conns = Vec::new();
    for (n, result) in record.data_nodes().zip(data) {
        let (live, error, conn) = match result {
            Ok((conn, live, at)) => (Some(live), None, Some((conn, at))),
            Err(e) => (None, Some(e), None),
        };
        nodes.push(NodeStats { name: n.name.clone(), port: n.port, up: live.is_some(), error, live });
        conns.push(conn);
    }
    if let Some(bound) = opts.lag_bound {
        measure_lag(&mut nodes, &conns, bound).await;
    }
    let sentinels = record
        .sentinels()
        .zip(sentinel_results)
        .map(|(n, r)| match r {
            Ok(mut s) => {
                s.name = n.name.clone();
                s.port = n.port;
                s
            }
            Err(e) => SentinelStats {
                name: n.name.clone(),
                port: n.port,
                up: false,
                error: Some(e),
                master_name: master_name.clone(),
                master: None,
                master_status: None,
                quorum_ok: None,
                quorum_message: None,
                known_replicas: 0,
                known_sentinels: 0,
                tilt: false,
            },
        })
        .collect();
    let total = totals(&nodes);
    Stats {
        deployment: record.name.clone(),
        mode: format!("{:?}", record.mode).to_lowercase(),
        unix_ms,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        nodes,
        sentinels,
        total,
    }
}

impl Stats {
    /// Replaces each node's `instantaneous_ops_per_sec` (Redis's own
    /// estimate over its last samples) by the rate of
    /// `total_commands_processed` since `previous`, as `--watch` shows it.
    pub fn rates_since(&mut self, previous: &Stats) {
        let seconds = self.unix_ms.saturating_sub(previous.unix_ms) as f64 / 1000.0;
        if seconds <= 0.0 {
            return;
        }
        for node in &mut self.nodes {
            let before = previous.nodes.iter().find(|p| p.name == node.name).and_then(|p| p.live.as_ref());
            if let (Some(now), Some(before)) = (node.live.as_mut(), before) {
                // A restarted node's counter starts again from 0: keep Redis's figure then.
                if now.commands_processed >= before.commands_processed {
                    now.ops_per_sec = (now.commands_processed - before.commands_processed) as f64 / seconds;
                }
            }
        }
        self.total = totals(&self.nodes);
    }
}

fn totals(nodes: &[NodeStats]) -> Totals {
    let mut t = Totals { nodes: nodes.len(), ..Totals::default() };
    let (mut hits, mut misses) = (0, 0);
    for l in nodes.iter().filter_map(|n| n.live.as_ref()) {
        t.nodes_up += 1;
        t.ops_per_sec += l.ops_per_sec;
        t.commands_processed += l.commands_processed;
        t.used_memory_bytes += l.memory.used_bytes;
        t.connected_clients += l.clients.connected;
        hits += l.keyspace_hits;
        misses += l.keyspace_misses;
        if l.role == "master" {
            t.max_memory_bytes += l.memory.max_bytes;
            t.evicted_keys += l.evicted_keys;
            t.expired_keys += l.expired_keys;
            t.keys += l.keys;
        }
    }
    t.hit_ratio = ratio(hits, misses);
    t
}

pub(super) fn ratio(hits: u64, misses: u64) -> Option<f64> {
    (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
}

#[cfg(test)]
mod tests {
    use super::super::probe::live;
    use super::*;
    use crate::client::parse_info;

    #[test]
    fn totals_count_keys_on_masters_and_rates_on_every_node() {
        let info = |role: &str, keys: u64, ops: u64| {
            parse_info(&format!(
                "role:{role}\r\ninstantaneous_ops_per_sec:{ops}\r\nkeyspace_hits:3\r\nkeyspace_misses:1\r\ndb0:keys={keys},expires=0\r\n"
            ))
        };
        let node = |name: &str, info: Info| NodeStats {
            name: name.into(),
            port: 1,
            up: true,
            error: None,
            live: Some(live(info, Slowlog::default(), Vec::new(), None)),
        };
        let nodes = [node("m", info("master", 10, 5)), node("r", info("slave", 10, 7))];
        let t = totals(&nodes);
        assert_eq!((t.keys, t.ops_per_sec, t.nodes_up), (10, 12.0, 2));
        assert_eq!(t.hit_ratio, Some(0.75));
        assert_eq!(nodes[1].live.as_ref().map(|l| l.role.as_str()), Some("replica"));
    }
}
