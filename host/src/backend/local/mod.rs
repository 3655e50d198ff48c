//! The local backend: the topology as `redis-server` / `redis-sentinel`
//! processes on this machine, one state folder per deployment
//! (`$REDPLATE_HOME/deployments/<name>/`: the rendered tree, `data/<node>`,
//! `logs/<node>.log`, `tls/`), every process started with that folder as its
//! working directory because the rendered configs use paths relative to it.
//!
//! Must not render or read templates (that is `ops::deploy` and
//! `ops::scale`), and talks to Redis only through `redis-cli` ([`cli`]).

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod files;
pub mod plan;
pub mod ports;
pub mod process;
pub mod ready;
pub mod scale;
pub mod status;
pub mod tls;

use crate::registry::{NodeRecord, Record};
use super::{Backend, BackendError, Progress, Status};
use redplate_config::model::Mode;
use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

/// How long a node gets to save and exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The local backend.
pub struct LocalBackend {
    /// Seconds to wait for readiness.
    pub timeout_secs: u64,
}

impl Default for LocalBackend {
    fn default() -> Self {
        LocalBackend { timeout_secs: 120 }
    }
}

impl LocalBackend {
    /// Starts the nodes that are not running and waits until the deployment
    /// is ready; records the pids. Data nodes first; sentinels once the
    /// master lists every replica (so their first look at it sees them all),
    /// while the replicas finish their sync. All or nothing: when a step
    /// fails, the nodes this call started are stopped again and lose their
    /// pid, so the record lists exactly what runs.
    fn start_nodes(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let running: Vec<String> = record
            .nodes
            .iter()
            .filter(|n| n.pid.is_some_and(|p| process::ours(p, &record.state_dir)))
            .map(|n| n.name.clone())
            .collect();
        let partial = record.data_nodes().any(|n| running.contains(&n.name));
        if partial {
            // Some nodes come back to running masters: each resync starts at once
            // instead of after `repl-diskless-sync-delay` waiting for others.
            self.set_all(record, "repl-diskless-sync-max-replicas", "1");
        }
        let result = self.start_all(record, progress);
        if result.is_err() {
            progress.step("start failed: stopping what it started");
            let started: Vec<u32> = record
                .nodes
                .iter_mut()
                .filter(|n| !running.contains(&n.name))
                .filter_map(|n| n.pid.take())
                .filter(|p| process::ours(*p, &record.state_dir))
                .collect();
            for p in &started {
                process::signal(*p, "TERM");
            }
            for p in &started {
                process::stop(*p, &record.state_dir, STOP_GRACE);
            }
        }
        if partial {
            let usual = process::replicas_per_master(record).to_string();
            self.set_all(record, "repl-diskless-sync-max-replicas", &usual);
        }
        result
    }

    fn start_all(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let deadline = ready::Deadline::after(self.timeout_secs);
        let mut children: BTreeMap<String, Child> = BTreeMap::new();
        let data: Vec<usize> =
            (0..record.nodes.len()).filter(|i| record.nodes[*i].role != redplate_config::Role::Sentinel).collect();
        let sentinels: Vec<usize> = (0..record.nodes.len()).filter(|i| !data.contains(i)).collect();
        ports::check_free(record)?;
        progress.step(&format!("starting {} redis-server processes", data.len()));
        let with_sentinels = !sentinels.is_empty();
        self.start_data_nodes(record, &data, &mut children, &deadline, progress, with_sentinels)?;
        if with_sentinels {
            progress.step(&format!("starting {} sentinels", sentinels.len()));
            self.spawn_dead(record, &sentinels, &mut children)?;
            let nodes: Vec<&NodeRecord> = sentinels.iter().map(|i| &record.nodes[*i]).collect();
            ready::wait_up(record, &nodes, &mut children, &deadline)?;
            progress.step("waiting for the replicas to sync");
            ready::wait_replicas(record, &deadline)?;
            progress.step("waiting for the sentinels to agree on the master");
            ready::wait_sentinels(record, &deadline)?;
            // A restarted old master is turned into a replica by the sentinels.
            ready::wait_replicas(record, &deadline)?;
        }
        Ok(())
    }

    fn start_data_nodes(
        &self,
        record: &mut Record,
        data: &[usize],
        children: &mut BTreeMap<String, Child>,
        deadline: &ready::Deadline,
        progress: &dyn Progress,
        sentinels_follow: bool,
    ) -> Result<(), BackendError> {
        self.spawn_dead(record, data, children)?;
        let nodes: Vec<&NodeRecord> = data.iter().map(|i| &record.nodes[*i]).collect();
        ready::wait_up(record, &nodes, children, deadline)?;
        match record.mode {
            Mode::Cluster => {
                progress.step("forming the cluster");
                cluster::form(record, deadline)
            }
            _ if data.len() > 1 && sentinels_follow => ready::wait_replicas_listed(record, deadline),
            _ if data.len() > 1 => {
                progress.step("waiting for the replicas to sync");
                ready::wait_replicas(record, deadline)
            }
            _ => Ok(()),
        }
    }

    /// `CONFIG SET` on every data node that answers (best effort).
    fn set_all(&self, record: &Record, key: &str, value: &str) {
        for n in record.data_nodes() {
            let _ = cli::Conn::to(record, n).run(&["CONFIG", "SET", key, value], Duration::from_secs(3));
        }
    }

    fn spawn_dead(
        &self,
        record: &mut Record,
        which: &[usize],
        children: &mut BTreeMap<String, Child>,
    ) -> Result<(), BackendError> {
        // Sentinel mode: a node restarted while the sentinels run follows the
        // master they chose (the old master's config still says it is one).
        let master = ready::sentinels_master(record).map(|m| (m.name.clone(), m.port));
        for &i in which {
            if record.nodes[i].pid.is_some_and(|p| process::ours(p, &record.state_dir)) {
                continue;
            }
            let node = &record.nodes[i];
            let follow = match &master {
                Some((name, port)) if node.role != redplate_config::Role::Sentinel && *name != node.name => Some(*port),
                _ => None,
            };
            let child = process::spawn(record, node, follow)?;
            record.nodes[i].pid = Some(child.id());
            children.insert(record.nodes[i].name.clone(), child);
        }
        Ok(())
    }

    /// Stops every process: sentinels first (so they do not fail over while
    /// the data nodes go), then replicas, then masters. Data is kept.
    pub fn stop(&self, record: &mut Record, progress: &dyn Progress) {
        progress.step(&format!("stopping {} processes", record.nodes.iter().filter(|n| n.pid.is_some()).count()));
        // Each data node's current role (after failovers) goes into its
        // config, so a start brings back the same replication tree.
        if record.mode != Mode::Cluster {
            for n in record.data_nodes().filter(|n| n.pid.is_some_and(|p| process::ours(p, &record.state_dir))) {
                let _ = cli::Conn::to(record, n).run(&["CONFIG", "REWRITE"], Duration::from_secs(5));
            }
        }
        let order = |r: redplate_config::Role| match r {
            redplate_config::Role::Sentinel => 0,
            redplate_config::Role::Replica => 1,
            redplate_config::Role::Master => 2,
        };
        for rank in 0..3 {
            // Each rank in parallel: SIGTERM all, then wait for all.
            let pids: Vec<u32> = record
                .nodes
                .iter()
                .filter(|n| order(n.role) == rank)
                .filter_map(|n| n.pid)
                .filter(|p| process::ours(*p, &record.state_dir))
                .collect();
            for p in &pids {
                process::signal(*p, "TERM");
            }
            for p in &pids {
                process::stop(*p, &record.state_dir, STOP_GRACE);
            }
        }
        for n in &mut record.nodes {
            n.pid = None;
        }
    }

    /// The running data nodes that would lose their data when stopped: no
    /// AOF and no RDB save points (Redis saves at SIGTERM only with save
    /// points). Each is asked, since settings change at run time; its
    /// config file is read when it does not answer.
    pub fn unpersisted(&self, record: &Record) -> Vec<String> {
        let persists = |node: &NodeRecord| {
            let conn = cli::Conn::to(record, node);
            let setting = |key: &str| match conn.run(&["CONFIG", "GET", key], Duration::from_secs(3)) {
                Ok(reply) => Some(reply.lines().nth(1).unwrap_or_default().trim().to_owned()),
                Err(_) => files::conf_value(&record.path(&node.conf), key),
            };
            // No `save` line at all means Redis's default save points.
            setting("appendonly").as_deref() == Some("yes") || setting("save").is_none_or(|s| !s.is_empty())
        };
        record
            .data_nodes()
            .filter(|n| n.pid.is_some_and(|p| process::ours(p, &record.state_dir)))
            .filter(|n| !persists(n))
            .map(|n| n.name.clone())
            .collect()
    }

    /// The tail of a node's log (or of every node's).
    pub fn logs(
        &self,
        record: &Record,
        node: Option<&str>,
        lines: usize,
    ) -> Result<Vec<(String, String)>, BackendError> {
        let names: Vec<&str> = match node {
            Some(n) => {
                if record.node(n).is_none() {
                    return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: n.into() });
                }
                vec![n]
            }
            None => record.nodes.iter().map(|n| n.name.as_str()).collect(),
        };
        Ok(names.into_iter().map(|n| (n.to_owned(), files::tail(&record.log_file(n), lines))).collect())
    }
}

impl Backend for LocalBackend {
    fn apply(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        self.start_nodes(record, progress)
    }

    fn status(&self, record: &Record) -> Result<Status, BackendError> {
        Ok(status::status(record))
    }

    fn scale(&self, record: &mut Record, replicas: u8, progress: &dyn Progress) -> Result<(), BackendError> {
        self.scale_to(record, replicas, progress)
    }

    fn destroy(&self, record: &Record, purge: bool, progress: &dyn Progress) -> Result<(), BackendError> {
        let mut r = record.clone();
        self.stop(&mut r, progress);
        // Processes started by a crashed redplate are not in the record: find
        // them by their config file under the state folder.
        for pid in orphans(&record.state_dir) {
            process::stop(pid, &record.state_dir, STOP_GRACE);
        }
        if purge {
            progress.step("removing the data");
            match std::fs::remove_dir_all(&record.state_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackendError::Io { action: "remove", path: record.state_dir.clone(), source: e }),
            }
        }
        Ok(())
    }
}

/// Redis processes whose working directory is `dir` (left behind by a crash).
pub fn orphans(dir: &std::path::Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process::ours(*pid, dir))
        .collect()
}
