//! Typed reads from the input document: JSON pointers into `config`, with
//! the config's units (`64mb`, `10s`, `80%`). A value of the wrong type is
//! recorded as a diagnostic pointing at it; a missing value reads as `None`
//! so the directive is left to Redis's default.

use redplate_plugin_sdk::Diagnostic;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// `Value::pointer` without its per-token `~` unescaping, which allocated
/// twice per token and was 70% of a 9-node render (callgrind). Config keys
/// never contain `~` or `/`; a pointer that does falls back to the real thing.
fn lookup<'v>(root: &'v Value, ptr: &str) -> Option<&'v Value> {
    if ptr.contains('~') {
        return root.pointer(ptr);
    }
    let rest = ptr.strip_prefix('/')?;
    rest.split('/').try_fold(root, |v, token| match v {
        Value::Object(map) => map.get(token),
        Value::Array(list) => token.parse::<usize>().ok().and_then(|i| list.get(i)),
        _ => None,
    })
}

/// Reads `config` values by JSON pointer, collecting type errors.
pub struct Cfg<'a> {
    root: &'a Value,
    errors: RefCell<Vec<Diagnostic>>,
    /// Pointers already looked up: every data node reads the same ~100
    /// settings, and walking the tree was a quarter of a 9-node render.
    seen: RefCell<HashMap<Box<str>, Option<&'a Value>>>,
}

impl<'a> Cfg<'a> {
    /// Wraps the input's `config` object.
    pub fn new(root: &'a Value) -> Self {
        Cfg { root, errors: RefCell::new(Vec::new()), seen: RefCell::new(HashMap::with_capacity(256)) }
    }

    /// The type errors found so far.
    pub fn take_errors(&self) -> Vec<Diagnostic> {
        std::mem::take(&mut *self.errors.borrow_mut())
    }

    fn bad(&self, ptr: &str, expected: &str) {
        let found = self.get(ptr).map(|v| v.to_string()).unwrap_or_default();
        self.errors.borrow_mut().push(
            Diagnostic::error(
                "redis-conf.bad-value",
                format!("/config{ptr}"),
                format!("expected {expected}, found `{found}`"),
            )
            .with_hint("run `redplate validate` on the template; the host exports every value in canonical form"),
        );
    }

    /// The raw value; `null` reads as absent. Remembered per pointer.
    pub fn get(&self, ptr: &str) -> Option<&'a Value> {
        if let Some(found) = self.seen.borrow().get(ptr) {
            return *found;
        }
        let found = lookup(self.root, ptr).filter(|v| !v.is_null());
        self.seen.borrow_mut().insert(ptr.into(), found);
        found
    }

    pub fn bool(&self, ptr: &str) -> Option<bool> {
        let v = self.get(ptr)?;
        v.as_bool().or_else(|| {
            self.bad(ptr, "`true` or `false`");
            None
        })
    }

    pub fn uint(&self, ptr: &str) -> Option<u64> {
        let v = self.get(ptr)?;
        v.as_u64().or_else(|| {
            self.bad(ptr, "a whole number");
            None
        })
    }

    pub fn int(&self, ptr: &str) -> Option<i64> {
        let v = self.get(ptr)?;
        v.as_i64().or_else(|| {
            self.bad(ptr, "a number");
            None
        })
    }

    pub fn str(&self, ptr: &str) -> Option<&'a str> {
        let v = self.get(ptr)?;
        v.as_str().or_else(|| {
            self.bad(ptr, "a string");
            None
        })
    }

    /// A list of strings (`bind`, `disabled_categories`); absent is empty.
    pub fn strings(&self, ptr: &str) -> Vec<&'a str> {
        match self.get(ptr) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let out: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                out.unwrap_or_else(|| {
                    self.bad(ptr, "a list of strings");
                    Vec::new()
                })
            }
            Some(_) => {
                self.bad(ptr, "a list of strings");
                Vec::new()
            }
        }
    }

    /// A size in bytes (`64mb`, `1gb`, `1024`).
    pub fn bytes(&self, ptr: &str) -> Option<u64> {
        let v = self.get(ptr)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => parse_size(s),
            _ => None,
        };
        parsed.or_else(|| {
            self.bad(ptr, "a size such as `64mb` or a number of bytes");
            None
        })
    }

    /// A duration in milliseconds (`10s`, `500ms`, `1500`).
    pub fn millis(&self, ptr: &str) -> Option<u64> {
        let v = self.get(ptr)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        parsed.or_else(|| {
            self.bad(ptr, "a duration such as `10s` or a number of milliseconds");
            None
        })
    }

    /// A duration in whole seconds (Redis takes most timeouts in seconds).
    pub fn secs(&self, ptr: &str) -> Option<u64> {
        self.millis(ptr).map(|ms| ms / 1000)
    }

    /// `memory.maxmemory`: a size, or a percentage of `resources.memory`
    /// resolved to bytes the way the config model does (`memory / 100 * p`).
    pub fn maxmemory(&self) -> Option<u64> {
        const PTR: &str = "/memory/maxmemory";
        match self.get(PTR)? {
            Value::String(s) if s.trim().ends_with('%') => {
                let pct = s.trim().trim_end_matches('%').trim().parse::<u64>().ok().filter(|p| *p <= 100);
                let Some(pct) = pct else {
                    self.bad(PTR, "a percentage from 0% to 100%");
                    return None;
                };
                let memory = self.bytes("/resources/memory")?;
                Some(memory / 100 * pct)
            }
            _ => self.bytes(PTR),
        }
    }
}

/// Parses a size with Redis's units: `k`/`m`/`g` powers of 1000, `kb`/`mb`/`gb`
/// (and `kib`…) powers of 1024.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" | "kib" => 1 << 10,
        "m" => 1_000_000,
        "mb" | "mib" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" | "gib" => 1 << 30,
        "t" => 1_000_000_000_000,
        "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    if num.contains('.') {
        let f: f64 = num.parse().ok()?;
        let bytes = f * mult as f64;
        return (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 / 2.0).then(|| bytes.round() as u64);
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Parses `500ms`, `10s`, `3m`, `1h`, `2d`, `1500` (milliseconds).
pub fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units_follow_the_config_model() {
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("100k"), Some(100_000));
        assert_eq!(parse_size("1.5kb"), Some(1536));
        assert_eq!(parse_size("12parsecs"), None);
        assert_eq!(parse_duration("10s"), Some(10_000));
        assert_eq!(parse_duration("0s"), Some(0));
        assert_eq!(parse_duration("1500"), Some(1500));
        assert_eq!(parse_duration("1y"), None);
    }

    #[test]
    fn maxmemory_percent_resolves_against_resources_memory() {
        let v = json!({"memory": {"maxmemory": "80%"}, "resources": {"memory": "256mb"}});
        assert_eq!(Cfg::new(&v).maxmemory(), Some((256u64 << 20) / 100 * 80));
        let v = json!({"memory": {"maxmemory": "1gb"}});
        assert_eq!(Cfg::new(&v).maxmemory(), Some(1 << 30));
    }

    #[test]
    fn a_wrong_type_is_a_pointed_error() {
        let v = json!({"performance": {"hz": "often"}});
        let cfg = Cfg::new(&v);
        assert_eq!(cfg.uint("/performance/hz"), None);
        let errors = cfg.take_errors();
        assert_eq!(errors[0].path, "/config/performance/hz");
        assert_eq!(cfg.uint("/performance/missing"), None);
        assert!(cfg.take_errors().is_empty());
    }
}
