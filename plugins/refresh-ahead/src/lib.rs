//! Built-in cache strategy: refresh-ahead. Hot keys are recomputed before
//! they expire (XFetch early refresh inside each rule's refresh window, one
//! refresher per key behind a lock), so readers rarely miss; a refresh never
//! extends the old value's TTL, so a slow or failing refresh cannot pin a
//! stale value. Expired-key notifications let refreshers re-warm keys.

// Shared with the other built-in strategies; each uses a different part.
#[allow(dead_code)]
#[path = "../../cache-aside/src/common/mod.rs"]
mod common;
mod notify;

use common::checks;
use common::input::Config;
use common::rules::{self, StrategyDefaults};
use redplate_plugin_sdk::{CacheStrategy, Decision, Diagnostic, Directive, Host, KeyRule, Plan, PluginInfo, WriteMode};

const NAME: &str = "refresh-ahead";
/// `decide` gets no config: it uses the template's defaults, 10 % jitter and
/// a refresh once 80 % of the TTL has elapsed (20 % remaining).
const DECIDE_JITTER_PERCENT: u8 = 10;
const DECIDE_ELAPSED_THRESHOLD_PERCENT: u8 = 80;
/// Refresh windows shorter than this rarely fit a recompute.
const SHORT_WINDOW_MS: u64 = 1_000;

pub struct RefreshAhead;

impl CacheStrategy for RefreshAhead {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "refresh-ahead: hot keys are recomputed before they expire (XFetch), with expiry notifications",
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
        let remaining = rules::remaining_percent(DECIDE_ELAPSED_THRESHOLD_PERCENT);
        rules::decide(key, tenant, base_ttl_ms, seed, DECIDE_JITTER_PERCENT, Some(remaining), WriteMode::Invalidate)
    }
}

fn plan(config: &Config) -> Plan {
    let key_rules = rules::key_rules(
        &config.cache,
        StrategyDefaults { write_mode: WriteMode::Invalidate, refresh_catch_all: true },
    );
    let directives = vec![
        common::directive(
            "notify-keyspace-events",
            &notify::merge(&[&config.cache.keyspace_events, "Ex"]),
            "refreshers subscribe to `__keyevent@<db>__:expired` to re-warm hot keys that expired unread",
        ),
        eviction(config, &key_rules),
    ];
    let mut diagnostics = checks::rule_warnings(NAME, config, &key_rules, true);
    diagnostics.extend(refresh_warnings(config, &key_rules));
    diagnostics.extend(checks::unlimited_memory_warning(NAME, config, &directives[1].value));
    diagnostics.extend(checks::scripts_warning(NAME, config, "the stampede and refresh locks"));
    let mut artifacts = common::lock_artifacts(config);
    artifacts.push(common::json_artifact("cache/refresh-ahead.json", &spec(config)));
    Plan { directives, key_rules, artifacts, diagnostics }
}

/// `volatile-*` when some keys have no TTL: refresh-ahead only knows how to
/// reload keys that expire, so only those may be evicted. When every rule
/// sets a TTL, `allkeys-*` evicts the same keys and also covers keys written
/// outside the rules. LFU when the template asks for it.
fn eviction(config: &Config, key_rules: &[KeyRule]) -> Directive {
    let lfu = config.memory.maxmemory_policy.ends_with("-lfu");
    let pinned: Vec<&str> = key_rules.iter().filter(|r| r.ttl_ms.is_none()).map(|r| r.pattern.as_str()).collect();
    if pinned.is_empty() {
        common::directive(
            "maxmemory-policy",
            if lfu { "allkeys-lfu" } else { "allkeys-lru" },
            "every key rule sets a TTL, so every key can be reloaded and may be evicted; an evicted hot key is \
             simply loaded again on its next read, and keys written outside the rules cannot fill memory",
        )
    } else {
        common::directive(
            "maxmemory-policy",
            if lfu { "volatile-lfu" } else { "volatile-lru" },
            &format!(
                "keys matching {} have no TTL and are never refreshed or reloaded, so only keys with a TTL (which \
                 refresh-ahead reloads) may be evicted",
                named(&pinned)
            ),
        )
    }
}

/// Up to five patterns in backticks, then how many more.
fn named(patterns: &[&str]) -> String {
    let mut text = patterns.iter().take(5).map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    if patterns.len() > 5 {
        text.push_str(&format!(" and {} more", patterns.len() - 5));
    }
    text
}

fn refresh_warnings(config: &Config, key_rules: &[KeyRule]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if !key_rules.iter().any(|r| r.refresh_ahead_percent.is_some()) {
        out.push(
            Diagnostic::warning(
                format!("{NAME}.nothing-refreshes"),
                "/config/cache/default_ttl",
                "no key rule has both a TTL and refresh-ahead: nothing is refreshed ahead of expiry",
            )
            .with_hint("set `cache.default_ttl`, or `refresh_ahead: true` on patterns with a TTL"),
        );
    }
    if key_rules.iter().any(|r| r.ttl_ms.is_none()) {
        out.push(
            Diagnostic::warning(
                format!("{NAME}.volatile-eviction"),
                "/config/cache/default_ttl",
                "keys without a TTL are never evicted under a `volatile-*` policy: if they fill memory redis refuses \
                 writes",
            )
            .with_hint("give every key rule a TTL, including `cache.default_ttl`"),
        );
    }
    for (i, r) in key_rules.iter().enumerate() {
        let (Some(ttl), Some(pct)) = (r.ttl_ms, r.refresh_ahead_percent) else { continue };
        let window = rules::share(ttl, pct);
        if window < SHORT_WINDOW_MS {
            let path = if i < config.cache.patterns.len() {
                checks::pattern_ptr(i, "refresh_ahead")
            } else {
                checks::cache_ptr("refresh_ahead_threshold_percent")
            };
            out.push(
                Diagnostic::warning(
                    format!("{NAME}.short-refresh-window"),
                    path,
                    format!(
                        "`{}` refreshes in the last {window} ms of its TTL: a recompute rarely fits, so keys expire \
                         and readers miss anyway",
                        r.pattern
                    ),
                )
                .with_hint("refresh keys with a longer TTL only, or lower `refresh_ahead_threshold_percent`"),
            );
        }
    }
    if config.deployment.mode == "cluster" {
        out.push(Diagnostic::info(
            format!("{NAME}.node-local-notifications"),
            "/config/deployment/mode",
            "keyspace notifications are published on the node that owns the key: refreshers must subscribe on every \
             master",
        ));
    }
    out
}

/// The client runtime's settings beyond the key rules.
fn spec(config: &Config) -> serde_json::Value {
    let cache = &config.cache;
    serde_json::json!({
        "strategy": NAME,
        "xfetch": {
            "beta_centi": cache.xfetch_beta_centi,
            "beta": f64::from(cache.xfetch_beta_centi) / 100.0,
            "store_with_value": ["delta_ms (measured recompute time)", "expiry_ms (absolute)"],
            "refresh_when": "inside the rule's refresh window (the last refresh_ahead_percent of the TTL): now_ms - delta_ms * beta * ln(rand()) >= expiry_ms, rand() uniform in (0, 1]",
        },
        "refresh_lock": {
            "key": "<key>:refresh",
            "acquire": "SET <key>:refresh <token> NX PX <refresh window ms>",
            "release_script": common::LOCK_RELEASE_PATH,
            "why": "one refresher per key; the others keep serving the current value",
        },
        "expiry": "a refresh writes the new value with a fresh TTL from the key rule (jitter applied); it never extends the old value's TTL, so a refresh that fails or outlives the window lets the key expire and the next read load it",
        "refresh_timeout": "the refresh window: a refresh still running at expiry is abandoned, not retried in a loop",
        "notifications": {
            "channel": "__keyevent@<db>__:expired",
            "use": "optional re-warm of hot keys that expired unread; events fire when redis deletes the key (on access or by the expiry cycle), not exactly at the TTL",
        },
        "stampede_lock": common::lock_spec(config),
        "fail_safe": common::fail_safe_spec(config),
    })
}

redplate_plugin_sdk::export_cache_strategy!(RefreshAhead);
