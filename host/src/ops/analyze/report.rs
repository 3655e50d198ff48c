//! What `analyze` reports, and how one master's keys are tallied into it:
//! per pattern (at most `max_patterns`, the rest as `(other)`), the biggest
//! keys in a bounded heap, then the masters merged with their
//! extrapolation factors, and recommendations drawn from the result.

use super::collect::{KeyFacts, Walked};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// The pattern that holds every key past the cap on patterns.
pub const OTHER: &str = "(other)";
/// A key this big (bytes) is worth a look.
pub const BIG_KEY_BYTES: u64 = 1024 * 1024;

/// Keys by time to live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TtlBuckets {
    pub no_ttl: u64,
    pub under_1m: u64,
    pub under_1h: u64,
    pub under_1d: u64,
    pub over_1d: u64,
}

impl TtlBuckets {
    fn add(&mut self, ttl_ms: Option<u64>) {
        match ttl_ms {
            None => self.no_ttl += 1,
            Some(ms) if ms < 60_000 => self.under_1m += 1,
            Some(ms) if ms < 3_600_000 => self.under_1h += 1,
            Some(ms) if ms < 86_400_000 => self.under_1d += 1,
            Some(_) => self.over_1d += 1,
        }
    }

    fn merge(&mut self, o: &TtlBuckets) {
        self.no_ttl += o.no_ttl;
        self.under_1m += o.under_1m;
        self.under_1h += o.under_1h;
        self.under_1d += o.under_1d;
        self.over_1d += o.over_1d;
    }

    /// Keys with a TTL.
    pub fn with_ttl(&self) -> u64 {
        self.under_1m + self.under_1h + self.under_1d + self.over_1d
    }
}

/// One pattern's keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PatternStats {
    pub pattern: String,
    /// Keys read.
    pub keys: u64,
    /// Their `MEMORY USAGE`, summed.
    pub memory_bytes: u64,
    /// Keys and bytes extrapolated to the whole keyspace (equal to the
    /// above after a full walk).
    pub estimated_keys: u64,
    pub estimated_memory_bytes: u64,
    pub ttl: TtlBuckets,
    /// Keys per type and per encoding.
    pub types: BTreeMap<String, u64>,
    pub encodings: BTreeMap<String, u64>,
    /// Elements of the aggregates among them (fields, members, items).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_elements: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_elements: Option<f64>,
    #[serde(skip)]
    elements_sum: u64,
    #[serde(skip)]
    aggregates: u64,
}

impl PatternStats {
    fn add(&mut self, k: &KeyFacts<'_>) {
        self.keys += 1;
        self.memory_bytes += k.bytes;
        self.ttl.add(k.ttl_ms);
        bump(&mut self.types, k.kind, 1);
        bump(&mut self.encodings, k.encoding, 1);
        if let Some(n) = k.elements {
            self.aggregates += 1;
            self.elements_sum += n;
            self.max_elements = Some(self.max_elements.unwrap_or(0).max(n));
        }
    }

    fn merge(&mut self, o: &PatternStats, scale: f64) {
        self.keys += o.keys;
        self.memory_bytes += o.memory_bytes;
        self.estimated_keys += (o.keys as f64 * scale).round() as u64;
        self.estimated_memory_bytes += (o.memory_bytes as f64 * scale).round() as u64;
        self.ttl.merge(&o.ttl);
        for (k, v) in &o.types {
            bump(&mut self.types, k, *v);
        }
        for (k, v) in &o.encodings {
            bump(&mut self.encodings, k, *v);
        }
        self.aggregates += o.aggregates;
        self.elements_sum += o.elements_sum;
        if let Some(m) = o.max_elements {
            self.max_elements = Some(self.max_elements.unwrap_or(0).max(m));
        }
        self.mean_elements = (self.aggregates > 0).then(|| self.elements_sum as f64 / self.aggregates as f64);
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

/// One of the biggest keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopKey {
    pub bytes: u64,
    /// The key (a tenant's prefix stripped), as UTF-8 (invalid bytes replaced).
    pub key: String,
    pub node: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub encoding: String,
    pub ttl_ms: Option<u64>,
    pub elements: Option<u64>,
}

impl Ord for TopKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.bytes, &self.key, &self.node).cmp(&(o.bytes, &o.key, &o.node))
    }
}

impl PartialOrd for TopKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// What one master's walk found, bounded.
pub(super) struct Tally {
    patterns: HashMap<String, PatternStats>,
    max_patterns: usize,
    top: BinaryHeap<Reverse<TopKey>>,
    top_keys: usize,
}

impl Tally {
    pub(super) fn new(max_patterns: usize, top_keys: usize) -> Tally {
        Tally { patterns: HashMap::new(), max_patterns: max_patterns.max(1), top: BinaryHeap::new(), top_keys }
    }

    pub(super) fn add(&mut self, pattern: &str, name: &str, node: &str, k: &KeyFacts<'_>) {
        let full = self.patterns.len() >= self.max_patterns;
        let stats = match self.patterns.get_mut(pattern) {
            Some(s) => s,
            None => {
                let p = if full { OTHER } else { pattern };
                self.patterns
                    .entry(p.to_owned())
                    .or_insert_with(|| PatternStats { pattern: p.to_owned(), ..PatternStats::default() })
            }
        };
        stats.add(k);
        if self.top_keys == 0 {
            return;
        }
        if self.top.len() >= self.top_keys && self.top.peek().is_some_and(|Reverse(min)| min.bytes >= k.bytes) {
            return;
        }
        self.top.push(Reverse(TopKey {
            bytes: k.bytes,
            key: name.to_owned(),
            node: node.to_owned(),
            kind: k.kind.to_owned(),
            encoding: k.encoding.to_owned(),
            ttl_ms: k.ttl_ms,
            elements: k.elements,
        }));
        if self.top.len() > self.top_keys {
            self.top.pop();
        }
    }
}

/// A finding and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub code: String,
    pub message: String,
}

/// What `analyze` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub deployment: String,
    pub tenant: Option<String>,
    /// The tenant's key prefix, stripped from patterns and keys.
    pub prefix: String,
    pub separators: String,
    /// Keys read per master; `None`: every key (`--full`).
    pub sample_per_master: Option<u64>,
    /// Whether the figures are extrapolated from a sample.
    pub extrapolated: bool,
    pub masters: Vec<Walked>,
    /// Keys read, and the keyspace they stand for.
    pub keys_analyzed: u64,
    pub estimated_keys: u64,
    pub memory_analyzed_bytes: u64,
    pub estimated_memory_bytes: u64,
    /// Most memory first.
    pub patterns: Vec<PatternStats>,
    /// Whether patterns past the cap were summed as `(other)`.
    pub patterns_capped: bool,
    /// Biggest first.
    pub top_keys: Vec<TopKey>,
    pub recommendations: Vec<Recommendation>,
    pub seconds: f64,
}

/// The masters' tallies as one analysis.
pub(super) fn merge(tallies: Vec<(Walked, Tally)>, max_patterns: usize, top_keys: usize) -> Analysis {
    let mut a = Analysis::default();
    let mut all = Tally::new(max_patterns, 0);
    let mut top: Vec<TopKey> = Vec::new();
    for (walked, tally) in tallies {
        a.extrapolated |= !walked.complete;
        for (name, stats) in tally.patterns {
            let full = all.patterns.len() >= all.max_patterns;
            let p = if full && !all.patterns.contains_key(&name) { OTHER.to_owned() } else { name };
            all.patterns
                .entry(p.clone())
                .or_insert_with(|| PatternStats { pattern: p, ..PatternStats::default() })
                .merge(&stats, walked.scale);
        }
        top.extend(tally.top.into_iter().map(|Reverse(t)| t));
        a.masters.push(walked);
    }
    let mut patterns: Vec<PatternStats> = all.patterns.into_values().collect();
    patterns.sort_by(|x, y| y.memory_bytes.cmp(&x.memory_bytes).then_with(|| x.pattern.cmp(&y.pattern)));
    a.patterns_capped = patterns.iter().any(|p| p.pattern == OTHER);
    a.keys_analyzed = patterns.iter().map(|p| p.keys).sum();
    a.estimated_keys = patterns.iter().map(|p| p.estimated_keys).sum();
    a.memory_analyzed_bytes = patterns.iter().map(|p| p.memory_bytes).sum();
    a.estimated_memory_bytes = patterns.iter().map(|p| p.estimated_memory_bytes).sum();
    // Names from Redis, made safe to show (ordinary names are unchanged).
    for p in &mut patterns {
        p.pattern = clean(&p.pattern);
        p.types = p.types.iter().map(|(k, v)| (clean(k), *v)).collect();
        p.encodings = p.encodings.iter().map(|(k, v)| (clean(k), *v)).collect();
    }
    a.patterns = patterns;
    top.sort_by(|x, y| y.cmp(x));
    top.truncate(top_keys);
    for t in &mut top {
        t.key = clean(&t.key);
        t.kind = clean(&t.kind);
        t.encoding = clean(&t.encoding);
    }
    a.top_keys = top;
    a
}

fn clean(text: &str) -> String {
    crate::text::clean(text, 512)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// What the figures suggest doing.
pub(super) fn recommend(a: &Analysis) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let mut say = |code: &str, message: String| out.push(Recommendation { code: code.into(), message });
    if a.extrapolated {
        say(
            "analyze.extrapolated",
            format!(
                "{} keys were read and stand for about {} (`DBSIZE` over the keys `SCAN` visited, per master): \
                 counts and memory are estimates; `--full` reads every key",
                a.keys_analyzed, a.estimated_keys
            ),
        );
    }
    for p in &a.patterns {
        let with = p.ttl.with_ttl();
        if with > 0 && p.ttl.no_ttl > 0 && with >= p.ttl.no_ttl {
            say(
                "analyze.missing-ttl",
                format!(
                    "`{}`: {} keys have no TTL while {with} have one: a missing `EXPIRE` in the code that writes them?",
                    p.pattern, p.ttl.no_ttl
                ),
            );
        }
        let big_share = share(p.memory_bytes, a.memory_analyzed_bytes);
        if a.patterns.len() > 1 && big_share >= 50.0 {
            say(
                "analyze.dominant-pattern",
                format!("`{}` holds {big_share:.0}% of the memory read: start any saving there", p.pattern),
            );
        }
        let wide =
            p.encodings.get("hashtable").copied().unwrap_or(0) + p.encodings.get("skiplist").copied().unwrap_or(0);
        if wide > 0 && p.types.keys().any(|t| t == "hash" || t == "zset") {
            say(
                "analyze.wide-encoding",
                format!(
                    "`{}`: {wide} keys use the `hashtable`/`skiplist` encoding (up to {} elements): \
                     `redplate optimize` says whether raising the listpack limits would shrink them",
                    p.pattern,
                    p.max_elements.unwrap_or(0)
                ),
            );
        }
    }
    for t in a.top_keys.iter().filter(|t| t.bytes >= BIG_KEY_BYTES) {
        say(
            "analyze.big-key",
            format!(
                "`{}` on {} takes {} bytes{}: deleting or rewriting it blocks the server; consider splitting it",
                t.key,
                t.node,
                t.bytes,
                t.elements.map(|e| format!(" ({e} elements)")).unwrap_or_default()
            ),
        );
    }
    if a.patterns_capped {
        say(
            "analyze.patterns-capped",
            format!(
                "more distinct patterns than the cap: the rest are summed as `{OTHER}`; raise `--max-patterns` \
                 or add separators so ids fold"
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(bytes: u64, ttl_ms: Option<u64>) -> KeyFacts<'static> {
        KeyFacts { key: b"k", kind: "hash", encoding: "listpack", ttl_ms, bytes, elements: Some(3) }
    }

    #[test]
    fn patterns_past_the_cap_go_to_other_and_the_top_keys_stay_bounded() {
        let mut t = Tally::new(2, 3);
        for (i, p) in ["a", "b", "c", "d", "a"].iter().enumerate() {
            t.add(p, &format!("key{i}"), "n", &facts(10 * (i as u64 + 1), None));
        }
        assert_eq!(t.patterns.len(), 3);
        assert_eq!(t.patterns["a"].keys, 2);
        assert_eq!(t.patterns[OTHER].keys, 2, "c and d");
        assert_eq!(t.top.len(), 3);
        let walked = Walked { node: "n".into(), dbsize: 10, visited: 5, analyzed: 5, complete: false, scale: 2.0 };
        let a = merge(vec![(walked, t)], 10, 2);
        assert_eq!(a.top_keys.iter().map(|k| k.bytes).collect::<Vec<_>>(), [50, 40]);
        assert_eq!((a.keys_analyzed, a.estimated_keys), (5, 10));
        assert!(a.extrapolated && a.patterns_capped);
        let order: Vec<(&str, u64)> = a.patterns.iter().map(|p| (p.pattern.as_str(), p.memory_bytes)).collect();
        assert_eq!(order, [(OTHER, 70), ("a", 60), ("b", 20)], "most memory first");
        assert_eq!(a.patterns[1].estimated_keys, 4, "2 keys read, each standing for 2");
    }

    #[test]
    fn ttls_fall_in_their_buckets() {
        let mut b = TtlBuckets::default();
        for ttl in [None, Some(59_999), Some(60_000), Some(3_599_999), Some(86_399_999), Some(86_400_000)] {
            b.add(ttl);
        }
        assert_eq!(b, TtlBuckets { no_ttl: 1, under_1m: 1, under_1h: 2, under_1d: 1, over_1d: 1 });
        assert_eq!(b.with_ttl(), 5);
    }
}
