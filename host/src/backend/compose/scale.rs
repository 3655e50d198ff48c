//! Scaling a Compose deployment's replicas (replication and sentinel mode):
//! the new render's files written beside the running ones, the added
//! replicas' services created with `up --no-deps` (the running ones are not
//! recreated) and pointed at the current master, removed ones' containers and volumes deleted and forgotten by
//! the sentinels (`SENTINEL RESET`); then the usual wait until ready.

use super::engine::SHORT;
use super::{ComposeBackend, plan, project, running};
use crate::artifact::ArtifactSet;
use crate::backend::local::apply::RENDERED;
use crate::backend::local::conn::T;
use crate::backend::local::{files, ready};
use crate::backend::{BackendError, Progress};
use crate::registry::{NodeRecord, Record};
use redplate_config::model::Mode;
use redplate_config::{Role, Topology};
use std::time::Duration;

impl ComposeBackend {
    /// `Err(CannotScale)` unless the deployment runs in replication, sentinel or cluster mode.
    pub(super) fn check(&self, record: &Record) -> Result<(), BackendError> {
        let refuse = |reason: String| Err(BackendError::CannotScale { deployment: record.name.clone(), reason });
        if record.mode == Mode::Standalone {
            return refuse(
                "a standalone deployment has no replicas; deploy it with `deployment.mode: replication` or `sentinel`"
                    .into(),
            );
        }
        if !running(record) {
            return refuse(format!("it is {}; run `redplate start {}` first", record.state, record.name));
        }
        Ok(())
    }

    /// Gives the master `replicas` replicas from `artifacts` (rendered for that many).
    pub(super) fn scale_to(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.check(record)?;
        if record.mode == Mode::Cluster {
            return self.scale_cluster(record, replicas, artifacts, progress);
        }
        let engine = self.engine()?;
        let Some(first) = record.data_nodes().next().cloned() else { return Ok(()) };
        let wanted = usize::from(replicas) + 1;
        let have = record.data_nodes().count();
        // New nodes' files; the compose file as rendered now.
        files::write_missing(artifacts, &record.state_dir)?;
        files::write_missing(artifacts, &record.path(RENDERED))?;
        // The users as rendered now, tenants made at run time included (the
        // stored template keeps them; the running nodes keep them in their
        // own copies): the replicas made now start with them.
        if let Some(acl) = artifacts.iter().find(|a| a.path == "redis/users.acl") {
            crate::registry::write_atomic(&record.path("redis/users.acl"), &acl.content, true)?;
            crate::registry::write_atomic(&record.path(&format!("{RENDERED}/redis/users.acl")), &acl.content, true)?;
            files::add_admin_user(&record.state_dir)?;
        }
        let project = project(record);
        if wanted > have {
            let added: Vec<NodeRecord> = (have..wanted)
                .map(|ordinal| new_replica(record, &first, u16::try_from(ordinal).unwrap_or(u16::MAX)))
                .collect();
            write_compose(record, artifacts)?;
            let at = record.data_nodes().count();
            for (i, n) in added.into_iter().enumerate() {
                record.nodes.insert(at + i, n);
            }
            plan::refresh(engine, record)?;
            let names: Vec<String> = record.data_nodes().skip(have).map(|n| n.name.clone()).collect();
            progress.step(&format!("creating {} ({} up)", names.join(", "), engine.name));
            let mut args = vec!["up", "-d", "--no-deps"];
            args.extend(names.iter().map(String::as_str));
            engine.compose(&project, &args, Duration::from_secs(300))?;
            let deadline = ready::Deadline::after(self.timeout_secs);
            self.wait_up(engine, record, &deadline)?;
            // Their rendered config follows the first master as deployed; after
            // a failover they follow the master of now (as the sentinels would
            // have them), at run time: the mounted config is read-only.
            if let Some((master, _)) = self.master(record) {
                let (host, port) = (master.name.clone(), master.ports.first().copied().unwrap_or(master.port));
                for n in record.data_nodes().skip(have) {
                    if n.name != host {
                        self.redis.to(record, n).run(&["REPLICAOF", &host, &port.to_string()], T)?;
                    }
                }
            }
        } else if wanted < have {
            let removed: Vec<String> = record.data_nodes().skip(wanted).map(|n| n.name.clone()).collect();
            progress.step(&format!("removing {}", removed.join(", ")));
            let containers = engine.containers(&record.name)?;
            for name in &removed {
                if let Some(c) = containers.iter().find(|c| &c.service == name) {
                    engine.compose(&project, &["stop", "-t", "10", name], Duration::from_secs(60))?;
                    engine.cli_ok(&["rm", "-f", &c.id], Duration::from_secs(60))?;
                }
                // Compose names a project's volumes `<project>_<volume>`.
                let _ = engine.cli(&["volume", "rm", "-f", &format!("{}_{name}-data", record.name)], SHORT);
            }
            record.nodes.retain(|n| !removed.contains(&n.name));
            write_compose(record, artifacts)?;
            plan::refresh(engine, record)?;
            if let Some(master) = record.master_name.clone() {
                progress.step("the sentinels forget the removed replicas");
                let deadline = ready::Deadline::after(self.timeout_secs);
                for s in record.sentinels() {
                    // Removing a container rewrites the engine's port
                    // forwarding: a connection may time out meanwhile.
                    while let Err(e) = self.redis.to(record, s).run(&["SENTINEL", "RESET", &master], T) {
                        deadline.check(|| format!("`SENTINEL RESET` on `{}`: {e}", s.name))?;
                    }
                }
            }
        }
        let deadline = ready::Deadline::after(self.timeout_secs);
        progress.step("waiting for the replicas to sync");
        self.wait_ready_after_change(record, &deadline)
    }

    fn wait_ready_after_change(&self, record: &Record, deadline: &ready::Deadline) -> Result<(), BackendError> {
        self.wait_synced(record, deadline)?;
        if record.mode == Mode::Sentinel {
            ready::wait_sentinels(&self.redis, record, deadline)?;
        }
        Ok(())
    }
}

/// The record of data node `ordinal`, a replica of the first master: its
/// published port is the first node's plus its ordinal.
pub(super) fn new_replica(record: &Record, first: &NodeRecord, ordinal: u16) -> NodeRecord {
    let name = Topology::data_node_name(&record.name, ordinal);
    NodeRecord {
        conf: format!("redis/{name}/redis.conf"),
        name,
        role: Role::Replica,
        port: first.port.saturating_add(ordinal),
        tls: first.tls,
        ports: first.ports.clone(),
        pid: None,
        replica_of: Some(first.name.clone()),
    }
}

/// Writes the newly rendered compose file over the running one (and the
/// last render's copy, which `apply` compares with).
pub(super) fn write_compose(record: &Record, artifacts: &ArtifactSet) -> Result<(), BackendError> {
    let Some(a) = artifacts.iter().find(|a| a.path == plan::COMPOSE_FILE) else {
        return Err(BackendError::Io {
            action: "find the rendered compose file in the render for",
            path: record.path(plan::COMPOSE_FILE),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    };
    crate::registry::write_atomic(&record.path(&format!("{RENDERED}/{}", plan::COMPOSE_FILE)), &a.content, false)?;
    Ok(crate::registry::write_atomic(&record.path(plan::COMPOSE_FILE), &a.content, false)?)
}
