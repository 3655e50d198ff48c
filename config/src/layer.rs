//! Layering: preset ← file ← `--set a.b.c=value`, later wins. Mappings merge
//! key by key; lists and scalars replace. The source map follows the values.

use crate::diagnostic::{Diagnostic, Location};
use crate::source::{Tree, child_pointer, parse_yaml_value};
use serde_json::{Map, Value};

/// Merges `overlay` over `base`.
pub fn merge(base: &mut Tree, overlay: Tree) {
    merge_value(&mut base.value, overlay.value, "", &mut base.sources);
    base.sources.extend(overlay.sources);
}

fn merge_value(base: &mut Value, overlay: Value, pointer: &str, sources: &mut crate::source::SourceMap) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) if !switches_variant(b, &o) => {
            for (k, v) in o {
                let p = child_pointer(pointer, &k);
                match b.get_mut(&k) {
                    Some(existing) => merge_value(existing, v, &p, sources),
                    None => {
                        sources.remove_below(&p);
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => {
            sources.remove_below(pointer);
            *b = o;
        }
    }
}

/// Tags of the one-key variant values (`{file: ...}`, `{s3: ...}`).
pub(crate) const VARIANT_TAGS: [&str; 8] = ["file", "env", "secret", "generate", "value", "directory", "s3", "pvc"];

/// Whether `m` is a one-key variant value such as `{file: /run/secrets/x}`.
pub(crate) fn is_variant(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.keys().all(|k| VARIANT_TAGS.contains(&k.as_str()))
}

/// A variant value replaced by another variant replaces it whole: `{file: a}`
/// under `{env: B}` must not become `{file: a, env: B}`.
fn switches_variant(base: &Map<String, Value>, overlay: &Map<String, Value>) -> bool {
    is_variant(base) && is_variant(overlay) && base.keys().ne(overlay.keys())
}

/// The file name `--set` values are attributed to.
pub const SET_FILE: &str = "<--set>";

/// Applies one `--set a.b.c=value` (the `index`-th, 0-based) to `tree`. The
/// value is read as a YAML scalar or flow collection; type checking happens
/// with the rest of the template.
pub fn apply_set(tree: &mut Tree, assignment: &str, index: usize) -> Result<(), Diagnostic> {
    let at = |column: usize| Location { file: SET_FILE.to_string(), line: index + 1, column };
    let Some((path, raw)) = assignment.split_once('=') else {
        return Err(Diagnostic::error("set.syntax", "", format!("`--set {assignment}` has no `=`"))
            .with_hint("write `--set section.key=value`, e.g. `--set memory.maxmemory_policy=allkeys-lru`")
            .with_location(at(1)));
    };
    let path = path.trim();
    if path.is_empty() || path.split('.').any(|s| s.is_empty()) {
        return Err(Diagnostic::error("set.syntax", "", format!("`--set {assignment}` has an empty key segment"))
            .with_hint("write dotted keys such as `cluster.shards=6`")
            .with_location(at(1)));
    }
    let value_column = path.len() + 2;
    let value = if raw.trim().is_empty() {
        Value::String(String::new())
    } else {
        parse_yaml_value(raw, SET_FILE).map_err(|mut d| {
            d.code = "set.syntax".into();
            d.location = Some(at(value_column));
            d
        })?
    };
    let mut pointer = String::new();
    let mut node = &mut tree.value;
    for seg in path.split('.') {
        pointer = child_pointer(&pointer, seg);
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        node = match node {
            Value::Object(map) => map.entry(seg.to_string()).or_insert(Value::Null),
            Value::Array(items) => {
                let len = items.len();
                let idx = seg.parse::<usize>().ok().filter(|i| *i <= len).ok_or_else(|| {
                    Diagnostic::error(
                        "set.not-an-index",
                        pointer.clone(),
                        format!("`{seg}` is not an index of a list of {len} in `--set {path}`"),
                    )
                    .with_hint(format!(
                        "address list items by number from 0 to {len}, e.g. `security.users.0.name=app`"
                    ))
                    .with_location(at(1))
                })?;
                if idx == len {
                    items.push(Value::Null);
                }
                match items.get_mut(idx) {
                    Some(v) => v,
                    None => {
                        return Err(Diagnostic::error(
                            "set.not-an-index",
                            pointer.clone(),
                            "list index out of range".to_string(),
                        )
                        .with_location(at(1)));
                    }
                }
            }
            other => {
                return Err(Diagnostic::error(
                    "set.not-a-mapping",
                    pointer.clone(),
                    format!(
                        "`--set {path}` goes inside a value that is {} and not a mapping",
                        crate::source::kind_name(other)
                    ),
                )
                .with_hint("set the whole value instead, or fix the key path")
                .with_location(at(1)));
            }
        };
    }
    // Typed: a field that takes a string keeps `7.4` or `true` as text.
    let value = match value {
        Value::Number(_) | Value::Bool(_) | Value::Object(_) | Value::Null
            if crate::schema::expects_string(&pointer) =>
        {
            Value::String(raw.trim().to_string())
        }
        other => other,
    };
    *node = value;
    tree.sources.remove_below(&pointer);
    tree.sources.insert(pointer, at(value_column));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Format, parse};

    #[test]
    fn later_layers_win_and_keep_positions() {
        let mut base = parse("memory:\n  maxmemory_policy: noeviction\n  maxmemory_samples: 5\n", Format::Yaml, "base")
            .unwrap_or_default();
        let top = parse("\nmemory:\n  maxmemory_policy: allkeys-lru\n", Format::Yaml, "top").unwrap_or_default();
        merge(&mut base, top);
        assert_eq!(base.value["memory"]["maxmemory_policy"], "allkeys-lru");
        assert_eq!(base.value["memory"]["maxmemory_samples"], 5);
        assert_eq!(base.sources.get("/memory/maxmemory_policy").map(|l| (l.file.as_str(), l.line)), Some(("top", 3)));
        assert_eq!(base.sources.get("/memory/maxmemory_samples").map(|l| l.file.as_str()), Some("base"));
    }

    #[test]
    fn set_is_typed_yaml() {
        let mut t = parse("cluster:\n  shards: 3\n", Format::Yaml, "f").unwrap_or_default();
        assert!(apply_set(&mut t, "cluster.shards=6", 0).is_ok());
        assert!(apply_set(&mut t, "memory.maxmemory=2gb", 1).is_ok());
        assert!(apply_set(&mut t, "network.bind=[127.0.0.1, ::1]", 2).is_ok());
        assert_eq!(t.value["cluster"]["shards"], 6);
        assert_eq!(t.value["memory"]["maxmemory"], "2gb");
        assert_eq!(t.value["network"]["bind"][1], "::1");
        assert_eq!(t.sources.get("/memory/maxmemory").map(|l| (l.line, l.column)), Some((2, 18)));
        assert!(apply_set(&mut t, "cluster.shards.x=1", 3).is_err());
        assert!(apply_set(&mut t, "nothing", 4).is_err());
        assert!(apply_set(&mut t, "a..b=1", 5).is_err());
    }
}
