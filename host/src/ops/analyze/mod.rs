//! `redplate analyze`: memory, key count, TTL distribution, types and
//! encodings per key pattern, the biggest keys, and recommendations, read
//! from every master with a paced walk ([`collect`]). Patterns fold ids out
//! of every segment of a key name ([`pattern`]), not only the first.
//!
//! With a sample (10,000 keys per master by default, as RedisInsight does)
//! the counts are extrapolated with `DBSIZE` and the result says so; with
//! `full` every key is read. Memory stays bounded however big the
//! keyspace: at most `max_patterns` patterns (the rest are summed as
//! `(other)`) and the top keys in a heap of `top_keys`.

pub mod collect;
pub mod pattern;
mod report;

pub use collect::{KeyFacts, Walk, Walked, walk};
pub use pattern::{DEFAULT_SEPARATORS, Folder};
pub use report::{Analysis, PatternStats, Recommendation, TopKey, TtlBuckets};

use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::deploy::failure;
use crate::ops::tenant::Pace;
use crate::registry::Registry;
use redplate_config::Diagnostic;
use report::Tally;
use std::path::Path;
use std::time::Instant;

/// The sample per master when neither a sample nor `full` is asked for.
pub const DEFAULT_SAMPLE: u64 = 10_000;

/// What `analyze` was asked.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    /// Only this tenant's keys (its prefix stripped from the patterns).
    pub tenant: Option<String>,
    /// Keys read per master; `None`: every key.
    pub sample: Option<u64>,
    /// The characters that cut key names into segments.
    pub separators: String,
    /// Patterns kept; the rest are summed as `(other)`.
    pub max_patterns: usize,
    /// The biggest keys listed.
    pub top_keys: usize,
    /// The share of time our commands may take (0–1].
    pub duty: f64,
    /// The longest one `SCAN` should hold the server.
    pub budget: std::time::Duration,
}

impl Default for AnalyzeRequest {
    fn default() -> Self {
        AnalyzeRequest {
            tenant: None,
            sample: Some(DEFAULT_SAMPLE),
            separators: DEFAULT_SEPARATORS.into(),
            max_patterns: 500,
            top_keys: 10,
            duty: 0.5,
            budget: Pace::gentle(1000).budget,
        }
    }
}

fn bad_request(message: String, hint: &str) -> Failure {
    Failure::invalid(vec![Diagnostic::error("analyze.bad-request", "", message).with_hint(hint)])
}

/// The pace of a key walk that takes at most `duty` of the server's time,
/// each `SCAN` sized to take about `budget`.
pub fn pace(duty: f64, budget: std::time::Duration) -> Pace {
    Pace { duty, budget, ..Pace::gentle(1000) }
}

/// Analyses the keys of `deployment` (every master) as `request` says.
pub async fn analyze(home: &Path, deployment: &str, request: &AnalyzeRequest) -> Result<Analysis, Failure> {
    let started = Instant::now();
    if request.sample == Some(0) {
        return Err(bad_request("`--sample 0` reads no key".into(), "give a sample of 1 or more, or `--full`"));
    }
    if !(request.duty > 0.0 && request.duty <= 1.0) {
        return Err(bad_request(
            format!("`--duty {}` is not a share of time", request.duty),
            "give a number above 0 and at most 1 (0.5: our commands take at most half of the server's time)",
        ));
    }
    if request.budget < std::time::Duration::from_micros(50) || request.budget > std::time::Duration::from_millis(100) {
        return Err(bad_request(
            format!("a budget of {:?} per `SCAN` is out of range", request.budget),
            "give `--budget-us` between 50 and 100000 (500: half a millisecond, what other clients do not notice)",
        ));
    }
    if request.separators.chars().count() > 16 || request.separators.chars().any(char::is_alphanumeric) {
        return Err(bad_request(
            format!("`--separators {}` cannot cut key names", crate::text::clean(&request.separators, 64)),
            "give up to 16 punctuation characters, e.g. `--separators \":/|.\"`",
        ));
    }
    let registry = Registry::new(home);
    let record = registry.load(deployment).map_err(failure)?;
    let prefix = match &request.tenant {
        None => String::new(),
        Some(id) => {
            crate::ops::tenant::check_id(id)?;
            let resolved = crate::ops::stored::load(&record)?;
            crate::ops::tenant::find(&resolved.config, deployment, id)?;
            crate::ops::tenant::prefix(&resolved.config, id)
        }
    };
    let folder = Folder::new(&request.separators);
    let walk_settings =
        Walk { prefix: prefix.as_bytes().to_vec(), sample: request.sample, pace: pace(request.duty, request.budget) };
    let found = masters(&record).await?;
    let mut tallies = Vec::new();
    for (node, conn) in &found {
        let mut tally = Tally::new(request.max_patterns, request.top_keys);
        let walked = walk(&node.name, conn, &walk_settings, &mut |k: &KeyFacts<'_>| {
            let name = String::from_utf8_lossy(&k.key[prefix.len()..]);
            tally.add(&folder.fold(&name), &name, &node.name, k);
        })
        .await
        .map_err(unreachable)?;
        tallies.push((walked, tally));
    }
    let mut analysis = report::merge(tallies, request.max_patterns, request.top_keys);
    analysis.deployment = deployment.to_owned();
    analysis.tenant = request.tenant.clone();
    analysis.prefix = prefix;
    analysis.separators = request.separators.clone();
    analysis.sample_per_master = request.sample;
    analysis.recommendations = report::recommend(&analysis);
    analysis.seconds = started.elapsed().as_secs_f64();
    Ok(analysis)
}
