//! Operations sections: monitoring, backup, Kubernetes and Compose.

use crate::model::SecretSource;
use crate::units::{ByteSize, Duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prometheus alerts rendered into a `PrometheusRule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Alerts {
    /// Whether to render a `PrometheusRule`.
    pub enabled: bool,
    /// Alert when `redis_up == 0` for this long.
    pub down_for: Duration,
    /// Alert when used memory exceeds this percentage of `maxmemory`.
    #[schemars(range(min = 1, max = 100))]
    pub memory_percent: u8,
    /// How long memory must stay high.
    pub memory_for: Duration,
    /// Alert on any eviction within 5 minutes.
    pub evictions: bool,
    /// Alert when connected clients exceed this percentage of `maxclients`.
    #[schemars(range(min = 1, max = 100))]
    pub clients_percent: u8,
    /// Alert when a replica's link is down.
    pub replication_broken: bool,
    /// Alert when the last RDB save failed.
    pub rdb_save_failed: bool,
    /// Extra labels on every alert (e.g. `severity: page`).
    pub labels: BTreeMap<String, String>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            enabled: false,
            down_for: Duration::secs(120),
            memory_percent: 90,
            memory_for: Duration::secs(120),
            evictions: true,
            clients_percent: 90,
            replication_broken: true,
            rdb_save_failed: true,
            labels: BTreeMap::new(),
        }
    }
}

/// Prometheus exporter, ServiceMonitor and alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Monitoring {
    /// Run `redis_exporter` next to every Redis node.
    pub exporter: bool,
    /// The exporter's port.
    #[schemars(range(min = 1, max = 65535))]
    pub exporter_port: u16,
    /// The exporter image (pinned).
    #[schemars(length(min = 1))]
    pub exporter_image: String,
    /// The digest (`sha256:` and 64 hex digits) of `exporter_image`; empty
    /// pins by tag only.
    #[schemars(regex(pattern = r"^(sha256:[0-9a-f]{64})?$"))]
    pub exporter_image_digest: String,
    /// Render a `ServiceMonitor` (Prometheus Operator).
    pub service_monitor: bool,
    /// Scrape interval.
    pub scrape_interval: Duration,
    /// Scrape timeout.
    pub scrape_timeout: Duration,
    /// Export per-key-pattern statistics (`--check-keys`).
    pub check_keys: Vec<String>,
    /// Export `LATENCY` histograms.
    pub latency_histograms: bool,
    /// Alerts.
    pub alerts: Alerts,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            exporter: false,
            exporter_port: 9121,
            exporter_image: "oliver006/redis_exporter:v1.67.0".into(),
            exporter_image_digest: String::new(),
            service_monitor: false,
            scrape_interval: Duration::secs(30),
            scrape_timeout: Duration::secs(10),
            check_keys: Vec::new(),
            latency_histograms: false,
            alerts: Alerts::default(),
        }
    }
}

/// Backup compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// zstd (fast, small).
    #[default]
    Zstd,
    /// gzip.
    Gzip,
    /// No compression.
    None,
}

/// Where backups go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BackupDestination {
    /// A local or mounted directory.
    Directory(String),
    /// An S3-compatible bucket URL (`s3://bucket/prefix`).
    S3(String),
    /// A Kubernetes PersistentVolumeClaim name.
    Pvc(String),
}

impl Default for BackupDestination {
    fn default() -> Self {
        BackupDestination::Directory("./backups".into())
    }
}

/// Backup encryption.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Encryption {
    /// Encrypt backups.
    pub enabled: bool,
    /// Where the encryption key comes from (never inline in production).
    pub key: Option<SecretSource>,
}

/// Scheduled backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Backup {
    /// Whether backups are scheduled.
    pub enabled: bool,
    /// Cron schedule (5 fields, UTC).
    #[schemars(length(min = 9, max = 120))]
    pub schedule: String,
    /// Backups kept.
    #[schemars(range(min = 1, max = 10000))]
    pub retention_count: u32,
    /// Delete backups older than this (0: keep by count only).
    pub retention_age: Duration,
    /// Compression.
    pub compression: Compression,
    /// Compression level (zstd 1–19, gzip 1–9).
    #[schemars(range(min = 1, max = 19))]
    pub compression_level: u8,
    /// Encryption.
    pub encryption: Encryption,
    /// Destination.
    pub destination: BackupDestination,
    /// Back up from a replica rather than the master.
    pub from_replica: bool,
    /// Verify checksums after each backup.
    pub verify: bool,
    /// Give up a backup after this long.
    pub timeout: Duration,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            enabled: false,
            schedule: "0 3 * * *".into(),
            retention_count: 7,
            retention_age: Duration(0),
            compression: Compression::Zstd,
            compression_level: 3,
            encryption: Encryption::default(),
            destination: BackupDestination::default(),
            from_replica: true,
            verify: true,
            timeout: Duration::secs(3600),
        }
    }
}

/// A Kubernetes Service type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// A cloud load balancer.
    LoadBalancer,
}

/// Pod security context (applies in every preset). The uid and gid are
/// above 10000 by default, outside the range of users on the host (and of
/// the image's own `redis` user); `fs_group` makes the data, backup and
/// secret volumes group-owned by it, which is all the ownership Redis needs
/// (it runs `redis-server` directly, never the image's root entrypoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityContext {
    /// `runAsNonRoot`.
    pub run_as_non_root: bool,
    /// `runAsUser`.
    #[schemars(range(max = 2147483647))]
    pub run_as_user: u32,
    /// `runAsGroup`.
    #[schemars(range(max = 2147483647))]
    pub run_as_group: u32,
    /// `fsGroup`.
    #[schemars(range(max = 2147483647))]
    pub fs_group: u32,
    /// `readOnlyRootFilesystem`.
    pub read_only_root_filesystem: bool,
    /// Drop all Linux capabilities.
    pub drop_all_capabilities: bool,
    /// `seccompProfile: RuntimeDefault`.
    pub seccomp_runtime_default: bool,
    /// `allowPrivilegeEscalation`.
    pub allow_privilege_escalation: bool,
    /// `automountServiceAccountToken`.
    pub automount_service_account_token: bool,
}

impl Default for SecurityContext {
    fn default() -> Self {
        SecurityContext {
            run_as_non_root: true,
            run_as_user: 10001,
            run_as_group: 10001,
            fs_group: 10001,
            read_only_root_filesystem: true,
            drop_all_capabilities: true,
            seccomp_runtime_default: true,
            allow_privilege_escalation: false,
            automount_service_account_token: false,
        }
    }
}

/// Pod anti-affinity strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AntiAffinity {
    /// No anti-affinity.
    None,
    /// Preferred: spread when possible.
    #[default]
    Soft,
    /// Required: never two nodes of the deployment on one Kubernetes node.
    Hard,
}

/// Kubernetes manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Kubernetes {
    /// Namespace; `default` is refused unless `allow_default_namespace` is set.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: String,
    /// Allow the `default` namespace.
    pub allow_default_namespace: bool,
    /// Storage class for data volumes; empty uses the cluster default.
    pub storage_class: String,
    /// Size of each data volume.
    pub storage_size: ByteSize,
    /// Render a PodDisruptionBudget.
    pub pdb: bool,
    /// PDB `maxUnavailable`, or 0 to use `minAvailable` (⌊n/2⌋+1).
    #[schemars(range(max = 100))]
    pub pdb_max_unavailable: u8,
    /// Pod anti-affinity.
    pub anti_affinity: AntiAffinity,
    /// Topology key for anti-affinity.
    pub topology_key: String,
    /// Pod security context.
    pub security_context: SecurityContext,
    /// Extra labels on every object.
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on every object.
    pub annotations: BTreeMap<String, String>,
    /// Type of the client Service.
    pub service_type: ServiceType,
    /// Node selector.
    pub node_selector: BTreeMap<String, String>,
    /// Priority class name.
    pub priority_class: String,
    /// Service account name; empty creates none.
    pub service_account: String,
    /// Roll pods when configuration changes (checksum annotations).
    pub checksum_annotations: bool,
    /// Termination grace period.
    pub termination_grace_period: Duration,
    /// Image pull secrets.
    pub image_pull_secrets: Vec<String>,
    /// Cluster DNS domain.
    pub cluster_domain: String,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            namespace: "redis".into(),
            allow_default_namespace: false,
            storage_class: String::new(),
            storage_size: ByteSize::gib(8),
            pdb: false,
            pdb_max_unavailable: 1,
            anti_affinity: AntiAffinity::Soft,
            topology_key: "kubernetes.io/hostname".into(),
            security_context: SecurityContext::default(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            service_type: ServiceType::ClusterIP,
            node_selector: BTreeMap::new(),
            priority_class: String::new(),
            service_account: String::new(),
            checksum_annotations: true,
            termination_grace_period: Duration::secs(30),
            image_pull_secrets: Vec::new(),
            cluster_domain: "cluster.local".into(),
        }
    }
}

/// Docker Compose project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Compose {
    /// Compose project name; empty uses the deployment name.
    pub project_name: String,
    /// Registry prefix for every image (`registry.example.com/mirror`).
    pub image_registry: String,
    /// Use named volumes (true) or bind mounts under `bind_dir` (false).
    pub named_volumes: bool,
    /// Host directory for bind mounts.
    pub bind_dir: String,
    /// Extra volumes mounted into every Redis container (`host:container[:ro]`).
    pub extra_volumes: Vec<String>,
    /// Publish ports on the host.
    pub publish_ports: bool,
    /// Address published ports bind to.
    pub publish_address: String,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Network name; empty uses the project default.
    pub network: String,
}

/// A Compose restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    No,
    /// Restart unless stopped by hand.
    #[default]
    UnlessStopped,
    /// Always restart.
    Always,
    /// Restart on failure.
    OnFailure,
}

impl Default for Compose {
    fn default() -> Self {
        Compose {
            project_name: String::new(),
            image_registry: String::new(),
            named_volumes: true,
            bind_dir: "./data".into(),
            extra_volumes: Vec::new(),
            publish_ports: true,
            publish_address: "127.0.0.1".into(),
            restart: RestartPolicy::UnlessStopped,
            network: String::new(),
        }
    }
}
