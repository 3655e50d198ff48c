//! Checks every built-in strategy shares: out-of-range values (errors, so
//! `plan` refuses them) and risky combinations in the key rules (warnings in
//! the plan). Pointers are RFC 6901 paths into the input document.

use super::input::Config;
use super::rules::CATCH_ALL;
use redplate_plugin_sdk::{Diagnostic, KeyRule};

/// Largest jitter the config schema allows.
pub const MAX_JITTER: u8 = 50;

/// Pointer to a field of `config.cache`.
pub fn cache_ptr(field: &str) -> String {
    format!("/config/cache/{field}")
}

/// Pointer to a field of `config.cache.patterns[i]`.
pub fn pattern_ptr(i: usize, field: &str) -> String {
    format!("/config/cache/patterns/{i}/{field}")
}

/// Values no strategy can plan with.
pub fn errors(plugin: &str, config: &Config) -> Vec<Diagnostic> {
    let cache = &config.cache;
    let mut out = Vec::new();
    let jitter_err = |path: String, value: u8| {
        Diagnostic::error(
            format!("{plugin}.jitter-out-of-range"),
            path,
            format!("jitter of {value} % is above the {MAX_JITTER} % the template allows"),
        )
        .with_hint("use a share between 0 and 50; 10 is typical")
    };
    if cache.jitter_percent > MAX_JITTER {
        out.push(jitter_err(cache_ptr("jitter_percent"), cache.jitter_percent));
    }
    if !(1..=99).contains(&cache.refresh_ahead_threshold_percent) {
        out.push(
            Diagnostic::error(
                format!("{plugin}.refresh-threshold-out-of-range"),
                cache_ptr("refresh_ahead_threshold_percent"),
                format!("`refresh_ahead_threshold_percent` is {}, outside 1–99", cache.refresh_ahead_threshold_percent),
            )
            .with_hint("use e.g. 80: refresh once 80 % of the TTL has elapsed"),
        );
    }
    for (i, p) in cache.patterns.iter().enumerate() {
        if p.pattern.is_empty() {
            out.push(
                Diagnostic::error(
                    format!("{plugin}.empty-pattern"),
                    pattern_ptr(i, "pattern"),
                    "the key pattern is empty",
                )
                .with_hint("write a Redis glob such as `user:*`"),
            );
        }
        if let Some(j) = p.jitter_percent.filter(|j| *j > MAX_JITTER) {
            out.push(jitter_err(pattern_ptr(i, "jitter_percent"), j));
        }
    }
    out
}

/// Where a rule came from: pattern `i`, or the catch-all from the defaults.
fn origin(config: &Config, index: usize) -> Option<usize> {
    (index < config.cache.patterns.len()).then_some(index)
}

/// Warnings about the rules themselves: sliding costs, missing jitter,
/// sliding that starves refresh-ahead, unreachable rules, patterns that miss
/// every tenant key, write-behind keys under an evicting strategy.
pub fn rule_warnings(plugin: &str, config: &Config, rules: &[KeyRule], strategy_evicts: bool) -> Vec<Diagnostic> {
    let cache = &config.cache;
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let at = origin(config, i);
        let field = |pattern_field: &str, cache_field: &str| match at {
            Some(i) => pattern_ptr(i, pattern_field),
            None => cache_ptr(cache_field),
        };
        if r.sliding {
            let throttle = if cache.sliding_min_interval.0 == 0 {
                "and `sliding_min_interval` is 0, so every read writes".to_string()
            } else {
                format!("throttled to one touch per {} ms per key", cache.sliding_min_interval.0)
            };
            out.push(
                Diagnostic::warning(
                    format!("{plugin}.sliding-write-per-read"),
                    field("sliding", "sliding_expiration"),
                    format!(
                        "sliding expiration on `{}` turns reads into writes (`GETEX … PX`): each touch is \
                         replicated, appended to the AOF and invalidates client-side caches, {throttle}",
                        r.pattern
                    ),
                )
                .with_hint(
                    "keep sliding for session-like keys only, and set `cache.sliding_min_interval` (e.g. `10s`)",
                ),
            );
            if r.ttl_ms.is_some_and(|ttl| cache.sliding_min_interval.0 >= ttl) {
                out.push(Diagnostic::warning(
                    format!("{plugin}.sliding-interval-too-long"),
                    cache_ptr("sliding_min_interval"),
                    format!(
                        "`sliding_min_interval` ({} ms) is not shorter than the TTL of `{}`: keys expire before a touch is allowed",
                        cache.sliding_min_interval.0, r.pattern
                    ),
                ));
            }
        }
        if r.sliding && r.refresh_ahead_percent.is_some() {
            out.push(
                Diagnostic::warning(
                    format!("{plugin}.sliding-starves-refresh"),
                    field("sliding", "sliding_expiration"),
                    format!(
                        "`{}` both slides and refreshes ahead: reads keep pushing the expiry back, so a hot key \
                         never enters its refresh window and its value can stay stale forever",
                        r.pattern
                    ),
                )
                .with_hint("turn sliding off for keys that refresh ahead"),
            );
        }
        if r.ttl_ms.is_some() && r.jitter_percent == 0 && is_glob(&r.pattern) {
            out.push(
                Diagnostic::warning(
                    format!("{plugin}.no-jitter"),
                    field("jitter_percent", "jitter_percent"),
                    format!(
                        "keys matching `{}` share one TTL without jitter: keys written together (a warm-up, a \
                         deploy) expire together and stampede the backing store",
                        r.pattern
                    ),
                )
                .with_hint("set a jitter of 5–20 %"),
            );
        }
        if strategy_evicts && r.write_mode == redplate_plugin_sdk::WriteMode::WriteBehind {
            let path = at.map_or_else(|| cache_ptr("strategy"), |i| pattern_ptr(i, "write_mode"));
            out.push(
                Diagnostic::warning(
                    format!("{plugin}.write-behind-under-eviction"),
                    path,
                    format!(
                        "`{}` writes behind, but strategy `{}` lets Redis evict keys: an evicted queue loses \
                         writes that never reached the store",
                        r.pattern, cache.strategy
                    ),
                )
                .with_hint("use `cache.strategy: write-behind` (which sets `noeviction`) for write-behind keys"),
            );
        }
    }
    if let Some(star) = cache.patterns.iter().position(|p| p.pattern == CATCH_ALL)
        && star + 1 < cache.patterns.len()
    {
        out.push(
            Diagnostic::warning(
                format!("{plugin}.unreachable-rules"),
                pattern_ptr(star + 1, "pattern"),
                format!("pattern `*` at position {star} matches every key: the rules after it never apply"),
            )
            .with_hint("move `*` last, or drop it and set `cache.default_ttl`"),
        );
    }
    out.extend(tenant_prefix_warnings(plugin, config));
    out
}

/// With key-prefix tenancy every key starts with the tenant prefix; a pattern
/// whose literal head contradicts it matches nothing.
fn tenant_prefix_warnings(plugin: &str, config: &Config) -> Vec<Diagnostic> {
    let tenancy = &config.tenancy;
    if !tenancy.prefixed() {
        return Vec::new();
    }
    let head = tenancy.prefix_pattern.split("{tenantId}").next().unwrap_or("");
    let glob = tenancy.prefix_pattern.replace("{tenantId}", "*");
    let mut out = Vec::new();
    for (i, p) in config.cache.patterns.iter().enumerate() {
        let lit = literal_head(&p.pattern);
        if !(lit.starts_with(head) || head.starts_with(lit)) {
            out.push(
                Diagnostic::warning(
                    format!("{plugin}.pattern-outside-tenant-prefix"),
                    pattern_ptr(i, "pattern"),
                    format!("`{}` matches no tenant key: with key-prefix tenancy keys start with `{glob}`", p.pattern),
                )
                .with_hint(format!("start the pattern with `{glob}`")),
            );
        }
    }
    out
}

/// A warning when tenants must run the strategy's Lua scripts but may not.
pub fn scripts_warning(plugin: &str, config: &Config, what: &str) -> Option<Diagnostic> {
    (config.tenancy.enabled && !config.tenancy.allow_scripts).then(|| {
        Diagnostic::warning(
            format!("{plugin}.tenants-cannot-run-scripts"),
            "/config/tenancy/allow_scripts",
            format!("`{plugin}` runs Lua scripts ({what}), but tenant users may not run scripts"),
        )
        .with_hint("set `tenancy.allow_scripts: true`, or run the scripts with a non-tenant user")
    })
}

/// A warning when an eviction policy is planned but `maxmemory` is 0.
pub fn unlimited_memory_warning(plugin: &str, config: &Config, policy: &str) -> Option<Diagnostic> {
    config.memory.unlimited().then(|| {
        Diagnostic::warning(
            format!("{plugin}.no-memory-limit"),
            "/config/memory/maxmemory",
            format!("`maxmemory` is 0, so `{policy}` never runs: the cache grows until the host runs out of memory"),
        )
        .with_hint("set `memory.maxmemory`, e.g. `80%`")
    })
}

/// The part of a glob before its first special character.
fn literal_head(pattern: &str) -> &str {
    let end = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    &pattern[..end]
}

/// Whether a pattern can match more than one key.
fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}
