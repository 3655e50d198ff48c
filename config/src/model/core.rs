//! Deployment, resources, network, persistence, replication, sentinel and
//! cluster sections.

use crate::units::{ByteSize, Duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The environment a deployment is for; also the name of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// A developer machine: light, no auth, no persistence.
    #[default]
    Development,
    /// A production-like rehearsal.
    Staging,
    /// Production: auth, TLS, persistence, monitoring and backups.
    Production,
}

impl Environment {
    /// All environments, in order.
    pub const ALL: [Environment; 3] = [Environment::Development, Environment::Staging, Environment::Production];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "development" | "dev" => Ok(Environment::Development),
            "staging" => Ok(Environment::Staging),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment `{other}`: expected `development` (or `dev`), `staging` or `production` (or `prod`)"
            )),
        }
    }
}

/// How the Redis nodes are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One Redis server.
    #[default]
    Standalone,
    /// One master and its replicas, without automatic failover.
    Replication,
    /// One master, its replicas and Redis Sentinel for automatic failover.
    Sentinel,
    /// Redis Cluster: keys sharded over several masters, each with replicas.
    Cluster,
}

/// When to pull container images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Pull when the image is not present.
    #[default]
    IfNotPresent,
    /// Always pull.
    Always,
    /// Never pull.
    Never,
}

/// What is deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Deployment {
    /// The deployment's name: lowercase letters, digits and `-` (a DNS label).
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The environment this deployment is for.
    pub environment: Environment,
    /// How the nodes are arranged.
    pub mode: Mode,
    /// The Redis version (`major.minor` or `major.minor.patch`), 6.2 or later.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+(\.[0-9]+)?$"))]
    pub redis_version: String,
    /// The Redis image repository (the tag is the Redis version unless `image_tag` is set).
    pub image: String,
    /// An explicit image tag; empty means the Redis version.
    pub image_tag: String,
    /// The digest (`sha256:` and 64 hex digits) of the image `image`:tag names.
    /// Pods then pull exactly that image (`image:tag@digest`), whatever the
    /// tag points to later; empty pins by tag only.
    #[schemars(regex(pattern = r"^(sha256:[0-9a-f]{64})?$"))]
    pub image_digest: String,
    /// When to pull images.
    pub image_pull_policy: PullPolicy,
    /// A free-text description, copied into annotations.
    pub description: String,
    /// Team or person owning the deployment, copied into labels.
    pub owner: String,
    /// Extra labels for every generated object.
    pub labels: BTreeMap<String, String>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            name: "redis".into(),
            environment: Environment::Development,
            mode: Mode::Standalone,
            redis_version: "7.4".into(),
            image: "redis".into(),
            image_tag: String::new(),
            image_digest: String::new(),
            image_pull_policy: PullPolicy::IfNotPresent,
            description: String::new(),
            owner: String::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// The size of each Redis node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// Memory available to each Redis node (the container limit).
    pub memory: ByteSize,
    /// Memory requested for each node; 0 means the same as `memory`.
    pub memory_request: ByteSize,
    /// CPU cores for each node, in millicores (1000 = one core).
    #[schemars(range(min = 100, max = 128000))]
    pub cpu_millis: u32,
    /// CPU requested for each node, in millicores; 0 means the same as `cpu_millis`.
    #[schemars(range(max = 128000))]
    pub cpu_request_millis: u32,
    /// A cloud instance type hint (free text, e.g. `cache.r7g.large`).
    pub instance_type: String,
    /// Memory for each Sentinel process.
    pub sentinel_memory: ByteSize,
    /// Memory for the exporter sidecar.
    pub exporter_memory: ByteSize,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            memory: ByteSize::gib(1),
            memory_request: ByteSize(0),
            cpu_millis: 1000,
            cpu_request_millis: 0,
            instance_type: String::new(),
            sentinel_memory: ByteSize::mib(64),
            exporter_memory: ByteSize::mib(64),
        }
    }
}

/// Ports, bind addresses and allowed networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// The plain-text client port (`port 0` is rendered when TLS disables it).
    #[schemars(range(min = 1, max = 55535))]
    pub port: u16,
    /// The TLS client port.
    #[schemars(range(min = 1, max = 65535))]
    pub tls_port: u16,
    /// The Sentinel port.
    #[schemars(range(min = 1, max = 65535))]
    pub sentinel_port: u16,
    /// Offset of the cluster bus port from the client port (Redis uses 10000).
    #[schemars(range(min = 1, max = 60000))]
    pub cluster_bus_port_offset: u16,
    /// Addresses Redis listens on, for plugins that run it on a shared
    /// network. The built-in targets decide it: local processes listen on
    /// loopback only, containers on every interface of their own network
    /// (`0.0.0.0`, or `* -::*` with `ipv6`).
    #[schemars(length(min = 1, max = 16))]
    pub bind: Vec<String>,
    /// Client networks allowed to connect (CIDRs); rendered into NetworkPolicies and firewalls.
    pub allowed_cidrs: Vec<String>,
    /// Announce a stable host name instead of the pod IP (`replica-announce-ip`, cluster hostnames).
    pub announce_hostname: bool,
    /// Base port for the `local` target; node ports are allocated from it.
    #[schemars(range(min = 1024, max = 60000))]
    pub local_base_port: u16,
    /// Whether to listen on IPv6 as well.
    pub ipv6: bool,
    /// Unix socket path; empty disables the socket.
    pub unix_socket: String,
    /// Unix socket permissions (octal, e.g. 700).
    #[schemars(range(max = 777))]
    pub unix_socket_perm: u16,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            port: 6379,
            tls_port: 6380,
            sentinel_port: 26379,
            cluster_bus_port_offset: 10000,
            bind: vec!["0.0.0.0".into()],
            allowed_cidrs: Vec::new(),
            announce_hostname: true,
            local_base_port: 7000,
            ipv6: false,
            unix_socket: String::new(),
            unix_socket_perm: 700,
        }
    }
}

/// How data survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersistenceMode {
    /// Nothing on disk: a pure cache.
    #[default]
    None,
    /// RDB snapshots only.
    Rdb,
    /// Append-only file only.
    Aof,
    /// RDB snapshots and the append-only file (with an RDB preamble).
    Mixed,
}

/// How often the append-only file is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Appendfsync {
    /// After every write (slow, safest).
    Always,
    /// Once a second (at most one second of writes lost).
    #[default]
    Everysec,
    /// When the kernel decides.
    No,
}

/// One RDB save point: snapshot after `seconds` if at least `changes` keys changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePoint {
    /// Seconds since the last snapshot.
    #[schemars(range(min = 1, max = 86400))]
    pub seconds: u32,
    /// Changed keys needed.
    #[schemars(range(min = 1))]
    pub changes: u32,
}

/// RDB snapshots and the append-only file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Persistence {
    /// What is persisted.
    pub mode: PersistenceMode,
    /// RDB save points (`save 900 1 300 10 60 10000`).
    #[schemars(length(max = 16))]
    pub save: Vec<SavePoint>,
    /// `appendfsync`.
    pub appendfsync: Appendfsync,
    /// `aof-use-rdb-preamble`: start the AOF with an RDB snapshot.
    pub aof_use_rdb_preamble: bool,
    /// `auto-aof-rewrite-percentage`: rewrite when the AOF grew by this percentage (0 disables).
    #[schemars(range(max = 1000))]
    pub auto_aof_rewrite_percentage: u32,
    /// `auto-aof-rewrite-min-size`.
    pub auto_aof_rewrite_min_size: ByteSize,
    /// `no-appendfsync-on-rewrite`: skip fsync while rewriting (faster, less safe).
    pub no_appendfsync_on_rewrite: bool,
    /// `aof-load-truncated`: load a truncated AOF instead of refusing to start.
    pub aof_load_truncated: bool,
    /// `aof-timestamp-enabled`.
    pub aof_timestamp_enabled: bool,
    /// `rdbcompression`.
    pub rdb_compression: bool,
    /// `rdbchecksum`.
    pub rdb_checksum: bool,
    /// `stop-writes-on-bgsave-error`.
    pub stop_writes_on_bgsave_error: bool,
    /// `dbfilename`.
    #[schemars(length(min = 1, max = 255))]
    pub rdb_filename: String,
    /// `appenddirname`.
    #[schemars(length(min = 1, max = 255))]
    pub aof_dirname: String,
    /// The data directory inside the container or on the host.
    #[schemars(length(min = 1))]
    pub data_dir: String,
    /// `rdb-del-sync-files`: delete RDB files used for replication when persistence is off.
    pub rdb_del_sync_files: bool,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            mode: PersistenceMode::None,
            save: Vec::new(),
            appendfsync: Appendfsync::Everysec,
            aof_use_rdb_preamble: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: ByteSize::mib(64),
            no_appendfsync_on_rewrite: false,
            aof_load_truncated: true,
            aof_timestamp_enabled: false,
            rdb_compression: true,
            rdb_checksum: true,
            stop_writes_on_bgsave_error: true,
            rdb_filename: "dump.rdb".into(),
            aof_dirname: "appendonlydir".into(),
            data_dir: "/data".into(),
            rdb_del_sync_files: false,
        }
    }
}

/// Replicas of each master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Replication {
    /// Replicas of the master (modes `replication` and `sentinel`).
    #[schemars(range(max = 10))]
    pub replicas: u8,
    /// `min-replicas-to-write`: refuse writes with fewer healthy replicas (0 disables).
    #[schemars(range(max = 10))]
    pub min_replicas_to_write: u8,
    /// `min-replicas-max-lag`: a replica is healthy if it answered within this time.
    pub min_replicas_max_lag: Duration,
    /// `repl-backlog-size`.
    pub backlog_size: ByteSize,
    /// `repl-backlog-ttl`: free the backlog after the last replica left for this long.
    pub backlog_ttl: Duration,
    /// `repl-diskless-sync`: stream the RDB to replicas without touching disk.
    pub diskless_sync: bool,
    /// `repl-diskless-sync-delay`.
    pub diskless_sync_delay: Duration,
    /// `repl-diskless-load`.
    pub diskless_load: DisklessLoad,
    /// `repl-timeout`.
    pub timeout: Duration,
    /// `replica-read-only`.
    pub replica_read_only: bool,
    /// `replica-serve-stale-data`.
    pub replica_serve_stale_data: bool,
    /// `replica-priority` (lower is promoted first; 0 never).
    #[schemars(range(max = 1000))]
    pub replica_priority: u16,
    /// `repl-disable-tcp-nodelay`.
    pub disable_tcp_nodelay: bool,
}

/// `repl-diskless-load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisklessLoad {
    /// Load through a file on disk.
    #[default]
    Disabled,
    /// Load from the socket when the current data set can be discarded.
    OnEmptyDb,
    /// Load from the socket into a swap database.
    Swapdb,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            replicas: 0,
            min_replicas_to_write: 0,
            min_replicas_max_lag: Duration::secs(10),
            backlog_size: ByteSize::mib(1),
            backlog_ttl: Duration::secs(3600),
            diskless_sync: true,
            diskless_sync_delay: Duration::secs(5),
            diskless_load: DisklessLoad::Disabled,
            timeout: Duration::secs(60),
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_priority: 100,
            disable_tcp_nodelay: false,
        }
    }
}

/// Redis Sentinel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Sentinel {
    /// Number of Sentinel processes (odd, at least 3).
    #[schemars(range(min = 1, max = 9))]
    pub sentinels: u8,
    /// Sentinels that must agree the master is down.
    #[schemars(range(min = 1, max = 9))]
    pub quorum: u8,
    /// The monitored master's name.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub master_name: String,
    /// `down-after-milliseconds`.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
    /// `parallel-syncs`: replicas resynchronised at once after a failover.
    #[schemars(range(min = 1, max = 10))]
    pub parallel_syncs: u8,
    /// `resolve-hostnames`.
    pub resolve_hostnames: bool,
    /// `announce-hostnames`.
    pub announce_hostnames: bool,
    /// Deny `SENTINEL SET` of notification and client-reconfig scripts at run time.
    pub deny_scripts_reconfig: bool,
}

impl Default for Sentinel {
    fn default() -> Self {
        Sentinel {
            sentinels: 3,
            quorum: 2,
            master_name: "mymaster".into(),
            down_after: Duration::secs(10),
            failover_timeout: Duration::secs(180),
            parallel_syncs: 1,
            resolve_hostnames: true,
            announce_hostnames: true,
            deny_scripts_reconfig: true,
        }
    }
}

/// Redis Cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Number of shards (masters), 3–16.
    #[schemars(range(min = 1, max = 64))]
    pub shards: u8,
    /// Replicas of each shard's master, 0–3.
    #[schemars(range(max = 8))]
    pub replicas_per_shard: u8,
    /// `cluster-node-timeout`.
    pub node_timeout: Duration,
    /// `cluster-require-full-coverage`: refuse queries when some slots are uncovered.
    pub require_full_coverage: bool,
    /// `cluster-migration-barrier`.
    #[schemars(range(max = 10))]
    pub migration_barrier: u8,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-allow-reads-when-down`.
    pub allow_reads_when_down: bool,
    /// `cluster-announce-hostname` / `cluster-preferred-endpoint-type hostname`.
    pub announce_hostnames: bool,
    /// `cluster-replica-validity-factor` (0: always fail over).
    #[schemars(range(max = 100))]
    pub replica_validity_factor: u16,
    /// `cluster-config-file`.
    #[schemars(length(min = 1, max = 255))]
    pub config_file: String,
    /// `cluster-replica-no-failover`.
    pub replica_no_failover: bool,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            shards: 3,
            replicas_per_shard: 1,
            node_timeout: Duration::secs(15),
            require_full_coverage: false,
            migration_barrier: 1,
            allow_replica_migration: true,
            allow_reads_when_down: false,
            announce_hostnames: true,
            replica_validity_factor: 10,
            config_file: "nodes.conf".into(),
            replica_no_failover: false,
        }
    }
}
