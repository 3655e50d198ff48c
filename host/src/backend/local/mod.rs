//! The local backend: the topology as `redis-server` / `redis-sentinel`
//! processes on this machine, one state folder per deployment
//! (`$REDPLATE_HOME/deployments/<name>/`: the rendered tree, `data/<node>`,
//! `logs/<node>.log`, `tls/`), every process started with that folder as its
//! working directory because the rendered configs use paths relative to it.
//!
//! Must not render or read templates (that is `ops`). Talks to Redis only
//! through the Redis client ([`conn`]: no `redis-cli`), makes certificates
//! in the process ([`tls`]: no `openssl`) and signals its processes through
//! system calls ([`process`]: no `kill`); the programs it runs are
//! `redis-server` and `redis-sentinel`, nothing else.

pub mod apply;
pub mod cluster;
pub mod conn;
pub mod files;
pub mod gateway;
mod handover;
pub mod plan;
pub mod ports;
pub mod process;
pub mod ready;
mod reshape;
pub mod scale;
mod start;
pub mod status;
pub mod tls;

use super::{Backend, BackendError, Preparation, Progress, Save, Status};
use crate::artifact::ArtifactSet;
use crate::client::Endpoint;
use crate::registry::{NodeRecord, Record};
use redplate_config::{Config, Target, Topology};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a node gets to save and exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The local backend.
pub struct LocalBackend {
    /// Seconds to wait for readiness.
    pub timeout_secs: u64,
    /// Connections to the nodes, kept for the backend's life.
    redis: conn::Redis,
}

impl Default for LocalBackend {
    fn default() -> Self {
        LocalBackend { timeout_secs: 120, redis: conn::Redis::default() }
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn target(&self) -> Target {
        Target::Local
    }

    fn prepare(&self, config: &Config, dir: &Path, progress: &dyn Progress) -> Result<Preparation, BackendError> {
        plan::prepare(config, dir, progress)
    }

    fn place(
        &self,
        config: &Config,
        reserved: &BTreeMap<u16, String>,
        failed: Option<&Record>,
    ) -> Result<Vec<String>, BackendError> {
        let base = plan::place(config, reserved, failed)?;
        Ok(vec![format!("network.local_base_port={base}")])
    }

    fn install(&self, record: &mut Record, artifacts: &ArtifactSet, topology: &Topology) -> Result<(), BackendError> {
        plan::install(record, artifacts, topology)
    }

    fn discard(&self, record: &Record, progress: &dyn Progress) -> Result<(), BackendError> {
        self.destroy(record, false, progress)?;
        for node in &record.nodes {
            let data = record.path(&format!("data/{}", node.name));
            match std::fs::remove_dir_all(&data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackendError::Io { action: "remove", path: data, source: e }),
            }
        }
        Ok(())
    }

    fn start(&self, record: &mut Record, save: Save, progress: &dyn Progress) -> Result<(), BackendError> {
        // A move to other ports that was interrupted is finished first.
        ports::finish(record, save)?;
        self.start_nodes(record, progress)
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
        status::status(&self.redis, record)
    }

    fn check_scalable(&self, record: &Record) -> Result<(), BackendError> {
        LocalBackend::check_scalable(self, record)
    }

    fn scale(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        self.scale_with(record, replicas, artifacts, progress)
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
        self.unpersisted_nodes(record)
    }

    fn stop(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError> {
        self.stop_nodes(record, progress);
        Ok(())
    }

    fn relocate(
        &self,
        record: &mut Record,
        reserved: &BTreeMap<u16, String>,
        save: Save,
        progress: &dyn Progress,
    ) -> Result<(), BackendError> {
        progress.step("choosing free ports");
        let base = ports::choose(record, reserved)?;
        progress.step("rewriting the node files for the new ports");
        ports::move_to(record, base, save)
    }

    fn logs(&self, record: &Record, node: Option<&str>, lines: usize) -> Result<Vec<(String, String)>, BackendError> {
        let names: Vec<&str> = match node {
            Some(n) if record.node(n).is_none() => {
                return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: n.into() });
            }
            Some(n) => vec![n],
            None => record.nodes.iter().map(|n| n.name.as_str()).collect(),
        };
        Ok(names.into_iter().map(|n| (n.to_owned(), files::tail(&record.log_file(n), lines))).collect())
    }

    fn destroy(&self, record: &Record, purge: bool, progress: &dyn Progress) -> Result<(), BackendError> {
        let mut r = record.clone();
        self.stop_nodes(&mut r, progress);
        // Processes started by a crashed redplate are not in the record: find
        // them by their working directory under the state folder.
        self.reap(&record.state_dir);
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
        let pids = orphans(dir);
        start::stop_all(&pids, dir);
    }

    fn endpoint(&self, record: &Record, node: &NodeRecord) -> Endpoint {
        conn::endpoint(record, node)
    }

    fn set_gateway(&self, record: &mut Record, on: bool) -> Result<String, BackendError> {
        if on {
            record.gateway.get_or_insert_with(Default::default);
            if let Err(e) = gateway::start(record) {
                // Not recorded, so the next `apply` tries again.
                record.gateway = None;
                return Err(e);
            }
            Ok(format!("started the tenant gateway on port {}", record.gateway_port().unwrap_or_default()))
        } else {
            gateway::stop(record);
            record.gateway = None;
            Ok("stopped the tenant gateway".into())
        }
    }
}

/// Redis processes whose working directory is `dir` (left behind by a crash).
pub fn orphans(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process::ours(*pid, dir))
        .collect()
}
