//! Strict checking of a merged template against the JSON Schema before it is
//! deserialized: unknown keys (with a did-you-mean hint), wrong types, values
//! outside an enum or a range. Reports every problem at once, each with its
//! JSON pointer; locations are filled in by the loader.

use crate::diagnostic::Diagnostic;
use crate::schema::{cached, resolve};
use crate::source::{child_pointer, kind_name};
use serde_json::Value;

/// Checks `value` against the template schema.
pub fn check(value: &Value) -> Vec<Diagnostic> {
    let root = cached();
    let mut out = Vec::new();
    walk(root, root, value, "", &mut out, 0);
    out
}

/// The closest candidate to `word`, if one is close enough to be a typo or
/// an abbreviation (`memory_pct` → `memory_percent`).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let lower = word.to_ascii_lowercase().replace('-', "_");
    candidates
        .into_iter()
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase().replace('-', "_");
            let d = strsim::damerau_levenshtein(&lower, &cl);
            if d <= limit {
                Some((d * 2, c))
            } else if abbreviates(&lower, &cl) {
                Some((3, c))
            } else {
                None
            }
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Whether each `_`-segment of `word` abbreviates the matching segment of
/// `candidate` (same first letter, letters in order).
fn abbreviates(word: &str, candidate: &str) -> bool {
    let w: Vec<&str> = word.split('_').collect();
    let c: Vec<&str> = candidate.split('_').collect();
    w.len() == c.len()
        && w.iter().zip(&c).all(|(a, b)| {
            let mut rest = b.chars();
            a.chars().next() == b.chars().next() && a.chars().all(|ch| rest.any(|x| x == ch))
        })
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => true,
    }
}

fn types_of(node: &Value) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_word(ty: &str) -> &str {
    match ty {
        "null" => "null",
        "boolean" => "`true` or `false`",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        "number" => "a number",
        "integer" => "a whole number",
        other => other,
    }
}

fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 { format!("{}…", s.chars().take(40).collect::<String>()) } else { s }
}

/// String constants a node accepts, if it is an enumeration.
fn constants<'a>(root: &'a Value, node: &'a Value) -> Option<Vec<&'a str>> {
    if let Some(list) = node.get("enum").and_then(Value::as_array) {
        return Some(list.iter().filter_map(Value::as_str).collect());
    }
    if let Some(c) = node.get("const").and_then(Value::as_str) {
        return Some(vec![c]);
    }
    let alts = node.get("oneOf").or_else(|| node.get("anyOf")).and_then(Value::as_array)?;
    let mut all = Vec::new();
    for alt in alts {
        let alt = resolve(root, alt);
        if types_of(alt) == ["null"] {
            continue;
        }
        all.extend(constants(root, alt)?);
    }
    Some(all)
}

fn walk(root: &Value, node: &Value, v: &Value, ptr: &str, out: &mut Vec<Diagnostic>, depth: usize) {
    if depth > 80 {
        return;
    }
    let node = resolve(root, node);
    // Enumerations first: one membership test instead of one walk per variant.
    if let Some(s) = v.as_str()
        && let Some(consts) = constants(root, node)
    {
        if !consts.contains(&s) {
            out.push(bad_constant(ptr, s, &consts));
        }
        return;
    }
    if let Some(alts) = node.get("oneOf").or_else(|| node.get("anyOf")).and_then(Value::as_array) {
        alternatives(root, node, alts, v, ptr, out, depth);
        return;
    }
    let types = types_of(node);
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
        out.push(wrong_type(ptr, &types, v));
        return;
    }
    if let Some(consts) = constants(root, node) {
        if let Some(s) = v.as_str()
            && !consts.contains(&s)
        {
            out.push(bad_constant(ptr, s, &consts));
        }
        return;
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let min = node.get("minimum").and_then(Value::as_f64);
            let max = node.get("maximum").and_then(Value::as_f64);
            if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
                let range = match (min, max) {
                    (Some(a), Some(b)) => format!("from {a} to {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                out.push(
                    Diagnostic::error(
                        "template.out-of-range",
                        ptr,
                        format!("`{}` is {n}, out of range", last_key(ptr)),
                    )
                    .with_hint(format!("use a value {range}")),
                );
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            let min = node.get("minLength").and_then(Value::as_u64);
            let max = node.get("maxLength").and_then(Value::as_u64);
            if min.is_some_and(|m| len < m) {
                out.push(
                    Diagnostic::error("template.too-short", ptr, format!("`{}` must not be empty", last_key(ptr)))
                        .with_hint(format!("give at least {} character(s)", min.unwrap_or(1))),
                );
            } else if max.is_some_and(|m| len > m) {
                out.push(
                    Diagnostic::error(
                        "template.too-long",
                        ptr,
                        format!("`{}` is {len} characters long", last_key(ptr)),
                    )
                    .with_hint(format!("use at most {} characters", max.unwrap_or(0))),
                );
            }
        }
        Value::Array(items) => {
            if let Some(max) = node.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                out.push(
                    Diagnostic::error(
                        "template.too-many",
                        ptr,
                        format!("`{}` has {} items", last_key(ptr), items.len()),
                    )
                    .with_hint(format!("list at most {max} items")),
                );
            }
            if let Some(item_schema) = node.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(root, item_schema, item, &child_pointer(ptr, &i.to_string()), out, depth + 1);
                }
            }
        }
        Value::Object(map) => object(root, node, map, ptr, out, depth),
        _ => {}
    }
}

fn last_key(ptr: &str) -> String {
    let k = ptr.rsplit('/').next().unwrap_or("");
    let k = k.replace("~1", "/").replace("~0", "~");
    if k.chars().all(|c| c.is_ascii_digit()) && !k.is_empty() {
        // A list item: name it by its list.
        let parent = &ptr[..ptr.len() - k.len() - 1];
        return format!("{}[{k}]", parent.rsplit('/').next().unwrap_or(""));
    }
    k
}

fn section_name(ptr: &str) -> String {
    if ptr.is_empty() { "the template".into() } else { format!("`{}`", ptr.trim_start_matches('/').replace('/', ".")) }
}

fn object(
    root: &Value,
    node: &Value,
    map: &serde_json::Map<String, Value>,
    ptr: &str,
    out: &mut Vec<Diagnostic>,
    depth: usize,
) {
    let props = node.get("properties").and_then(Value::as_object);
    let additional = node.get("additionalProperties");
    for (key, val) in map {
        let p = child_pointer(ptr, key);
        if let Some(prop) = props.and_then(|p| p.get(key)) {
            walk(root, prop, val, &p, out, depth + 1);
            continue;
        }
        match additional {
            Some(Value::Bool(false)) => {
                let known: Vec<&str> = props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                out.push(unknown_key(root, key, &p, ptr, &known));
            }
            Some(schema @ Value::Object(_)) => walk(root, schema, val, &p, out, depth + 1),
            _ => {}
        }
    }
    if let Some(required) = node.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                out.push(
                    Diagnostic::error(
                        "template.missing-key",
                        ptr,
                        format!("{} needs the key `{r}`", section_name(ptr)),
                    )
                    .with_hint(format!("add `{r}:`")),
                );
            }
        }
    }
}

fn unknown_key(root: &Value, key: &str, p: &str, parent: &str, known: &[&str]) -> Diagnostic {
    let d = Diagnostic::error("template.unknown-key", p, format!("unknown key `{key}` in {}", section_name(parent)));
    if let Some(s) = did_you_mean(key, known.iter().copied()) {
        return d.with_hint(format!("did you mean `{s}`?"));
    }
    // A key of another section?
    if let Some(sections) = root.get("properties").and_then(Value::as_object) {
        for (name, sec) in sections {
            let sec = resolve(root, sec);
            if sec.get("properties").and_then(|p| p.get(key)).is_some() {
                return d.with_hint(format!("`{key}` belongs in the `{name}` section"));
            }
        }
    }
    let mut list: Vec<&str> = known.to_vec();
    list.sort_unstable();
    let shown: Vec<String> = list.iter().take(12).map(|k| format!("`{k}`")).collect();
    let more = if list.len() > 12 { ", …" } else { "" };
    d.with_hint(format!("known keys here: {}{more}", shown.join(", ")))
}

fn wrong_type(ptr: &str, types: &[&str], v: &Value) -> Diagnostic {
    let expected: Vec<&str> = types.iter().filter(|t| **t != "null").map(|t| type_word(t)).collect();
    let expected = if expected.is_empty() { "null".to_string() } else { expected.join(" or ") };
    let d = Diagnostic::error(
        "template.wrong-type",
        ptr,
        format!("`{}` must be {expected}, found {} `{}`", last_key(ptr), kind_name(v), show(v)),
    );
    let yesno = v.as_str().map(|s| s.to_ascii_lowercase());
    if types.contains(&"boolean") && matches!(yesno.as_deref(), Some("yes" | "no" | "on" | "off" | "y" | "n")) {
        return d.with_hint("YAML 1.2 reads `yes`/`no`/`on`/`off` as strings: write `true` or `false`");
    }
    if (types.contains(&"integer") || types.contains(&"number"))
        && v.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok())
    {
        return d.with_hint("remove the quotes around the number");
    }
    if types == ["string"] && matches!(v, Value::Number(_) | Value::Bool(_)) {
        return d.with_hint(format!("quote it: `\"{}\"`", show(v)));
    }
    d.with_hint(format!("write {expected}"))
}

fn bad_constant(ptr: &str, s: &str, consts: &[&str]) -> Diagnostic {
    let d = Diagnostic::error(
        "template.invalid-value",
        ptr,
        format!("`{}` cannot be `{}`", last_key(ptr), show(&Value::String(s.to_string()))),
    );
    let list: Vec<String> = consts.iter().map(|c| format!("`{c}`")).collect();
    match did_you_mean(s, consts.iter().copied()) {
        Some(m) => d.with_hint(format!("did you mean `{m}`? allowed: {}", list.join(", "))),
        None => d.with_hint(format!("allowed: {}", list.join(", "))),
    }
}

/// The tag of an externally tagged variant schema (`{file: ...}` → `file`).
fn variant_tag(alt: &Value) -> Option<&str> {
    alt.get("required")
        .and_then(Value::as_array)
        .filter(|r| r.len() == 1)
        .and_then(|r| r.first())
        .and_then(Value::as_str)
}

fn alternatives(
    root: &Value,
    node: &Value,
    alts: &[Value],
    v: &Value,
    ptr: &str,
    out: &mut Vec<Diagnostic>,
    depth: usize,
) {
    // A tagged variant value (`{file: ...}`): check only the variant it names.
    if let Value::Object(map) = v
        && map.len() == 1
        && let Some(alt) = alts.iter().find(|a| map.keys().next().map(String::as_str) == variant_tag(resolve(root, a)))
    {
        walk(root, alt, v, ptr, out, depth + 1);
        return;
    }
    let mut best: Option<Vec<Diagnostic>> = None;
    let mut matched_type = false;
    for alt in alts {
        let alt_r = resolve(root, alt);
        let types = types_of(alt_r);
        let type_ok = types.is_empty() || types.iter().any(|t| type_matches(t, v));
        if !type_ok {
            continue;
        }
        matched_type = true;
        let mut errs = Vec::new();
        walk(root, alt, v, ptr, &mut errs, depth + 1);
        if errs.is_empty() {
            return;
        }
        if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
            best = Some(errs);
        }
    }
    // Enumerations of strings: one message listing every allowed value.
    if let (Some(consts), Some(s)) = (constants(root, node), v.as_str()) {
        out.push(bad_constant(ptr, s, &consts));
        return;
    }
    // Externally tagged enums ({file: ...} | {env: ...}): name the variants.
    if let Value::Object(map) = v {
        let tags: Vec<&str> = alts.iter().map(|a| resolve(root, a)).filter_map(variant_tag).collect();
        if tags.len() == alts.len() && !tags.is_empty() {
            let list: Vec<String> = tags.iter().map(|t| format!("`{t}`")).collect();
            let keys: Vec<&String> = map.keys().collect();
            let matching = keys.iter().filter(|k| tags.contains(&k.as_str())).count();
            if keys.len() != 1 || matching != 1 {
                let d = match keys.iter().find(|k| !tags.contains(&k.as_str())) {
                    Some(k) => {
                        let d = Diagnostic::error(
                            "template.unknown-key",
                            child_pointer(ptr, k),
                            format!("unknown key `{k}` in {}", section_name(ptr)),
                        );
                        match did_you_mean(k, tags.iter().copied()) {
                            Some(m) => {
                                d.with_hint(format!("did you mean `{m}`? use exactly one of {}", list.join(", ")))
                            }
                            None => d.with_hint(format!("use exactly one of {}", list.join(", "))),
                        }
                    }
                    None => Diagnostic::error(
                        "template.invalid-value",
                        ptr,
                        format!("{} needs exactly one of {}", section_name(ptr), list.join(", ")),
                    )
                    .with_hint("keep one source"),
                };
                out.push(d);
                return;
            }
        }
    }
    match best {
        Some(errs) if matched_type => out.extend(errs),
        _ => {
            let mut types: Vec<&str> = Vec::new();
            for alt in alts {
                for t in types_of(resolve(root, alt)) {
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            out.push(wrong_type(ptr, &types, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_suggest() {
        let d = check(&json!({"memory": {"maxmemory_polcy": "allkeys-lru"}}));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "/memory/maxmemory_polcy");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `maxmemory_policy`?"));
        let d = check(&json!({"cluster": {"maxmemory_policy": "allkeys-lru"}}));
        assert!(d[0].hint.as_deref().is_some_and(|h| h.contains("`memory` section")));
    }

    #[test]
    fn enums_ranges_types() {
        let d = check(&json!({"memory": {"maxmemory_policy": "allkeys-lr"}}));
        assert!(d[0].hint.as_deref().is_some_and(|h| h.starts_with("did you mean `allkeys-lru`")), "{d:?}");
        let d = check(&json!({"cluster": {"shards": 300}}));
        assert_eq!(d[0].code, "template.out-of-range");
        let d = check(&json!({"persistence": {"aof_use_rdb_preamble": "yes"}}));
        assert_eq!(d[0].code, "template.wrong-type");
        let d = check(&json!({"security": {"password": {"fiel": "/x"}}}));
        assert_eq!(d[0].pointer, "/security/password/fiel");
        assert!(d[0].hint.as_deref().is_some_and(|h| h.contains("`file`")));
        let d = check(&json!({"memory": {"maxmemory": 1.5}}));
        assert_eq!(d[0].code, "template.wrong-type");
        assert!(check(&json!({"memory": {"maxmemory": "80%"}, "security": {"password": {"env": "X"}}})).is_empty());
    }
}
