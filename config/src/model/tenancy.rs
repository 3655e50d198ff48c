//! Tenancy (several tenants on one deployment) and cache strategy sections.

use crate::units::{ByteSize, Duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How tenants are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Each tenant gets a key prefix and an ACL user restricted to it.
    #[default]
    KeyPrefix,
    /// Each tenant gets a logical database (`SELECT n`); weak isolation.
    Database,
    /// Each tenant gets its own Redis instance.
    Instance,
}

/// One declared tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id, substituted for `{tenantId}` in the prefix pattern.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// Memory quota; 0 uses `tenancy.memory_per_tenant`.
    #[serde(default)]
    pub memory: ByteSize,
    /// Connection quota; 0 uses `tenancy.connections_per_tenant`.
    #[schemars(range(max = 1000000))]
    #[serde(default)]
    pub connections: u32,
    /// Operations per second quota; 0 uses `tenancy.ops_per_second_per_tenant`.
    #[schemars(range(max = 10000000))]
    #[serde(default)]
    pub ops_per_second: u32,
    /// Where the tenant user's password comes from.
    #[serde(default)]
    pub password: Option<crate::model::SecretSource>,
    /// Logical database (isolation `database`).
    #[schemars(range(max = 9999))]
    #[serde(default)]
    pub database: Option<u16>,
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant {
            id: String::new(),
            memory: ByteSize(0),
            connections: 0,
            ops_per_second: 0,
            password: None,
            database: None,
        }
    }
}

/// Several tenants sharing the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Tenancy {
    /// Whether tenancy is on.
    pub enabled: bool,
    /// How tenants are kept apart.
    pub isolation: Isolation,
    /// Key prefix pattern; must contain `{tenantId}` and end with a terminator such as `:`.
    #[schemars(length(min = 1, max = 128))]
    pub prefix_pattern: String,
    /// Most tenants the deployment is sized for.
    #[schemars(range(min = 1, max = 100000))]
    pub max_tenants: u32,
    /// Default memory quota per tenant.
    pub memory_per_tenant: ByteSize,
    /// Default connection quota per tenant.
    #[schemars(range(min = 1, max = 1000000))]
    pub connections_per_tenant: u32,
    /// Default operations-per-second quota per tenant.
    #[schemars(range(min = 1, max = 10000000))]
    pub ops_per_second_per_tenant: u32,
    /// Channels a tenant may use, as a pattern (`{tenantId}` substituted).
    pub channel_pattern: String,
    /// Let tenants run Lua scripts and functions on their own keys.
    pub allow_scripts: bool,
    /// Remove a tenant's keys with SCAN + UNLINK in batches of this size.
    #[schemars(range(min = 10, max = 100000))]
    pub removal_batch_size: u32,
    /// Run the tenant gateway with the deployment: a RESP proxy tenants
    /// connect to instead of Redis, which enforces their connection, ops/s
    /// and memory quotas, answers `SCAN`/`KEYS` with their own keys and
    /// applies the cache key rules' TTLs to writes without one.
    pub gateway: bool,
    /// Declared tenants.
    #[schemars(length(max = 100000))]
    pub tenants: Vec<Tenant>,
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy {
            enabled: false,
            isolation: Isolation::KeyPrefix,
            prefix_pattern: "tenant:{tenantId}:".into(),
            max_tenants: 100,
            memory_per_tenant: ByteSize::mib(64),
            connections_per_tenant: 50,
            ops_per_second_per_tenant: 1000,
            channel_pattern: "tenant:{tenantId}:*".into(),
            allow_scripts: false,
            removal_batch_size: 500,
            gateway: false,
            tenants: Vec::new(),
        }
    }
}

/// How writes reach Redis and the backing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Inherit the strategy's mode.
    #[default]
    Inherit,
    /// The application writes the store and invalidates Redis.
    Invalidate,
    /// Write Redis and the store synchronously.
    WriteThrough,
    /// Write Redis now, the store later (durable queue).
    WriteBehind,
}

/// A rule for keys matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPattern {
    /// Glob pattern (`user:*:profile`).
    #[schemars(length(min = 1, max = 512))]
    pub pattern: String,
    /// TTL of matching keys (0: no expiry).
    #[serde(default)]
    pub ttl: Duration,
    /// Jitter in percent of the TTL; `null` uses `cache.jitter_percent`.
    #[schemars(range(max = 50))]
    #[serde(default)]
    pub jitter_percent: Option<u8>,
    /// Extend the TTL on reads.
    #[serde(default)]
    pub sliding: bool,
    /// Refresh ahead of expiry.
    #[serde(default)]
    pub refresh_ahead: bool,
    /// How writes for these keys propagate.
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Largest value expected under this pattern (for memory estimates).
    #[serde(default)]
    pub max_value_size: ByteSize,
}

impl Default for KeyPattern {
    fn default() -> Self {
        KeyPattern {
            pattern: String::new(),
            ttl: Duration(0),
            jitter_percent: None,
            sliding: false,
            refresh_ahead: false,
            write_mode: WriteMode::Inherit,
            max_value_size: ByteSize(0),
        }
    }
}

/// The cache strategy: how the application uses Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Cache {
    /// Strategy: `cache-aside`, `write-through`, `write-behind`, `refresh-ahead`,
    /// `none`, or the name of a strategy plugin listed in `plugins`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub strategy: String,
    /// TTL for keys matching no pattern (0: no expiry).
    pub default_ttl: Duration,
    /// Random share added to TTLs so keys written together don't expire together.
    #[schemars(range(max = 50))]
    pub jitter_percent: u8,
    /// Extend TTLs on reads (`GETEX ... PX`); throttled by `sliding_min_interval`.
    pub sliding_expiration: bool,
    /// Least time between two sliding touches of one key.
    pub sliding_min_interval: Duration,
    /// Refresh when this share of the TTL has elapsed (percent).
    #[schemars(range(min = 1, max = 99))]
    pub refresh_ahead_threshold_percent: u8,
    /// XFetch beta (in hundredths; 100 = 1.0).
    #[schemars(range(min = 1, max = 1000))]
    pub xfetch_beta_centi: u16,
    /// Coalesce concurrent misses of one key (stampede protection).
    pub stampede_lock: bool,
    /// Lifetime of a stampede lock placeholder.
    pub lock_ttl: Duration,
    /// Serve a stale value when the backing store fails.
    pub fail_safe: bool,
    /// How long a stale value may be served.
    pub fail_safe_max_stale: Duration,
    /// Write-behind: entries flushed per batch.
    #[schemars(range(min = 1, max = 100000))]
    pub write_behind_batch_size: u32,
    /// Write-behind: longest time between flushes.
    pub write_behind_flush_interval: Duration,
    /// Write-behind: attempts before an entry goes to the dead-letter stream.
    #[schemars(range(min = 1, max = 100))]
    pub write_behind_max_retries: u8,
    /// Write-behind: stream name prefix.
    pub write_behind_stream: String,
    /// Keyspace notifications the strategy needs (`notify-keyspace-events`), e.g. `Ex`.
    pub keyspace_events: String,
    /// Per-key-pattern rules.
    #[schemars(length(max = 1000))]
    pub patterns: Vec<KeyPattern>,
}

/// The built-in strategies.
pub const BUILTIN_STRATEGIES: [&str; 5] = ["none", "cache-aside", "write-through", "write-behind", "refresh-ahead"];

impl Default for Cache {
    fn default() -> Self {
        Cache {
            strategy: "none".into(),
            default_ttl: Duration(0),
            jitter_percent: 10,
            sliding_expiration: false,
            sliding_min_interval: Duration::secs(1),
            refresh_ahead_threshold_percent: 80,
            xfetch_beta_centi: 100,
            stampede_lock: true,
            lock_ttl: Duration::secs(5),
            fail_safe: true,
            fail_safe_max_stale: Duration::secs(300),
            write_behind_batch_size: 100,
            write_behind_flush_interval: Duration::secs(1),
            write_behind_max_retries: 5,
            write_behind_stream: "wb".into(),
            keyspace_events: String::new(),
            patterns: Vec::new(),
        }
    }
}
