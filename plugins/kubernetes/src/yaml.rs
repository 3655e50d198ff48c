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
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => object(v, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_empty_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}

fn object(v: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = v else { return };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let Some(val) = map.get(k) else { continue };
        pad(out, indent);
        out.push_str(&key(k));
        out.push(':');
        value_after_key(val, indent, out);
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
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn array(v: &Value, indent: usize, out: &mut String) {
    let Value::Array(items) = v else { return };
    for item in items {
        match item {
            Value::Object(_) if !is_empty_container(item) => {
                // Write the object one level deeper, then put `- ` in place of
                // the first line's indentation.
                let mut inner = String::new();
                object(item, indent + 2, &mut inner);
                pad(out, indent);
                out.push_str("- ");
                out.push_str(inner.get(indent + 2..).unwrap_or(&inner));
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
                out.push_str(&scalar(other));
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

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// JSON string escaping is a subset of YAML's double-quoted style.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn key(k: &str) -> String {
    const RESERVED: [&str; 12] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "<<", "="];
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !RESERVED.contains(&k.to_ascii_lowercase().as_str());
    if plain { k.to_owned() } else { quote(k) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
