//! The typed template: every section of a redplate template, with its
//! defaults, documentation and allowed values. The JSON Schema is derived from
//! these types, so a doc comment here is the option's description.

mod core;
mod memory;
mod ops;
mod security;
mod tenancy;

pub use self::core::*;
pub use self::memory::*;
pub use self::ops::*;
pub use self::security::*;
pub use self::tenancy::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A redplate template: one Redis deployment, fully described.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The preset layered under this template (`development`, `staging` or
    /// `production`); a `--preset` argument overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<Environment>,
    /// What is deployed: name, environment, topology mode and Redis image.
    pub deployment: Deployment,
    /// The size of each Redis node.
    pub resources: Resources,
    /// Ports, bind addresses and allowed client networks.
    pub network: Network,
    /// RDB snapshots and the append-only file.
    pub persistence: Persistence,
    /// Replicas of each master.
    pub replication: Replication,
    /// Redis Sentinel (mode `sentinel`).
    pub sentinel: Sentinel,
    /// Redis Cluster (mode `cluster`).
    pub cluster: Cluster,
    /// Memory limit, eviction, lazy freeing and defragmentation.
    pub memory: Memory,
    /// Threads, timeouts, buffers, slow log and latency monitoring.
    pub performance: Performance,
    /// Authentication, ACL users, TLS and dangerous commands.
    pub security: Security,
    /// Several tenants sharing this deployment.
    pub tenancy: Tenancy,
    /// The cache strategy: key patterns, TTLs, refresh and write modes.
    pub cache: Cache,
    /// Prometheus exporter, ServiceMonitor and alerts.
    pub monitoring: Monitoring,
    /// Scheduled backups.
    pub backup: Backup,
    /// Kubernetes manifests.
    pub kubernetes: Kubernetes,
    /// Docker Compose project.
    pub compose: Compose,
    /// Paths to third-party `.wasm` plugins (generators or cache strategies).
    #[schemars(length(max = 64))]
    pub plugins: Vec<String>,
}

/// `true`, for `#[serde(default = ...)]`.
pub(crate) fn yes() -> bool {
    true
}
