//! The runtime's public types: limits, plugin identity, call reports and
//! the host-side mirrors of the contract's records.

use super::bindings::{strategy, wit};
use super::sandbox::LogLine;
use crate::artifact::Artifact;
use redplate_config::Diagnostic;
use std::path::PathBuf;
use std::time::Duration;

/// Per-call limits. Defaults suit the built-in generators with a wide margin.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel units (≈ wasm instructions) per call.
    pub fuel: u64,
    /// Wall-clock deadline per call.
    pub timeout: Duration,
    /// Linear-memory cap per call, in bytes.
    pub memory_bytes: usize,
    /// Most artifacts one call may return.
    pub max_artifacts: usize,
    /// Most bytes (all artifact contents together) one call may return.
    pub max_output_bytes: usize,
    /// Captured stdout and stderr cap, each, in bytes.
    pub max_stdio_bytes: usize,
    /// Log text kept per call, in bytes; later lines are counted, not kept.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            timeout: Duration::from_millis(1500),
            memory_bytes: 256 * 1024 * 1024,
            max_artifacts: 10_000,
            max_output_bytes: 64 * 1024 * 1024,
            max_stdio_bytes: 64 * 1024,
            max_log_bytes: 64 * 1024,
        }
    }
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Renders artifacts.
    Generator,
    /// Plans caching and decides per key.
    CacheStrategy,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Generator => "generator",
            PluginKind::CacheStrategy => "cache-strategy",
        })
    }
}

/// How a plugin names itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub outputs: Vec<String>,
    pub contract_version: String,
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "path", rename_all = "kebab-case")]
pub enum PluginSource {
    /// Embedded in the binary.
    Builtin,
    /// Loaded from a file.
    File(PathBuf),
}

/// What one call cost.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallReport {
    /// Fuel units used (deterministic for the same plugin and input).
    pub fuel_used: u64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: usize,
    /// Wall time of instantiate + call.
    #[serde(serialize_with = "as_micros")]
    pub wall: Duration,
    /// Total bytes of the returned artifacts.
    pub output_bytes: usize,
    /// Lines the plugin logged or printed.
    pub logs: Vec<LogLine>,
    /// Lines dropped past the log cap.
    pub logs_dropped: usize,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A call's result with its report.
#[derive(Debug)]
pub struct Run<T> {
    pub value: T,
    pub report: CallReport,
}

/// A generator's successful output.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Paths checked, unique within this plugin, within the caps.
    pub artifacts: Vec<Artifact>,
    /// Warnings and notes.
    pub diagnostics: Vec<Diagnostic>,
}

/// A strategy's plan (host types).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StrategyPlan {
    pub directives: Vec<Directive>,
    pub key_rules: Vec<KeyRule>,
    #[serde(skip)]
    pub artifacts: Vec<Artifact>,
    pub diagnostics: Vec<Diagnostic>,
}

/// A `redis.conf` directive a strategy needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// How writes reach the backing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    Invalidate,
    WriteThrough,
    WriteBehind,
}

/// How keys matching a pattern are cached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRule {
    pub pattern: String,
    pub ttl_ms: Option<u64>,
    pub jitter_percent: u8,
    pub sliding: bool,
    pub refresh_ahead_percent: Option<u8>,
    pub write_mode: WriteMode,
}

/// A strategy's per-key decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub ttl_ms: Option<u64>,
    pub sliding: bool,
    pub refresh_below_ms: Option<u64>,
    pub write_mode: WriteMode,
}

/// How to set up a [`PluginHost`].
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The compiled-code cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Per-call limits.
    pub limits: Limits,
    /// User template overrides folder (`--templates DIR`).
    pub templates_dir: Option<PathBuf>,
}

/// The plugin's self-description; its free text is untrusted, so it is
/// escaped and capped here (the name is checked strictly by `check_info`).
pub(super) fn plugin_info(i: wit::PluginInfo) -> PluginInfo {
    use crate::text::clean;
    PluginInfo {
        name: i.name,
        version: clean(&i.version, 64),
        kind: match i.kind {
            wit::PluginKind::Generator => PluginKind::Generator,
            wit::PluginKind::CacheStrategy => PluginKind::CacheStrategy,
        },
        description: clean(&i.description, 1024),
        outputs: i.outputs.iter().map(|o| clean(o, 128)).collect(),
        contract_version: clean(&i.contract_version, 64),
    }
}

pub(super) fn write_mode(m: strategy::exports::redplate::plugin::cache_strategy_api::WriteMode) -> WriteMode {
    use strategy::exports::redplate::plugin::cache_strategy_api::WriteMode as W;
    match m {
        W::Invalidate => WriteMode::Invalidate,
        W::WriteThrough => WriteMode::WriteThrough,
        W::WriteBehind => WriteMode::WriteBehind,
    }
}

pub(super) fn key_rule(r: strategy::exports::redplate::plugin::cache_strategy_api::KeyRule) -> KeyRule {
    KeyRule {
        pattern: r.pattern,
        ttl_ms: r.ttl_ms,
        jitter_percent: r.jitter_percent,
        sliding: r.sliding,
        refresh_ahead_percent: r.refresh_ahead_percent,
        write_mode: write_mode(r.write_mode),
    }
}
