//! Redis Cluster for the local backend: forming it, joining replicas to
//! their shard, forgetting removed nodes, and waiting until it is healthy.
//!
//! Replicas are joined by hand (`CLUSTER MEET` + `CLUSTER REPLICATE`) to
//! the master of the shard the topology gives them: `redis-cli --cluster
//! create --cluster-replicas N` shuffles replicas between masters at random
//! when every node is on one host (its anti-affinity pass), and scaling
//! needs to know which shard each replica serves.

use super::cli::{Conn, parse_info, run_with_deadline};
use super::files;
use super::ready::Deadline;
use crate::backend::BackendError;
use crate::registry::{NodeRecord, Record};
use redplate_config::Role;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A node forgotten with `CLUSTER FORGET` is kept out of gossip for this
/// long; every node must forget it within that time, or those that still
/// know it teach it back to the others.
const FORGET_BAN: Duration = Duration::from_secs(60);

/// `CLUSTER INFO` of a node.
pub fn cluster_info(conn: &Conn) -> Result<BTreeMap<String, String>, BackendError> {
    Ok(parse_info(&conn.run(&["CLUSTER", "INFO"], Duration::from_secs(2))?))
}

/// The deployment's shards: its masters as deployed.
pub fn shards(record: &Record) -> usize {
    record.data_nodes().filter(|n| n.role == Role::Master).count()
}

/// Forms the cluster unless its slots are already assigned (a restart):
/// `redis-cli --cluster create` over the masters, then every replica joins
/// its shard; then waits until the cluster is healthy.
pub fn form(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let masters: Vec<&NodeRecord> = record.data_nodes().filter(|n| n.role == Role::Master).collect();
    let formed = record.data_nodes().any(|n| {
        cluster_info(&Conn::to(record, n))
            .is_ok_and(|i| i.get("cluster_slots_assigned").map(String::as_str) != Some("0"))
    });
    if !formed && let Some(first) = masters.first() {
        let conn = Conn::to(record, first);
        let mut cmd = conn.command();
        cmd.arg("--cluster").arg("create");
        for n in &masters {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = run_with_deadline(cmd, Duration::from_secs(120))?;
        if !out.contains("[OK] All 16384 slots covered") {
            return Err(BackendError::Command {
                node: first.name.clone(),
                command: "redis-cli --cluster create".into(),
                message: files::tail_text(&out, 15),
            });
        }
    }
    join_replicas(record, deadline)?;
    wait_healthy(record, deadline)
}

/// Joins every replica that is not part of the cluster yet (new, or never
/// joined) to the current master of its shard: `CLUSTER MEET`, then `CLUSTER REPLICATE`
/// once the handshake is done. Replicas join one by one, round by round as
/// the topology numbers them, so no master is ever left without a replica
/// it had (which would invite replica migration).
pub fn join_replicas(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    for node in record.data_nodes().filter(|n| n.role == Role::Replica) {
        let conn = Conn::to(record, node);
        if !unjoined(&conn)? {
            continue;
        }
        let Some(original) = node.replica_of.as_deref() else { continue };
        let (master, id) = shard_master(record, original)?;
        // Its master first; then every other node, so that all of them know
        // it at once instead of through gossip, a few seconds later.
        let others = record.data_nodes().filter(|n| n.name != master.name && n.name != node.name);
        for other in std::iter::once(master).chain(others) {
            let bus = bus_port(record, other).to_string();
            conn.run(&["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string(), &bus], T)?;
        }
        loop {
            match conn.run(&["CLUSTER", "REPLICATE", &id], T) {
                Ok(_) => break,
                // Until the handshake has told it the master's id.
                Err(BackendError::Command { message, .. }) if message.contains("Unknown node") => {
                    deadline.check(|| format!("`{}` to meet its master `{}`", node.name, master.name))?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether a node is a master without slots: one that never joined the
/// cluster as a replica (a node other nodes met is still one).
fn unjoined(conn: &Conn) -> Result<bool, BackendError> {
    Ok(master_without_slots(&conn.run(&["CLUSTER", "NODES"], T)?))
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
pub fn shard_master<'r>(record: &'r Record, original: &str) -> Result<(&'r NodeRecord, String), BackendError> {
    let first = record
        .node(original)
        .ok_or_else(|| BackendError::UnknownNode { deployment: record.name.clone(), node: original.into() })?;
    let info = Conn::to(record, first).info("replication")?;
    let master = if info.get("role").map(String::as_str) == Some("master") {
        first
    } else {
        let port = info.get("master_port").and_then(|p| p.trim().parse::<u16>().ok());
        record.data_nodes().find(|n| Some(n.port) == port).ok_or_else(|| BackendError::Command {
            node: first.name.clone(),
            command: "INFO replication".into(),
            message: format!("it follows port {port:?}, which is no node of the deployment"),
        })?
    };
    Ok((master, my_id(record, master)?))
}

/// A node's cluster id: asked, or read from its `nodes.conf` when it does
/// not answer.
pub fn my_id(record: &Record, node: &NodeRecord) -> Result<String, BackendError> {
    match Conn::to(record, node).run(&["CLUSTER", "MYID"], T) {
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
pub fn forget(record: &Record, ids: &[String]) -> Result<(), BackendError> {
    let started = Instant::now();
    for n in record.data_nodes() {
        let conn = Conn::to(record, n);
        for id in ids {
            match conn.run(&["CLUSTER", "FORGET", id], T) {
                Ok(_) => {}
                Err(BackendError::Command { message, .. }) if message.contains("Unknown node") => {}
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
pub fn wait_healthy(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let conns: Vec<Conn> = record.data_nodes().map(|n| Conn::to(record, n)).collect();
    loop {
        match unhealthy(&conns, shards(record), usize::from(record.cluster_replicas)) {
            None => return Ok(()),
            Some(why) => deadline.check(|| why)?,
        }
    }
}

/// What is still wrong with the cluster, if anything.
fn unhealthy(conns: &[Conn], shards: usize, replicas: usize) -> Option<String> {
    let total = conns.len().to_string();
    for c in conns {
        match cluster_info(c) {
            Ok(i)
                if i.get("cluster_state").map(String::as_str) == Some("ok")
                    && i.get("cluster_known_nodes") == Some(&total)
                    && i.get("cluster_slots_assigned").map(String::as_str) == Some("16384") => {}
            Ok(i) => {
                return Some(format!(
                    "`{}`: cluster_state {}, {} of {total} nodes known",
                    c.node,
                    i.get("cluster_state").cloned().unwrap_or_default(),
                    i.get("cluster_known_nodes").cloned().unwrap_or_default()
                ));
            }
            Err(e) => return Some(e.to_string()),
        }
    }
    // Each node's own word (gossip spreads roles only every few seconds).
    let mut masters = Vec::new();
    for c in conns {
        let i = match c.info("replication") {
            Ok(i) => i,
            Err(e) => return Some(e.to_string()),
        };
        if i.get("role").map(String::as_str) == Some("master") {
            let online = i.iter().filter(|(k, v)| k.starts_with("slave") && v.contains("state=online")).count();
            masters.push((c.node.as_str(), online));
        } else if i.get("master_link_status").map(String::as_str) != Some("up") {
            return Some(format!("replica `{}` to sync with its master", c.node));
        }
    }
    if masters.len() != shards {
        return Some(format!("{} masters where the cluster has {shards} shards", masters.len()));
    }
    masters
        .iter()
        .find(|(_, online)| *online != replicas)
        .map(|(m, online)| format!("master `{m}` has {online} of {replicas} replicas in sync"))
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
}
