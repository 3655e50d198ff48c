//! Deployment backends: what turns a rendered artifact set and its topology
//! into running Redis, behind one small trait (`apply`, `status`, `scale`,
//! `destroy`). The deployment registry they read lives beside `ops`
//! ([`crate::registry`]), since the API and the gateway share it too.
//!
//! Backends never render and never parse templates: `ops::deploy` renders
//! into the deployment's state folder and hands them its registry
//! [`Record`]. Only [`local`] exists so far.

pub mod local;

use crate::registry::Record;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;


/// Why a backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A program the backend runs (`redis-server`, `redis-cli`, `openssl`) is not installed.
    #[error("`{program}` is not installed or not on `PATH`: {source}")]
    MissingProgram {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// A file or folder of the deployment could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
    /// A Redis command failed.
    #[error("`{command}` on node `{node}` failed: {message}")]
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
    /// The backend does not support the operation.
    #[error("the {backend} backend cannot {operation} yet")]
    Unsupported { backend: &'static str, operation: &'static str },
    /// The deployment cannot be scaled as asked (its mode or its state); the reason says what to do.
    #[error("cannot scale `{deployment}`: {reason}")]
    CannotScale { deployment: String, reason: String },
    /// The deployment cannot move to other ports as asked; the reason says what to do.
    #[error("cannot move `{deployment}` to other ports: {reason}")]
    CannotMove { deployment: String, reason: String },
    /// A node name that is not part of the deployment.
    #[error("deployment `{deployment}` has no node `{node}`")]
    UnknownNode { deployment: String, node: String },
}

impl BackendError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BackendError::Io { action, path, source }
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

/// One deployment backend.
pub trait Backend {
    /// Starts (or restarts) the deployment described by `record` and waits until it is ready.
    fn apply(&self, record: &mut Record, progress: &dyn Progress) -> Result<(), BackendError>;
    /// Reports every node's state.
    fn status(&self, record: &Record) -> Result<Status, BackendError>;
    /// Gives every master `replicas` replicas, adding or removing replicas
    /// at the end of the topology, and waits until the deployment is ready.
    /// The files of the nodes it adds are already rendered in the state folder.
    fn scale(&self, record: &mut Record, replicas: u8, progress: &dyn Progress) -> Result<(), BackendError>;
    /// Stops every process; with `purge`, removes the data too.
    fn destroy(&self, record: &Record, purge: bool, progress: &dyn Progress) -> Result<(), BackendError>;
}

/// A deployment's state as `redplate status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub mode: String,
    /// `running`, `degraded`, `stopped`.
    pub state: String,
    pub nodes: Vec<NodeStatus>,
    /// Sentinel mode: each sentinel's view of the master (`host:port`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sentinel_views: Vec<SentinelView>,
    /// Cluster mode: `cluster_state` as the first reachable node reports it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cluster_state: Option<String>,
}

/// One node in [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// What the node reports (`master`, `replica`, `sentinel`), or the
    /// topology's role when it is down.
    pub role: String,
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
