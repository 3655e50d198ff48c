//! `status` for a local deployment: each node asked directly (role, memory,
//! replication offsets), the sentinels asked for their master, one cluster
//! node asked for the slot map.

use super::cli::Conn;
use super::process::ours;
use crate::registry::{DeployState, Record};
use crate::backend::{NodeStatus, SentinelView, Status};
use redplate_config::Role;
use std::collections::BTreeMap;
use std::time::Duration;

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Master => "master",
        Role::Replica => "replica",
        Role::Sentinel => "sentinel",
    }
}

/// The status of every node of `record`.
pub fn status(record: &Record) -> Status {
    let mut nodes = Vec::new();
    let mut master_offsets: BTreeMap<u16, u64> = BTreeMap::new();
    let mut replica_of: Vec<Option<u16>> = Vec::new();
    for node in &record.nodes {
        let pid = node.pid.filter(|p| ours(*p, &record.state_dir));
        let conn = Conn::to(record, node);
        // Only our own process counts (not whatever took the port since).
        let info = pid.and_then(|p| {
            conn.info("").ok().filter(|i| i.get("process_id").map(|v| v.trim()) == Some(&*p.to_string()))
        });
        let mut s = NodeStatus {
            name: node.name.clone(),
            role: role_name(node.role).into(),
            pid,
            port: node.port,
            up: info.is_some(),
            used_memory: None,
            repl_offset: None,
            lag_bytes: None,
            master: None,
            slots: None,
        };
        let mut follows = None;
        if let Some(info) = info {
            let get = |k: &str| info.get(k).cloned();
            if node.role != Role::Sentinel {
                s.role = match get("role").as_deref() {
                    Some("slave") => "replica".into(),
                    Some(r) => r.into(),
                    None => s.role,
                };
                s.used_memory = get("used_memory").and_then(|v| v.parse().ok());
                if s.role == "master" {
                    s.repl_offset = get("master_repl_offset").and_then(|v| v.parse().ok());
                    master_offsets.insert(node.port, s.repl_offset.unwrap_or(0));
                } else {
                    s.repl_offset = get("slave_repl_offset").and_then(|v| v.parse().ok());
                    if let (Some(h), Some(p)) = (get("master_host"), get("master_port")) {
                        follows = p.parse().ok();
                        let link = get("master_link_status").unwrap_or_default();
                        s.master = Some(format!("{h}:{p} (link {link})"));
                    }
                }
            }
        }
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
            let master = if s.up {
                Conn::to(record, node)
                    .run(&["SENTINEL", "get-master-addr-by-name", name], Duration::from_secs(2))
                    .ok()
                    .map(|t| t.lines().collect::<Vec<_>>().join(":"))
            } else {
                None
            };
            sentinel_views.push(SentinelView { sentinel: node.name.clone(), master });
        }
    }
    let mut cluster_state = None;
    if record.mode == redplate_config::model::Mode::Cluster
        && let Some((_, node)) = nodes.iter().zip(&record.nodes).find(|(s, _)| s.up)
    {
        let conn = Conn::to(record, node);
        cluster_state = super::cluster::cluster_info(&conn).ok().and_then(|i| i.get("cluster_state").cloned());
        if let Ok(text) = conn.run(&["CLUSTER", "NODES"], Duration::from_secs(2)) {
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                let port = f.get(1).and_then(|a| a.split(['@', ',']).next()).and_then(|a| a.rsplit(':').next());
                let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) else { continue };
                if let Some(s) = nodes.iter_mut().find(|s| s.port == port) {
                    let slots = f.get(8..).map(|r| r.join(" ")).unwrap_or_default();
                    s.slots = Some(if slots.is_empty() { "-".into() } else { slots });
                }
            }
        }
    }
    let up = nodes.iter().filter(|n| n.up).count();
    let state = if up == nodes.len() {
        "running"
    } else if up == 0 && record.state == DeployState::Stopped {
        "stopped"
    } else if up == 0 {
        "down"
    } else {
        "degraded"
    };
    Status {
        name: record.name.clone(),
        mode: format!("{:?}", record.mode).to_lowercase(),
        state: state.into(),
        nodes,
        sentinel_views,
        cluster_state,
    }
}
