//! A small, deterministic YAML writer for manifests built as JSON values.
//!
//! Keys are written sorted (so the output does not depend on serde_json's
//! map flavour: `apiVersion`, `kind`, `metadata`, `spec` come first anyway),
//! strings are always double-quoted (no YAML 1.1 `yes`/`no`/`on` surprises)
//! except multi-line text, which becomes a literal block (`|`) so config
//! files in ConfigMaps stay readable.

use serde_json::Value;

/// Writes one YAML document for `v` (an object), ending with a newline.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::with_capacity(4096);
    write_yaml(v, &mut out);
    out
}

/// Appends [`to_yaml`]`(v)` to `out`.
pub fn write_yaml(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => object(v, 0, out),
        other => {
            scalar(other, out);
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut n = n;
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

fn is_empty_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}

/// Writes the object's entries at `indent`; the first line's indentation
/// is left out when `first_inline` (it follows `- ` in a list).
fn object_entries(map: &serde_json::Map<String, Value>, indent: usize, first_inline: bool, out: &mut String) {
    // serde_json's map is a BTreeMap unless a crate turns on its
    // `preserve_order` feature: sort only then.
    let mut entries: Vec<(&String, &Value)> = Vec::new();
    let iter: Box<dyn Iterator<Item = (&String, &Value)>> = if map.keys().is_sorted() {
        Box::new(map.iter())
    } else {
        entries.extend(map.iter());
        entries.sort_by(|a, b| a.0.cmp(b.0));
        Box::new(entries.into_iter())
    };
    for (i, (k, val)) in iter.enumerate() {
        if !(first_inline && i == 0) {
            pad(out, indent);
        }
        key(k, out);
        out.push(':');
        value_after_key(val, indent, out);
    }
}

fn object(v: &Value, indent: usize, out: &mut String) {
    if let Value::Object(map) = v {
        object_entries(map, indent, false, out);
    }
}

/// Writes what follows `key:` or `- `.
fn value_after_key(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(_) if !is_empty_container(val) => {
            out.push('\n');
            object(val, indent + 2, out);
        }
        Value::Array(_) if !is_empty_container(val) => {
            out.push('\n');
            array(val, indent, out);
        }
        Value::String(s) if literal_ok(s) => {
            block(s, indent + 2, out);
        }
        other => {
            out.push(' ');
            scalar(other, out);
            out.push('\n');
        }
    }
}

fn array(v: &Value, indent: usize, out: &mut String) {
    let Value::Array(items) = v else { return };
    for item in items {
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The object one level deeper, with `- ` in place of its
                // first line's indentation.
                pad(out, indent);
                out.push_str("- ");
                object_entries(map, indent + 2, true, out);
            }
            Value::Array(_) if !is_empty_container(item) => {
                pad(out, indent);
                out.push_str("-\n");
                array(item, indent + 2, out);
            }
            Value::String(s) if literal_ok(s) => {
                pad(out, indent);
                out.push('-');
                block(s, indent + 2, out);
            }
            other => {
                pad(out, indent);
                out.push_str("- ");
                scalar(other, out);
                out.push('\n');
            }
        }
    }
}

/// Whether `s` can be a literal block scalar that reads back identically.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !s.contains('\u{feff}')
        && !s.lines().any(|l| l.ends_with([' ', '\t']))
}

fn block(s: &str, indent: usize, out: &mut String) {
    let body = s.strip_suffix('\n');
    let (chomp, text) = match body {
        Some(b) if b.ends_with('\n') => ("+", b),
        Some(b) => ("", b),
        None => ("-", s),
    };
    out.push_str(" |");
    out.push_str(chomp);
    out.push('\n');
    for line in text.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn scalar(v: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => quote(s, out),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// JSON string escaping is a subset of YAML's double-quoted style.
fn quote(s: &str, out: &mut String) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f);
    if plain {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

fn key(k: &str, out: &mut String) {
    const RESERVED: [&str; 12] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "<<", "="];
    let plain = k.bytes().next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k));
    if plain { out.push_str(k) } else { quote(k, out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_kubernetes_style_yaml() {
        let v = json!({
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "redis"}},
            "data": {"redis.conf": "port 6379\nsave \"\"\n", "empty": "", "on": "yes"},
            "list": [{"b": 1, "a": [1, 2]}, "s", [], {}],
        });
        let y = to_yaml(&v);
        let expected = "apiVersion: \"v1\"\ndata:\n  empty: \"\"\n  \"on\": \"yes\"\n  redis.conf: |\n    port 6379\n    save \"\"\n\
kind: \"ConfigMap\"\nlist:\n- a:\n  - 1\n  - 2\n  b: 1\n- \"s\"\n- []\n- {}\nmetadata:\n  labels:\n    app.kubernetes.io/name: \"redis\"\n  name: \"x\"\n";
        assert_eq!(y, expected);
    }

    #[test]
    fn block_chomping_keeps_the_text() {
        for s in ["a\nb", "a\nb\n", "a\n\nb\n\n", "a\n\n"] {
            let y = to_yaml(&json!({ "k": s }));
            assert!(y.starts_with("k: |"), "{y}");
        }
        // Leading spaces or trailing blanks fall back to a quoted string.
        assert_eq!(to_yaml(&json!({"k": "  a\nb"})), "k: \"  a\\nb\"\n");
        assert_eq!(to_yaml(&json!({"k": "a \nb"})), "k: \"a \\nb\"\n");
    }
}
