//! The part of the input document (wit/INPUT.md) this generator reads, typed.
//! Every field has a default so a partial document still deserializes; sizes
//! and durations arrive in the config's canonical text form (`4gb`, `10s`).

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Input {
    pub name: String,
    pub config: Config,
    pub topology: Topology,
    pub strategy: Option<Strategy>,
    pub secrets: Secrets,
    /// Templates the user overrides: those go through the host's `render`.
    pub template_overrides: redplate_plugin_sdk::TemplateOverrides,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Topology {
    pub mode: String,
    pub master_name: Option<String>,
    pub shards: u16,
    pub nodes: Vec<Node>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct Node {
    pub name: String,
    pub role: String,
    pub shard: Option<u16>,
    pub ordinal: u16,
    pub hostname: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Strategy {
    pub name: String,
    pub directives: Vec<Directive>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Directive {
    pub name: String,
    pub value: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Secrets {
    pub users: BTreeMap<String, SecretRef>,
}

/// Where one user's password lives. `password`/`sha256` may be present for
/// other targets; this generator never reads them.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct SecretRef {
    pub secret_name: String,
    pub secret_key: String,
}

/// Only the config sections this generator reads.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub deployment: Value,
    pub resources: Value,
    pub network: Value,
    pub persistence: Value,
    pub replication: Value,
    pub sentinel: Value,
    pub cluster: Value,
    pub memory: Value,
    pub performance: Value,
    pub security: Security,
    pub monitoring: Value,
    pub backup: Value,
    pub kubernetes: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Security {
    pub auth_enabled: bool,
    pub password: Option<Value>,
    pub default_user_enabled: bool,
    pub users: Vec<AclUser>,
    pub system_users: bool,
    pub disabled_categories: Vec<String>,
    pub disabled_commands: Vec<String>,
    pub protected_mode: bool,
    pub acllog_max_len: Option<u32>,
    pub acl_pubsub_default: String,
    pub tls: Value,
    pub network_policy: bool,
    pub allowed_networks: Vec<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AclUser {
    pub name: String,
    pub role: String,
    pub password: Option<Value>,
    #[serde(deserialize_with = "true_by_default")]
    pub enabled: bool,
    pub commands: Vec<String>,
    pub keys: Vec<String>,
    pub channels: Vec<String>,
}

fn true_by_default<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// Typed reads from a config section with a default, so a missing or
/// mistyped field never panics.
pub trait Get {
    fn s(&self, key: &str, default: &str) -> String;
    fn b(&self, key: &str, default: bool) -> bool;
    fn n(&self, key: &str, default: u64) -> u64;
    fn list(&self, key: &str) -> Vec<String>;
    fn map(&self, key: &str) -> BTreeMap<String, String>;
    /// A size (`4gb`, `512mb`, or bytes) in bytes.
    fn bytes(&self, key: &str, default: u64) -> u64;
    /// A duration (`10s`, `2m`, `500ms`, or milliseconds) in milliseconds.
    fn millis(&self, key: &str, default: u64) -> u64;
}

impl Get for Value {
    fn s(&self, key: &str, default: &str) -> String {
        self.get(key).and_then(Value::as_str).unwrap_or(default).to_owned()
    }
    fn b(&self, key: &str, default: bool) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(default)
    }
    fn n(&self, key: &str, default: u64) -> u64 {
        self.get(key).and_then(Value::as_u64).unwrap_or(default)
    }
    fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    }
    fn map(&self, key: &str) -> BTreeMap<String, String> {
        match self.get(key) {
            Some(Value::Object(m)) => {
                m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect()
            }
            _ => BTreeMap::new(),
        }
    }
    fn bytes(&self, key: &str, default: u64) -> u64 {
        match self.get(key) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(default),
            Some(Value::String(s)) => parse_bytes(s).unwrap_or(default),
            _ => default,
        }
    }
    fn millis(&self, key: &str, default: u64) -> u64 {
        match self.get(key) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(default),
            Some(Value::String(s)) => parse_millis(s).unwrap_or(default),
            _ => default,
        }
    }
}

fn split_unit(s: &str) -> Option<(u64, String)> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s.get(..digits)?.parse::<u64>().ok()?;
    Some((n, s.get(digits..)?.trim().to_owned()))
}

/// `4gb` → bytes (binary multiples, as the config's `ByteSize`).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let (n, unit) = split_unit(s)?;
    let mul: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// `10s` → milliseconds.
pub fn parse_millis(s: &str) -> Option<u64> {
    let (n, unit) = split_unit(s)?;
    let mul: u64 = match unit.as_str() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// `maxmemory` in bytes: a size, a percentage of `resources.memory`, or 0.
pub fn maxmemory(memory: &Value, limit_bytes: u64) -> u64 {
    match memory.get("maxmemory") {
        Some(Value::String(s)) if s.trim_end().ends_with('%') => {
            let pct = s.trim().trim_end_matches('%').parse::<u64>().unwrap_or(0);
            limit_bytes / 100 * pct
        }
        Some(Value::String(s)) => parse_bytes(s).unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        assert_eq!(parse_bytes("4gb"), Some(4 << 30));
        assert_eq!(parse_bytes("64mb"), Some(64 << 20));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_millis("2m"), Some(120_000));
        assert_eq!(parse_millis("500ms"), Some(500));
        assert_eq!(parse_millis("0s"), Some(0));
        let mem = serde_json::json!({"maxmemory": "80%"});
        assert_eq!(maxmemory(&mem, 1000), 800);
    }
}
