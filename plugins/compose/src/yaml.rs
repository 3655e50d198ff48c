//! A small, deterministic YAML writer for the Compose file: ordered maps,
//! block style, every string double-quoted with JSON escapes (which YAML
//! reads the same way), so no value can change type or break the document.

/// A YAML value with ordered keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// A string scalar.
    pub fn s(v: impl Into<String>) -> Self {
        Yaml::Str(v.into())
    }

    /// A list of strings.
    pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Yaml::List(items.into_iter().map(|s| Yaml::Str(s.into())).collect())
    }
}

/// Builds an ordered map.
#[derive(Debug, Default)]
pub struct MapBuilder(Vec<(String, Yaml)>);

impl MapBuilder {
    pub fn new() -> Self {
        MapBuilder(Vec::new())
    }
    /// Adds `key: value`.
    pub fn put(mut self, key: impl Into<String>, value: Yaml) -> Self {
        self.0.push((key.into(), value));
        self
    }
    /// Adds `key: value` when `value` is `Some`.
    pub fn put_opt(self, key: impl Into<String>, value: Option<Yaml>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    /// Adds `key: value` unless `value` is an empty list or map.
    pub fn put_nonempty(self, key: impl Into<String>, value: Yaml) -> Self {
        match &value {
            Yaml::List(l) if l.is_empty() => self,
            Yaml::Map(m) if m.is_empty() => self,
            _ => self.put(key, value),
        }
    }
    pub fn push(&mut self, key: impl Into<String>, value: Yaml) {
        self.0.push((key.into(), value));
    }
    pub fn build(self) -> Yaml {
        Yaml::Map(self.0)
    }
}

/// Renders a document (a map at the top).
pub fn to_string(doc: &Yaml) -> String {
    let mut out = String::with_capacity(16 * 1024);
    match doc {
        Yaml::Map(m) if !m.is_empty() => write_map(m, 0, &mut out),
        Yaml::List(l) if !l.is_empty() => write_list(l, 0, &mut out),
        other => {
            scalar(other, &mut out);
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(m: &[(String, Yaml)], indent: usize, out: &mut String) {
    write_entries(m, indent, false, out);
}

/// The entries at `indent`; with `first_inline`, the first one's
/// indentation is left out (it follows `- ` in a list).
fn write_entries(m: &[(String, Yaml)], indent: usize, first_inline: bool, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(first_inline && i == 0) {
            pad(out, indent);
        }
        key(k, out);
        out.push(':');
        match v {
            Yaml::Map(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(inner, indent + 2, out);
            }
            Yaml::List(inner) if !inner.is_empty() => {
                out.push('\n');
                write_list(inner, indent + 2, out);
            }
            other => {
                out.push(' ');
                scalar(other, out);
                out.push('\n');
            }
        }
    }
}

fn write_list(l: &[Yaml], indent: usize, out: &mut String) {
    for v in l {
        pad(out, indent);
        out.push('-');
        match v {
            Yaml::Map(inner) if !inner.is_empty() => {
                // The first key goes on the dash line; the rest align under it.
                out.push(' ');
                write_entries(inner, indent + 2, true, out);
            }
            Yaml::List(inner) if !inner.is_empty() => {
                out.push('\n');
                write_list(inner, indent + 2, out);
            }
            other => {
                out.push(' ');
                scalar(other, out);
                out.push('\n');
            }
        }
    }
}

fn key(k: &str, out: &mut String) {
    const RESERVED: [&str; 9] = ["true", "false", "yes", "no", "on", "off", "null", "y", "n"];
    let plain = !k.is_empty()
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k));
    if plain { out.push_str(k) } else { quote(k, out) }
}

fn scalar(v: &Yaml, out: &mut String) {
    use std::fmt::Write as _;
    match v {
        Yaml::Str(s) => quote(s, out),
        Yaml::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Yaml::Float(f) if f.is_finite() => {
            let s = format!("{f}");
            out.push_str(&s);
            if !s.contains('.') {
                out.push_str(".0");
            }
        }
        Yaml::Float(_) => out.push_str("0.0"),
        Yaml::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Yaml::List(_) => out.push_str("[]"),
        Yaml::Map(_) => out.push_str("{}"),
    }
}

/// A double-quoted scalar: JSON string escapes are valid YAML escapes.
fn quote(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_and_lists() {
        let doc = MapBuilder::new()
            .put("services", MapBuilder::new().put("a", MapBuilder::new().put("x", Yaml::Int(1)).build()).build())
            .put(
                "list",
                Yaml::List(vec![
                    MapBuilder::new().put("k", Yaml::s("v")).put("j", Yaml::Bool(true)).build(),
                    Yaml::s("yes"),
                ]),
            )
            .put("empty", Yaml::List(vec![]))
            .put("on", Yaml::Float(1.5))
            .build();
        let text = to_string(&doc);
        assert_eq!(
            text,
            "services:\n  a:\n    x: 1\nlist:\n  - k: \"v\"\n    j: true\n  - \"yes\"\nempty: []\n\"on\": 1.5\n"
        );
    }
}
