//! `scale --shards` for a running local cluster: the node set becomes the
//! one of the template rendered with the new number of shards.
//!
//! The topology numbers masters `0..shards`, then replicas round by round,
//! so another number of shards gives some kept names another role or shard
//! (with 3 shards `x-3` is the replica of shard 0; with 4 it is the master
//! of shard 3). Ports follow the ordinal and stay; only roles change. A
//! node whose role or shard changes, or that the new topology drops, is
//! stopped, forgotten and removed — it must serve no slot (`ops` moves the
//! slots first; a replica promoted by a failover hands the role back) —
//! and the nodes the new topology adds (those again included) start empty
//! and join: masters without slots, replicas following their shard's
//! master. Slots are `ops`'s job. Running it again once it is done changes
//! nothing, so an interrupted run is finished by running it again.

use super::apply::RENDERED;
use super::ready::Deadline;
use super::scale::{remove_dir, remove_files};
use super::{LocalBackend, STOP_GRACE, cluster, files, orphans, plan, process};
use crate::artifact::ArtifactSet;
use crate::backend::{BackendError, Progress};
use crate::registry::{DeployState, NodeRecord, Record};
use redplate_config::model::Mode;
use redplate_config::{Role, Topology};

impl LocalBackend {
    /// Makes `record`'s data nodes those of `topology` (see the module comment).
    pub(super) fn reshape_to(
        &self,
        record: &mut Record,
        topology: &Topology,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        if record.mode != Mode::Cluster {
            return Err(BackendError::CannotScale {
                deployment: record.name.clone(),
                reason: "only a cluster has shards".into(),
            });
        }
        if record.state != DeployState::Running {
            return Err(BackendError::CannotScale {
                deployment: record.name.clone(),
                reason: format!("it is {}; run `redplate start {}` first", record.state, record.name),
            });
        }
        self.recover(record, progress)?;
        self.check_scalable(record)?;
        let deadline = Deadline::after(self.timeout_secs);
        let wanted: Vec<&redplate_config::topology::Node> =
            topology.nodes.iter().filter(|n| n.role != Role::Sentinel).collect();
        let same = |n: &NodeRecord| {
            wanted.iter().any(|w| w.name == n.name && w.role == n.role && w.replica_of == n.replica_of)
        };
        let going: Vec<String> = record.data_nodes().filter(|n| !same(n)).map(|n| n.name.clone()).collect();
        for name in &going {
            let Some(node) = record.node(name) else { continue };
            if !cluster::serves_slots(&self.redis, record, node)? {
                continue;
            }
            if node.role == Role::Master {
                return Err(BackendError::CannotScale {
                    deployment: record.name.clone(),
                    reason: format!("`{name}` still serves slots; they must move to the shards that stay first"),
                });
            }
            // A replica promoted by a failover: its shard's deployed master takes the role back.
            progress.step(&format!("`{name}` is a master now: handing its role to a node that stays"));
            self.hand_over(record, name, &going, &deadline)?;
        }
        if !going.is_empty() {
            progress.step(&format!("removing {} nodes whose role or shard changes, or that go", going.len()));
            self.remove_nodes(record, &going, progress)?;
        }
        // Kept nodes keep their files (Redis rewrote them); the others get the new render's.
        let written = files::write_missing(artifacts, &record.state_dir)?;
        let rendered = match plan::node_records(topology, &record.state_dir) {
            Ok(r) => r,
            Err(e) => {
                remove_files(&written);
                return Err(e);
            }
        };
        let added: Vec<String> =
            rendered.iter().filter(|n| record.node(&n.name).is_none()).map(|n| n.name.clone()).collect();
        if added.is_empty() {
            return self.settle(record, &deadline, progress);
        }
        // Left by an earlier run that crashed: a new node starts empty.
        for n in &added {
            remove_dir(&record.path(&format!("data/{n}")))?;
        }
        let kept = std::mem::take(&mut record.nodes);
        record.nodes = rendered
            .into_iter()
            .map(|n| kept.iter().find(|k| k.name == n.name).cloned().unwrap_or(n))
            .chain(kept.iter().filter(|k| k.role == Role::Sentinel).cloned())
            .collect();
        progress.step(&format!("starting {} new nodes", added.len()));
        let result = self.start_added(record, &added, None, &deadline, progress);
        if result.is_err() {
            progress.step("reshaping failed: removing the new nodes");
            let _ = self.remove_nodes(record, &added, progress);
            remove_files(&written);
            return result;
        }
        files::write_missing(artifacts, &record.path(RENDERED))?;
        Ok(())
    }

    /// What a run that died midway may have left behind: processes in the
    /// state folder that the record does not list (started, not recorded
    /// yet) are stopped; nodes the record lists that no longer run (stopped,
    /// not yet dropped from it) are dropped — unless one serves slots, which
    /// `redplate start` must bring back first; and every node forgets the
    /// cluster ids that belong to no node of the record (they would never
    /// be healthy again). Changes nothing after a run that finished.
    fn recover(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let known: Vec<u32> = record.nodes.iter().filter_map(|n| n.pid).collect();
        let strays: Vec<u32> = orphans(&record.state_dir).into_iter().filter(|p| !known.contains(p)).collect();
        if !strays.is_empty() {
            progress.step(&format!("stopping {} processes an interrupted run left", strays.len()));
            for p in strays {
                process::stop(p, &record.state_dir, STOP_GRACE);
            }
        }
        let dead: Vec<String> = record
            .data_nodes()
            .filter(|n| !n.pid.is_some_and(|p| process::ours(p, &record.state_dir)))
            .map(|n| n.name.clone())
            .collect();
        if !dead.is_empty() {
            let live =
                record.data_nodes().find(|n| !dead.contains(&n.name)).ok_or_else(|| BackendError::CannotScale {
                    deployment: record.name.clone(),
                    reason: format!("no node runs; run `redplate start {}` first", record.name),
                })?;
            let view: String = self.redis.to(record, live).query(&["CLUSTER", "NODES"], super::conn::T)?;
            for name in &dead {
                let Some(node) = record.node(name) else { continue };
                let serving = view.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).any(|f| {
                    f.len() > 8
                        && f.get(1)
                            .is_some_and(|a| a.split(['@', ',']).next() == Some(&*format!("127.0.0.1:{}", node.port)))
                });
                if serving {
                    return Err(BackendError::CannotScale {
                        deployment: record.name.clone(),
                        reason: format!(
                            "node `{name}` is down and serves slots; run `redplate start {}` first",
                            record.name
                        ),
                    });
                }
            }
            progress.step(&format!("dropping {} nodes an interrupted run had stopped", dead.len()));
            self.remove_nodes(record, &dead, progress)?;
        }
        let ids: Vec<String> =
            record.data_nodes().map(|n| cluster::my_id(&self.redis, record, n)).collect::<Result<_, _>>()?;
        let strangers = cluster::strangers(&self.redis, record, &ids)?;
        if !strangers.is_empty() {
            progress.step(&format!("forgetting {} nodes an interrupted run left", strangers.len()));
            cluster::forget(&self.redis, record, &strangers)?;
        }
        Ok(())
    }
}
