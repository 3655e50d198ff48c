//! Built-in cache strategy: cache-aside. The application reads through the
//! cache, loads on a miss behind a stampede lock kept in the key itself, and
//! invalidates on write; keys expire with jitter so that keys written
//! together do not expire together.

// Each strategy uses a different part of the shared module.
#[allow(dead_code)]
mod common;

use common::checks;
use common::input::Config;
use common::rules::{self, StrategyDefaults};
use redplate_plugin_sdk::{CacheStrategy, Decision, Diagnostic, Host, Plan, PluginInfo, WriteMode};

const NAME: &str = "cache-aside";
/// `decide` gets no config: it jitters by the template's default share.
const DECIDE_JITTER_PERCENT: u8 = 10;

pub struct CacheAside;

impl CacheStrategy for CacheAside {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "cache-aside: lazy loading with TTL jitter, a stampede lock in the key and invalidation on write",
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
        rules::decide(key, tenant, base_ttl_ms, seed, DECIDE_JITTER_PERCENT, None, WriteMode::Invalidate)
    }
}

fn plan(config: &Config) -> Plan {
    let policy = common::allkeys_policy(config);
    let directives = vec![common::directive(
        "maxmemory-policy",
        policy,
        "cache-aside can reload any key from the store, so when memory is full Redis should evict the coldest \
         keys rather than refuse writes",
    )];
    let key_rules = rules::key_rules(
        &config.cache,
        StrategyDefaults { write_mode: WriteMode::Invalidate, refresh_catch_all: false },
    );
    let mut diagnostics = checks::rule_warnings(NAME, config, &key_rules, true);
    diagnostics.extend(checks::unlimited_memory_warning(NAME, config, policy));
    if config.cache.stampede_lock {
        diagnostics.extend(checks::scripts_warning(NAME, config, "the stampede lock"));
    }
    let mut artifacts = common::lock_artifacts(config);
    artifacts.push(common::json_artifact("cache/cache-aside.json", &spec(config)));
    Plan { directives, key_rules, artifacts, diagnostics }
}

/// The client runtime's settings beyond the key rules.
fn spec(config: &Config) -> serde_json::Value {
    serde_json::json!({
        "strategy": NAME,
        "read": "GET; on a miss take the stampede lock, load from the store, write with the fill script (TTL from the key rule, jitter applied)",
        "write": "commit to the store, then UNLINK the key; never SET after a store write: the UNLINK also removes a loader's placeholder, so a load that read the old value cannot cache it",
        "stampede_lock": common::lock_spec(config),
        "fail_safe": common::fail_safe_spec(config),
        "sliding_min_interval_ms": config.cache.sliding_min_interval.0,
    })
}

redplate_plugin_sdk::export_cache_strategy!(CacheAside);
