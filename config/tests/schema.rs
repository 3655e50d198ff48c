//! The JSON Schema describes every option: 200+ leaf options, each with a
//! description, and ranges or allowed values where they apply.

use redplate_config::schema::options;
use serde_json::Value;

fn count_described_leaves(root: &Value, node: &Value, depth: usize) -> usize {
    let resolve = |n: &Value| -> Value {
        let mut n = n.clone();
        for _ in 0..8 {
            let target = n
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|name| root["$defs"].get(name))
                .cloned();
            match target {
                Some(t) => n = t,
                None => break,
            }
        }
        n
    };
    let node = resolve(node);
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return 0 };
    props
        .values()
        .map(|p| {
            let target = resolve(p);
            if target.get("properties").is_some() && depth < 10 {
                count_described_leaves(root, &target, depth + 1)
            } else {
                usize::from(p.get("description").and_then(Value::as_str).is_some_and(|d| !d.is_empty()))
            }
        })
        .sum()
}

#[test]
fn schema_describes_at_least_200_options() {
    let schema = redplate_config::schema();
    let n = count_described_leaves(&schema, &schema, 0);
    assert!(n >= 200, "only {n} described leaf options");
    let all = options();
    let undocumented: Vec<&String> = all.iter().filter(|(_, d)| d.is_none()).map(|(p, _)| p).collect();
    assert!(undocumented.is_empty(), "options without a description: {undocumented:?}");
    println!("{n} described leaf options");
}

#[test]
fn schema_has_ranges_enums_and_defaults() {
    let s = redplate_config::schema();
    let shards = &s["$defs"]["Cluster"]["properties"]["shards"];
    assert_eq!(shards["minimum"], 1);
    assert_eq!(shards["default"], 3);
    let policies = s["$defs"]["EvictionPolicy"]["oneOf"].as_array().map(Vec::len);
    assert_eq!(policies, Some(8));
    assert_eq!(s["$defs"]["Memory"]["additionalProperties"], false);
}
