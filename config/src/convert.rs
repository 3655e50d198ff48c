//! Canonical export/import of a typed config (JSON; `import(export(c)) == c`)
//! and adapting a template to another environment.

use crate::diagnostic::Diagnostic;
use crate::load::{LoadError, Resolved, load_str};
use crate::model::{Config, Environment};
use crate::source::{Format, child_pointer, parse};
use serde_json::{Map, Value};

/// The canonical JSON form of a config: every option, fields in declaration
/// order, maps sorted, sizes and durations in their canonical units.
pub fn export(config: &Config) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}

/// Reads a config written by [`export`] (or any complete or partial JSON
/// template), with the same strict checks as [`crate::load`] but no preset.
pub fn import(json: &str) -> Result<Config, LoadError> {
    import_file(json, "<import>").map(|r| r.config)
}

/// Like [`import`], for the text of `file`: locations name it, and the
/// source map is kept so the host rules ([`crate::validate`]) can point
/// into it too.
pub fn import_file(json: &str, file: &str) -> Result<Resolved, LoadError> {
    let tree = parse(json, Format::Json, file)?;
    crate::load::typed(tree)
}

/// The result of [`adapt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    /// One line per changed option: `~ /memory/maxmemory_policy: "allkeys-lru" -> "noeviction"`.
    pub diff: Vec<String>,
    /// The template for the new environment: the user's own values over `extends: <env>`.
    pub yaml: String,
    /// Validation findings for the adapted template.
    pub diagnostics: Vec<Diagnostic>,
    /// The adapted template, loaded.
    pub resolved: Option<Resolved>,
}

/// Re-bases a template on another environment's preset: keeps every value
/// the user wrote (not those from the old preset), switches `extends` and
/// `deployment.environment`, and reports what changes in the effective config.
pub fn adapt(resolved: &Resolved, to: Environment) -> Result<Adaptation, LoadError> {
    let mut own = Map::new();
    collect_own(resolved, &resolved.value, "", &mut own, 0);
    let mut root = Value::Object(own);
    if let Value::Object(m) = &mut root {
        m.insert("extends".into(), Value::String(to.to_string()));
        let dep = m.entry("deployment").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(d) = dep {
            d.insert("environment".into(), Value::String(to.to_string()));
        }
    }
    let yaml =
        format!("# adapted by redplate from {} to {to}\n{}", resolved.config.deployment.environment, to_yaml(&root));
    let adapted = load_str(&yaml, Format::Yaml, "<adapted>", Some(to), &[])?;
    let before = serde_json::to_value(&resolved.config).unwrap_or(Value::Null);
    let after = serde_json::to_value(&adapted.config).unwrap_or(Value::Null);
    let mut diff = Vec::new();
    diff_values(&before, &after, "", &mut diff);
    let diagnostics = crate::rules::validate(&adapted);
    Ok(Adaptation { diff, yaml, diagnostics, resolved: Some(adapted) })
}

fn is_user_written(resolved: &Resolved, pointer: &str) -> bool {
    resolved.sources.get(pointer).is_some_and(|l| !l.file.starts_with("<preset:"))
}

fn collect_own(resolved: &Resolved, v: &Value, ptr: &str, out: &mut Map<String, Value>, depth: usize) {
    let Value::Object(map) = v else { return };
    for (k, child) in map {
        let p = child_pointer(ptr, k);
        match child {
            Value::Object(inner) if depth < 32 && !inner.is_empty() && !is_tagged(inner) => {
                let mut sub = Map::new();
                collect_own(resolved, child, &p, &mut sub, depth + 1);
                if !sub.is_empty() {
                    out.insert(k.clone(), Value::Object(sub));
                }
            }
            _ => {
                if is_user_written(resolved, &p) && k != "extends" {
                    out.insert(k.clone(), child.clone());
                }
            }
        }
    }
}

/// `{file: ...}`-style one-key values are kept whole.
fn is_tagged(m: &Map<String, Value>) -> bool {
    crate::layer::is_variant(m)
}

fn diff_values(a: &Value, b: &Value, ptr: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = child_pointer(ptr, k);
                match y.get(k) {
                    Some(vb) => diff_values(va, vb, &p, out),
                    None => out.push(format!("- {p}: {va}")),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    out.push(format!("+ {}: {vb}", child_pointer(ptr, k)));
                }
            }
        }
        _ if a != b => out.push(format!("~ {ptr}: {a} -> {b}")),
        _ => {}
    }
}

/// Renders a JSON value as block YAML (strings quoted when needed; lists and
/// nested values in flow style, which is JSON and therefore valid YAML).
pub fn to_yaml(v: &Value) -> String {
    let mut s = String::new();
    write_block(v, 0, &mut s);
    s
}

fn write_block(v: &Value, indent: usize, s: &mut String) {
    let Value::Object(map) = v else {
        s.push_str(&scalar(v));
        s.push('\n');
        return;
    };
    for (k, child) in map {
        s.push_str(&" ".repeat(indent));
        s.push_str(&key(k));
        s.push(':');
        match child {
            Value::Object(m) if !m.is_empty() => {
                s.push('\n');
                write_block(child, indent + 2, s);
            }
            other => {
                s.push(' ');
                s.push_str(&scalar(other));
                s.push('\n');
            }
        }
    }
}

fn plain_safe(t: &str) -> bool {
    !t.is_empty()
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '%'))
        && !t.starts_with(['-', '.'])
        && !matches!(
            t,
            "true"
                | "false"
                | "null"
                | "True"
                | "False"
                | "Null"
                | "NULL"
                | "TRUE"
                | "FALSE"
                | "~"
                | "yes"
                | "no"
                | "on"
                | "off"
        )
        && t.parse::<f64>().is_err()
        && !t.starts_with("0x")
        && !t.starts_with("0o")
}

fn key(k: &str) -> String {
    if plain_safe(k) { k.to_string() } else { Value::String(k.to_string()).to_string() }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(t) if plain_safe(t) => t.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_round_trips_through_the_parser() {
        let v = serde_json::json!({"a": {"b": "x y", "c": [1, "two"], "d": "80%", "e": "true", "f": {"file": "/x"}}, "g": "1.5", "h": ""});
        let text = to_yaml(&v);
        let back = parse(&text, Format::Yaml, "t").map(|t| t.value).ok();
        assert_eq!(back, Some(v), "{text}");
    }

    #[test]
    fn adapt_development_to_production() {
        let r = load_str(
            "extends: development\ndeployment:\n  name: shop\nmemory:\n  maxmemory_policy: allkeys-lfu\n",
            Format::Yaml,
            "t.yaml",
            None,
            &[],
        );
        let Ok(r) = r else { panic!("load failed") };
        let a = adapt(&r, Environment::Production);
        let Ok(a) = a else { panic!("adapt failed") };
        assert!(a.yaml.contains("extends: production"));
        assert!(a.yaml.contains("maxmemory_policy: allkeys-lfu"));
        assert!(a.diff.iter().any(|l| l.starts_with("~ /deployment/mode")), "{:?}", a.diff);
        assert!(!a.diagnostics.iter().any(Diagnostic::is_error), "{:?}", a.diagnostics);
    }
}
