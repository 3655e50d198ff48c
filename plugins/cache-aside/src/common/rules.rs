//! Key rules from `config.cache` (first match wins, ending with a catch-all
//! `*` from the defaults) and the pure per-write decision: TTL jitter driven
//! by a seed, refresh window, write mode.

use super::input::{Cache, PatternWriteMode};
use redplate_plugin_sdk::{Decision, KeyRule, WriteMode};

/// What a strategy brings to rules that do not say otherwise.
#[derive(Debug, Clone, Copy)]
pub struct StrategyDefaults {
    /// The write mode of `inherit` patterns and of the catch-all.
    pub write_mode: WriteMode,
    /// Whether the catch-all rule refreshes ahead (patterns say it themselves
    /// with `refresh_ahead: true`).
    pub refresh_catch_all: bool,
}

/// The pattern of the catch-all rule.
pub const CATCH_ALL: &str = "*";

/// The share of the TTL left when a refresh starts (the WIT
/// `refresh-ahead-percent`), from the config's share that has *elapsed*
/// (`refresh_ahead_threshold_percent`, 1–99): 80 % elapsed → 20 % remaining.
pub fn remaining_percent(elapsed_threshold: u8) -> u8 {
    100 - elapsed_threshold.clamp(1, 99)
}

/// One rule per configured pattern, in order, then the catch-all `*` from the
/// defaults unless a pattern already is `*`.
pub fn key_rules(cache: &Cache, defaults: StrategyDefaults) -> Vec<KeyRule> {
    let remaining = remaining_percent(cache.refresh_ahead_threshold_percent);
    let mut rules: Vec<KeyRule> = cache
        .patterns
        .iter()
        .map(|p| {
            rule(
                p.pattern.clone(),
                p.ttl.0,
                p.jitter_percent.unwrap_or(cache.jitter_percent),
                p.sliding || cache.sliding_expiration,
                p.refresh_ahead.then_some(remaining),
                write_mode(p.write_mode, defaults.write_mode),
            )
        })
        .collect();
    if !cache.patterns.iter().any(|p| p.pattern == CATCH_ALL) {
        rules.push(rule(
            CATCH_ALL.into(),
            cache.default_ttl.0,
            cache.jitter_percent,
            cache.sliding_expiration,
            defaults.refresh_catch_all.then_some(remaining),
            defaults.write_mode,
        ));
    }
    rules
}

/// A rule; without a TTL there is nothing to jitter, slide or refresh.
fn rule(
    pattern: String,
    ttl_ms: u64,
    jitter_percent: u8,
    sliding: bool,
    refresh_ahead_percent: Option<u8>,
    write_mode: WriteMode,
) -> KeyRule {
    let expires = ttl_ms > 0;
    KeyRule {
        pattern,
        ttl_ms: expires.then_some(ttl_ms),
        jitter_percent: if expires { jitter_percent } else { 0 },
        sliding: expires && sliding,
        refresh_ahead_percent: refresh_ahead_percent.filter(|_| expires),
        write_mode,
    }
}

/// A pattern's write mode; `inherit` takes the strategy's.
pub fn write_mode(mode: PatternWriteMode, inherited: WriteMode) -> WriteMode {
    match mode {
        PatternWriteMode::Inherit => inherited,
        PatternWriteMode::Invalidate => WriteMode::Invalidate,
        PatternWriteMode::WriteThrough => WriteMode::WriteThrough,
        PatternWriteMode::WriteBehind => WriteMode::WriteBehind,
    }
}

/// The strategy's own per-write decision. `base_ttl_ms` 0 means no expiry.
/// The seed is mixed with the key and tenant, so a caller passing a constant
/// seed still spreads different keys; the same arguments always give the same
/// decision.
pub fn decide(
    key: &str,
    tenant: Option<&str>,
    base_ttl_ms: u64,
    seed: u64,
    jitter_percent: u8,
    refresh_remaining_percent: Option<u8>,
    write_mode: WriteMode,
) -> Decision {
    if base_ttl_ms == 0 {
        return Decision { ttl_ms: None, sliding: false, refresh_below_ms: None, write_mode };
    }
    let mixed = seed ^ fnv1a(key.as_bytes(), fnv1a(tenant.unwrap_or("").as_bytes(), FNV_OFFSET));
    let ttl = jittered(base_ttl_ms, jitter_percent, mixed);
    Decision {
        ttl_ms: Some(ttl),
        sliding: false,
        refresh_below_ms: refresh_remaining_percent.map(|pct| share(ttl, pct)),
        write_mode,
    }
}

/// `value × percent / 100`, without overflow.
pub fn share(value: u64, percent: u8) -> u64 {
    u64::try_from(u128::from(value) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// `base` moved by a uniform offset within ±`percent` % of it, chosen by
/// `seed`; never 0. Bounds are exact: `[base − span, base + span]` with
/// `span = ⌊base × percent / 100⌋`.
pub fn jittered(base: u64, percent: u8, seed: u64) -> u64 {
    let span = share(base, percent.min(100));
    if span == 0 {
        return base.max(1);
    }
    let width = u128::from(span) * 2 + 1;
    // Lemire's multiply-shift maps a 64-bit random onto [0, width) without a division.
    let offset = (u128::from(splitmix64(seed)) * width) >> 64;
    let low = u128::from(base - span);
    u64::try_from(low + offset).unwrap_or(u64::MAX).max(1)
}

/// splitmix64: a well-mixed 64-bit value from any seed, consecutive seeds included.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_bounds_are_exact_and_reached() {
        let ttls: Vec<u64> = (0..20_000).map(|s| jittered(60_000, 10, s)).collect();
        assert!(ttls.iter().all(|t| (54_000..=66_000).contains(t)));
        let (lo, hi) = (ttls.iter().min().copied().unwrap_or(0), ttls.iter().max().copied().unwrap_or(0));
        assert!(lo < 54_100 && hi > 65_900, "spread {lo}..{hi} does not cover ±10 %");
    }

    #[test]
    fn tiny_and_huge_ttls_stay_in_range() {
        assert_eq!(jittered(1, 50, 3), 1);
        assert!((5..=15).contains(&jittered(10, 50, 99)));
        assert!(jittered(u64::MAX, 50, 7) >= u64::MAX / 2);
        assert!(jittered(100, 100, 0) >= 1);
    }

    #[test]
    fn remaining_share_is_the_complement_of_the_elapsed_threshold() {
        assert_eq!(remaining_percent(80), 20);
        assert_eq!(remaining_percent(0), 99);
        assert_eq!(remaining_percent(100), 1);
        assert_eq!(share(900_000, 20), 180_000);
        assert_eq!(share(u64::MAX, 100), u64::MAX);
    }
}
