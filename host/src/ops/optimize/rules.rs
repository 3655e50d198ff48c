//! The advice `optimize` gives, from figures already read: pure functions,
//! so each rule is tested on its numbers without a server.

use serde::Serialize;
use std::collections::BTreeMap;

/// A listpack (or intset) this long costs more CPU per write than the
/// memory it saves is worth; limits are never raised past these.
pub const MAX_LISTPACK_ENTRIES: u64 = 1024;
pub const MAX_INTSET_ENTRIES: u64 = 4096;
/// A share of the sampled keys of a type that must be over a limit before
/// raising it is advised (a few outliers are better left alone).
pub const MIN_SHARE_OVER: f64 = 0.10;
/// Fragmentation is only judged above this much used memory: small
/// datasets show high ratios from the allocator's baseline alone.
pub const FRAGMENTATION_MIN_USED: u64 = 100 * 1024 * 1024;
pub const FRAGMENTATION_HIGH: f64 = 1.5;
/// A key this big, or with this many elements, is a big key.
pub const BIG_KEY_BYTES: u64 = 1024 * 1024;
pub const BIG_KEY_ELEMENTS: u64 = 10_000;

/// A configuration change an advice proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The Redis configuration parameter.
    pub name: String,
    pub from: String,
    pub to: String,
    /// The stored template's field that keeps it, when the template has one.
    pub template_field: Option<String>,
}

/// One recommendation with the numbers behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub code: String,
    pub message: String,
    /// The figures the advice rests on.
    pub numbers: BTreeMap<String, f64>,
    /// The change proposed, if it is a configuration change.
    pub setting: Option<Setting>,
    /// Whether `--apply` makes the change (`CONFIG SET` on every data node
    /// and the stored template); the others are for a person to decide.
    pub safe: bool,
    /// Whether this run made the change.
    pub applied: bool,
    /// What happened when applying it, or why it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Advice {
    pub fn info(code: &str, message: String, numbers: &[(&str, f64)]) -> Advice {
        Advice {
            code: code.into(),
            message,
            numbers: numbers.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            setting: None,
            safe: false,
            applied: false,
            note: None,
        }
    }

    fn change(mut self, setting: Setting) -> Advice {
        self.setting = Some(setting);
        self.safe = true;
        self
    }
}

/// The value at quantile `q` (0–1) of sorted `values`.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sampled aggregates of one type against the limit that keeps them compact.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    /// Element counts of every sampled key of the type.
    pub all: Vec<u64>,
    /// Element counts of those in the wide encoding (`hashtable`, `skiplist`).
    pub wide: Vec<u64>,
    /// Their memory, summed.
    pub wide_bytes: u64,
}

/// Raise `name` (now `limit`) when a good share of the sampled keys are
/// wide only because they have more elements than `limit`, and a power of
/// two up to `max` would hold 90% of them.
pub fn raise_limit(kind: &str, name: &str, field: &str, limit: u64, max: u64, s: &Sizes) -> Option<Advice> {
    let mut over: Vec<u64> = s.wide.iter().copied().filter(|n| *n > limit).collect();
    if over.is_empty() || s.all.is_empty() {
        return None;
    }
    over.sort_unstable();
    let share = over.len() as f64 / s.all.len() as f64;
    let (p50, p90, top) = (quantile(&over, 0.5), quantile(&over, 0.9), quantile(&over, 1.0));
    let numbers = [
        ("sampled", s.all.len() as f64),
        ("over_limit", over.len() as f64),
        ("limit", limit as f64),
        ("p50_elements", p50 as f64),
        ("p90_elements", p90 as f64),
        ("max_elements", top as f64),
        ("wide_bytes", s.wide_bytes as f64),
    ];
    let to = p90.next_power_of_two().max(limit * 2);
    if share < MIN_SHARE_OVER {
        return Some(Advice::info(
            &format!("optimize.{kind}-outliers"),
            format!(
                "{} of {} sampled {kind} keys exceed `{name} {limit}` (up to {top} elements): too few to raise the \
                 limit for",
                over.len(),
                s.all.len()
            ),
            &numbers,
        ));
    }
    if to > max {
        return Some(Advice::info(
            &format!("optimize.{kind}-too-big"),
            format!(
                "{} of {} sampled {kind} keys are over `{name} {limit}` with 90% up to {p90} elements: past {max} a \
                 compact encoding costs more CPU than it saves; leave the limit",
                over.len(),
                s.all.len()
            ),
            &numbers,
        ));
    }
    let advice = Advice::info(
        &format!("optimize.{name}"),
        format!(
            "{} of {} sampled {kind} keys ({:.0}%) have more than `{name} {limit}` elements (median {p50}, 90% up to \
             {p90}) and so use the wide encoding, {} bytes between them: raise `{name}` to {to} so keys of that \
             size stay compact (new and rewritten keys at once, existing ones after a restart loads them again)",
            over.len(),
            s.all.len(),
            share * 100.0,
            s.wide_bytes
        ),
        &numbers,
    );
    Some(advice.change(Setting {
        name: name.into(),
        from: limit.to_string(),
        to: to.to_string(),
        template_field: Some(field.into()),
    }))
}

/// Fragmentation: `activedefrag` where the allocator supports it.
pub fn fragmentation(node: &str, used: u64, ratio: f64, allocator: &str, defrag_on: bool) -> Option<Advice> {
    let numbers = [("used_memory", used as f64), ("mem_fragmentation_ratio", ratio)];
    if used < FRAGMENTATION_MIN_USED || ratio < FRAGMENTATION_HIGH || defrag_on {
        return None;
    }
    if !allocator.starts_with("jemalloc") {
        return Some(Advice::info(
            "optimize.fragmentation",
            format!(
                "{node}: fragmentation ratio {ratio:.2} with {used} bytes used, and this Redis is built with \
                 `{allocator}`, which has no active defragmentation: a restart (or a failover to a fresh replica) \
                 returns the memory"
            ),
            &numbers,
        ));
    }
    Some(
        Advice::info(
            "optimize.activedefrag",
            format!(
                "{node}: fragmentation ratio {ratio:.2} with {used} bytes used: turn `activedefrag` on so Redis \
                 moves values to return the memory"
            ),
            &numbers,
        )
        .change(Setting {
            name: "activedefrag".into(),
            from: "no".into(),
            to: "yes".into(),
            template_field: Some("memory.active_defrag".into()),
        }),
    )
}

/// Right-sizing: `maxmemory` against the peak.
pub fn right_size(node: &str, maxmemory: u64, peak: u64, policy: &str) -> Option<Advice> {
    let numbers = [("maxmemory", maxmemory as f64), ("used_memory_peak", peak as f64)];
    if maxmemory == 0 {
        return Some(Advice::info(
            "optimize.no-maxmemory",
            format!(
                "{node}: no `maxmemory`, peak use {peak} bytes: Redis grows until the machine runs out; set \
                 `memory.maxmemory` in the template"
            ),
            &numbers,
        ));
    }
    let used = peak as f64 / maxmemory as f64;
    if used >= 0.9 {
        let what = if policy == "noeviction" { "writes will be refused when it is full" } else { "keys are evicted" };
        return Some(Advice::info(
            "optimize.near-maxmemory",
            format!(
                "{node}: peak use {peak} bytes is {:.0}% of `maxmemory` {maxmemory} ({policy}: {what}): give it \
                 more memory (`redplate scale <deployment> --memory …`)",
                used * 100.0
            ),
            &numbers,
        ));
    }
    if used < 0.25 {
        let enough = (peak * 2).next_power_of_two();
        return Some(Advice::info(
            "optimize.oversized",
            format!(
                "{node}: peak use {peak} bytes is {:.1}% of `maxmemory` {maxmemory}: about {enough} bytes would \
                 still leave room to double",
                used * 100.0
            ),
            &numbers,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(all: &[u64], limit: u64) -> Sizes {
        let wide: Vec<u64> = all.iter().copied().filter(|n| *n > limit).collect();
        Sizes { all: all.to_vec(), wide_bytes: wide.len() as u64 * 1000, wide }
    }

    #[test]
    fn hashes_of_200_fields_over_a_limit_of_128_raise_it_to_256() {
        let s = sizes(&[200; 30], 128);
        let a = raise_limit("hash", "hash-max-listpack-entries", "memory.hash_max_listpack_entries", 128, 1024, &s)
            .expect("advice");
        let set = a.setting.expect("a setting");
        assert_eq!((set.from.as_str(), set.to.as_str()), ("128", "256"));
        assert!(a.safe);
        assert_eq!(a.numbers["over_limit"], 30.0);
        assert_eq!(a.numbers["p90_elements"], 200.0);
    }

    #[test]
    fn outliers_and_giants_are_reported_but_not_changed() {
        let mut few = vec![10; 95];
        few.extend([300; 5]);
        let a = raise_limit("hash", "h", "f", 128, 1024, &sizes(&few, 128)).expect("advice");
        assert!(!a.safe && a.code.ends_with("outliers"));
        let a = raise_limit("zset", "z", "f", 128, 1024, &sizes(&[5000; 10], 128)).expect("advice");
        assert!(!a.safe && a.code.ends_with("too-big"));
        assert!(raise_limit("hash", "h", "f", 128, 1024, &sizes(&[10; 10], 128)).is_none());
    }

    #[test]
    fn fragmentation_and_sizes_are_judged_on_their_numbers() {
        assert!(fragmentation("n", 1 << 20, 3.0, "jemalloc-5.3.0", false).is_none(), "too small to judge");
        assert!(fragmentation("n", 1 << 30, 2.0, "jemalloc-5.3.0", false).is_some_and(|a| a.safe));
        assert!(fragmentation("n", 1 << 30, 2.0, "libc", false).is_some_and(|a| !a.safe));
        assert!(fragmentation("n", 1 << 30, 2.0, "jemalloc-5.3.0", true).is_none());
        assert_eq!(right_size("n", 0, 10, "noeviction").map(|a| a.code), Some("optimize.no-maxmemory".into()));
        assert_eq!(right_size("n", 100, 95, "noeviction").map(|a| a.code), Some("optimize.near-maxmemory".into()));
        assert_eq!(right_size("n", 1000, 10, "allkeys-lru").map(|a| a.code), Some("optimize.oversized".into()));
        assert!(right_size("n", 100, 50, "allkeys-lru").is_none());
        assert_eq!(quantile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9);
    }
}
