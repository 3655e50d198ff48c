//! `import(export(c)) == c` for every preset and example, and for many
//! random variations of them (property-style, deterministic seed): random
//! `--set` values drawn from each option's schema (enums, ranges, booleans).

use redplate_config::model::Environment;
use redplate_config::schema::options;
use redplate_config::{Config, Format, LoadRequest, export, import, load, load_str};
use serde_json::Value;
use std::path::PathBuf;

fn bases() -> Vec<Config> {
    let mut v = Vec::new();
    for env in Environment::ALL {
        if let Ok(r) = load_str("", Format::Yaml, "<none>", Some(env), &[]) {
            v.push(r.config);
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(r) = load(&LoadRequest { path: Some(e.path()), ..Default::default() }) {
            v.push(r.config);
        }
    }
    v
}

fn roundtrip(c: &Config) {
    let json = export(c);
    match import(&json) {
        Ok(back) => assert_eq!(&back, c, "{json}"),
        Err(e) => panic!("import failed: {e}\n{json}"),
    }
    // Exporting is canonical: a second round gives the same text.
    assert_eq!(import(&json).map(|c| export(&c)).ok().as_deref(), Some(json.as_str()));
}

#[test]
fn presets_and_examples_round_trip() {
    let b = bases();
    assert!(b.len() >= 7);
    b.iter().for_each(roundtrip);
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn node_for<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let resolve = |mut n: &'a Value| -> &'a Value {
        for _ in 0..8 {
            match n
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|x| schema["$defs"].get(x))
            {
                Some(t) => n = t,
                None => break,
            }
        }
        n
    };
    let mut node = schema;
    for seg in path.split('.') {
        node = &resolve(node)["properties"][seg];
    }
    resolve(node)
}

fn random_value(rng: &mut Rng, node: &Value) -> Option<String> {
    if let Some(alts) = node.get("oneOf").and_then(Value::as_array) {
        let consts: Vec<&str> = alts.iter().filter_map(|a| a.get("const").and_then(Value::as_str)).collect();
        if !consts.is_empty() {
            return Some(consts[rng.below(consts.len() as u64) as usize].to_string());
        }
    }
    let title = node.get("description").and_then(Value::as_str).unwrap_or_default();
    if title.starts_with("A size") {
        return Some(["512mb", "2gb", "1gib", "1000", "64kb", "0"][rng.below(6) as usize].to_string());
    }
    if title.starts_with("A duration") {
        return Some(["10s", "500ms", "3m", "1500", "0", "1h"][rng.below(6) as usize].to_string());
    }
    if title.starts_with("A memory limit") {
        return Some(["80%", "1gb", "0", "100%"][rng.below(4) as usize].to_string());
    }
    let ty = node.get("type").cloned().unwrap_or(Value::Null);
    let ty = ty.as_str().or_else(|| ty.as_array().and_then(|a| a.first()).and_then(Value::as_str)).unwrap_or("");
    match ty {
        "boolean" => Some((rng.below(2) == 1).to_string()),
        "integer" => {
            let min = node.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let max = node.get("maximum").and_then(Value::as_i64).unwrap_or(1000).min(min + 100_000);
            Some((min + rng.below((max - min + 1) as u64) as i64).to_string())
        }
        "string" => Some(["abc", "x-1", "7.2", "tenant:{tenantId}:", "a b"][rng.below(5) as usize].to_string()),
        _ => None,
    }
}

#[test]
fn random_variations_round_trip() {
    let schema = redplate_config::schema();
    let opts = options();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut loaded = 0;
    for i in 0..250 {
        let env = Environment::ALL[i % 3];
        let mut sets = Vec::new();
        for _ in 0..6 {
            let (path, _) = &opts[rng.below(opts.len() as u64) as usize];
            if let Some(v) = random_value(&mut rng, node_for(&schema, path)) {
                sets.push(format!("{path}={v}"));
            }
        }
        if let Ok(r) = load_str("", Format::Yaml, "<random>", Some(env), &sets) {
            loaded += 1;
            roundtrip(&r.config);
        }
    }
    assert!(loaded > 120, "only {loaded} random variations loaded");
}
