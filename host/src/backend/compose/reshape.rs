//! A Compose cluster's node set changed at run time: `scale --shards`
//! (through [`crate::backend::Backend::reshape`]; `ops` moves the slots) and
//! `scale --replicas`. Nodes that go are stopped, removed with their volume
//! and forgotten by the others; nodes that come are made from the new
//! render (`up --no-deps`, empty volumes) and join over the project
//! network at their pinned addresses — masters without slots, replicas
//! following their shard's master — as on the local backend. A node that
//! goes must serve no slot: a replica promoted by a failover first hands
//! the role back with `CLUSTER FAILOVER` from a node that stays. Running
//! it again after an interruption finishes it: containers the record does
//! not list are removed, ids no node of the record has are forgotten.

use super::engine::{Engine, SHORT};
use super::{ComposeBackend, plan, project};
use crate::artifact::ArtifactSet;
use crate::backend::local::apply::RENDERED;
use crate::backend::local::ready::Deadline;
use crate::backend::local::{cluster, files};
use crate::backend::{BackendError, Progress};
use crate::registry::{DeployState, NodeRecord, Record};
use redplate_config::model::Mode;
use redplate_config::{Role, Topology};
use std::time::Duration;

impl ComposeBackend {
    /// `Err(CannotScale)` unless `record` is a running cluster.
    fn check_cluster(&self, record: &Record) -> Result<(), BackendError> {
        let refuse = |reason: String| Err(BackendError::CannotScale { deployment: record.name.clone(), reason });
        if record.mode != Mode::Cluster {
            return refuse("only a cluster has shards".into());
        }
        if record.state != DeployState::Running {
            return refuse(format!("it is {}; run `redplate start {}` first", record.state, record.name));
        }
        Ok(())
    }

    /// Makes `record`'s data nodes those of `topology` (the template
    /// rendered as `artifacts` with another number of shards).
    pub(super) fn reshape_to(
        &self,
        record: &mut Record,
        topology: &Topology,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.check_cluster(record)?;
        let engine = self.engine()?;
        self.recover(engine, record, progress)?;
        let wanted: Vec<&redplate_config::topology::Node> =
            topology.nodes.iter().filter(|n| n.role != Role::Sentinel).collect();
        let same = |n: &NodeRecord| {
            wanted.iter().any(|w| w.name == n.name && w.role == n.role && w.replica_of == n.replica_of)
        };
        let going: Vec<String> = record.data_nodes().filter(|n| !same(n)).map(|n| n.name.clone()).collect();
        self.remove_cluster_nodes(engine, record, &going, progress)?;
        let coming: Vec<String> =
            wanted.iter().filter(|w| record.node(&w.name).is_none()).map(|w| w.name.clone()).collect();
        write_render(record, artifacts, &coming)?;
        let rendered = plan::node_records(topology, &record.state_dir)?;
        let added: Vec<NodeRecord> = rendered.into_iter().filter(|n| record.node(&n.name).is_none()).collect();
        self.add_cluster_nodes(engine, record, added, artifacts, progress)
    }

    /// `scale --replicas` of a cluster: every shard gets `replicas` replicas.
    pub(super) fn scale_cluster(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let engine = self.engine()?;
        self.recover(engine, record, progress)?;
        let shards = cluster::shards(record);
        let want = shards * (1 + usize::from(replicas));
        let have = record.data_nodes().count();
        if want < have {
            let going: Vec<String> = record.data_nodes().skip(want).map(|n| n.name.clone()).collect();
            self.remove_cluster_nodes(engine, record, &going, progress)?;
            record.cluster_replicas = replicas;
            files::write_missing(artifacts, &record.path(RENDERED))?;
            super::scale::write_compose(record, artifacts)?;
            plan::refresh(engine, record)?;
            return cluster::wait_healthy(&self.redis, record, &Deadline::after(self.timeout_secs));
        }
        let Some(first) = record.data_nodes().next().cloned() else { return Ok(()) };
        let added: Vec<NodeRecord> = (have..want)
            .map(|ordinal| {
                let ordinal = u16::try_from(ordinal).unwrap_or(u16::MAX);
                let master =
                    Topology::data_node_name(&record.name, ordinal % u16::try_from(shards).unwrap_or(1).max(1));
                let mut n = super::scale::new_replica(record, &first, ordinal);
                n.replica_of = Some(master);
                n
            })
            .collect();
        let previous = record.cluster_replicas;
        record.cluster_replicas = replicas;
        let result = self.add_cluster_nodes(engine, record, added, artifacts, progress);
        if result.is_err() {
            record.cluster_replicas = previous;
        }
        result
    }

    /// What an interrupted run left: containers of data nodes the record
    /// does not list are removed with their volumes, and the ids no node
    /// of the record has are forgotten.
    fn recover(&self, engine: &Engine, record: &Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let known: Vec<String> = plan::services(record);
        let prefix = format!("{}-", record.name);
        let strays: Vec<String> = engine
            .containers(&record.name)?
            .into_iter()
            .map(|c| c.service)
            .filter(|s| !known.contains(s) && s.strip_prefix(&prefix).is_some_and(|o| o.parse::<u16>().is_ok()))
            .collect();
        if !strays.is_empty() {
            progress.step(&format!("removing {} containers an interrupted run left", strays.len()));
            for s in &strays {
                self.remove_container(engine, record, s)?;
            }
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

    /// Stops `service`'s container (time to save), removes it and its volume.
    fn remove_container(&self, engine: &Engine, record: &Record, service: &str) -> Result<(), BackendError> {
        if let Some(c) = engine.containers(&record.name)?.into_iter().find(|c| c.service == service) {
            let _ = engine.cli(&["stop", "-t", "10", &c.id], Duration::from_secs(60));
            engine.cli_ok(&["rm", "-f", &c.id], Duration::from_secs(60))?;
        }
        // Compose names a project's volumes `<project>_<volume>`.
        let _ = engine.cli(&["volume", "rm", "-f", &format!("{}_{service}-data", record.name)], SHORT);
        Ok(())
    }

    /// Removes the data nodes `going`: each must serve no slot (a promoted
    /// replica hands the role back first); stopped, removed with its
    /// volume, forgotten by the nodes that stay.
    fn remove_cluster_nodes(
        &self,
        engine: &Engine,
        record: &mut Record,
        going: &[String],
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        if going.is_empty() {
            return Ok(());
        }
        let deadline = Deadline::after(self.timeout_secs);
        for name in going {
            let Some(node) = record.node(name).cloned() else { continue };
            if !cluster::serves_slots(&self.redis, record, &node)? {
                continue;
            }
            if node.role == Role::Master {
                return Err(BackendError::CannotScale {
                    deployment: record.name.clone(),
                    reason: format!("`{name}` still serves slots; they must move to the shards that stay first"),
                });
            }
            progress.step(&format!("`{name}` is a master now: handing its role to a node that stays"));
            self.fail_over_from(record, &node, going, &deadline)?;
        }
        let ids: Vec<String> = going
            .iter()
            .filter_map(|g| record.node(g))
            .map(|n| cluster::my_id(&self.redis, record, n))
            .collect::<Result<_, _>>()?;
        progress.step(&format!("removing {}", going.join(", ")));
        for name in going {
            self.remove_container(engine, record, name)?;
        }
        record.nodes.retain(|n| !going.contains(&n.name));
        cluster::forget(&self.redis, record, &ids)?;
        Ok(())
    }

    /// Makes the containers of `added` (records of the new render's nodes)
    /// and has them join the cluster; on failure they are removed again.
    fn add_cluster_nodes(
        &self,
        engine: &Engine,
        record: &mut Record,
        added: Vec<NodeRecord>,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let deadline = Deadline::after(self.timeout_secs);
        let names: Vec<String> = added.iter().map(|n| n.name.clone()).collect();
        write_render(record, artifacts, &names)?;
        if added.is_empty() {
            plan::refresh(engine, record)?;
            return cluster::wait_healthy(&self.redis, record, &deadline);
        }
        // Left by a run that died: a new node starts empty.
        for n in &names {
            self.remove_container(engine, record, n)?;
        }
        let at = record.nodes.iter().rposition(|n| n.role != Role::Sentinel).map_or(0, |i| i + 1);
        record.nodes.splice(at..at, added);
        plan::refresh(engine, record)?;
        progress.step(&format!("creating {} ({} up)", names.join(", "), engine.name));
        let result = self.join(engine, record, &names, &deadline, progress);
        if result.is_err() {
            progress.step("scaling failed: removing the new nodes");
            for n in &names {
                let _ = self.remove_container(engine, record, n);
            }
            record.nodes.retain(|n| !names.contains(&n.name));
            let _ = plan::refresh(engine, record);
        }
        result
    }

    fn join(
        &self,
        engine: &Engine,
        record: &Record,
        names: &[String],
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        let mut args = vec!["up", "-d", "--no-deps"];
        args.extend(names.iter().map(String::as_str));
        engine.compose(&project(record), &args, Duration::from_secs(300))?;
        self.wait_up(engine, record, deadline)?;
        progress.step("the new nodes join the cluster");
        cluster::join_masters(&self.redis, record, names, deadline)?;
        cluster::join_replicas(&self.redis, record, deadline)?;
        cluster::wait_healthy(&self.redis, record, deadline)
    }
}

/// The new render's files for the nodes `coming` (a name that comes back
/// may have had another role), the files nobody has yet, and the compose
/// file with their services.
fn write_render(record: &Record, artifacts: &ArtifactSet, coming: &[String]) -> Result<(), BackendError> {
    for a in artifacts.iter() {
        if coming.iter().any(|n| a.path.starts_with(&format!("redis/{n}/"))) {
            crate::registry::write_atomic(&record.path(&a.path), &a.content, true)?;
        }
    }
    files::write_missing(artifacts, &record.state_dir)?;
    files::write_missing(artifacts, &record.path(RENDERED))?;
    super::scale::write_compose(record, artifacts)
}
