//! Built-in cache strategy: write-through. Every write commits to the store
//! and then updates the cache in the same operation, so reads after a write
//! hit; misses load behind the stampede lock as in cache-aside. The store
//! stays authoritative, so Redis needs no persistence of its own.

// Shared with the other built-in strategies; each uses a different part.
#[allow(dead_code)]
#[path = "../../cache-aside/src/common/mod.rs"]
mod common;

use common::checks;
use common::input::Config;
use common::rules::{self, StrategyDefaults};
use redplate_plugin_sdk::{CacheStrategy, Decision, Diagnostic, Host, Plan, PluginInfo, WriteMode};

const NAME: &str = "write-through";
/// `decide` gets no config: it jitters by the template's default share.
const DECIDE_JITTER_PERCENT: u8 = 10;

pub struct WriteThrough;

impl CacheStrategy for WriteThrough {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "write-through: writes commit to the store, then update the cache; misses load behind a stampede lock",
            &[NAME],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        common::parse(NAME, input_json).map_or_else(|d| d, |config| checks::errors(NAME, &config))
    }

    fn plan(input_json: &str, _host: &dyn Host) -> Result<Plan, Vec<Diagnostic>> {
        let config = common::parse(NAME, input_json)?;
        let errors = checks::errors(NAME, &config);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(plan(&config))
    }

    fn decide(key: &str, tenant: Option<&str>, base_ttl_ms: u64, seed: u64) -> Decision {
        rules::decide(key, tenant, base_ttl_ms, seed, DECIDE_JITTER_PERCENT, None, WriteMode::WriteThrough)
    }
}

fn plan(config: &Config) -> Plan {
    let policy = common::allkeys_policy(config);
    let directives = vec![common::directive(
        "maxmemory-policy",
        policy,
        "with write-through the store holds every value, so any key can be evicted and reloaded; evicting the \
         coldest keys beats refusing writes when memory is full",
    )];
    let key_rules = rules::key_rules(
        &config.cache,
        StrategyDefaults { write_mode: WriteMode::WriteThrough, refresh_catch_all: false },
    );
    let mut diagnostics = checks::rule_warnings(NAME, config, &key_rules, true);
    diagnostics.extend(checks::unlimited_memory_warning(NAME, config, policy));
    if config.cache.stampede_lock {
        diagnostics.extend(checks::scripts_warning(NAME, config, "the stampede lock"));
    }
    if config.persistence.mode != "none" {
        diagnostics.push(
            Diagnostic::info(
                format!("{NAME}.persistence-optional"),
                "/config/persistence/mode",
                format!(
                    "write-through keeps the store authoritative: persistence `{}` only shortens the warm-up after a \
                     restart",
                    config.persistence.mode
                ),
            )
            .with_hint("`persistence.mode: none` avoids fork and fsync costs if a cold start is acceptable"),
        );
    }
    let mut artifacts = common::lock_artifacts(config);
    artifacts.push(common::json_artifact("cache/write-through.json", &spec(config)));
    Plan { directives, key_rules, artifacts, diagnostics }
}

/// The client runtime's settings beyond the key rules.
fn spec(config: &Config) -> serde_json::Value {
    serde_json::json!({
        "strategy": NAME,
        "read": "GET; on a miss take the stampede lock, load from the store, write with the fill script",
        "write": "commit to the store first, then SET the value with the key rule's TTL (jitter applied); never write the cache before the store commits",
        "on_cache_write_failure": "UNLINK the key (retry once); if Redis is unreachable the TTL bounds how long a stale value can be served",
        "concurrent_writers": "two writers of one key may update the cache in the opposite order of their commits; when the store cannot order them, UNLINK instead of SET for that key class",
        "stampede_lock": common::lock_spec(config),
        "fail_safe": common::fail_safe_spec(config),
        "sliding_min_interval_ms": config.cache.sliding_min_interval.0,
    })
}

redplate_plugin_sdk::export_cache_strategy!(WriteThrough);
