//! Redis Cluster for the local backend: forming it, joining replicas to
//! their shard, forgetting removed nodes, and waiting until it is healthy.
//!
//! Formed with the cluster commands themselves, as `redis-cli --cluster
//! create` does underneath: each master takes an even share of the 16384
//! slots (`CLUSTER ADDSLOTSRANGE`), they meet (`CLUSTER MEET`) and agree on
//! a config epoch each (`CLUSTER SET-CONFIG-EPOCH`). Replicas are joined
//! (`CLUSTER MEET` + `CLUSTER REPLICATE`) to the master of the shard the
//! topology gives them — not shuffled between masters as `redis-cli`'s
//! anti-affinity pass does when every node is on one host — so scaling
//! knows which shard each replica serves.

use super::conn::{Conn, Redis, T, refused_with};
use super::files;
use super::ready::{self, Deadline};
use crate::backend::BackendError;
use crate::client::{Info, parse_info};
use crate::registry::{NodeRecord, Record};
use redplate_config::Role;
use std::time::{Duration, Instant};

/// A node forgotten with `CLUSTER FORGET` is kept out of gossip for this
/// long; every node must forget it within that time, or those that still
/// know it teach it back to the others.
const FORGET_BAN: Duration = Duration::from_secs(60);

/// The number of hash slots of a Redis Cluster.
const SLOTS: u32 = 16384;

/// `CLUSTER INFO` of a node.
pub fn cluster_info(conn: &Conn) -> Result<Info, BackendError> {
    Ok(parse_info(&conn.query::<String>(&["CLUSTER", "INFO"], Duration::from_secs(2))?))
}

/// `CLUSTER INFO` of a node, to run beside others.
async fn cluster_info_async(conn: &Conn<'_>) -> Result<Info, BackendError> {
    Ok(parse_info(&conn.query_async::<String>(&["CLUSTER", "INFO"], Duration::from_secs(2)).await?))
}

/// The deployment's shards: its masters as deployed.
pub fn shards(record: &Record) -> usize {
    record.data_nodes().filter(|n| n.role == Role::Master).count()
}

/// Forms the cluster unless its slots are already assigned (a restart):
/// the masters share the slots out and meet, then every replica joins its
/// shard; then waits until the cluster is healthy.
pub fn form(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let masters: Vec<&NodeRecord> = record.data_nodes().filter(|n| n.role == Role::Master).collect();
    let formed = record
        .data_nodes()
        .any(|n| cluster_info(&redis.to(record, n)).is_ok_and(|i| i.get("cluster_slots_assigned") != Some("0")));
    if !formed {
        assign_slots(redis, record, &masters, deadline)?;
    }
    join_replicas(redis, record, deadline)?;
    wait_healthy(redis, record, deadline)
}

/// Slot ranges for `masters` masters, split as `redis-cli --cluster
/// create` splits them (a share of 16384 / masters each, rounded; the last
/// one ends at slot 16383), so a deployment looks the same either way.
fn slot_ranges(masters: u32) -> Vec<(u32, u32)> {
    let masters = masters.max(1);
    let share = f64::from(SLOTS) / f64::from(masters);
    let mut cursor = 0.0;
    let mut first = 0;
    (0..masters)
        .map(|i| {
            let rounded = (cursor + share - 1.0).round() as u32;
            let last = if i + 1 == masters { SLOTS - 1 } else { rounded.clamp(first, SLOTS - 1) };
            let range = (first, last);
            first = last + 1;
            cursor += share;
            range
        })
        .collect()
}

/// Gives each master its slots and a distinct config epoch, then has them
/// all meet the first one and waits until every master knows every other.
fn assign_slots(
    redis: &Redis,
    record: &Record,
    masters: &[&NodeRecord],
    deadline: &Deadline,
) -> Result<(), BackendError> {
    let ranges = slot_ranges(u32::try_from(masters.len()).unwrap_or(u32::MAX));
    for (epoch, (master, (first, last))) in masters.iter().zip(ranges).enumerate() {
        let conn = redis.to(record, master);
        conn.run(&["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()], T)?;
        // Distinct epochs, so no two masters claim slots with the same one.
        match conn.run(&["CLUSTER", "SET-CONFIG-EPOCH", &(epoch + 1).to_string()], T) {
            Ok(_) => {}
            // A node that met another already has an epoch of its own: fine.
            Err(e) if refused_with(&e, "epoch") => {}
            Err(e) => return Err(e),
        }
    }
    let Some((first, others)) = masters.split_first() else { return Ok(()) };
    for other in others {
        meet(redis, record, other, first)?;
    }
    let total = masters.len();
    loop {
        let known: Vec<usize> = masters
            .iter()
            .map(|m| cluster_info(&redis.to(record, m)).ok().and_then(|i| i.uint("cluster_known_nodes")).unwrap_or(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .collect();
        if known.iter().all(|k| *k >= total) {
            return Ok(());
        }
        deadline.check(|| format!("the {total} masters to meet (they know {known:?} nodes)"))?;
    }
}

/// `CLUSTER MEET`: `node` meets `other` on its client and bus ports, at
/// the address the nodes reach each other by (the backend's).
fn meet(redis: &Redis, record: &Record, node: &NodeRecord, other: &NodeRecord) -> Result<(), BackendError> {
    let (host, port, bus) = crate::backend::meet_address(record, other)?;
    let (port, bus) = (port.to_string(), bus.to_string());
    redis.to(record, node).run(&["CLUSTER", "MEET", &host, &port, &bus], T)?;
    Ok(())
}

/// Where local nodes meet `node`: loopback, its port and bus port.
pub fn local_meet_address(record: &Record, node: &NodeRecord) -> (String, u16, u16) {
    ("127.0.0.1".to_owned(), node.port, bus_port(record, node))
}

/// Joins every replica that is not part of the cluster yet (new, or never
/// joined) to the current master of its shard: `CLUSTER MEET`, then `CLUSTER REPLICATE`
/// once the handshake is done. Replicas join one by one, round by round as
/// the topology numbers them, so no master is ever left without a replica
/// it had (which would invite replica migration).
pub fn join_replicas(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    for node in record.data_nodes().filter(|n| n.role == Role::Replica) {
        let conn = redis.to(record, node);
        if !unjoined(&conn)? {
            continue;
        }
        let Some(original) = node.replica_of.as_deref() else { continue };
        let (master, id) = shard_master(redis, record, original)?;
        // Its master first; then every other node, so that all of them know
        // it at once instead of through gossip, a few seconds later.
        let others = record.data_nodes().filter(|n| n.name != master.name && n.name != node.name);
        for other in std::iter::once(master).chain(others) {
            meet(redis, record, node, other)?;
        }
        loop {
            match conn.run(&["CLUSTER", "REPLICATE", &id], T) {
                Ok(_) => break,
                // Until the handshake has told it the master's id.
                Err(e) if refused_with(&e, "Unknown node") => {
                    deadline.check(|| format!("`{}` to meet its master `{}`", node.name, master.name))?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Has every new master among `names` (started empty: it knows only
/// itself) meet every other data node, then waits until each knows them all.
pub fn join_masters(redis: &Redis, record: &Record, names: &[String], deadline: &Deadline) -> Result<(), BackendError> {
    let added: Vec<&NodeRecord> =
        record.data_nodes().filter(|n| n.role == Role::Master && names.contains(&n.name)).collect();
    for node in &added {
        let conn = redis.to(record, node);
        if cluster_info(&conn)?.uint("cluster_known_nodes") != Some(1) {
            continue;
        }
        for other in record.data_nodes().filter(|o| o.name != node.name && !names.contains(&o.name)) {
            meet(redis, record, node, other)?;
        }
    }
    let wanted = record.data_nodes().filter(|n| !names.contains(&n.name) || n.role == Role::Master).count() as u64;
    for node in &added {
        let conn = redis.to(record, node);
        loop {
            let known = cluster_info(&conn)?.uint("cluster_known_nodes").unwrap_or(0);
            if known >= wanted {
                break;
            }
            deadline
                .check(|| format!("new master `{}` to meet the cluster (it knows {known} of {wanted})", node.name))?;
        }
    }
    Ok(())
}

/// Whether `node` is a master that serves at least one slot (what must not
/// be stopped or given another role).
pub fn serves_slots(redis: &Redis, record: &Record, node: &NodeRecord) -> Result<bool, BackendError> {
    let nodes: String = redis.to(record, node).query(&["CLUSTER", "NODES"], T)?;
    Ok(nodes.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).any(|f| {
        let flags: Vec<&str> = f.get(2).map(|x| x.split(',').collect()).unwrap_or_default();
        flags.contains(&"myself") && flags.contains(&"master") && f.len() > 8
    }))
}

/// The ids the data nodes of `record` know besides `ids` (the record's
/// own nodes): nodes started by a run that died before recording them.
pub fn strangers(redis: &Redis, record: &Record, ids: &[String]) -> Result<Vec<String>, BackendError> {
    let mut out: Vec<String> = Vec::new();
    for n in record.data_nodes() {
        let nodes: String = redis.to(record, n).query(&["CLUSTER", "NODES"], T)?;
        for id in nodes.lines().filter_map(|l| l.split_whitespace().next()) {
            if !ids.iter().any(|i| i == id) && !out.iter().any(|o| o == id) {
                out.push(id.to_owned());
            }
        }
    }
    Ok(out)
}

/// Whether a node is a master without slots: one that never joined the
/// cluster as a replica (a node other nodes met is still one).
fn unjoined(conn: &Conn) -> Result<bool, BackendError> {
    Ok(master_without_slots(&conn.query::<String>(&["CLUSTER", "NODES"], T)?))
}

/// Whether the `myself` line of `CLUSTER NODES` is a master serving no slot.
fn master_without_slots(nodes: &str) -> bool {
    nodes.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).any(|f| {
        let flags: Vec<&str> = f.get(2).map(|x| x.split(',').collect()).unwrap_or_default();
        flags.contains(&"myself") && flags.contains(&"master") && f.len() <= 8
    })
}

/// The master of the shard whose deployed master is `original` (itself, or
/// the node it follows after a failover) and its cluster node id.
pub fn shard_master<'r>(
    redis: &Redis,
    record: &'r Record,
    original: &str,
) -> Result<(&'r NodeRecord, String), BackendError> {
    let first = record
        .node(original)
        .ok_or_else(|| BackendError::UnknownNode { deployment: record.name.clone(), node: original.into() })?;
    let info = redis.to(record, first).info("replication")?;
    let master = if info.get("role") == Some("master") {
        first
    } else {
        let port = info.uint("master_port").and_then(|p| u16::try_from(p).ok());
        record.data_nodes().find(|n| Some(n.port) == port).ok_or_else(|| BackendError::Command {
            node: first.name.clone(),
            command: "INFO replication".into(),
            message: format!("it follows port {port:?}, which is no node of the deployment"),
        })?
    };
    Ok((master, my_id(redis, record, master)?))
}

/// A node's cluster id: asked, or read from its `nodes.conf` when it does
/// not answer.
pub fn my_id(redis: &Redis, record: &Record, node: &NodeRecord) -> Result<String, BackendError> {
    match redis.to(record, node).query::<String>(&["CLUSTER", "MYID"], T) {
        Ok(id) => Ok(id.trim().to_owned()),
        Err(e) => {
            let file = files::conf_value(&record.path(&node.conf), "cluster-config-file")
                .unwrap_or_else(|| "nodes.conf".into());
            let text = std::fs::read_to_string(record.path(&format!("data/{}/{file}", node.name))).unwrap_or_default();
            text.lines()
                .find(|l| l.split_whitespace().nth(2).is_some_and(|flags| flags.split(',').any(|f| f == "myself")))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .ok_or(e)
        }
    }
}

/// The node's cluster bus port (`cluster-port`, else the client port + 10000).
fn bus_port(record: &Record, node: &NodeRecord) -> u16 {
    files::conf_value(&record.path(&node.conf), "cluster-port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .unwrap_or_else(|| node.port.saturating_add(10000))
}

/// Makes every node of `record` forget the nodes `ids` (removed and
/// stopped), all within [`FORGET_BAN`].
pub fn forget(redis: &Redis, record: &Record, ids: &[String]) -> Result<(), BackendError> {
    let started = Instant::now();
    for n in record.data_nodes() {
        let conn = redis.to(record, n);
        for id in ids {
            match conn.run(&["CLUSTER", "FORGET", id], T) {
                Ok(_) => {}
                Err(e) if refused_with(&e, "Unknown node") => {}
                Err(e) => return Err(e),
            }
        }
    }
    if started.elapsed() >= FORGET_BAN {
        return Err(BackendError::NotReady {
            seconds: FORGET_BAN.as_secs(),
            waiting_for: "every node to forget the removed nodes (gossip may bring them back)".into(),
        });
    }
    Ok(())
}

/// Waits until every node reports `cluster_state:ok`, all 16384 slots
/// assigned and every node known (and no other), and every master has
/// exactly the recorded number of replicas, in sync.
pub fn wait_healthy(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let conns: Vec<Conn> = record.data_nodes().map(|n| redis.to(record, n)).collect();
    loop {
        match unhealthy(redis, &conns, shards(record), usize::from(record.cluster_replicas))? {
            None => return Ok(()),
            Some(why) => deadline.check(|| why)?,
        }
    }
}

/// What is still wrong with the cluster, if anything (every node asked at once).
fn unhealthy(redis: &Redis, conns: &[Conn], shards: usize, replicas: usize) -> Result<Option<String>, BackendError> {
    let total = conns.len() as u64;
    let clusters = redis.join(conns.iter().map(cluster_info_async))?;
    for (c, info) in conns.iter().zip(clusters) {
        match info {
            Ok(i)
                if i.get("cluster_state") == Some("ok")
                    && i.uint("cluster_known_nodes") == Some(total)
                    && i.uint("cluster_slots_assigned") == Some(u64::from(SLOTS)) => {}
            Ok(i) => {
                return Ok(Some(format!(
                    "`{}`: cluster_state {}, {} of {total} nodes known",
                    c.node(),
                    i.get("cluster_state").unwrap_or_default(),
                    i.get("cluster_known_nodes").unwrap_or_default()
                )));
            }
            Err(e) => return Ok(Some(e.to_string())),
        }
    }
    // Each node's own word (gossip spreads roles only every few seconds).
    let infos = redis.join(conns.iter().map(|c| c.info_async("replication")))?;
    let mut masters = Vec::new();
    for (c, info) in conns.iter().zip(infos) {
        let i = match info {
            Ok(i) => i,
            Err(e) => return Ok(Some(e.to_string())),
        };
        if i.get("role") == Some("master") {
            let online = ready::replicas(&i).filter(|r| r.contains("state=online")).count();
            masters.push((c.node().to_owned(), online));
        } else if i.get("master_link_status") != Some("up") {
            return Ok(Some(format!("replica `{}` to sync with its master", c.node())));
        }
    }
    if masters.len() != shards {
        return Ok(Some(format!("{} masters where the cluster has {shards} shards", masters.len())));
    }
    Ok(masters
        .iter()
        .find(|(_, online)| *online != replicas)
        .map(|(m, online)| format!("master `{m}` has {online} of {replicas} replicas in sync")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_without_slots_has_not_joined() {
        let alone = "e7399fc6 127.0.0.1:7060@17060,127.0.0.1 myself,master - 0 0 0 connected\n";
        assert!(master_without_slots(alone));
        let met = format!("{alone}37d4fec4 127.0.0.1:7000@17000,127.0.0.1 master - 0 17 5 connected 0-5460\n");
        assert!(master_without_slots(&met), "meeting others does not make it a replica");
        let serving = "37d4fec4 127.0.0.1:7000@17000,127.0.0.1 myself,master - 0 17 5 connected 0-5460\n";
        assert!(!master_without_slots(serving));
        let replica = "e7399fc6 127.0.0.1:7060@17060,127.0.0.1 myself,slave 37d4fec4 0 0 5 connected\n";
        assert!(!master_without_slots(replica));
    }

    #[test]
    fn the_slots_are_shared_out_evenly_and_all_of_them() {
        assert_eq!(slot_ranges(3), [(0, 5460), (5461, 10922), (10923, 16383)], "as redis-cli splits them");
        for masters in 1..=16 {
            let ranges = slot_ranges(masters);
            assert_eq!(ranges.len(), masters as usize);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().map(|r| r.1), Some(SLOTS - 1));
            assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1), "contiguous: {ranges:?}");
            let sizes: Vec<u32> = ranges.iter().map(|(a, b)| b - a + 1).collect();
            assert!(sizes.iter().max().zip(sizes.iter().min()).is_some_and(|(a, b)| a - b <= 1), "{sizes:?}");
        }
    }
}
