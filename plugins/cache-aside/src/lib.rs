//! Built-in cache strategy: cache-aside. The application reads through the
//! cache, loads on a miss and invalidates on write; keys expire with jitter
//! so that keys written together do not expire together.

use redplate_plugin_sdk::{
    CacheStrategy, Decision, Diagnostic, Directive, Host, KeyRule, Plan, PluginInfo, WriteMode, parse_input,
};
use serde::Deserialize;

const NAME: &str = "cache-aside";
const DEFAULT_TTL_MS: u64 = 3_600_000;
const DEFAULT_JITTER: u8 = 10;

#[derive(Deserialize, Default)]
struct Input {
    #[serde(default)]
    config: Config,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    cache: Cache,
}

#[derive(Deserialize, Default)]
struct Cache {
    default_ttl_ms: Option<u64>,
    jitter_percent: Option<u8>,
    #[serde(default)]
    patterns: Vec<Pattern>,
}

#[derive(Deserialize)]
struct Pattern {
    pattern: String,
    ttl_ms: Option<u64>,
}

pub struct CacheAside;

impl CacheStrategy for CacheAside {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "cache-aside: lazy loading with TTLs and jitter",
            &[NAME],
        )
    }

    fn plan(input_json: &str, _host: &dyn Host) -> Result<Plan, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        let cache = input.config.cache;
        let jitter = cache.jitter_percent.unwrap_or(DEFAULT_JITTER);
        if jitter > 100 {
            return Err(vec![
                Diagnostic::error(
                    "cache-aside.jitter-out-of-range",
                    "/config/cache/jitter_percent",
                    format!("`jitter_percent` is {jitter}, above 100"),
                )
                .with_hint("use a share between 0 and 100; 10 is typical"),
            ]);
        }
        let default_ttl = cache.default_ttl_ms.unwrap_or(DEFAULT_TTL_MS);
        let mut key_rules: Vec<KeyRule> =
            cache.patterns.into_iter().map(|p| rule(p.pattern, p.ttl_ms.unwrap_or(default_ttl), jitter)).collect();
        key_rules.push(rule("*".into(), default_ttl, jitter));
        Ok(Plan {
            directives: vec![Directive {
                name: "maxmemory-policy".into(),
                value: "allkeys-lru".into(),
                reason: "cache-aside keeps the hot set in memory and lets cold keys go".into(),
            }],
            key_rules,
            ..Plan::default()
        })
    }

    fn decide(_key: &str, _tenant: Option<&str>, base_ttl_ms: u64, seed: u64) -> Decision {
        Decision {
            ttl_ms: Some(jittered(base_ttl_ms, DEFAULT_JITTER, seed)),
            sliding: false,
            refresh_below_ms: None,
            write_mode: WriteMode::Invalidate,
        }
    }
}

fn rule(pattern: String, ttl_ms: u64, jitter_percent: u8) -> KeyRule {
    KeyRule {
        pattern,
        ttl_ms: Some(ttl_ms),
        jitter_percent,
        sliding: false,
        refresh_ahead_percent: None,
        write_mode: WriteMode::Invalidate,
    }
}

/// `base` moved by up to ±`percent`% , chosen by `seed` (splitmix64), never 0.
pub fn jittered(base: u64, percent: u8, seed: u64) -> u64 {
    let span = base / 100 * u64::from(percent.min(100));
    if span == 0 {
        return base.max(1);
    }
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let offset = z % (2 * span + 1);
    (base - span + offset).max(1)
}

redplate_plugin_sdk::export_cache_strategy!(CacheAside);

#[cfg(test)]
mod tests {
    use super::*;
    use redplate_plugin_sdk::NativeHost;

    #[test]
    fn jitter_stays_within_the_share_and_varies_with_the_seed() {
        let ttls: Vec<u64> = (0..1000).map(|s| jittered(60_000, 10, s)).collect();
        assert!(ttls.iter().all(|t| (54_000..=66_000).contains(t)));
        let distinct: std::collections::BTreeSet<_> = ttls.iter().collect();
        assert!(distinct.len() > 500, "only {} distinct TTLs", distinct.len());
        assert_eq!(jittered(60_000, 10, 7), jittered(60_000, 10, 7));
    }

    #[test]
    fn plan_sets_lru_and_a_catch_all_rule() {
        let plan = CacheAside::plan(
            r#"{"config":{"cache":{"patterns":[{"pattern":"user:*","ttl_ms":5000}]}}}"#,
            &NativeHost::default(),
        )
        .expect("plans");
        assert_eq!(plan.directives[0].value, "allkeys-lru");
        assert_eq!(plan.key_rules[0].ttl_ms, Some(5000));
        assert_eq!(plan.key_rules.last().map(|r| r.pattern.as_str()), Some("*"));
    }

    #[test]
    fn out_of_range_jitter_is_refused_with_a_pointer() {
        let err =
            CacheAside::plan(r#"{"config":{"cache":{"jitter_percent":150}}}"#, &NativeHost::default()).unwrap_err();
        assert_eq!(err[0].path, "/config/cache/jitter_percent");
    }
}
