//! `scale` for a running local deployment: replicas are added at the end
//! of the topology (started, in sync, listed by every sentinel or joined to
//! their shard of the cluster) or the last ones are removed (a node that is
//! a master after a failover hands its role over first; then the cluster
//! forgets them, or the sentinels are reset to drop them).
//!
//! When a step fails, the record still lists exactly the nodes that run: a
//! failed scale-up stops and forgets what it started, a scale-down drops
//! the nodes from the record as soon as they are stopped. (Should redplate
//! itself die midway, `destroy` still finds the processes by their folder.)
//! Renders nothing: `ops::scale` renders, and the new nodes' files are
//! written here, before they start.

use super::apply::RENDERED;
use super::conn::T;
use super::handover::{follow_the_master, live_role};
use super::process::Sig;
use super::ready::{self, Deadline};
use super::{LocalBackend, STOP_GRACE, cluster, files, plan, process};
use crate::artifact::ArtifactSet;
use crate::backend::{BackendError, Progress};
use crate::registry::{DeployState, NodeRecord, Record};
use redplate_config::Role;
use redplate_config::model::Mode;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

impl LocalBackend {
    /// Refuses a scale that cannot work: a standalone deployment, or one
    /// that is not running with every node up.
    pub fn check_scalable(&self, record: &Record) -> Result<(), BackendError> {
        let refuse = |reason: String| Err(BackendError::CannotScale { deployment: record.name.clone(), reason });
        if record.mode == Mode::Standalone {
            return refuse(
                "a standalone deployment has no replicas; deploy the template with `deployment.mode: replication`, \
                 `sentinel` or `cluster` to scale it"
                    .into(),
            );
        }
        if record.state != DeployState::Running {
            return refuse(format!("it is {}; run `redplate start {}` first", record.state, record.name));
        }
        if let Some(n) = record.nodes.iter().find(|n| !n.pid.is_some_and(|p| process::ours(p, &record.state_dir))) {
            return refuse(format!("node `{}` is not running; run `redplate start {}` first", n.name, record.name));
        }
        Ok(())
    }

    /// Gives every master `replicas` replicas, from `artifacts` rendered
    /// for that many. Only files that do not exist yet are written (the
    /// running nodes' configs stay as Redis and Sentinel rewrote them), and
    /// removed again when the nodes they are for were not added; the
    /// pristine copy (`apply` compares with it) gets them once they run.
    pub(super) fn scale_with(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.check_scalable(record)?;
        let want = cluster::shards(record) * (1 + usize::from(replicas));
        let written = files::write_missing(artifacts, &record.state_dir)?;
        let result = self.scale_to(record, replicas, progress);
        if record.data_nodes().count() == want {
            files::write_missing(artifacts, &record.path(RENDERED))?;
        } else {
            remove_files(&written);
        }
        result
    }

    /// Gives every master `replicas` replicas (see the module comment).
    fn scale_to(&self, record: &mut Record, replicas: u8, progress: &dyn Progress) -> Result<(), BackendError> {
        let shards = cluster::shards(record);
        let want = shards * (1 + usize::from(replicas));
        let have = record.data_nodes().count();
        let deadline = Deadline::after(self.timeout_secs);
        // Each new replica's sync starts at once instead of after
        // `repl-diskless-sync-delay` waiting for others (as in `start`).
        self.set_all(record, "repl-diskless-sync-max-replicas", "1");
        let result = match want.cmp(&have) {
            Ordering::Greater => self.scale_up(record, replicas, want, &deadline, progress),
            Ordering::Less => self.scale_down(record, replicas, want, &deadline, progress),
            Ordering::Equal => Ok(()),
        };
        self.set_all(record, "repl-diskless-sync-max-replicas", &process::replicas_per_master(record).to_string());
        result
    }

    fn scale_up(
        &self,
        record: &mut Record,
        replicas: u8,
        want: usize,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let shards = u16::try_from(cluster::shards(record)).unwrap_or(u16::MAX);
        let have = record.data_nodes().count();
        let mut added = Vec::new();
        for ordinal in have..want {
            let ordinal = u16::try_from(ordinal).unwrap_or(u16::MAX);
            added.push(plan::replica_record(&record.name, shards, ordinal, &record.state_dir)?);
        }
        progress.step("checking that the new ports are free");
        for n in &added {
            // Started by a run that was killed before it recorded them.
            let strays = super::orphans(&record.path(&format!("data/{}", n.name)));
            super::start::stop_all(&strays, &record.state_dir);
        }
        for n in &added {
            if let Some(port) = n.ports.iter().copied().find(|p| !process::port_free(*p)) {
                return Err(BackendError::PortTaken { node: n.name.clone(), port });
            }
        }
        let names: Vec<String> = added.iter().map(|n| n.name.clone()).collect();
        // Left by an earlier scale that crashed: a new node starts empty.
        for n in &names {
            remove_dir(&record.path(&format!("data/{n}")))?;
        }
        // Sentinel or replication mode: they follow the master of now.
        let follow = match record.mode {
            Mode::Cluster => None,
            _ => ready::current_master(&self.redis, record).map(|m| m.port),
        };
        let previous = record.cluster_replicas;
        if record.mode == Mode::Cluster {
            record.cluster_replicas = replicas;
        }
        let at = record.nodes.iter().rposition(|n| n.role != Role::Sentinel).map_or(0, |i| i + 1);
        record.nodes.splice(at..at, added);
        progress.step(&format!("starting {} new replicas", names.len()));
        let result = self.start_added(record, &names, follow, deadline, progress);
        if result.is_err() {
            progress.step("scaling failed: removing the new replicas");
            let _ = self.remove_nodes(record, &names, progress);
            record.cluster_replicas = previous;
            let _ = self.settle(record, &Deadline::after(30), progress);
        }
        result
    }

    pub(super) fn start_added(
        &self,
        record: &mut Record,
        names: &[String],
        follow: Option<u16>,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let mut children = BTreeMap::new();
        for name in names {
            let Some(i) = record.nodes.iter().position(|n| &n.name == name) else { continue };
            let child = process::spawn(record, &record.nodes[i], follow)?;
            record.nodes[i].pid = Some(child.id());
            children.insert(name.clone(), child);
        }
        let nodes: Vec<NodeRecord> = names.iter().filter_map(|n| record.node(n)).cloned().collect();
        let refs: Vec<&NodeRecord> = nodes.iter().collect();
        ready::wait_up(&self.redis, record, &refs, &mut children, deadline)?;
        if record.mode == Mode::Cluster {
            // New masters (a scale of the shards) first: their replicas follow them.
            cluster::join_masters(&self.redis, record, names, deadline)?;
            progress.step("joining the new replicas to their shards");
            cluster::join_replicas(&self.redis, record, deadline)?;
        }
        self.settle(record, deadline, progress)
    }

    fn scale_down(
        &self,
        record: &mut Record,
        replicas: u8,
        want: usize,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let removed: Vec<String> = record.data_nodes().skip(want).map(|n| n.name.clone()).collect();
        for name in &removed {
            if live_role(&self.redis, record, name) == "master" {
                progress.step(&format!("`{name}` is a master now: handing its role to a node that stays"));
                self.hand_over(record, name, &removed, deadline)?;
            }
        }
        if record.mode != Mode::Cluster {
            follow_the_master(&self.redis, record, &removed)?;
        }
        progress.step(&format!("removing {} replicas", removed.len()));
        if record.mode == Mode::Cluster {
            record.cluster_replicas = replicas;
        }
        self.remove_nodes(record, &removed, progress)?;
        self.settle(record, deadline, progress)
    }

    /// Waits until the deployment with its new node set is ready: replicas
    /// in sync and every sentinel listing exactly them, or the cluster
    /// healthy with the right number of replicas on every master.
    pub(super) fn settle(
        &self,
        record: &Record,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        match record.mode {
            Mode::Cluster => {
                progress.step("waiting for the cluster");
                cluster::wait_healthy(&self.redis, record, deadline)
            }
            _ => {
                progress.step("waiting for the replicas to sync");
                ready::wait_replicas(&self.redis, record, deadline)?;
                if record.mode == Mode::Sentinel {
                    progress.step("waiting for every sentinel to list the replicas");
                    ready::wait_sentinels(&self.redis, record, deadline)?;
                }
                Ok(())
            }
        }
    }

    /// Stops the named nodes and drops them from the record and the state
    /// folder (data, configs); then the cluster forgets them, or the
    /// sentinels are reset so they list only the replicas that remain.
    pub(super) fn remove_nodes(
        &self,
        record: &mut Record,
        names: &[String],
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let nodes: Vec<NodeRecord> = record.nodes.iter().filter(|n| names.contains(&n.name)).cloned().collect();
        let ids: Vec<String> = match record.mode {
            Mode::Cluster => nodes.iter().filter_map(|n| cluster::my_id(&self.redis, record, n).ok()).collect(),
            _ => Vec::new(),
        };
        let pids: Vec<u32> =
            nodes.iter().filter_map(|n| n.pid).filter(|p| process::ours(*p, &record.state_dir)).collect();
        for p in &pids {
            process::signal(*p, Sig::Term);
        }
        for p in &pids {
            process::stop(*p, &record.state_dir, STOP_GRACE);
        }
        record.nodes.retain(|n| !names.contains(&n.name));
        for n in names {
            for dir in [format!("data/{n}"), format!("redis/{n}"), format!("{RENDERED}/redis/{n}")] {
                remove_dir(&record.path(&dir))?;
            }
        }
        match (record.mode, &record.master_name) {
            (Mode::Cluster, _) => {
                progress.step("making every node forget the removed ones");
                cluster::forget(&self.redis, record, &ids)
            }
            (Mode::Sentinel, Some(master)) => {
                progress.step("resetting the sentinels");
                for s in record.sentinels() {
                    self.redis.to(record, s).run(&["SENTINEL", "RESET", master], T)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Removes files written for nodes that were not added, and their folders once empty.
pub(super) fn remove_files(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
        if let Some(dir) = p.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

pub(super) fn remove_dir(path: &std::path::Path) -> Result<(), BackendError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackendError::Io { action: "remove", path: path.to_owned(), source: e }),
    }
}
