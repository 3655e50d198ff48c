//! Deployment backends: what turns a rendered artifact set and its topology
//! into running Redis, behind one trait ([`Backend`]) that `ops` reaches them
//! through — `ops` never names a backend, so Compose and Kubernetes can come
//! without touching it. The deployment registry they read lives beside `ops`
//! ([`crate::registry`]), since the API and the gateway share it too.
//!
//! Backends never render and never parse templates: `ops` renders and hands
//! them the artifacts and the registry [`Record`]: [`local`] runs processes,
//! [`compose`] a Compose project with docker or podman.

pub mod compose;
pub mod local;

use crate::artifact::ArtifactSet;
use crate::client::{ClientError, Endpoint};
use crate::registry::{NodeRecord, Record, RegistryError, TlsFiles};
use redplate_config::model::Mode;
use redplate_config::{Config, Role, Target, Topology};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The backend a deployment gets when nothing else is asked for.
pub const DEFAULT: &str = "local";

/// The backend named `kind` (a record's `backend` field).
pub fn named(kind: &str) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        "local" => Ok(Box::new(local::LocalBackend::default())),
        "compose" => Ok(Box::new(compose::ComposeBackend::default())),
        other => Err(BackendError::Unsupported { backend: other.to_owned(), operation: "run deployments" }),
    }
}

/// The backend that runs `record`.
pub fn of(record: &Record) -> Result<Box<dyn Backend>, BackendError> {
    named(&record.backend)
}

/// Where redplate's own connections reach `node` of `record` (what
/// `ops::connect` hands the Redis client).
pub fn endpoint(record: &Record, node: &NodeRecord) -> Endpoint {
    match of(record) {
        Ok(backend) => backend.endpoint(record, node),
        // A record naming no known backend was edited by hand: its nodes are local ones.
        Err(_) => local::conn::endpoint(record, node),
    }
}

/// The node of `record` that a sentinel or a cluster names as `host:port`.
pub fn node_at<'r>(record: &'r Record, host: &str, port: u16) -> Option<&'r NodeRecord> {
    match of(record) {
        Ok(backend) => backend.node_at(record, host, port),
        Err(_) => record.nodes.iter().find(|n| n.port == port),
    }
}

/// Where `node`'s data folder is on this machine, from what the node's
/// `CONFIG GET dir` says (the backup scripts read and write it there).
pub fn host_data_dir(record: &Record, node: &NodeRecord, dir: &str) -> Result<PathBuf, BackendError> {
    of(record)?.host_data_dir(record, node, dir)
}

/// Where the other nodes of a cluster reach `node` (`CLUSTER MEET`'s
/// address, port and bus port).
pub fn meet_address(record: &Record, node: &NodeRecord) -> Result<(String, u16, u16), BackendError> {
    of(record)?.meet_address(record, node)
}

/// After a restore placed files in `node`'s data folder `path`: hands them
/// to the user the node's server runs as.
pub fn data_placed(record: &Record, node: &NodeRecord, path: &Path) -> Result<(), BackendError> {
    of(record)?.data_placed(record, node, path)
}

/// Why a backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A program the backend runs (`redis-server`, `redis-sentinel`) is not installed.
    #[error("`{program}` is not installed or not on `PATH`: {source}")]
    MissingProgram {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// No container engine with a compose front end answers (Compose backend).
    #[error("no container engine found for the compose backend: {tried}")]
    NoEngine { tried: String },
    /// The container engine refused a command; `message` is the end of what it printed.
    #[error("`{command}` failed: {message}")]
    Engine { command: String, message: String },
    /// An image the project runs is not on this machine and the engine
    /// could not pull it (Compose backend).
    #[error("image `{image}` is not on this machine and `{command}` failed: {message}")]
    ImageUnavailable { image: String, command: String, message: String },
    /// A file or folder of the deployment could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime that drives the Redis client could not start.
    #[error("cannot start the runtime for Redis connections: {source}")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    /// Talking to a node failed: it refused the command, did not answer in
    /// time, or could not be reached.
    #[error(transparent)]
    Redis(#[from] ClientError),
    /// The local certificate authority could not make its certificates.
    #[error("cannot make the local TLS certificates: {source}")]
    Certificate {
        #[source]
        source: rcgen::Error,
    },
    /// No free block of ports was found.
    #[error("no free block of {count} ports found from port {from}")]
    NoFreePorts { from: u16, count: usize },
    /// A port the deployment needs is taken by another process.
    #[error("port {port} of node `{node}` is taken by another process")]
    PortTaken { node: String, port: u16 },
    /// A node's process exited while starting; the tail of its log says why.
    #[error("node `{node}` exited while starting ({status}); its log ends with:\n{log}")]
    NodeExited { node: String, status: String, log: String },
    /// The deployment did not become ready in time.
    #[error("the deployment was not ready after {seconds} s: {waiting_for}")]
    NotReady { seconds: u64, waiting_for: String },
    /// A node answered, but not as the step needs (the reason says how).
    #[error("`{command}` on node `{node}`: {message}")]
    Command { node: String, command: String, message: String },
    /// The registry holds no deployment of that name.
    #[error("no deployment named `{0}`")]
    Unknown(String),
    /// A deployment of that name already exists.
    #[error("a deployment named `{0}` already exists")]
    Exists(String),
    /// The registry entry cannot be read.
    #[error("the registry entry `{path}` is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// The backend does not do the operation, for a reason that says what to do instead.
    #[error("the {backend} backend does not {operation}: {reason}")]
    Refused { backend: String, operation: &'static str, reason: &'static str },
    /// The backend does not support the operation.
    #[error("the {backend} backend cannot {operation} yet")]
    Unsupported { backend: String, operation: &'static str },
    /// The deployment cannot be scaled as asked (its mode or its state); the reason says what to do.
    #[error("cannot scale `{deployment}`: {reason}")]
    CannotScale { deployment: String, reason: String },
    /// A changed template cannot be applied to the running deployment as it
    /// is; nothing was changed, and the reason says what to do.
    #[error("cannot apply the change to `{deployment}`: {reason}")]
    CannotApply { deployment: String, reason: String },
    /// The deployment cannot move to other ports as asked; the reason says what to do.
    #[error("cannot move `{deployment}` to other ports: {reason}")]
    CannotMove { deployment: String, reason: String },
    /// A node name that is not part of the deployment.
    #[error("deployment `{deployment}` has no node `{node}`")]
    UnknownNode { deployment: String, node: String },
}

impl From<RegistryError> for BackendError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unknown(name) => BackendError::Unknown(name),
            RegistryError::Corrupt { path, message } => BackendError::Corrupt { path, message },
            RegistryError::Io { action, path, source } => BackendError::Io { action, path, source },
        }
    }
}

impl BackendError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BackendError::Io { action, path, source }
    }

    /// Whether the same deployment may succeed placed elsewhere (another
    /// program took a port between the probe and the start).
    pub fn place_elsewhere(&self) -> bool {
        matches!(self, BackendError::PortTaken { .. })
    }
}

/// Reports steps that take more than a moment (the CLI draws a spinner).
pub trait Progress {
    /// A new step began.
    fn step(&self, message: &str);
}

/// A progress sink that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str) {}
}

/// What a backend changes in a template so that it runs where the backend
/// runs it, decided before the render.
#[derive(Debug, Clone, Default)]
pub struct Preparation {
    /// `--set`s to layer on the template.
    pub sets: Vec<String>,
    /// Each change and why, for the connection info.
    pub adjustments: Vec<String>,
    /// The TLS files redplate's own connections use.
    pub tls: Option<TlsFiles>,
}

/// Records `record` durably (the registry's `save`): a backend calls it
/// between the steps of a change that must survive a crash midway.
pub type Save<'a> = &'a dyn Fn(&Record) -> Result<(), BackendError>;

/// One deployment backend. Operations that wait (start, scale, update,
/// stop) block the calling thread until the deployment is ready; async
/// callers run them with `spawn_blocking`.
pub trait Backend {
    /// The backend's name, kept in the record (`local`).
    fn kind(&self) -> &'static str;

    /// The target templates are rendered for, to run on this backend.
    fn target(&self) -> Target;

    /// What must change in `config` to run here (certificates made for a
    /// template that asks for TLS without files, settings this machine's
    /// Redis cannot run); may write into the state folder `dir`.
    fn prepare(&self, config: &Config, dir: &Path, progress: &dyn Progress) -> Result<Preparation, BackendError>;

    /// The `--set`s that place the deployment where nothing else is (the
    /// local backend: a free block of ports, none of them `reserved` by
    /// another deployment). After a start that failed with
    /// [`BackendError::place_elsewhere`], `failed` is that placement's record
    /// and the search goes on past it.
    fn place(
        &self,
        config: &Config,
        reserved: &BTreeMap<u16, String>,
        failed: Option<&Record>,
    ) -> Result<Vec<String>, BackendError>;

    /// Puts the rendered `artifacts` into the deployment's state folder and
    /// fills in what the backend knows of its nodes (`record.nodes`, its
    /// management user, the template's users).
    fn install(&self, record: &mut Record, artifacts: &ArtifactSet, topology: &Topology) -> Result<(), BackendError>;

    /// Undoes a placement whose start failed with
    /// [`BackendError::place_elsewhere`]: stops what it started and removes
    /// the data it made, keeping what `prepare` made, so the next placement
    /// starts clean in the same state folder.
    fn discard(&self, record: &Record, progress: &dyn Progress) -> Result<(), BackendError>;

    /// Starts every node that is not running and waits until the
    /// deployment is ready; a relocation that was interrupted is finished
    /// first. All or nothing: what this call started is stopped again when
    /// it fails, and the record lists what runs.
    fn start(&self, record: &mut Record, save: Save, progress: &dyn Progress) -> Result<(), BackendError>;

    /// Applies a new render of the template to the running deployment (its
    /// nodes stay the same) the gentlest way it can; one line per action.
    fn update(
        &self,
        record: &mut Record,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError>;

    /// Every node's state.
    fn status(&self, record: &Record) -> Result<Status, BackendError>;

    /// `Err(CannotScale)` when the deployment's mode or state cannot take a scale.
    fn check_scalable(&self, record: &Record) -> Result<(), BackendError>;

    /// Gives every master `replicas` replicas, adding or removing replicas
    /// at the end of the topology, and waits until the deployment is ready.
    /// `artifacts` is the render with the new number of replicas.
    fn scale(
        &self,
        record: &mut Record,
        replicas: u8,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError>;

    /// Cluster mode: makes the running node set that of `topology` (the
    /// template rendered as `artifacts` with another number of shards):
    /// nodes it adds start and join (masters without slots, replicas
    /// following their shard's master), nodes it drops or gives another
    /// role or shard are stopped, forgotten and removed (or started again
    /// in their new role). Moves no slot: a node that goes must serve none
    /// (`ops` moves them first); waits until the cluster is healthy.
    fn reshape(
        &self,
        record: &mut Record,
        topology: &Topology,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<(), BackendError>;

    /// The running data nodes that would lose their data when stopped.
    fn unpersisted(&self, record: &Record) -> Vec<String>;

    /// Stops every process; data is kept where the nodes persist it.
    fn stop(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError>;

    /// Moves the stopped deployment to a free placement (another program
    /// took a port of it), rewriting its files; `save` records each step.
    fn relocate(
        &self,
        record: &mut Record,
        reserved: &BTreeMap<u16, String>,
        save: Save,
        progress: &dyn Progress,
    ) -> Result<(), BackendError>;

    /// The last `lines` lines of each node's log (or of `node`'s).
    fn logs(&self, record: &Record, node: Option<&str>, lines: usize) -> Result<Vec<(String, String)>, BackendError>;

    /// Stops every process; with `purge`, removes the state folder too.
    fn destroy(&self, record: &Record, purge: bool, progress: &dyn Progress) -> Result<(), BackendError>;

    /// Stops what still runs from the state folder `dir` of a deployment
    /// whose record is gone or unreadable.
    fn reap(&self, dir: &Path);

    /// Where redplate's own connections reach `node` (address, TLS files,
    /// management user and password).
    fn endpoint(&self, record: &Record, node: &NodeRecord) -> Endpoint;

    /// Starts (`on`) or stops the tenant gateway of a running deployment
    /// whose template turned `tenancy.gateway` on or off; what it did.
    fn set_gateway(&self, record: &mut Record, on: bool) -> Result<String, BackendError> {
        let _ = (record, on);
        Err(BackendError::Unsupported { backend: self.kind().to_owned(), operation: "run the tenant gateway" })
    }

    /// The node a sentinel or a cluster names as `host:port` (local nodes
    /// differ by port; containers by name).
    fn node_at<'r>(&self, record: &'r Record, host: &str, port: u16) -> Option<&'r NodeRecord> {
        let _ = host;
        record.nodes.iter().find(|n| n.port == port)
    }

    /// Where the other nodes of a cluster reach `node`: loopback and its ports.
    fn meet_address(&self, record: &Record, node: &NodeRecord) -> Result<(String, u16, u16), BackendError> {
        Ok(local::cluster::local_meet_address(record, node))
    }

    /// Where `node`'s data folder `dir` (as the node names it) is on this
    /// machine: local nodes name it themselves, relative to the state folder.
    fn host_data_dir(&self, record: &Record, node: &NodeRecord, dir: &str) -> Result<PathBuf, BackendError> {
        let _ = node;
        let p = PathBuf::from(dir);
        Ok(if p.is_absolute() { p } else { record.state_dir.join(p) })
    }

    /// Files placed in `node`'s data folder `path` by a restore are handed to
    /// the user its server runs as (local nodes: this process's).
    fn data_placed(&self, record: &Record, node: &NodeRecord, path: &Path) -> Result<(), BackendError> {
        let _ = (record, node, path);
        Ok(())
    }
}

/// A deployment's state as `redplate status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub mode: Mode,
    pub state: State,
    pub nodes: Vec<NodeStatus>,
    /// Sentinel mode: each sentinel's view of the master (`host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sentinel_views: Vec<SentinelView>,
    /// Cluster mode: `cluster_state` as the first reachable node reports it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cluster_state: Option<String>,
    /// The tenant gateway, when the deployment has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gateway: Option<GatewayStatus>,
}

/// The tenant gateway's state: its address, its process and, while it
/// runs, each tenant's connections, memory account and counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub listen: String,
    pub pid: Option<u32>,
    pub up: bool,
    pub tls: bool,
    pub connections: Option<usize>,
    #[serde(default)]
    pub tenants: Vec<crate::gateway::quota::TenantSnapshot>,
}

/// How a deployment is doing, from its nodes' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Every node answers.
    Running,
    /// Some nodes answer, some do not.
    Degraded,
    /// No node answers, though the deployment should run.
    Down,
    /// Stopped on purpose (`redplate stop`).
    Stopped,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Stopped => "stopped",
        })
    }
}

/// One node in [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// The role the node reports (failovers change it), or the role it
    /// was deployed with when it is down.
    pub role: Role,
    pub pid: Option<u32>,
    pub port: u16,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repl_offset: Option<u64>,
    /// Bytes behind the master (replicas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// `host:port` of the master this replica follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Cluster mode: the slot ranges this node serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<String>,
}

/// What one sentinel thinks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentinelView {
    pub sentinel: String,
    /// `host:port`, or `None` when the sentinel is down.
    pub master: Option<String>,
}
