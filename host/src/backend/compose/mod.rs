//! The Compose backend: the rendered Compose project (`compose/compose.yaml`
//! in the deployment's state folder, plus the backend's override file) run by
//! whichever engine this machine has — `docker compose`, `podman-compose` or
//! `podman compose` ([`engine`]) — one project per deployment, named after it.
//!
//! redplate talks to the containers through their published ports with the
//! Redis client, as it talks to local processes (the local backend's
//! connection pool and waits are reused); the engine is asked only about
//! containers (state, health checks, logs) and to create, start, stop and
//! remove them. Must not render or read templates (that is `ops`), and runs
//! no `redis-cli`.
//!
//! What it refuses, with the reason in the error: `start --new-ports`,
//! and the changes `apply` cannot make to running containers ([`update`]).

pub mod engine;
mod network;
pub mod plan;
mod reshape;
mod scale;
mod start;
mod status;
mod update;

use super::local::conn::{self, Redis, T};
use super::{Backend, BackendError, Preparation, Progress, Save, Status};
use crate::artifact::ArtifactSet;
use crate::client::Endpoint;
use crate::registry::{DeployState, NodeRecord, Record};
use engine::{Engine, Project};
use redplate_config::{Config, Target, Topology};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How long `compose stop` / `down` may take (data nodes get 30 s to save).
const DOWN: Duration = Duration::from_secs(180);

/// The Compose backend.
pub struct ComposeBackend {
    /// Seconds to wait for readiness.
    pub timeout_secs: u64,
    redis: Redis,
    engine: OnceLock<Engine>,
}

impl Default for ComposeBackend {
    fn default() -> Self {
        ComposeBackend { timeout_secs: 180, redis: Redis::default(), engine: OnceLock::new() }
    }
}

/// The compose project of `record`: named after the deployment, its
/// rendered file and the backend's override.
pub fn project(record: &Record) -> Project {
    Project {
        name: record.name.clone(),
        dir: record.path("compose"),
        files: vec![record.path(plan::COMPOSE_FILE), record.path(plan::OVERRIDE_FILE)],
    }
}

impl ComposeBackend {
    /// The engine, found on first use.
    fn engine(&self) -> Result<&Engine, BackendError> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let found = engine::detect()?;
        Ok(self.engine.get_or_init(|| found))
    }

    fn refuse(operation: &'static str, reason: &'static str) -> BackendError {
        BackendError::Refused { backend: "compose".into(), operation, reason }
    }

    /// Stops the project's containers (`down` with `purge`: the volumes too).
    fn down(&self, record: &Record, volumes: bool, progress: &dyn Progress) -> Result<(), BackendError> {
        let engine = self.engine()?;
        if !plan::has_project(&record.state_dir) {
            return Ok(());
        }
        progress.step(&format!("removing the containers ({} down)", engine.name));
        let args: &[&str] = if volumes { &["down", "-v", "-t", "30"] } else { &["down", "-t", "30"] };
        engine.compose(&project(record), args, DOWN).map(|_| ())
    }
}

impl Backend for ComposeBackend {
    fn kind(&self) -> &'static str {
        "compose"
    }

    fn target(&self) -> Target {
        Target::Compose
    }

    fn prepare(&self, config: &Config, dir: &Path, progress: &dyn Progress) -> Result<Preparation, BackendError> {
        progress.step("looking for a container engine");
        self.engine()?;
        plan::prepare(config, dir, progress)
    }

    fn place(
        &self,
        config: &Config,
        reserved: &BTreeMap<u16, String>,
        failed: Option<&Record>,
    ) -> Result<Vec<String>, BackendError> {
        plan::place(config, reserved, failed)
    }

    fn install(&self, record: &mut Record, artifacts: &ArtifactSet, topology: &Topology) -> Result<(), BackendError> {
        plan::install(self.engine()?, record, artifacts, topology)
    }

    fn discard(&self, record: &Record, progress: &dyn Progress) -> Result<(), BackendError> {
        self.down(record, true, progress)
    }

    fn start(&self, record: &mut Record, _save: Save, progress: &dyn Progress) -> Result<(), BackendError> {
        let engine = self.engine()?;
        let result = self.up(engine, record, progress);
        if let Err(e) = &result {
            // A port another program took makes the engine fail to publish it.
            let taken = e.to_string().contains("address already in use");
            progress.step("start failed: stopping what it started");
            let _ = engine.compose(&project(record), &["stop", "-t", "10"], DOWN);
            if taken && let Some(n) = record.nodes.first() {
                return Err(BackendError::PortTaken { node: n.name.clone(), port: n.port });
            }
        }
        result
    }

    fn update(
        &self,
        record: &mut Record,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        self.update_to(record, artifacts, progress)
    }

    fn status(&self, record: &Record) -> Result<Status, BackendError> {
        self.status_of(self.engine()?, record)
    }

    fn check_scalable(&self, record: &Record) -> Result<(), BackendError> {
        self.check(record)
    }

    fn scale(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.scale_to(record, replicas, artifacts, progress)
    }

    fn reshape(
        &self,
        record: &mut Record,
        topology: &Topology,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.reshape_to(record, topology, artifacts, progress)
    }

    fn unpersisted(&self, record: &Record) -> Vec<String> {
        record
            .data_nodes()
            .filter(|n| {
                let c = self.redis.to(record, n);
                let get = |key: &str| c.query::<(String, String)>(&["CONFIG", "GET", key], T).ok().map(|(_, v)| v);
                match (get("appendonly"), get("save")) {
                    (Some(aof), Some(save)) => aof.trim() != "yes" && save.trim().is_empty(),
                    // Not running: nothing to lose now.
                    _ => false,
                }
            })
            .map(|n| n.name.clone())
            .collect()
    }

    fn stop(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let engine = self.engine()?;
        progress.step(&format!("stopping the containers ({} stop)", engine.name));
        // Sentinels first, so they do not fail over while the data nodes go.
        let sentinels: Vec<&str> = record.sentinels().map(|n| n.name.as_str()).collect();
        if !sentinels.is_empty() {
            let mut args = vec!["stop", "-t", "10"];
            args.extend(&sentinels);
            engine.compose(&project(record), &args, DOWN)?;
        }
        engine.compose(&project(record), &["stop", "-t", "30"], DOWN)?;
        for n in &mut record.nodes {
            n.pid = None;
        }
        Ok(())
    }

    fn relocate(
        &self,
        _: &mut Record,
        _: &BTreeMap<u16, String>,
        _: Save,
        _: &dyn Progress,
    ) -> Result<(), BackendError> {
        Err(Self::refuse(
            "move a project to other ports (`start --new-ports`)",
            "its ports are in the rendered compose file; free the taken port, or destroy and deploy again",
        ))
    }

    fn logs(&self, record: &Record, node: Option<&str>, lines: usize) -> Result<Vec<(String, String)>, BackendError> {
        let engine = self.engine()?;
        if let Some(n) = node
            && record.node(n).is_none()
        {
            return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: n.into() });
        }
        let containers = engine.containers(&record.name)?;
        Ok(record
            .nodes
            .iter()
            .filter(|n| node.is_none_or(|wanted| wanted == n.name))
            .map(|n| {
                let text = match containers.iter().find(|c| c.service == n.name) {
                    Some(c) => engine.logs(c, lines),
                    None => "(no container)".to_owned(),
                };
                (n.name.clone(), text)
            })
            .collect())
    }

    fn destroy(&self, record: &Record, purge: bool, progress: &dyn Progress) -> Result<(), BackendError> {
        self.down(record, purge, progress)?;
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

    fn reap(&self, dir: &Path) {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { return };
        if !plan::has_project(dir) {
            return;
        }
        let Ok(engine) = self.engine() else { return };
        let p = Project {
            name: name.to_owned(),
            dir: dir.join("compose"),
            files: vec![dir.join(plan::COMPOSE_FILE), dir.join(plan::OVERRIDE_FILE)],
        };
        let _ = engine.compose(&p, &["down", "-v", "-t", "10"], DOWN);
    }

    fn endpoint(&self, record: &Record, node: &NodeRecord) -> Endpoint {
        conn::endpoint(record, node)
    }

    fn node_at<'r>(&self, record: &'r Record, host: &str, _port: u16) -> Option<&'r NodeRecord> {
        // Every container listens on the same port: nodes announce their service name.
        record.nodes.iter().find(|n| n.name == host)
    }

    /// The node's named volume (`<project>_<node>-data`), where the engine
    /// keeps it on this machine; readable by root (or podman's own user).
    fn host_data_dir(&self, record: &Record, node: &NodeRecord, dir: &str) -> Result<PathBuf, BackendError> {
        let engine = self.engine()?;
        let volume = format!("{}_{}-data", record.name, node.name);
        let path = engine.cli_ok(&["volume", "inspect", &volume, "--format", "{{.Mountpoint}}"], engine::SHORT)?;
        let path = PathBuf::from(path.trim());
        if std::fs::read_dir(&path).is_err() {
            return Err(BackendError::Engine {
                command: format!("{} volume inspect {volume}", engine.cli),
                message: format!(
                    "`{}`'s data folder `{dir}` is the volume `{volume}` at `{}`, which this user cannot read; \
                     run redplate as root, or as the user the engine runs as",
                    node.name,
                    path.display()
                ),
            });
        }
        Ok(path)
    }

    /// Its pinned address on the project network and the ports it listens
    /// on in its container.
    fn meet_address(&self, record: &Record, node: &NodeRecord) -> Result<(String, u16, u16), BackendError> {
        let conf = record.path(&node.conf);
        let (plain, tls) = super::local::plan::conf_ports(&conf)?;
        let port = plain.or(tls).unwrap_or(node.port);
        let bus = super::local::files::conf_value(&conf, "cluster-port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .unwrap_or_else(|| port.saturating_add(10000));
        let address = plan::pinned_address(record, &node.name).ok_or_else(|| BackendError::Engine {
            command: "compose".into(),
            message: format!("`{}` has no pinned address in `{}`", node.name, plan::OVERRIDE_FILE),
        })?;
        Ok((address, port, bus))
    }

    fn data_placed(&self, _record: &Record, _node: &NodeRecord, path: &Path) -> Result<(), BackendError> {
        plan::give(self.engine()?, &[path.to_path_buf()])
    }
}

/// Whether `record` runs (for the scale check).
fn running(record: &Record) -> bool {
    record.state == DeployState::Running
}
