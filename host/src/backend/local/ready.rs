//! Waiting until a local deployment is ready: every node answers PING,
//! replicas are in sync with the master, and sentinels agree on the master
//! and know its replicas and each other (a cluster: [`super::cluster`]).

use super::cli::Conn;
use super::files::tail;
use crate::backend::BackendError;
use crate::backend::registry::{NodeRecord, Record};
use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// A deadline with what is being waited for, for the error message.
pub struct Deadline {
    start: Instant,
    at: Instant,
}

impl Deadline {
    pub fn after(secs: u64) -> Self {
        let start = Instant::now();
        Deadline { start, at: start + Duration::from_secs(secs) }
    }

    /// `Err(NotReady)` once passed.
    pub fn check(&self, waiting_for: impl FnOnce() -> String) -> Result<(), BackendError> {
        if Instant::now() >= self.at {
            return Err(BackendError::NotReady {
                seconds: (self.at - self.start).as_secs(),
                waiting_for: waiting_for(),
            });
        }
        std::thread::sleep(POLL);
        Ok(())
    }
}

/// Waits until each of `nodes` answers (`INFO server` from its own pid). A process that exits meanwhile
/// fails the wait with the end of its log (a taken port is told apart).
pub fn wait_up(
    record: &Record,
    nodes: &[&NodeRecord],
    children: &mut BTreeMap<String, Child>,
    deadline: &Deadline,
) -> Result<(), BackendError> {
    let mut pending: Vec<&NodeRecord> = nodes.to_vec();
    loop {
        let mut still = Vec::new();
        for node in pending {
            // The answer must come from our process: another program may
            // have taken the port between the probe and the start.
            if Conn::to(record, node).ready_pid().is_some_and(|pid| Some(pid) == node.pid) {
                continue;
            }
            if let Some(child) = children.get_mut(&node.name)
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = tail(&record.log_file(&node.name), 12);
                if log.contains("Address already in use") {
                    return Err(BackendError::PortTaken { node: node.name.clone(), port: node.port });
                }
                return Err(BackendError::NodeExited { node: node.name.clone(), status: status.to_string(), log });
            }
            still.push(node);
        }
        if still.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = still.iter().map(|n| n.name.clone()).collect();
        deadline.check(|| format!("no answer from {}", names.join(", ")))?;
        pending = still;
    }
}

/// The data node that is the master now: the sentinels' choice when one
/// answers, else the node that says it is a master.
pub fn current_master(record: &Record) -> Option<&NodeRecord> {
    sentinels_master(record).or_else(|| {
        record.data_nodes().find(|n| {
            Conn::to(record, n).info("replication").is_ok_and(|i| i.get("role").map(String::as_str) == Some("master"))
        })
    })
}

/// The master the first answering sentinel names.
pub fn sentinels_master(record: &Record) -> Option<&NodeRecord> {
    if let Some(name) = &record.master_name {
        for s in record.sentinels() {
            if let Ok(addr) =
                Conn::to(record, s).run(&["SENTINEL", "get-master-addr-by-name", name], Duration::from_secs(2))
                && let Some(port) = addr.lines().nth(1).and_then(|p| p.trim().parse::<u16>().ok())
                && let Some(n) = record.data_nodes().find(|n| n.port == port)
            {
                return Some(n);
            }
        }
    }
    None
}

/// Waits until the master has every other data node as an online replica.
pub fn wait_replicas(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    wait_replicas_in(record, deadline, "state=online")
}

/// Waits until the master lists every other data node as a replica, in
/// sync or not (what Sentinel's first look at the master needs).
pub fn wait_replicas_listed(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    wait_replicas_in(record, deadline, "state=")
}

fn wait_replicas_in(record: &Record, deadline: &Deadline, state: &str) -> Result<(), BackendError> {
    let expected = record.data_nodes().count().saturating_sub(1);
    loop {
        let mut online = 0;
        if let Some(master) = current_master(record)
            && let Ok(info) = Conn::to(record, master).info("replication")
            && info.get("role").map(String::as_str) == Some("master")
        {
            online = info.iter().filter(|(k, v)| k.starts_with("slave") && v.contains(state)).count();
        }
        if online >= expected {
            return Ok(());
        }
        deadline.check(|| format!("{online} of {expected} replicas in sync with the master"))?;
    }
}

/// `SENTINEL MASTER <name>` as a map (raw output alternates keys and values).
pub fn sentinel_master(conn: &Conn, name: &str) -> Result<BTreeMap<String, String>, BackendError> {
    let text = conn.run(&["SENTINEL", "MASTER", name], Duration::from_secs(2))?;
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines.chunks(2).filter_map(|c| Some((c.first()?.to_string(), c.get(1)?.to_string()))).collect())
}

/// Waits until every sentinel names the same master, sees it up, and knows
/// all its replicas and the other sentinels (what a failover needs).
pub fn wait_sentinels(record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let Some(name) = record.master_name.clone() else { return Ok(()) };
    let sentinels: Vec<&NodeRecord> = record.sentinels().collect();
    let replicas = record.data_nodes().count().saturating_sub(1).to_string();
    let others = sentinels.len().saturating_sub(1).to_string();
    loop {
        let mut masters = Vec::new();
        let mut complete = true;
        for s in &sentinels {
            match sentinel_master(&Conn::to(record, s), &name) {
                Ok(m) => {
                    masters.push(format!(
                        "{}:{}",
                        m.get("ip").cloned().unwrap_or_default(),
                        m.get("port").cloned().unwrap_or_default()
                    ));
                    complete &= m.get("flags").map(String::as_str) == Some("master")
                        && m.get("num-slaves") == Some(&replicas)
                        && m.get("num-other-sentinels") == Some(&others);
                }
                Err(_) => complete = false,
            }
        }
        masters.dedup();
        if complete && masters.len() == 1 {
            return Ok(());
        }
        deadline.check(|| {
            format!("sentinels to agree on the master and see {replicas} replicas and {others} other sentinels (they see {masters:?})")
        })?;
    }
}
