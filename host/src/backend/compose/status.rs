//! `status` for a Compose deployment: each node's container (running, its
//! main process) from the engine, and — for the running ones — what the
//! node says through its published port (role after failovers, memory,
//! replication offsets), the sentinels' view of the master, the cluster's
//! state and slots. Replicas and sentinels name nodes by service name
//! (the backend has them announce it), shown as they say it.

use super::ComposeBackend;
use super::engine::{Container, Engine};
use crate::backend::local::conn::T;
use crate::backend::local::ready::sentinel_addr;
use crate::backend::{BackendError, NodeStatus, SentinelView, State, Status};
use crate::client::Info;
use crate::registry::{DeployState, Record};
use redplate_config::Role;
use redplate_config::model::Mode;
use std::time::Duration;

impl ComposeBackend {
    pub(super) fn status_of(&self, engine: &Engine, record: &Record) -> Result<Status, BackendError> {
        let containers = engine.containers(&record.name)?;
        let running = |name: &str| containers.iter().find(|c: &&Container| c.service == name && c.running);
        let conns: Vec<_> = record.nodes.iter().map(|n| self.redis.to(record, n)).collect();
        let asked = record.nodes.iter().map(|n| running(&n.name).is_some());
        let infos = self.redis.join(
            conns.iter().zip(asked).map(|(c, ask)| async move { if ask { c.info_async("").await.ok() } else { None } }),
        )?;
        let mut nodes = Vec::new();
        let mut master_offset = None;
        for (node, info) in record.nodes.iter().zip(infos) {
            let mut s = NodeStatus {
                name: node.name.clone(),
                role: node.role,
                pid: running(&node.name).and_then(|c| c.pid),
                port: node.port,
                up: info.is_some(),
                used_memory: None,
                repl_offset: None,
                lag_bytes: None,
                master: None,
                slots: None,
            };
            if let Some(info) = info.as_ref().filter(|_| node.role != Role::Sentinel) {
                data_node(&mut s, info);
                if s.role == Role::Master && record.mode != Mode::Cluster {
                    master_offset = s.repl_offset;
                }
            }
            nodes.push(s);
        }
        for s in nodes.iter_mut().filter(|s| s.role == Role::Replica) {
            if let (Some(m), Some(o)) = (master_offset, s.repl_offset) {
                s.lag_bytes = Some(m.saturating_sub(o));
            }
        }
        let mut sentinel_views = Vec::new();
        if let Some(name) = &record.master_name {
            for (s, node) in nodes.iter().zip(&record.nodes).filter(|(_, n)| n.role == Role::Sentinel) {
                let master = match s.up {
                    true => {
                        sentinel_addr(&self.redis, record, node, name).ok().flatten().map(|(h, p)| format!("{h}:{p}"))
                    }
                    false => None,
                };
                sentinel_views.push(SentinelView { sentinel: node.name.clone(), master });
            }
        }
        let mut cluster_state = None;
        if record.mode == Mode::Cluster
            && let Some((_, node)) = nodes.iter().zip(&record.nodes).find(|(s, _)| s.up)
        {
            let conn = self.redis.to(record, node);
            let info = conn.query::<String>(&["CLUSTER", "INFO"], T).ok().map(|t| crate::client::parse_info(&t));
            cluster_state = info.and_then(|i| i.get("cluster_state").map(str::to_owned));
            self.cluster_slots(record, &mut nodes);
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
        // No tenant gateway on compose: `set_gateway` refuses it.
        Ok(Status {
            name: record.name.clone(),
            mode: record.mode,
            state,
            nodes,
            sentinel_views,
            cluster_state,
            gateway: None,
        })
    }

    /// Each cluster node's slots, from its own line of `CLUSTER NODES`
    /// (the `myself` flag): every container listens on the same port, so
    /// lines are not matched by port.
    fn cluster_slots(&self, record: &Record, nodes: &mut [NodeStatus]) {
        for (s, node) in nodes.iter_mut().zip(&record.nodes).filter(|(s, _)| s.up) {
            let text = self
                .redis
                .to(record, node)
                .query::<String>(&["CLUSTER", "NODES"], Duration::from_secs(2))
                .unwrap_or_default();
            s.slots = slots_by_myself(&text).into_iter().next().map(|(_, slots)| slots);
        }
    }
}

/// A data node's live role, memory and offset from its `INFO`.
fn data_node(s: &mut NodeStatus, info: &Info) {
    s.role = match info.get("role") {
        Some("slave") => Role::Replica,
        Some("master") => Role::Master,
        _ => s.role,
    };
    s.used_memory = info.uint("used_memory");
    if s.role == Role::Master {
        s.repl_offset = info.uint("master_repl_offset");
        return;
    }
    s.repl_offset = info.uint("slave_repl_offset");
    if let (Some(host), Some(port)) = (info.get("master_host"), info.get("master_port")) {
        s.master = Some(format!("{host}:{port} (link {})", info.get("master_link_status").unwrap_or_default()));
    }
}

/// The `myself` line of `CLUSTER NODES`: its id and slot ranges (`-` for none).
fn slots_by_myself(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if !f.get(2)?.contains("myself") {
                return None;
            }
            let slots = f.get(8..).map(|r| r.join(" ")).unwrap_or_default();
            Some((f.first()?.to_string(), if slots.is_empty() { "-".into() } else { slots }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_s_slots_come_from_its_own_line() {
        let text = "\
07c3 10.89.0.2:7000@17000,shop-0 master - 0 0 1 connected 0-5460
e7d1 10.89.0.5:7000@17000,shop-3 myself,slave 07c3 0 0 1 connected
";
        assert_eq!(slots_by_myself(text), [("e7d1".to_owned(), "-".to_owned())]);
    }
}
