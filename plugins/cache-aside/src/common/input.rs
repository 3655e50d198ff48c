//! The part of the input document the built-in strategies read: `config.cache`
//! plus the few `persistence`, `memory`, `tenancy` and `deployment` fields that
//! decide directives and diagnostics. Every field has the config model's
//! default (`config/src/model`), so a partial document works too; unknown
//! fields are ignored so the config can grow.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The input document `{config, target, topology, strategy}`, as far as read.
#[derive(Debug, Deserialize, Default)]
pub struct Input {
    #[serde(default)]
    pub config: Config,
}

/// `config`, as far as read.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub deployment: Deployment,
    pub persistence: Persistence,
    pub memory: Memory,
    pub tenancy: Tenancy,
    pub cache: Cache,
}

/// `config.deployment`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Deployment {
    /// `standalone`, `replication`, `sentinel` or `cluster`.
    pub mode: String,
}

/// `config.persistence`.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Persistence {
    /// `none`, `rdb`, `aof` or `mixed`.
    pub mode: String,
    /// `always`, `everysec` or `no`.
    pub appendfsync: String,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence { mode: "none".into(), appendfsync: "everysec".into() }
    }
}

/// `config.memory`.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// `0` (no limit), a size (`6gb`, bytes) or a percentage (`80%`).
    pub maxmemory: serde_json::Value,
    /// A Redis `maxmemory-policy` name.
    pub maxmemory_policy: String,
}

impl Default for Memory {
    fn default() -> Self {
        Memory { maxmemory: serde_json::Value::String("80%".into()), maxmemory_policy: "noeviction".into() }
    }
}

impl Memory {
    /// Whether `maxmemory` is 0, so no eviction policy ever runs.
    pub fn unlimited(&self) -> bool {
        match &self.maxmemory {
            serde_json::Value::Number(n) => n.as_u64() == Some(0),
            serde_json::Value::String(s) => s.trim().trim_end_matches(['b', 'B']).trim() == "0",
            _ => false,
        }
    }
}

/// `config.tenancy`.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Tenancy {
    pub enabled: bool,
    /// `key_prefix`, `database` or `instance`.
    pub isolation: String,
    /// Contains `{tenantId}`, e.g. `tenant:{tenantId}:`.
    pub prefix_pattern: String,
    pub allow_scripts: bool,
    pub tenants: Vec<Tenant>,
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy {
            enabled: false,
            isolation: "key_prefix".into(),
            prefix_pattern: "tenant:{tenantId}:".into(),
            allow_scripts: false,
            tenants: Vec::new(),
        }
    }
}

impl Tenancy {
    /// Whether tenants share one keyspace, told apart by key prefix.
    pub fn prefixed(&self) -> bool {
        self.enabled && self.isolation == "key_prefix"
    }
}

/// One `config.tenancy.tenants[]` entry.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Tenant {
    pub id: String,
}

/// `config.cache`.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Cache {
    pub strategy: String,
    pub default_ttl: Millis,
    pub jitter_percent: u8,
    pub sliding_expiration: bool,
    pub sliding_min_interval: Millis,
    /// Share of the TTL (percent) that has *elapsed* when a refresh starts.
    pub refresh_ahead_threshold_percent: u8,
    pub xfetch_beta_centi: u16,
    pub stampede_lock: bool,
    pub lock_ttl: Millis,
    pub fail_safe: bool,
    pub fail_safe_max_stale: Millis,
    pub write_behind_batch_size: u32,
    pub write_behind_flush_interval: Millis,
    pub write_behind_max_retries: u8,
    pub write_behind_stream: String,
    pub keyspace_events: String,
    pub patterns: Vec<Pattern>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            strategy: "none".into(),
            default_ttl: Millis(0),
            jitter_percent: 10,
            sliding_expiration: false,
            sliding_min_interval: Millis(1000),
            refresh_ahead_threshold_percent: 80,
            xfetch_beta_centi: 100,
            stampede_lock: true,
            lock_ttl: Millis(5000),
            fail_safe: true,
            fail_safe_max_stale: Millis(300_000),
            write_behind_batch_size: 100,
            write_behind_flush_interval: Millis(1000),
            write_behind_max_retries: 5,
            write_behind_stream: "wb".into(),
            keyspace_events: String::new(),
            patterns: Vec::new(),
        }
    }
}

/// One `config.cache.patterns[]` entry.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Pattern {
    pub pattern: String,
    /// 0: no expiry.
    pub ttl: Millis,
    /// `null`: `cache.jitter_percent`.
    pub jitter_percent: Option<u8>,
    pub sliding: bool,
    pub refresh_ahead: bool,
    /// `inherit`, `invalidate`, `write-through` or `write-behind`.
    pub write_mode: PatternWriteMode,
}

/// A pattern's write mode; `inherit` takes the strategy's.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PatternWriteMode {
    #[default]
    Inherit,
    Invalidate,
    WriteThrough,
    WriteBehind,
}

/// A duration in milliseconds, read as the config exports it: a number of
/// milliseconds or a string with a unit (`500ms`, `10s`, `3m`, `1h`, `2d`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub u64);

/// Parses `1500`, `500ms`, `10s`, `3m`, `1h`, `2d` into milliseconds.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("invalid duration unit `{other}` in `{text}`: use ms, s, m, h or d")),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid duration `{text}`: expected e.g. `10s` or `500ms`"))?;
    n.checked_mul(mult).ok_or_else(|| format!("duration `{text}` is out of range"))
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = Millis;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as `10s`, `500ms` or a number of milliseconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
        Ok(Millis(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
        u64::try_from(v).map(Millis).map_err(|_| E::custom(format!("duration `{v}` must not be negative")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
        parse_millis(v).map(Millis).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_config_exports_them() {
        assert_eq!(parse_millis("15m"), Ok(900_000));
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("0s"), Ok(0));
        assert_eq!(parse_millis("1500"), Ok(1500));
        assert!(parse_millis("5 weeks").is_err());
        assert!(parse_millis("99999999999999999999d").is_err());
        let cache: Cache = serde_json::from_str(r#"{"default_ttl": 2500, "lock_ttl": "2d"}"#).unwrap_or_default();
        assert_eq!((cache.default_ttl, cache.lock_ttl), (Millis(2500), Millis(172_800_000)));
        assert!(serde_json::from_str::<Cache>(r#"{"default_ttl": -1}"#).is_err());
    }

    #[test]
    fn maxmemory_zero_in_any_form_is_unlimited() {
        for (v, unlimited) in
            [("0", true), ("\"0\"", true), ("\"0b\"", true), ("\"80%\"", false), ("1073741824", false)]
        {
            let m: Memory = serde_json::from_str(&format!(r#"{{"maxmemory": {v}}}"#)).unwrap_or_default();
            assert_eq!(m.unlimited(), unlimited, "{v}");
        }
    }
}
