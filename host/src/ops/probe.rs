//! Reading the nodes of a deployment for [`super::stats`]: each data node's
//! `INFO`, slow log, `LATENCY LATEST` and (cluster) `CLUSTER INFO`/`NODES`,
//! each sentinel's view and `CKQUORUM` — every node at once, its commands
//! pipelined on one connection — and each replica's lag in milliseconds.
//! Text from Redis (slow log arguments, client names, error replies) is
//! escaped here, where it enters. No reply is trusted to have a shape: an
//! odd one reads as absent, never as a panic.

use super::stats::{
    Clients, DbKeys, LatencyEvent, Live, Memory, NodeCluster, NodeStats, Persistence, ReplicaLink, Replication,
    SentinelStats, SlowEntry, Slowlog, ratio,
};
use crate::client::{Endpoint, Info, Node, parse_info};
use redis::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long one probe command may take: a node slower than this is as good
/// as down for an operator looking at it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many slow log entries are read to find the worst (Redis keeps 128 by default).
const SLOWLOG_READ: &str = "128";

/// Runs futures side by side on the current runtime, results in order.
pub(crate) async fn all<T, F>(futures: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let count = futures.len();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, v)) => out[i] = Some(v),
            // A probe that panicked is a bug: show it as one, never lose it.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out.into_iter().flatten().collect()
}

/// Reads one data node: `INFO`, the slow log, `LATENCY LATEST` and, in a
/// cluster, `CLUSTER INFO` and `CLUSTER NODES`, pipelined on one connection.
pub(super) async fn probe_data(ep: Endpoint, cluster: bool, keep: usize) -> Result<(Node, Live, Instant), String> {
    let node = Node::connect(&ep).await.map_err(|e| e.to_string())?;
    let call = |args: &'static [&'static str]| {
        let node = node.clone();
        async move { node.call_within(args, PROBE_TIMEOUT).await }
    };
    let optional = |wanted: bool, args: &'static [&'static str]| {
        let c = call(args);
        async move { if wanted { c.await.ok() } else { None } }
    };
    let (info, slowlog, slowlog_len, latency, cluster_info, cluster_nodes) = tokio::join!(
        call(&["INFO"]),
        optional(keep > 0, &["SLOWLOG", "GET", SLOWLOG_READ]),
        call(&["SLOWLOG", "LEN"]),
        call(&["LATENCY", "LATEST"]),
        optional(cluster, &["CLUSTER", "INFO"]),
        optional(cluster, &["CLUSTER", "NODES"]),
    );
    let at = Instant::now();
    let info = parse_info(&text(&info.map_err(|e| e.to_string())?).unwrap_or_default());
    let mut slow = slowlog.map(|v| parse_slowlog(&v, keep)).unwrap_or_default();
    slow.length = slowlog_len.ok().and_then(|v| int(&v)).unwrap_or(0);
    let latency = latency.map(|v| parse_latency(&v)).unwrap_or_default();
    let cluster = cluster_info.and_then(|v| text(&v)).map(|t| node_cluster(&t, cluster_nodes.and_then(|v| text(&v))));
    Ok((node, live(info, slow, latency, cluster), at))
}

pub(super) fn live(info: Info, slowlog: Slowlog, latency: Vec<LatencyEvent>, cluster: Option<NodeCluster>) -> Live {
    let u = |f: &str| info.uint(f).unwrap_or(0);
    let ok = |f: &str| info.get(f) == Some("ok");
    let role = match info.get("role") {
        Some("slave") => "replica".to_owned(),
        Some(r) => crate::text::clean(r, 32),
        None => "unknown".to_owned(),
    };
    let is_replica = role == "replica";
    let master =
        info.get("master_host").zip(info.get("master_port")).map(|(h, p)| crate::text::clean(&format!("{h}:{p}"), 128));
    let replicas = info
        .0
        .iter()
        .filter(|(k, _)| k.strip_prefix("slave").is_some_and(|n| n.parse::<u32>().is_ok()))
        .map(|(_, v)| {
            let field = |name: &str| v.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
            let num = |name: &str| field(name).and_then(|x| x.parse().ok()).unwrap_or(0);
            ReplicaLink {
                addr: crate::text::clean(
                    &format!("{}:{}", field("ip").unwrap_or(""), field("port").unwrap_or("")),
                    128,
                ),
                state: crate::text::clean(field("state").unwrap_or(""), 32),
                offset: num("offset"),
                lag_seconds: num("lag"),
            }
        })
        .collect();
    let databases = info
        .keyspace()
        .into_iter()
        .map(|(db, (keys, expires))| (format!("db{db}"), DbKeys { keys, expires }))
        .collect();
    Live {
        version: crate::text::clean(info.get("redis_version").unwrap_or(""), 32),
        uptime_seconds: u("uptime_in_seconds"),
        ops_per_sec: info.num("instantaneous_ops_per_sec"),
        commands_processed: u("total_commands_processed"),
        keyspace_hits: u("keyspace_hits"),
        keyspace_misses: u("keyspace_misses"),
        hit_ratio: ratio(u("keyspace_hits"), u("keyspace_misses")),
        memory: Memory {
            used_bytes: u("used_memory"),
            peak_bytes: u("used_memory_peak"),
            rss_bytes: u("used_memory_rss"),
            fragmentation_ratio: info.num("mem_fragmentation_ratio"),
            max_bytes: u("maxmemory"),
            policy: crate::text::clean(info.get("maxmemory_policy").unwrap_or(""), 32),
        },
        clients: Clients { connected: u("connected_clients"), blocked: u("blocked_clients"), max: u("maxclients") },
        evicted_keys: u("evicted_keys"),
        expired_keys: u("expired_keys"),
        keys: info.total_keys(),
        databases,
        replication: Replication {
            offset: if is_replica { u("slave_repl_offset") } else { u("master_repl_offset") },
            connected_replicas: u("connected_slaves"),
            master_link_up: is_replica.then(|| info.get("master_link_status") == Some("up")),
            master: if is_replica { master } else { None },
            lag_bytes: None,
            lag_ms: None,
            replicas,
        },
        persistence: Persistence {
            rdb_last_save_unix: u("rdb_last_save_time"),
            rdb_last_bgsave_ok: ok("rdb_last_bgsave_status"),
            rdb_changes_since_last_save: u("rdb_changes_since_last_save"),
            rdb_bgsave_in_progress: u("rdb_bgsave_in_progress") == 1,
            aof_enabled: u("aof_enabled") == 1,
            aof_last_write_ok: ok("aof_last_write_status"),
            aof_last_bgrewrite_ok: ok("aof_last_bgrewrite_status"),
            aof_rewrite_in_progress: u("aof_rewrite_in_progress") == 1,
        },
        slowlog,
        latency,
        cluster,
        role,
        info,
    }
}

fn node_cluster(info: &str, nodes: Option<String>) -> NodeCluster {
    let i = parse_info(info);
    let u = |f: &str| i.uint(f).unwrap_or(0);
    let nodes = nodes.unwrap_or_default();
    // Only a node's own line (`myself`) lists the slots it migrates or imports.
    let open_slots = nodes
        .lines()
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|f| f.split(',').any(|f| f == "myself")))
        .flat_map(|l| l.split_whitespace().skip(8).filter(|s| s.starts_with('[')).map(|s| crate::text::clean(s, 128)))
        .collect();
    NodeCluster {
        state: crate::text::clean(i.get("cluster_state").unwrap_or("unknown"), 32),
        slots_assigned: u("cluster_slots_assigned"),
        slots_ok: u("cluster_slots_ok"),
        slots_pfail: u("cluster_slots_pfail"),
        slots_fail: u("cluster_slots_fail"),
        known_nodes: u("cluster_known_nodes"),
        size: u("cluster_size"),
        open_slots,
        nodes,
    }
}

/// For each replica behind its master in the snapshot, polls its offset
/// until it reaches the master's or `bound` has passed since the master
/// answered: the lag in milliseconds, measured rather than guessed from
/// Redis's one-second `lag` field.
pub(super) async fn measure_lag(nodes: &mut [NodeStats], conns: &[Option<(Node, Instant)>], bound: Duration) {
    let mut polls = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let Some(l) = n.live.as_ref().filter(|l| l.role == "replica") else { continue };
        let named =
            l.replication.master.as_deref().and_then(|m| super::health::named(nodes, m)).map(|m| m.name.clone());
        let Some(m) = nodes
            .iter()
            .position(|m| Some(&m.name) == named.as_ref() && m.live.as_ref().is_some_and(|l| l.role == "master"))
        else {
            continue;
        };
        let (Some((conn, _)), Some((_, master_at))) = (&conns[i], &conns[m]) else { continue };
        let target = nodes[m].live.as_ref().map_or(0, |l| l.replication.offset);
        let (conn, master_at, offset) = (conn.clone(), *master_at, l.replication.offset);
        polls.push((i, target, async move { catch_up(conn, offset, target, master_at, bound).await }));
    }
    let (meta, futures): (Vec<_>, Vec<_>) = polls.into_iter().map(|(i, t, f)| ((i, t), f)).unzip();
    for ((i, target), lag_ms) in meta.into_iter().zip(all(futures).await) {
        if let Some(l) = nodes[i].live.as_mut() {
            l.replication.lag_bytes = Some(target.saturating_sub(l.replication.offset));
            l.replication.lag_ms = lag_ms;
        }
    }
}

async fn catch_up(conn: Node, mut offset: u64, target: u64, since: Instant, bound: Duration) -> Option<u64> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if offset >= target {
        return Some(0);
    }
    loop {
        if since.elapsed() >= bound {
            return Some(ms(since.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let reply = conn.call_within(&["INFO", "replication"], PROBE_TIMEOUT).await.ok()?;
        offset = parse_info(&text(&reply)?).uint("slave_repl_offset")?;
        if offset >= target {
            return Some(ms(since.elapsed()));
        }
    }
}

/// Reads one sentinel: its `INFO`, the master it names and `CKQUORUM`.
pub(super) async fn probe_sentinel(ep: Endpoint, master_name: String) -> Result<SentinelStats, String> {
    let node = Node::connect(&ep).await.map_err(|e| e.to_string())?;
    let (addr_args, quorum_args) =
        (["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name.as_str()], ["SENTINEL", "CKQUORUM", master_name.as_str()]);
    let (info, addr, quorum) = tokio::join!(
        node.call_within(&["INFO", "sentinel"], PROBE_TIMEOUT),
        node.call_within(&addr_args, PROBE_TIMEOUT),
        node.call_within(&quorum_args, PROBE_TIMEOUT),
    );
    let info = parse_info(&text(&info.map_err(|e| e.to_string())?).unwrap_or_default());
    let master = addr.ok().and_then(|v| match v {
        Value::Array(parts) if parts.len() == 2 => Some(format!("{}:{}", text(&parts[0])?, text(&parts[1])?)),
        _ => None,
    });
    // `master0:name=orders,status=ok,address=127.0.0.1:7000,slaves=2,sentinels=3`
    let line = info.0.values().find(|v| v.split(',').any(|kv| kv == format!("name={master_name}")));
    let field = |name: &str| line.and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')));
    let (quorum_ok, message) = match quorum {
        Ok(v) => (true, text(&v).unwrap_or_default()),
        Err(e) => (false, e.reply().map_or_else(|| e.to_string(), str::to_owned)),
    };
    Ok(SentinelStats {
        name: ep.name.clone(),
        port: ep.port,
        up: true,
        error: None,
        master_name: crate::text::clean(&master_name, 128),
        master: master.map(|m| crate::text::clean(&m, 128)),
        master_status: field("status").map(|s| crate::text::clean(s, 32)),
        quorum_ok: Some(quorum_ok),
        quorum_message: Some(crate::text::clean(&message, 256)),
        known_replicas: field("slaves").and_then(|s| s.parse().ok()).unwrap_or(0),
        known_sentinels: field("sentinels").and_then(|s| s.parse().ok()).unwrap_or(0),
        tilt: info.get("sentinel_tilt") == Some("1"),
    })
}

/// `SLOWLOG GET` → the worst `keep` entries, slowest first, and the newest.
fn parse_slowlog(v: &Value, keep: usize) -> Slowlog {
    let Value::Array(entries) = v else { return Slowlog::default() };
    let mut all: Vec<SlowEntry> = entries
        .iter()
        .filter_map(|e| {
            let Value::Array(f) = e else { return None };
            let args: Vec<String> = match f.get(3) {
                Some(Value::Array(a)) => {
                    a.iter().take(8).map(|a| crate::text::clean(&text(a).unwrap_or_default(), 64)).collect()
                }
                _ => Vec::new(),
            };
            Some(SlowEntry {
                id: int(f.first()?)?,
                unix: int(f.get(1)?)?,
                duration_us: int(f.get(2)?)?,
                command: args.join(" "),
                client: crate::text::clean(&f.get(4).and_then(text).unwrap_or_default(), 128),
                client_name: crate::text::clean(&f.get(5).and_then(text).unwrap_or_default(), 128),
            })
        })
        .collect();
    let newest = all.iter().max_by_key(|e| e.id).map(|e| (e.id, e.duration_us));
    all.sort_by(|a, b| b.duration_us.cmp(&a.duration_us).then(b.id.cmp(&a.id)));
    all.truncate(keep);
    Slowlog { length: 0, last_id: newest.map(|n| n.0), last_duration_us: newest.map(|n| n.1), worst: all }
}

/// `LATENCY LATEST` → one event per row.
fn parse_latency(v: &Value) -> Vec<LatencyEvent> {
    let Value::Array(rows) = v else { return Vec::new() };
    rows.iter()
        .filter_map(|r| {
            let Value::Array(f) = r else { return None };
            Some(LatencyEvent {
                event: crate::text::clean(&text(f.first()?)?, 64),
                last_unix: int(f.get(1)?)?,
                latest_ms: int(f.get(2)?)?,
                max_ms: int(f.get(3)?)?,
            })
        })
        .collect()
}

/// A reply as text (bulk, simple or verbatim string).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// A reply as a non-negative integer.
pub(crate) fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => text(v)?.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn the_slowest_entries_come_first_and_their_text_is_escaped() {
        let entry = |id: i64, us: i64, arg: &str| {
            Value::Array(vec![
                Value::Int(id),
                Value::Int(1_700_000_000),
                Value::Int(us),
                Value::Array(vec![bulk("SET"), bulk(arg)]),
                bulk("127.0.0.1:5000"),
                bulk("app\x1b[2J"),
            ])
        };
        let log = parse_slowlog(&Value::Array(vec![entry(3, 10, "a"), entry(2, 900, "b\rc"), entry(1, 50, "d")]), 2);
        assert_eq!(log.worst.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(log.last_id, Some(3));
        assert_eq!(log.worst[0].command, "SET b\\u{d}c");
        assert!(!log.worst[0].client_name.contains('\x1b'));
        assert!(parse_slowlog(&Value::Int(3), 5).worst.is_empty(), "an odd reply is no panic");
    }

    #[test]
    fn open_slots_are_read_from_the_nodes_own_line() {
        let nodes = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-5460 [93->-b]\n\
                     b 127.0.0.1:3@4 master - 0 0 2 connected 5461-16383 [94-<-a]\n";
        let c = node_cluster("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n", Some(nodes.into()));
        assert_eq!(c.open_slots, ["[93->-b]"]);
        assert_eq!((c.state.as_str(), c.slots_assigned), ("ok", 16384));
    }
}
