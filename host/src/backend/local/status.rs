//! `status` for a local deployment: every node asked at once (role, memory,
//! replication offsets), the sentinels asked for their master, one cluster
//! node asked for the slot map.

use super::cluster::cluster_info;
use super::conn::{Conn, Redis};
use super::process::ours;
use super::ready::sentinel_addr;
use crate::backend::{BackendError, NodeStatus, SentinelView, State, Status};
use crate::client::Info;
use crate::registry::{DeployState, Record};
use redplate_config::Role;
use redplate_config::model::Mode;
use std::collections::BTreeMap;
use std::time::Duration;

/// The status of every node of `record`.
pub fn status(redis: &Redis, record: &Record) -> Result<Status, BackendError> {
    let pids: Vec<Option<u32>> = record.nodes.iter().map(|n| n.pid.filter(|p| ours(*p, &record.state_dir))).collect();
    let conns: Vec<Conn> = record.nodes.iter().map(|n| redis.to(record, n)).collect();
    // Only nodes whose process runs are asked, all at once.
    let infos = redis.join(conns.iter().zip(&pids).map(|(c, pid)| async move {
        match pid {
            Some(_) => c.info_async("").await.ok(),
            None => None,
        }
    }))?;
    let mut nodes = Vec::new();
    let mut master_offsets: BTreeMap<u16, u64> = BTreeMap::new();
    let mut replica_of: Vec<Option<u16>> = Vec::new();
    for ((node, pid), info) in record.nodes.iter().zip(&pids).zip(infos) {
        // Only our own process counts (not whatever took the port since).
        let info = info.filter(|i| i.uint("process_id").is_some_and(|p| Some(p) == pid.map(u64::from)));
        let mut s = NodeStatus {
            name: node.name.clone(),
            role: node.role,
            pid: *pid,
            port: node.port,
            up: info.is_some(),
            used_memory: None,
            repl_offset: None,
            lag_bytes: None,
            master: None,
            slots: None,
        };
        let follows = match &info {
            Some(info) if node.role != Role::Sentinel => data_node(&mut s, info, &mut master_offsets),
            _ => None,
        };
        replica_of.push(follows);
        nodes.push(s);
    }
    for (s, follows) in nodes.iter_mut().zip(&replica_of) {
        if let (Some(port), Some(offset)) = (follows, s.repl_offset)
            && let Some(m) = master_offsets.get(port)
        {
            s.lag_bytes = Some(m.saturating_sub(offset));
        }
    }
    let mut sentinel_views = Vec::new();
    if let Some(name) = &record.master_name {
        for (s, node) in nodes.iter().zip(&record.nodes).filter(|(_, n)| n.role == Role::Sentinel) {
            let master = match s.up {
                true => sentinel_addr(redis, record, node, name).ok().flatten().map(|(h, p)| format!("{h}:{p}")),
                false => None,
            };
            sentinel_views.push(SentinelView { sentinel: node.name.clone(), master });
        }
    }
    let mut cluster_state = None;
    if record.mode == Mode::Cluster
        && let Some((_, node)) = nodes.iter().zip(&record.nodes).find(|(s, _)| s.up)
    {
        let conn = redis.to(record, node);
        cluster_state = cluster_info(&conn).ok().and_then(|i| i.get("cluster_state").map(str::to_owned));
        if let Ok(text) = conn.query::<String>(&["CLUSTER", "NODES"], Duration::from_secs(2)) {
            for (port, slots) in slots_by_port(&text) {
                if let Some(s) = nodes.iter_mut().find(|s| s.port == port) {
                    s.slots = Some(slots);
                }
            }
        }
    }
    let up = nodes.iter().filter(|n| n.up).count();
    let state = if up == nodes.len() {
        State::Running
    } else if up == 0 && record.state == DeployState::Stopped {
        State::Stopped
    } else if up == 0 {
        State::Down
    } else {
        State::Degraded
    };
    let gateway = record.gateway_port().map(|port| {
        let pid = super::gateway::running(record);
        let snapshot = pid.and_then(|_| crate::gateway::read_snapshot(record));
        crate::backend::GatewayStatus {
            listen: format!("127.0.0.1:{port}"),
            pid,
            up: snapshot.is_some(),
            tls: snapshot.as_ref().is_some_and(|s| s.tls),
            connections: snapshot.as_ref().map(|s| s.connections),
            tenants: snapshot.map(|s| s.tenants).unwrap_or_default(),
        }
    });
    Ok(Status { name: record.name.clone(), mode: record.mode, state, nodes, sentinel_views, cluster_state, gateway })
}

/// Fills in a data node's live role, memory and offset from its `INFO`;
/// returns the port of the master it follows (a replica).
fn data_node(s: &mut NodeStatus, info: &Info, master_offsets: &mut BTreeMap<u16, u64>) -> Option<u16> {
    s.role = match info.get("role") {
        Some("slave") => Role::Replica,
        Some("master") => Role::Master,
        _ => s.role,
    };
    s.used_memory = info.uint("used_memory");
    if s.role == Role::Master {
        s.repl_offset = info.uint("master_repl_offset");
        master_offsets.insert(s.port, s.repl_offset.unwrap_or(0));
        return None;
    }
    s.repl_offset = info.uint("slave_repl_offset");
    let (host, port) = (info.get("master_host")?, info.get("master_port")?);
    s.master = Some(format!("{host}:{port} (link {})", info.get("master_link_status").unwrap_or_default()));
    port.parse().ok()
}

/// Each node's port and the slot ranges it serves (`-` for none), from `CLUSTER NODES`.
fn slots_by_port(text: &str) -> Vec<(u16, String)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let addr = f.get(1)?.split(['@', ',']).next()?;
            let port = addr.rsplit(':').next()?.parse().ok()?;
            let slots = f.get(8..).map(|r| r.join(" ")).unwrap_or_default();
            Some((port, if slots.is_empty() { "-".into() } else { slots }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_read_per_port_from_cluster_nodes() {
        let text = "\
07c3 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
e7d1 127.0.0.1:7004@17004,host slave 07c3 0 0 1 connected
";
        assert_eq!(slots_by_port(text), [(7001, "0-5460".to_owned()), (7004, "-".to_owned())]);
    }
}
