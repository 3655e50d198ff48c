//! `INFO` replies as typed fields.

use std::collections::BTreeMap;

/// The fields of an `INFO` reply (`name:value` lines; sections merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info(pub BTreeMap<String, String>);

impl Info {
    /// A field's text.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// A field as a number (`0` when absent or not a number).
    pub fn num(&self, field: &str) -> f64 {
        self.get(field).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }

    /// A field as an unsigned integer, when present and numeric.
    pub fn uint(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(|v| v.parse().ok())
    }

    /// `db0:keys=3,expires=1,avg_ttl=0` → (keys, expires) per database.
    pub fn keyspace(&self) -> BTreeMap<u32, (u64, u64)> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(db) = k.strip_prefix("db").and_then(|n| n.parse().ok()) else { continue };
            let field = |name: &str| {
                v.split(',').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
            };
            out.insert(db, (field("keys"), field("expires")));
        }
        out
    }

    /// Every key in every database.
    pub fn total_keys(&self) -> u64 {
        self.keyspace().values().map(|(k, _)| k).sum()
    }
}

/// Parses `INFO` text.
pub fn parse_info(text: &str) -> Info {
    Info(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_keyspace_are_read() {
        let info = parse_info(
            "# Memory\r\nused_memory:1024\r\nrole:master\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=4,expires=0,avg_ttl=0\r\n",
        );
        assert_eq!(info.num("used_memory"), 1024.0);
        assert_eq!(info.get("role"), Some("master"));
        assert_eq!(info.keyspace()[&0], (3, 1));
        assert_eq!(info.total_keys(), 7);
    }
}
