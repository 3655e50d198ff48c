//! The durable write-behind queue: key names (one Redis Stream per tenant,
//! under the tenant's prefix so its ACL covers it, with a hash tag so a
//! queue's three keys share one cluster slot) and the worker protocol the
//! client runtime follows (`cache/write-behind.json`).

use crate::common::input::Config;
use serde_json::{Value, json};

/// The consumer group every worker joins.
pub const GROUP: &str = "redplate-wb";
/// Path of the queue script.
pub const SCRIPT_PATH: &str = "cache/write-behind.lua";
/// Path of the queue spec.
pub const SPEC_PATH: &str = "cache/write-behind.json";
/// The queue script (one operation per call).
pub const SCRIPT: &str = include_str!("write-behind.lua");
/// Least idle time before another worker reclaims an entry: ten flush
/// intervals, and never under 30 s, so a healthy but slow batch is not
/// claimed twice.
const MIN_CLAIM_IDLE_MS: u64 = 30_000;

/// The three keys of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    pub stream: String,
    pub latest: String,
    pub dead: String,
}

impl QueueKeys {
    fn new(base: String) -> Self {
        QueueKeys { latest: format!("{base}:latest"), dead: format!("{base}:dead"), stream: base }
    }
}

/// The queue of one tenant (`None`: the deployment's single queue). With
/// key-prefix tenancy: `<prefix>{<tenant>:<stream>}`, e.g.
/// `tenant:acme:{acme:wb}`; otherwise `{<stream>}`.
pub fn keys(config: &Config, tenant: Option<&str>) -> QueueKeys {
    let stream = &config.cache.write_behind_stream;
    match tenant {
        Some(id) if config.tenancy.prefixed() => {
            let prefix = config.tenancy.prefix_pattern.replace("{tenantId}", id);
            QueueKeys::new(format!("{prefix}{{{id}:{stream}}}"))
        }
        _ => QueueKeys::new(format!("{{{stream}}}")),
    }
}

/// How long an entry stays pending before another worker may reclaim it.
pub fn claim_min_idle_ms(config: &Config) -> u64 {
    config.cache.write_behind_flush_interval.0.saturating_mul(10).max(MIN_CLAIM_IDLE_MS)
}

fn queue_json(tenant: Option<&str>, k: &QueueKeys) -> Value {
    json!({ "tenant": tenant, "stream": k.stream, "latest": k.latest, "dead_letter": k.dead })
}

/// The worker protocol and its parameters.
pub fn spec(config: &Config) -> Value {
    let cache = &config.cache;
    let queues: Vec<Value> = if config.tenancy.enabled {
        config.tenancy.tenants.iter().map(|t| queue_json(Some(&t.id), &keys(config, Some(&t.id)))).collect()
    } else {
        vec![queue_json(None, &keys(config, None))]
    };
    let template = config.tenancy.prefixed().then(|| {
        let k = keys(config, Some("<tenant>"));
        json!({ "placeholder": "<tenant>", "stream": k.stream, "latest": k.latest, "dead_letter": k.dead })
    });
    json!({
        "strategy": "write-behind",
        "script": SCRIPT_PATH,
        "keys": "EVALSHA <sha> 3 <stream> <latest> <dead_letter> <operation> <arguments…>",
        "queues": queues,
        "queue_template": template,
        "group": GROUP,
        "batch_size": cache.write_behind_batch_size,
        "flush_interval_ms": cache.write_behind_flush_interval.0,
        "max_deliveries": cache.write_behind_max_retries,
        "claim_min_idle_ms": claim_min_idle_ms(config),
        "write": [
            "enqueue <key> set|del <value> — returns the entry id, the write's version",
            "then SET (or UNLINK) the cache key with the key rule's TTL; the cache may be cold, the queue is the truth",
        ],
        "read_miss": "peek <key> before loading from the store: a queued write is newer than the store",
        "worker": [
            "group <group> once at start (creates the group from the start of the stream)",
            "take <group> <consumer> <batch_size>; when fewer than batch_size come back, wait up to flush_interval_ms",
            "write the batch to the store in one transaction, each row only if its stored version is older than the entry id",
            "ack <group> <id> <key>… only after the store committed; on failure do not ack: the entries are retried",
            "reclaim <group> <consumer> <claim_min_idle_ms> <batch_size> <max_deliveries> <start> every claim_min_idle_ms / 2, looping on the returned start until 0-0",
        ],
        "dead_letter": "entries delivered more than max_deliveries times move to the dead-letter stream with their delivery count; alert on its length and replay by hand",
        "never": [
            "trim a queue with MAXLEN or MINID (drops writes the store has not seen)",
            "acknowledge before the store committed",
        ],
        "replicas": "with replicas, `WAIT 1 <ms>` after enqueue before answering the caller: a failover loses entries no replica received",
    })
}
