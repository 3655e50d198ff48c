//! Starting and stopping a local deployment's processes: data nodes first,
//! then sentinels, waiting at each step until Redis says the step is done;
//! stopping in the reverse order, each data node's current role written
//! into its config first.

use super::conn::T;
use super::process::{self, Sig};
use super::{LocalBackend, STOP_GRACE, cluster, files, ports, ready};
use crate::backend::{BackendError, Progress};
use crate::registry::{NodeRecord, Record};
use redplate_config::Role;
use redplate_config::model::Mode;
use std::collections::BTreeMap;
use std::process::Child;

impl LocalBackend {
    /// Starts the nodes that are not running and waits until the deployment
    /// is ready; records the pids. Data nodes first; sentinels once the
    /// master lists every replica (so their first look at it sees them all),
    /// while the replicas finish their sync. All or nothing: when a step
    /// fails, the nodes this call started are stopped again and lose their
    /// pid, so the record lists exactly what runs.
    pub(super) fn start_nodes(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
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
            super::gateway::stop(record);
            let started: Vec<u32> = record
                .nodes
                .iter_mut()
                .filter(|n| !running.contains(&n.name))
                .filter_map(|n| n.pid.take())
                .filter(|p| process::ours(*p, &record.state_dir))
                .collect();
            stop_all(&started, &record.state_dir);
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
        let data: Vec<usize> = (0..record.nodes.len()).filter(|i| record.nodes[*i].role != Role::Sentinel).collect();
        let sentinels: Vec<usize> = (0..record.nodes.len()).filter(|i| !data.contains(i)).collect();
        ports::check_free(record)?;
        progress.step(&format!("starting {}", count(data.len(), "redis-server process", "es")));
        let with_sentinels = !sentinels.is_empty();
        self.start_data_nodes(record, &data, &mut children, &deadline, progress, with_sentinels)?;
        if with_sentinels {
            progress.step(&format!("starting {}", count(sentinels.len(), "sentinel", "s")));
            self.spawn_dead(record, &sentinels, &mut children)?;
            let nodes: Vec<&NodeRecord> = sentinels.iter().map(|i| &record.nodes[*i]).collect();
            ready::wait_up(&self.redis, record, &nodes, &mut children, &deadline)?;
            progress.step("waiting for the replicas to sync");
            ready::wait_replicas(&self.redis, record, &deadline)?;
            progress.step("waiting for the sentinels to agree on the master");
            ready::wait_sentinels(&self.redis, record, &deadline)?;
            // A restarted old master is turned into a replica by the sentinels.
            ready::wait_replicas(&self.redis, record, &deadline)?;
        }
        if record.gateway.is_some() {
            progress.step("starting the tenant gateway");
            super::gateway::start(record)?;
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
        ready::wait_up(&self.redis, record, &nodes, children, deadline)?;
        match record.mode {
            Mode::Cluster => {
                progress.step("forming the cluster");
                cluster::form(&self.redis, record, deadline)
            }
            _ if data.len() > 1 && sentinels_follow => ready::wait_replicas_listed(&self.redis, record, deadline),
            _ if data.len() > 1 => {
                progress.step("waiting for the replicas to sync");
                ready::wait_replicas(&self.redis, record, deadline)
            }
            _ => Ok(()),
        }
    }

    /// `CONFIG SET` on every data node that answers (best effort).
    pub(super) fn set_all(&self, record: &Record, key: &str, value: &str) {
        for n in record.data_nodes() {
            let _ = self.redis.to(record, n).run(&["CONFIG", "SET", key, value], T);
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
        let master = ready::sentinels_master(&self.redis, record).map(|m| (m.name.clone(), m.port));
        for &i in which {
            if record.nodes[i].pid.is_some_and(|p| process::ours(p, &record.state_dir)) {
                continue;
            }
            let node = &record.nodes[i];
            let follow = match &master {
                Some((name, port)) if node.role != Role::Sentinel && *name != node.name => Some(*port),
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
    pub(super) fn stop_nodes(&self, record: &mut Record, progress: &dyn Progress) {
        super::gateway::stop(record);
        let running = record.nodes.iter().filter(|n| n.pid.is_some()).count();
        progress.step(&format!("stopping {}", count(running, "process", "es")));
        // Each data node's current role (after failovers) goes into its
        // config, so a start brings back the same replication tree.
        if record.mode != Mode::Cluster {
            for n in record.data_nodes().filter(|n| n.pid.is_some_and(|p| process::ours(p, &record.state_dir))) {
                let _ = self.redis.to(record, n).run(&["CONFIG", "REWRITE"], T);
            }
        }
        let order = |r: Role| match r {
            Role::Sentinel => 0,
            Role::Replica => 1,
            Role::Master => 2,
        };
        for rank in 0..3 {
            let pids: Vec<u32> = record
                .nodes
                .iter()
                .filter(|n| order(n.role) == rank)
                .filter_map(|n| n.pid)
                .filter(|p| process::ours(*p, &record.state_dir))
                .collect();
            stop_all(&pids, &record.state_dir);
        }
        for n in &mut record.nodes {
            n.pid = None;
        }
    }

    /// The running data nodes that would lose their data when stopped: no
    /// AOF and no RDB save points (Redis saves at SIGTERM only with save
    /// points). Each is asked, since settings change at run time; its
    /// config file is read when it does not answer.
    pub(super) fn unpersisted_nodes(&self, record: &Record) -> Vec<String> {
        let persists = |node: &NodeRecord| {
            let conn = self.redis.to(record, node);
            let setting = |key: &str| match conn.query::<(String, String)>(&["CONFIG", "GET", key], T) {
                Ok((_, value)) => Some(value.trim().to_owned()),
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
}

/// SIGTERM to all of `pids` at once, then waits for each (SIGKILL after
/// [`STOP_GRACE`]): they save and exit in parallel.
pub(super) fn stop_all(pids: &[u32], state_dir: &std::path::Path) {
    for p in pids {
        process::signal(*p, Sig::Term);
    }
    for p in pids {
        process::stop(*p, state_dir, STOP_GRACE);
    }
}

/// `3 sentinels`, `1 redis-server process`: a count with its noun.
fn count(n: usize, noun: &str, plural: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}{plural}") }
}
