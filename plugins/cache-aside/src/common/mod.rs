//! What the four built-in cache strategies share: the input they read, key
//! rules and jitter, shared checks, and the stampede lock scripts. Each
//! strategy crate includes this module by path (the crates must not depend
//! on each other: each exports its own WIT world).

pub mod checks;
pub mod input;
pub mod rules;

use input::{Config, Input};
use redplate_plugin_sdk::{Artifact, Diagnostic, Directive, parse_input};

/// The marker a stampede placeholder value starts with; a reader that finds
/// it waits instead of serving it.
pub const LOCK_PREFIX: &str = "__redplate_lock__:";

/// Parses the input document.
pub fn parse(plugin: &str, input_json: &str) -> Result<Config, Vec<Diagnostic>> {
    parse_input::<Input>(plugin, input_json).map(|i| i.config)
}

/// Splits diagnostics into errors (the run fails) and the rest.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == redplate_plugin_sdk::Severity::Error)
}

/// A directive with its reason.
pub fn directive(name: &str, value: &str, reason: &str) -> Directive {
    Directive { name: name.into(), value: value.into(), reason: reason.into() }
}

/// The eviction policy of a cache that may evict any key: LFU when the
/// template asks for LFU (hot-key workloads), LRU otherwise.
pub fn allkeys_policy(config: &Config) -> &'static str {
    if config.memory.maxmemory_policy.ends_with("-lfu") { "allkeys-lfu" } else { "allkeys-lru" }
}

/// A pretty-printed JSON file ending with a newline. Object keys come out in
/// a fixed order, so the bytes are deterministic.
pub fn json_artifact(path: &str, value: &serde_json::Value) -> Artifact {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    Artifact::new(path, text, "application/json")
}

/// A Lua script file.
pub fn lua_artifact(path: &str, source: &str) -> Artifact {
    Artifact::new(path, source, "text/x-lua")
}

/// Path of the stampede lock's fill script.
pub const LOCK_FILL_PATH: &str = "cache/stampede/fill.lua";
/// Path of the stampede lock's release script.
pub const LOCK_RELEASE_PATH: &str = "cache/stampede/release.lua";
/// The fill script's source.
pub const LOCK_FILL_LUA: &str = include_str!("lua/lock_fill.lua");
/// The release script's source.
pub const LOCK_RELEASE_LUA: &str = include_str!("lua/lock_release.lua");

/// The stampede lock scripts, when `cache.stampede_lock` is on.
pub fn lock_artifacts(config: &Config) -> Vec<Artifact> {
    if !config.cache.stampede_lock {
        return Vec::new();
    }
    vec![lua_artifact(LOCK_FILL_PATH, LOCK_FILL_LUA), lua_artifact(LOCK_RELEASE_PATH, LOCK_RELEASE_LUA)]
}

/// How a client uses the stampede lock (part of each strategy's runtime spec).
pub fn lock_spec(config: &Config) -> serde_json::Value {
    let cache = &config.cache;
    if !cache.stampede_lock {
        return serde_json::json!({ "enabled": false });
    }
    serde_json::json!({
        "enabled": true,
        "ttl_ms": cache.lock_ttl.0,
        "placeholder_prefix": LOCK_PREFIX,
        "acquire": format!("SET <key> {LOCK_PREFIX}<random token> NX PX {}", cache.lock_ttl.0),
        "fill_script": LOCK_FILL_PATH,
        "release_script": LOCK_RELEASE_PATH,
        "on_placeholder": "a reader that finds a placeholder never serves it: it waits with backoff, at most ttl_ms, then loads without caching",
        "in_process": "coalesce concurrent misses of one key in a process before taking the lock",
    })
}

/// Fail-safe settings (serve stale when the store fails).
pub fn fail_safe_spec(config: &Config) -> serde_json::Value {
    let cache = &config.cache;
    serde_json::json!({
        "enabled": cache.fail_safe,
        "max_stale_ms": cache.fail_safe_max_stale.0,
        "how": "keep the value max_stale_ms past its logical expiry (physical TTL = TTL + max_stale_ms, logical expiry stored with the value); serve it only when a reload fails or times out",
    })
}
