//! Built-in cache strategy: write-behind. Writes go to the cache and to a
//! durable queue in Redis (a Stream per tenant with a consumer group); workers
//! write batches to the store and acknowledge only after it committed. The
//! queue lives only in Redis until then, so Redis must persist it (AOF) and
//! must never evict it (`noeviction`).

// Shared with the other built-in strategies; each uses a different part.
#[allow(dead_code)]
#[path = "../../cache-aside/src/common/mod.rs"]
mod common;
mod queue;

use common::checks::{self, cache_ptr};
use common::input::Config;
use common::rules::{self, StrategyDefaults};
use redplate_plugin_sdk::{CacheStrategy, Decision, Diagnostic, Host, Plan, PluginInfo, WriteMode};

const NAME: &str = "write-behind";
/// `decide` gets no config: it jitters by the template's default share.
const DECIDE_JITTER_PERCENT: u8 = 10;

pub struct WriteBehind;

impl CacheStrategy for WriteBehind {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "write-behind: writes reach the store later through a durable Redis Streams queue",
            &[NAME],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        common::parse(NAME, input_json).map_or_else(|d| d, |config| errors(&config))
    }

    fn plan(input_json: &str, _host: &dyn Host) -> Result<Plan, Vec<Diagnostic>> {
        let config = common::parse(NAME, input_json)?;
        let errors = errors(&config);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(plan(&config))
    }

    fn decide(key: &str, tenant: Option<&str>, base_ttl_ms: u64, seed: u64) -> Decision {
        rules::decide(key, tenant, base_ttl_ms, seed, DECIDE_JITTER_PERCENT, None, WriteMode::WriteBehind)
    }
}

fn errors(config: &Config) -> Vec<Diagnostic> {
    let cache = &config.cache;
    let mut out = checks::errors(NAME, config);
    if config.persistence.mode == "none" {
        out.push(
            Diagnostic::error(
                format!("{NAME}.requires-persistence"),
                "/config/persistence/mode",
                "write-behind keeps pending writes only in redis until a worker commits them, but `persistence.mode` \
                 is `none`: a restart loses them",
            )
            .with_hint("set `persistence.mode: aof` (or `mixed`), or use `cache.strategy: write-through`"),
        );
    }
    let mut positive = |field: &str, value: u64, hint: &str| {
        if value == 0 {
            out.push(
                Diagnostic::error(
                    format!("{NAME}.zero-{}", field.replace('_', "-")),
                    cache_ptr(field),
                    format!("`cache.{field}` is 0"),
                )
                .with_hint(hint),
            );
        }
    };
    positive("write_behind_batch_size", u64::from(cache.write_behind_batch_size), "use e.g. 100");
    positive("write_behind_flush_interval", cache.write_behind_flush_interval.0, "use e.g. `1s`");
    positive("write_behind_max_retries", u64::from(cache.write_behind_max_retries), "use e.g. 5");
    let stream = &cache.write_behind_stream;
    if stream.is_empty() || stream.contains(|c: char| c.is_whitespace() || c == '{' || c == '}') {
        out.push(
            Diagnostic::error(
                format!("{NAME}.bad-stream-name"),
                cache_ptr("write_behind_stream"),
                format!("`cache.write_behind_stream` is `{stream}`: it must be non-empty, without spaces or braces"),
            )
            .with_hint("use e.g. `wb`; the queue's hash tag is added around it"),
        );
    }
    out
}

fn plan(config: &Config) -> Plan {
    let fsync = if config.persistence.appendfsync == "always" { "always" } else { "everysec" };
    let directives = vec![
        common::directive(
            "appendonly",
            "yes",
            "queued writes exist only in redis until a worker commits them to the store; the append-only file keeps \
             them across a restart",
        ),
        common::directive(
            "appendfsync",
            fsync,
            "sync the append-only file at least once a second, so a power loss costs at most a second of queued writes",
        ),
        common::directive(
            "maxmemory-policy",
            "noeviction",
            "the queue streams must never be evicted: an evicted entry is a write the store never sees; a full redis \
             must refuse new writes instead",
        ),
    ];
    let key_rules = rules::key_rules(
        &config.cache,
        StrategyDefaults { write_mode: WriteMode::WriteBehind, refresh_catch_all: false },
    );
    let mut diagnostics = checks::rule_warnings(NAME, config, &key_rules, false);
    diagnostics.extend(durability_warnings(config, &key_rules));
    diagnostics.extend(checks::scripts_warning(NAME, config, "the queue operations"));
    let artifacts = vec![
        common::lua_artifact(queue::SCRIPT_PATH, queue::SCRIPT),
        common::json_artifact(queue::SPEC_PATH, &queue::spec(config)),
    ];
    Plan { directives, key_rules, artifacts, diagnostics }
}

/// Settings that keep the queue but weaken it, and keys that fill a
/// `noeviction` Redis.
fn durability_warnings(config: &Config, key_rules: &[redplate_plugin_sdk::KeyRule]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if config.persistence.mode == "rdb" {
        out.push(
            Diagnostic::warning(
                format!("{NAME}.rdb-only"),
                "/config/persistence/mode",
                "`rdb` snapshots alone lose every write queued since the last save; write-behind needs the append-only file",
            )
            .with_hint("set `persistence.mode: mixed` (snapshots plus the append-only file)"),
        );
    }
    if config.persistence.appendfsync == "no" {
        out.push(
            Diagnostic::warning(
                format!("{NAME}.appendfsync-no"),
                "/config/persistence/appendfsync",
                "`appendfsync: no` leaves syncing to the kernel: a power loss can drop ~30 s of queued writes",
            )
            .with_hint("use `everysec`"),
        );
    }
    for (i, r) in key_rules.iter().enumerate().filter(|(_, r)| r.ttl_ms.is_none()) {
        let path = if i < config.cache.patterns.len() {
            format!("/config/cache/patterns/{i}/ttl")
        } else {
            cache_ptr("default_ttl")
        };
        out.push(
            Diagnostic::warning(
                format!("{NAME}.no-ttl-under-noeviction"),
                path,
                format!(
                    "keys matching `{}` never expire and `noeviction` never evicts them: memory fills until redis \
                     refuses writes, enqueues included",
                    r.pattern
                ),
            )
            .with_hint("give cached keys a TTL; the store keeps the data"),
        );
    }
    if matches!(config.deployment.mode.as_str(), "replication" | "sentinel" | "cluster") {
        out.push(
            Diagnostic::info(
                format!("{NAME}.failover-window"),
                "/config/deployment/mode",
                "a failover loses queued writes that no replica received yet",
            )
            .with_hint(
                "after enqueueing, `WAIT 1 <ms>` before acknowledging the caller (see `cache/write-behind.json`)",
            ),
        );
    }
    out
}

redplate_plugin_sdk::export_cache_strategy!(WriteBehind);
