//! Memory (limit, eviction, lazy freeing, defragmentation) and performance
//! (threads, timeouts, buffers, slow log, latency monitor) sections.

use crate::units::{ByteSize, Duration, MemoryLimit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `maxmemory-policy`: what Redis evicts when `maxmemory` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// Refuse writes when full (data stores).
    #[default]
    Noeviction,
    /// Evict the least recently used key (caches).
    AllkeysLru,
    /// Evict the least frequently used key (caches with hot keys).
    AllkeysLfu,
    /// Evict a random key.
    AllkeysRandom,
    /// Evict the least recently used key among keys with a TTL.
    VolatileLru,
    /// Evict the least frequently used key among keys with a TTL.
    VolatileLfu,
    /// Evict a random key among keys with a TTL.
    VolatileRandom,
    /// Evict the key with the nearest expiry.
    VolatileTtl,
}

impl EvictionPolicy {
    /// Whether the policy only evicts keys that have a TTL.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    /// Whether the policy uses LFU counters.
    pub fn is_lfu(self) -> bool {
        matches!(self, EvictionPolicy::AllkeysLfu | EvictionPolicy::VolatileLfu)
    }

    /// The name Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::Noeviction => "noeviction",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::AllkeysLfu => "allkeys-lfu",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

/// Memory limit, eviction, lazy freeing and active defragmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Memory {
    /// `maxmemory`: a size, a percentage of `resources.memory` (`80%`), or 0 for none.
    pub maxmemory: MemoryLimit,
    /// `maxmemory-policy`.
    pub maxmemory_policy: EvictionPolicy,
    /// `maxmemory-samples`: keys sampled per eviction.
    #[schemars(range(min = 1, max = 64))]
    pub maxmemory_samples: u8,
    /// `maxmemory-eviction-tenacity`.
    #[schemars(range(max = 100))]
    pub maxmemory_eviction_tenacity: u8,
    /// `maxmemory-clients`: cap on all client buffers together (0: none).
    pub maxmemory_clients: ByteSize,
    /// `lfu-log-factor`.
    #[schemars(range(max = 255))]
    pub lfu_log_factor: u8,
    /// `lfu-decay-time` in minutes.
    #[schemars(range(max = 255))]
    pub lfu_decay_time: u8,
    /// `lazyfree-lazy-eviction`.
    pub lazyfree_lazy_eviction: bool,
    /// `lazyfree-lazy-expire`.
    pub lazyfree_lazy_expire: bool,
    /// `lazyfree-lazy-server-del`.
    pub lazyfree_lazy_server_del: bool,
    /// `lazyfree-lazy-user-del`: make `DEL` behave like `UNLINK`.
    pub lazyfree_lazy_user_del: bool,
    /// `lazyfree-lazy-user-flush`.
    pub lazyfree_lazy_user_flush: bool,
    /// `replica-lazy-flush`.
    pub replica_lazy_flush: bool,
    /// `activedefrag`.
    pub active_defrag: bool,
    /// `active-defrag-ignore-bytes`: fragmentation below this is ignored.
    pub active_defrag_ignore_bytes: ByteSize,
    /// `active-defrag-threshold-lower` (percent).
    #[schemars(range(min = 1, max = 1000))]
    pub active_defrag_threshold_lower: u16,
    /// `active-defrag-threshold-upper` (percent).
    #[schemars(range(min = 1, max = 1000))]
    pub active_defrag_threshold_upper: u16,
    /// `active-defrag-cycle-min` (percent of CPU).
    #[schemars(range(min = 1, max = 99))]
    pub active_defrag_cycle_min: u8,
    /// `active-defrag-cycle-max` (percent of CPU).
    #[schemars(range(min = 1, max = 99))]
    pub active_defrag_cycle_max: u8,
    /// `active-expire-effort` (1–10).
    #[schemars(range(min = 1, max = 10))]
    pub active_expire_effort: u8,
    /// `hash-max-listpack-entries`.
    #[schemars(range(max = 100000))]
    pub hash_max_listpack_entries: u32,
    /// `hash-max-listpack-value`.
    #[schemars(range(max = 100000))]
    pub hash_max_listpack_value: u32,
    /// `set-max-intset-entries`.
    #[schemars(range(max = 100000))]
    pub set_max_intset_entries: u32,
    /// `zset-max-listpack-entries`.
    #[schemars(range(max = 100000))]
    pub zset_max_listpack_entries: u32,
    /// `list-max-listpack-size` (negative: size classes -1..-5).
    #[schemars(range(min = -5, max = 100000))]
    pub list_max_listpack_size: i32,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            maxmemory: MemoryLimit::Percent(80),
            maxmemory_policy: EvictionPolicy::Noeviction,
            maxmemory_samples: 5,
            maxmemory_eviction_tenacity: 10,
            maxmemory_clients: ByteSize(0),
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            lazyfree_lazy_eviction: true,
            lazyfree_lazy_expire: true,
            lazyfree_lazy_server_del: true,
            lazyfree_lazy_user_del: true,
            lazyfree_lazy_user_flush: true,
            replica_lazy_flush: true,
            active_defrag: false,
            active_defrag_ignore_bytes: ByteSize::mib(100),
            active_defrag_threshold_lower: 10,
            active_defrag_threshold_upper: 100,
            active_defrag_cycle_min: 1,
            active_defrag_cycle_max: 25,
            active_expire_effort: 1,
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            list_max_listpack_size: -2,
        }
    }
}

/// One `client-output-buffer-limit` class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BufferLimit {
    /// Disconnect the client when its buffer exceeds this size (0: no limit).
    pub hard: ByteSize,
    /// Disconnect when the buffer stays above this size for `soft_seconds` (0: no limit).
    pub soft: ByteSize,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: Duration,
}

impl Default for BufferLimit {
    fn default() -> Self {
        BufferLimit { hard: ByteSize(0), soft: ByteSize(0), soft_seconds: Duration(0) }
    }
}

/// `client-output-buffer-limit` for the three client classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OutputBufferLimits {
    /// Normal clients.
    pub normal: BufferLimit,
    /// Replicas.
    pub replica: BufferLimit,
    /// Pub/sub subscribers.
    pub pubsub: BufferLimit,
}

impl Default for OutputBufferLimits {
    fn default() -> Self {
        OutputBufferLimits {
            normal: BufferLimit::default(),
            replica: BufferLimit {
                hard: ByteSize::mib(256),
                soft: ByteSize::mib(64),
                soft_seconds: Duration::secs(60),
            },
            pubsub: BufferLimit { hard: ByteSize::mib(32), soft: ByteSize::mib(8), soft_seconds: Duration::secs(60) },
        }
    }
}

/// Threads, timeouts, buffers, slow log and latency monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Performance {
    /// `io-threads` (1 disables threaded I/O).
    #[schemars(range(min = 1, max = 128))]
    pub io_threads: u8,
    /// `io-threads-do-reads`.
    pub io_threads_do_reads: bool,
    /// `tcp-backlog`.
    #[schemars(range(min = 1, max = 65535))]
    pub tcp_backlog: u32,
    /// `timeout`: close idle clients after this long (0: never).
    pub timeout: Duration,
    /// `tcp-keepalive`.
    pub tcp_keepalive: Duration,
    /// `hz`: background task frequency.
    #[schemars(range(min = 1, max = 500))]
    pub hz: u16,
    /// `dynamic-hz`.
    pub dynamic_hz: bool,
    /// `maxclients`.
    #[schemars(range(min = 1, max = 1000000))]
    pub maxclients: u32,
    /// `databases`.
    #[schemars(range(min = 1, max = 10000))]
    pub databases: u16,
    /// `client-output-buffer-limit`.
    pub output_buffer_limits: OutputBufferLimits,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: ByteSize,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: ByteSize,
    /// `slowlog-log-slower-than`: log commands slower than this.
    pub slowlog_log_slower_than: Duration,
    /// `slowlog-max-len`.
    #[schemars(range(max = 100000))]
    pub slowlog_max_len: u32,
    /// `latency-monitor-threshold` (0 disables).
    pub latency_monitor_threshold: Duration,
    /// `latency-tracking`.
    pub latency_tracking: bool,
    /// `busy-reply-threshold` (`lua-time-limit`).
    pub busy_reply_threshold: Duration,
    /// `jemalloc-bg-thread`.
    pub jemalloc_bg_thread: bool,
    /// `activerehashing`.
    pub active_rehashing: bool,
    /// Kernel transparent huge pages handling (`disable-thp`).
    pub disable_thp: bool,
    /// `oom-score-adj`.
    pub oom_score_adj: bool,
    /// `lua-replicate-commands` era: `enable-debug-command` (`no`, `local` or `yes`).
    pub enable_debug_command: ProtectedCommandAccess,
    /// `enable-module-command`.
    pub enable_module_command: ProtectedCommandAccess,
}

/// Access to a protected command (`DEBUG`, `MODULE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedCommandAccess {
    /// Nobody.
    #[default]
    No,
    /// Only local connections.
    Local,
    /// Everybody allowed by ACL.
    Yes,
}

impl Default for Performance {
    fn default() -> Self {
        Performance {
            io_threads: 1,
            io_threads_do_reads: false,
            tcp_backlog: 511,
            timeout: Duration(0),
            tcp_keepalive: Duration::secs(300),
            hz: 10,
            dynamic_hz: true,
            maxclients: 10000,
            databases: 16,
            output_buffer_limits: OutputBufferLimits::default(),
            client_query_buffer_limit: ByteSize::gib(1),
            proto_max_bulk_len: ByteSize::mib(512),
            slowlog_log_slower_than: Duration(10),
            slowlog_max_len: 128,
            latency_monitor_threshold: Duration(0),
            latency_tracking: true,
            busy_reply_threshold: Duration::secs(5),
            jemalloc_bg_thread: true,
            active_rehashing: true,
            disable_thp: true,
            oom_score_adj: false,
            enable_debug_command: ProtectedCommandAccess::No,
            enable_module_command: ProtectedCommandAccess::No,
        }
    }
}
