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
    let mut out = String::new();
    match doc {
        Yaml::Map(m) if !m.is_empty() => write_map(m, 0, &mut out),
        Yaml::List(l) if !l.is_empty() => write_list(l, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(m: &[(String, Yaml)], indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key(k));
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
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn write_list(l: &[Yaml], indent: usize, out: &mut String) {
    for v in l {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Yaml::Map(inner) if !inner.is_empty() => {
                // The first key goes on the dash line; the rest align under it.
                let mut first = String::new();
                write_map(inner, indent + 2, &mut first);
                out.push(' ');
                out.push_str(first.trim_start_matches(' '));
            }
            Yaml::List(inner) if !inner.is_empty() => {
                out.push('\n');
                write_list(inner, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { k.to_owned() } else { quote(k) }
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::Str(s) => quote(s),
        Yaml::Int(i) => i.to_string(),
        Yaml::Float(f) if f.is_finite() => {
            let s = format!("{f}");
            if s.contains('.') { s } else { format!("{s}.0") }
        }
        Yaml::Float(_) => "0.0".to_owned(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::List(_) => "[]".to_owned(),
        Yaml::Map(_) => "{}".to_owned(),
    }
}

/// A double-quoted scalar: JSON string escapes are valid YAML escapes.
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
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
