//! `redplate optimize`: memory recommendations with the numbers behind
//! them — `MEMORY DOCTOR`, fragmentation (and `activedefrag` where the
//! allocator has it), encoding limits against the sizes of a sample of keys,
//! keys without a TTL in a cache, big keys, `maxmemory` against the peak.
//! With `apply`, the safe ones (encoding limits, `activedefrag`) are set
//! with `CONFIG SET` on every data node and written into the stored
//! template, which is what keeps them across re-renders; nothing else ever
//! changes.

mod rules;

pub use rules::{Advice, Setting};

use crate::client::Node;
use crate::exit::Failure;
use crate::ops::analyze::{self, Folder, KeyFacts, Walk};
use crate::ops::connect::{data_endpoints, masters, unreachable};
use crate::ops::deploy::failure;
use crate::registry::{Record, Registry};
use redplate_config::Diagnostic;
use redplate_config::model::Memory;
use rules::Sizes;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What `optimize` was asked.
#[derive(Debug, Clone)]
pub struct OptimizeRequest {
    /// Make the safe changes.
    pub apply: bool,
    /// Keys sampled per master.
    pub sample: u64,
    /// The share of time the key walk may take (0–1].
    pub duty: f64,
}

impl Default for OptimizeRequest {
    fn default() -> Self {
        OptimizeRequest { apply: false, sample: analyze::DEFAULT_SAMPLE, duty: 0.5 }
    }
}

/// `MEMORY DOCTOR`'s words on one master.
#[derive(Debug, Clone, Serialize)]
pub struct Doctor {
    pub node: String,
    pub text: String,
}

/// What `optimize` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Optimization {
    pub deployment: String,
    pub apply: bool,
    pub keys_sampled: u64,
    pub doctor: Vec<Doctor>,
    pub advice: Vec<Advice>,
    /// The settings this run changed (empty without `apply`).
    pub changed: Vec<Setting>,
    pub seconds: f64,
}

/// The configuration read from the first master.
const PARAMETERS: [&str; 6] = [
    "hash-max-listpack-entries",
    "zset-max-listpack-entries",
    "set-max-intset-entries",
    "maxmemory-policy",
    "activedefrag",
    "hash-max-listpack-value",
];

/// Sampled facts across the masters.
#[derive(Default)]
struct Sample {
    keys: u64,
    hashes: Sizes,
    zsets: Sizes,
    sets: Sizes,
    /// Hashes in `hashtable` with no more fields than the entries limit:
    /// a field or value longer than `hash-max-listpack-value` made them wide.
    long_values: u64,
    no_ttl: u64,
    /// Patterns of the keys without a TTL, with their counts.
    no_ttl_patterns: HashMap<String, u64>,
    big: Vec<(String, String, u64, Option<u64>)>,
    /// Up to 20 sets in `hashtable` (node, key), to see if their members are integers.
    wide_sets: Vec<(String, Vec<u8>)>,
}

fn config_number(config: &HashMap<String, String>, name: &str) -> u64 {
    config.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Recommends (and with `apply`, makes) memory optimisations for `deployment`.
pub async fn optimize(home: &Path, deployment: &str, request: &OptimizeRequest) -> Result<Optimization, Failure> {
    let started = Instant::now();
    let registry = Registry::new(home);
    let record = registry.load(deployment).map_err(failure)?;
    let _lock = if request.apply { Some(registry.lock(deployment).map_err(failure)?) } else { None };
    let found = masters(&record).await?;
    let Some((_, first)) = found.first() else {
        return Err(Failure::could_not_run(Diagnostic::error(
            "redis.no-master",
            "",
            format!("`{deployment}` has no master to read"),
        )));
    };
    let mut args = vec!["CONFIG", "GET"];
    args.extend(PARAMETERS);
    let config: HashMap<String, String> = first.query(&args).await.map_err(unreachable)?;
    let limits = (
        config_number(&config, "hash-max-listpack-entries"),
        config_number(&config, "zset-max-listpack-entries"),
        config_number(&config, "set-max-intset-entries"),
    );
    let policy = config.get("maxmemory-policy").cloned().unwrap_or_default();

    let walk_settings = Walk {
        prefix: Vec::new(),
        sample: Some(request.sample.max(1)),
        pace: analyze::pace(request.duty, crate::ops::tenant::Pace::gentle(1000).budget),
    };
    let folder = Folder::default();
    let mut sample = Sample::default();
    let mut doctor = Vec::new();
    let mut advice = Vec::new();
    let (mut keys, mut expires) = (0u64, 0u64);
    for (node, conn) in &found {
        let text: String = conn.query(&["MEMORY", "DOCTOR"]).await.map_err(unreachable)?;
        doctor.push(Doctor { node: node.name.clone(), text: crate::text::clean_lines(&text, 4096) });
        let info = conn.info("all").await.map_err(unreachable)?;
        for (k, e) in info.keyspace().values() {
            keys += k;
            expires += e;
        }
        let used = info.uint("used_memory").unwrap_or(0);
        let allocator = info.get("mem_allocator").unwrap_or("unknown");
        let defrag_on = config.get("activedefrag").is_some_and(|v| v == "yes");
        advice.extend(rules::fragmentation(
            &node.name,
            used,
            info.num("mem_fragmentation_ratio"),
            allocator,
            defrag_on,
        ));
        let (maxmemory, peak) = (info.uint("maxmemory").unwrap_or(0), info.uint("used_memory_peak").unwrap_or(0));
        advice.extend(rules::right_size(&node.name, maxmemory, peak, &policy));
        let mut visit = |k: &KeyFacts<'_>| tally(&mut sample, &folder, &node.name, limits.0, k);
        analyze::walk(&node.name, conn, &walk_settings, &mut visit).await.map_err(unreachable)?;
    }
    advice.extend(rules::raise_limit(
        "hash",
        "hash-max-listpack-entries",
        "memory.hash_max_listpack_entries",
        limits.0,
        rules::MAX_LISTPACK_ENTRIES,
        &sample.hashes,
    ));
    advice.extend(rules::raise_limit(
        "zset",
        "zset-max-listpack-entries",
        "memory.zset_max_listpack_entries",
        limits.1,
        rules::MAX_LISTPACK_ENTRIES,
        &sample.zsets,
    ));
    advice.extend(sets_advice(&found, &sample, limits.2).await);
    advice.extend(key_advice(&record, &sample, &policy, keys, expires, limits.0, &config));

    let mut changed = Vec::new();
    if request.apply {
        changed = apply(&record, &mut advice).await?;
    }
    Ok(Optimization {
        deployment: deployment.to_owned(),
        apply: request.apply,
        keys_sampled: sample.keys,
        doctor,
        advice,
        changed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn tally(s: &mut Sample, folder: &Folder, node: &str, hash_limit: u64, k: &KeyFacts<'_>) {
    s.keys += 1;
    let name = || String::from_utf8_lossy(k.key).into_owned();
    if k.ttl_ms.is_none() {
        s.no_ttl += 1;
        let pattern = folder.fold(&name());
        if s.no_ttl_patterns.len() < 1000 || s.no_ttl_patterns.contains_key(&pattern) {
            *s.no_ttl_patterns.entry(pattern).or_default() += 1;
        }
    }
    let n = k.elements.unwrap_or(0);
    let wide = matches!(k.encoding, "hashtable" | "skiplist");
    let sizes = match k.kind {
        "hash" => Some(&mut s.hashes),
        "zset" => Some(&mut s.zsets),
        "set" => Some(&mut s.sets),
        _ => None,
    };
    if let Some(sizes) = sizes {
        sizes.all.push(n);
        if wide {
            sizes.wide.push(n);
            sizes.wide_bytes += k.bytes;
        }
    }
    if k.kind == "set" && k.encoding == "hashtable" && s.wide_sets.len() < 20 {
        s.wide_sets.push((node.to_owned(), k.key.to_vec()));
    }
    if k.kind == "hash" && wide && n <= hash_limit {
        s.long_values += 1;
    }
    if (k.bytes >= rules::BIG_KEY_BYTES || n >= rules::BIG_KEY_ELEMENTS) && s.big.len() < 10 {
        s.big.push((crate::text::clean(&name(), 512), node.to_owned(), k.bytes, k.elements));
    }
}

/// Sets in `hashtable` only because they have more members than
/// `set-max-intset-entries`: raised only if their members are integers
/// (an intset holds nothing else), checked on up to 50 of them.
async fn sets_advice(found: &[(&crate::registry::NodeRecord, Node)], s: &Sample, limit: u64) -> Option<Advice> {
    let advice = rules::raise_limit(
        "set",
        "set-max-intset-entries",
        "memory.set_max_intset_entries",
        limit,
        rules::MAX_INTSET_ENTRIES,
        &s.sets,
    )?;
    if advice.setting.is_none() {
        return Some(advice);
    }
    // An intset holds only integers: look at a few members of the wide sets sampled.
    let mut integers = !s.wide_sets.is_empty();
    for (node, key) in &s.wide_sets {
        let Some((_, conn)) = found.iter().find(|(n, _)| &n.name == node) else { continue };
        let reply: Result<Vec<Vec<u8>>, _> = conn.query(&[b"SRANDMEMBER".as_slice(), key, b"5"]).await;
        integers &=
            reply.is_ok_and(|m| m.iter().all(|m| std::str::from_utf8(m).is_ok_and(|t| t.parse::<i64>().is_ok())));
    }
    if integers {
        return Some(advice);
    }
    let mut a = advice;
    a.setting = None;
    a.safe = false;
    a.code = "optimize.set-members-not-integers".into();
    a.message = format!(
        "{} sampled sets are over `set-max-intset-entries {limit}`, but their members are not all integers: an \
         intset could not hold them",
        a.numbers.get("over_limit").copied().unwrap_or(0.0)
    );
    Some(a)
}

fn key_advice(
    record: &Record,
    s: &Sample,
    policy: &str,
    keys: u64,
    expires: u64,
    hash_limit: u64,
    config: &HashMap<String, String>,
) -> Vec<Advice> {
    let mut out = Vec::new();
    let no_ttl = keys.saturating_sub(expires);
    let strategy = crate::ops::stored::load(record).map(|r| r.config.cache.strategy).unwrap_or_else(|_| "none".into());
    let cache = policy.starts_with("volatile-") || strategy != "none";
    if cache && no_ttl > 0 {
        let mut top: Vec<(&String, &u64)> = s.no_ttl_patterns.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let named: Vec<String> =
            top.iter().take(5).map(|(p, n)| format!("`{}` ({n})", crate::text::clean(p, 200))).collect();
        let why = if policy.starts_with("volatile-") {
            format!(
                "`{policy}` evicts only keys with a TTL, so these can never be evicted and writes fail once memory is full"
            )
        } else {
            format!("the cache strategy `{strategy}` gives keys a TTL, so these were written around it")
        };
        out.push(rules::Advice::info(
            "optimize.keys-without-ttl",
            format!(
                "{no_ttl} of {keys} keys have no TTL: {why}; most common in the sample: {}",
                if named.is_empty() { "-".into() } else { named.join(", ") }
            ),
            &[("keys", keys as f64), ("keys_without_ttl", no_ttl as f64), ("sampled_without_ttl", s.no_ttl as f64)],
        ));
    }
    if s.long_values > 0 {
        let value_limit = config.get("hash-max-listpack-value").cloned().unwrap_or_default();
        out.push(rules::Advice::info(
            "optimize.long-hash-values",
            format!(
                "{} sampled hashes have at most {hash_limit} fields but use `hashtable`: a field or value is \
                 longer than `hash-max-listpack-value {value_limit}`, or they grew past an earlier, lower limit \
                 (Redis converts a hash back only when it is loaded again); raising the value limit \
                 (`memory.hash_max_listpack_value` in the template) helps only if most values are just over it",
                s.long_values
            ),
            &[("hashes", s.long_values as f64)],
        ));
    }
    for (key, node, bytes, elements) in &s.big {
        out.push(rules::Advice::info(
            "optimize.big-key",
            format!(
                "`{key}` on {node}: {bytes} bytes{}; deleting or reading it whole blocks the server, and it \
                 cannot move between cluster shards cheaply: split it or delete it with `UNLINK`",
                elements.map(|e| format!(", {e} elements")).unwrap_or_default()
            ),
            &[("bytes", *bytes as f64), ("elements", elements.unwrap_or(0) as f64)],
        ));
    }
    out
}

/// Makes the safe advice's changes: `CONFIG SET` on every data node, then
/// the stored template. A change that failed on a node is not written to
/// the template (running `optimize --apply` again finishes it).
async fn apply(record: &Record, advice: &mut [Advice]) -> Result<Vec<Setting>, Failure> {
    let nodes = data_endpoints(record);
    let mut conns = Vec::new();
    for (n, ep) in &nodes {
        conns.push((n.name.clone(), Node::connect(ep).await.map_err(unreachable)?));
    }
    let mut stored = crate::ops::stored::load(record)?;
    let mut changed = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for a in advice.iter_mut().filter(|a| a.safe) {
        let Some(setting) = a.setting.clone() else { continue };
        if seen.contains(&setting.name) {
            a.note = Some("the same change as above".into());
            continue;
        }
        seen.push(setting.name.clone());
        let mut failed = Vec::new();
        for (name, conn) in &conns {
            if let Err(e) = conn.call(&["CONFIG", "SET", &setting.name, &setting.to]).await {
                failed.push(format!("{name}: {e}"));
            }
        }
        if !failed.is_empty() {
            a.note = Some(format!("not applied on every node, so not written to the template: {}", failed.join("; ")));
            continue;
        }
        if !set_field(&mut stored.config.memory, &setting) {
            a.note = Some(format!("set on every node; the template has no field for `{}`", setting.name));
            continue;
        }
        a.applied = true;
        a.note = Some(format!("set on {} data nodes and in the stored template", conns.len()));
        changed.push(setting);
    }
    if !changed.is_empty() {
        crate::ops::stored::save(record, &stored.config)?;
    }
    Ok(changed)
}

/// Writes `setting` into the template's memory section; whether it has a field for it.
fn set_field(memory: &mut Memory, setting: &Setting) -> bool {
    let number = || setting.to.parse::<u32>().ok();
    match setting.name.as_str() {
        "hash-max-listpack-entries" => number().map(|n| memory.hash_max_listpack_entries = n).is_some(),
        "zset-max-listpack-entries" => number().map(|n| memory.zset_max_listpack_entries = n).is_some(),
        "set-max-intset-entries" => number().map(|n| memory.set_max_intset_entries = n).is_some(),
        "activedefrag" => {
            memory.active_defrag = setting.to == "yes";
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, to: &str) -> Setting {
        Setting { name: name.into(), from: String::new(), to: to.into(), template_field: None }
    }

    #[test]
    fn safe_changes_land_in_their_template_fields_and_others_do_not() {
        let mut m = Memory::default();
        assert!(set_field(&mut m, &setting("hash-max-listpack-entries", "256")));
        assert!(set_field(&mut m, &setting("zset-max-listpack-entries", "512")));
        assert!(set_field(&mut m, &setting("set-max-intset-entries", "1024")));
        assert!(set_field(&mut m, &setting("activedefrag", "yes")));
        assert_eq!(
            (m.hash_max_listpack_entries, m.zset_max_listpack_entries, m.set_max_intset_entries, m.active_defrag),
            (256, 512, 1024, true)
        );
        assert!(!set_field(&mut m, &setting("zset-max-listpack-value", "128")), "no template field");
        assert!(!set_field(&mut m, &setting("hash-max-listpack-entries", "many")), "not a number");
        assert_eq!(m.hash_max_listpack_entries, 256);
    }
}
