//! Human-friendly units: byte sizes (`512mb`, `2gb`, `1gib`, bare numbers are
//! bytes), durations (`10s`, `500ms`, `3m`, bare numbers are milliseconds) and
//! memory limits that may be a percentage of `resources.memory`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

const KIB: u64 = 1024;
const MIB: u64 = KIB * 1024;
const GIB: u64 = MIB * 1024;
const TIB: u64 = GIB * 1024;

/// A number of bytes. Redis semantics: `k`/`m`/`g` are powers of 1000,
/// `kb`/`mb`/`gb` (and `kib`/`mib`/`gib`) powers of 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * MIB)
    }
    /// `n` gibibytes.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n * GIB)
    }
    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `512mb`, `2gb`, `1gib`, `100k`, `1024`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("invalid size `{text}`: expected a number with a unit such as `512mb` or `2gb`"));
        }
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" => 1000,
            "kb" | "kib" => KIB,
            "m" => 1_000_000,
            "mb" | "mib" => MIB,
            "g" => 1_000_000_000,
            "gb" | "gib" => GIB,
            "t" => 1_000_000_000_000,
            "tb" | "tib" => TIB,
            other => {
                return Err(format!(
                    "invalid size unit `{other}` in `{text}`: use b, kb, mb, gb, tb (or kib, mib, gib, k, m, g)"
                ));
            }
        };
        if num.contains('.') {
            let f: f64 = num.parse().map_err(|_| format!("invalid size `{text}`"))?;
            let bytes = f * mult as f64;
            if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 / 2.0 {
                return Err(format!("size `{text}` is out of range"));
            }
            return Ok(ByteSize(bytes.round() as u64));
        }
        let n: u64 = num.parse().map_err(|_| format!("size `{text}` is out of range"))?;
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("size `{text}` is out of range"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, name) in [(TIB, "tb"), (GIB, "gb"), (MIB, "mb"), (KIB, "kb")] {
            if b != 0 && b.is_multiple_of(unit) {
                return write!(f, "{}{name}", b / unit);
            }
        }
        write!(f, "{b}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 != 0 && self.0.is_multiple_of(KIB) { s.collect_str(self) } else { s.serialize_u64(self.0) }
    }
}

struct SizeVisitor;
impl Visitor<'_> for SizeVisitor {
    type Value = ByteSize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size such as `512mb`, `2gb` or a number of bytes")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("size `{v}` must not be negative")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!("size `{v}` must be a whole number of bytes or carry a unit")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size: bytes as a number, or a number with a unit (`512mb`, `2gb`, `1gib`, `100k`).",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?$"}
            ]
        })
    }
}

/// A duration, kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Duration(n * 1000)
    }
    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Self {
        Duration(n)
    }
    /// The duration in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// The duration in whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Parses `500ms`, `10s`, `3m`, `1h`, `2d`, `1500` (milliseconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("invalid duration `{text}`: expected a number with a unit such as `10s` or `500ms`"));
        }
        let mult: u64 = match unit.trim() {
            "" | "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!("invalid duration unit `{other}` in `{text}`: use ms, s, m, h or d"));
            }
        };
        let n: u64 = num.parse().map_err(|_| format!("duration `{text}` is out of range"))?;
        n.checked_mul(mult).map(Duration).ok_or_else(|| format!("duration `{text}` is out of range"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, name) in [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")] {
            if ms.is_multiple_of(unit) {
                return write!(f, "{}{name}", ms / unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct DurationVisitor;
impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as `10s`, `500ms`, `3m` or a number of milliseconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v).map(Duration).map_err(|_| E::custom(format!("duration `{v}` must not be negative")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!("duration `{v}` must be a whole number of milliseconds or carry a unit")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        Duration::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: milliseconds as a number, or a number with a unit (`500ms`, `10s`, `3m`, `1h`, `1d`).",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+\\s*(ms|s|m|h|d)?$"}
            ]
        })
    }
}

/// A memory limit: an absolute size or a percentage of `resources.memory`
/// (`80%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryLimit {
    /// No limit (`0`).
    Unlimited,
    /// An absolute size.
    Size(ByteSize),
    /// A percentage (1–100) of `resources.memory`.
    Percent(u8),
}

impl Default for MemoryLimit {
    fn default() -> Self {
        MemoryLimit::Percent(80)
    }
}

impl MemoryLimit {
    /// The limit in bytes for an instance of `memory` bytes; `None` when unlimited.
    pub fn resolve(self, memory: ByteSize) -> Option<u64> {
        match self {
            MemoryLimit::Unlimited => None,
            MemoryLimit::Size(s) => Some(s.0),
            MemoryLimit::Percent(p) => Some(memory.0 / 100 * u64::from(p)),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let n: u8 = p
                .trim()
                .parse()
                .map_err(|_| format!("invalid percentage `{text}`: expected a whole number from 1 to 100"))?;
            if n == 0 || n > 100 {
                return Err(format!("percentage `{text}` must be between 1% and 100%"));
            }
            return Ok(MemoryLimit::Percent(n));
        }
        let size = ByteSize::parse(t)?;
        Ok(if size.0 == 0 { MemoryLimit::Unlimited } else { MemoryLimit::Size(size) })
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLimit::Unlimited => f.write_str("0"),
            MemoryLimit::Size(s) => s.fmt(f),
            MemoryLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for MemoryLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MemoryLimit::Unlimited => s.serialize_u64(0),
            MemoryLimit::Size(b) => b.serialize(s),
            MemoryLimit::Percent(_) => s.collect_str(self),
        }
    }
}

struct LimitVisitor;
impl Visitor<'_> for LimitVisitor {
    type Value = MemoryLimit;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size such as `2gb`, a percentage such as `80%`, or 0 for no limit")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<MemoryLimit, E> {
        Ok(if v == 0 { MemoryLimit::Unlimited } else { MemoryLimit::Size(ByteSize(v)) })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<MemoryLimit, E> {
        let v = u64::try_from(v).map_err(|_| E::custom(format!("memory limit `{v}` must not be negative")))?;
        self.visit_u64(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<MemoryLimit, E> {
        Err(E::custom(format!("memory limit `{v}` must be a whole number of bytes, a size or a percentage")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<MemoryLimit, E> {
        MemoryLimit::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for MemoryLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LimitVisitor)
    }
}

impl JsonSchema for MemoryLimit {
    fn schema_name() -> Cow<'static, str> {
        "MemoryLimit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A memory limit: a size (`2gb`), a percentage of `resources.memory` (`80%`), or 0 for none.",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]([iI]?[bB])?|[bB])?|[0-9]{1,3}%)$"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(ByteSize::parse("512mb"), Ok(ByteSize::mib(512)));
        assert_eq!(ByteSize::parse("2gb"), Ok(ByteSize::gib(2)));
        assert_eq!(ByteSize::parse("1gib"), Ok(ByteSize::gib(1)));
        assert_eq!(ByteSize::parse("1k"), Ok(ByteSize(1000)));
        assert_eq!(ByteSize::parse("1.5gb"), Ok(ByteSize(1536 * MIB)));
        assert!(ByteSize::parse("12xb").is_err());
        assert!(ByteSize::parse("99999999999999999999tb").is_err());
        assert_eq!(ByteSize::gib(2).to_string(), "2gb");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Duration::parse("10s"), Ok(Duration::secs(10)));
        assert_eq!(Duration::parse("500ms"), Ok(Duration(500)));
        assert_eq!(Duration::parse("3m"), Ok(Duration(180_000)));
        assert!(Duration::parse("3 weeks").is_err());
        assert_eq!(Duration(90_000).to_string(), "90s");
        assert_eq!(Duration(1500).to_string(), "1500ms");
    }

    #[test]
    fn memory_limits() {
        assert_eq!(MemoryLimit::parse("80%"), Ok(MemoryLimit::Percent(80)));
        assert!(MemoryLimit::parse("0%").is_err());
        assert!(MemoryLimit::parse("180%").is_err());
        assert_eq!(MemoryLimit::Percent(80).resolve(ByteSize(1000)), Some(800));
    }
}
