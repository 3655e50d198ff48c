//! The plugin runtime: the only module that names wasmtime.
//!
//! One [`PluginHost`] per process owns the engine, the linker (WASI p2
//! granting nothing, plus the `host` interface), the compiled-code cache
//! and the limits. Loading a plugin compiles it (or loads it from the disk
//! cache), checks its contract version and pre-links it into an
//! `InstancePre`; every call then gets a fresh `Store` with a fuel budget, an
//! epoch deadline, a memory cap and captured stdio. Everything a plugin can
//! do wrong comes back as a [`PluginError`], never a panic or a hang.
//!
//! Must not touch: the file system outside the cache folder, the network.

mod bindings;
mod cache;
mod contract;
mod error;
mod sandbox;

pub use cache::CacheOutcome;
pub use contract::{HOST_CONTRACT, compatible};
pub use error::PluginError;
pub use sandbox::LogLine;

use crate::artifact::{Artifact, check_path};
use crate::templates::Renderer;
use bindings::{generator, strategy, wit};
use redplate_config::Diagnostic;
use sandbox::State;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// How often the epoch ticks; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

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

/// A loaded, pre-linked plugin, ready to call.
pub struct Plugin {
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// Where it came from.
    pub source: PluginSource,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// The component's import names.
    pub imports: Vec<String>,
    /// The component's export names.
    pub exports: Vec<String>,
    /// What the compiled-code cache did when it was loaded.
    pub cache: CacheOutcome,
    /// Time to compile or load the code.
    pub load_time: Duration,
    pre: Pre,
}

enum Pre {
    Generator(generator::GeneratorPre<State>),
    Strategy(strategy::CacheStrategyPre<State>),
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

/// The default cache folder: `$REDPLATE_CACHE_DIR`, else the user's cache
/// folder (`~/.cache/redplate/plugins` on Linux).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REDPLATE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "redplate").map(|d| d.cache_dir().join("plugins"))
}

/// Names of the plugins embedded in this binary.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    builtin::BUILTINS.iter().map(|(name, _, _)| *name)
}

/// Owns the engine, linker, cache and limits; loads and calls plugins.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<State>,
    cache: cache::CodeCache,
    limits: Limits,
    renderer: Arc<Renderer>,
}

/// Why the host itself could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The wasm engine could not be configured.
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),
    /// The templates folder could not be read.
    #[error("cannot read templates from `{path}`: {source}")]
    Templates {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PluginHost {
    /// Sets up the engine, the linker and the cache.
    pub fn new(options: HostOptions) -> Result<Self, HostError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .parallel_compilation(true);
        let engine = Engine::new(&config).map_err(|e| HostError::Engine(e.to_string()))?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| HostError::Engine(e.to_string()))?;
        generator::Generator::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        let renderer = match &options.templates_dir {
            Some(dir) => {
                Renderer::from_dir(dir).map_err(|source| HostError::Templates { path: dir.clone(), source })?
            }
            None => Renderer::default(),
        };
        let cache = cache::CodeCache::new(options.cache_dir, &engine);
        Ok(PluginHost { engine, linker, cache, limits: options.limits, renderer: Arc::new(renderer) })
    }

    /// The limits every call gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where the cache entry for a component with this sha256 lives.
    pub fn cache_entry_path(&self, sha256: &str) -> Option<PathBuf> {
        self.cache.entry_path(sha256)
    }

    /// Loads a built-in plugin by name.
    pub fn load_builtin(&self, name: &str) -> Result<Plugin, PluginError> {
        let (_, bytes, sha) = builtin::BUILTINS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
            PluginError::NotFound { name: name.to_owned(), known: builtin_names().map(str::to_owned).collect() }
        })?;
        self.load_bytes(name, bytes, Some(sha), PluginSource::Builtin)
    }

    /// Loads every built-in plugin.
    pub fn load_builtins(&self) -> Vec<Result<Plugin, PluginError>> {
        builtin_names().map(|n| self.load_builtin(n)).collect()
    }

    /// Loads a plugin from a `.wasm` file.
    pub fn load_file(&self, path: &Path) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read { path: path.to_owned(), source })?;
        let label =
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        self.load_bytes(&label, &bytes, None, PluginSource::File(path.to_owned()))
    }

    /// Loads every `*.wasm` file in a folder, sorted by file name.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<Result<Plugin, PluginError>>, PluginError> {
        let read = |source| PluginError::Read { path: dir.to_owned(), source };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        paths.sort();
        Ok(paths.iter().map(|p| self.load_file(p)).collect())
    }

    /// Compiles (or loads from the cache), checks the contract, pre-links
    /// and asks the plugin for its `info`.
    pub fn load_bytes(
        &self,
        label: &str,
        wasm: &[u8],
        sha256: Option<&str>,
        source: PluginSource,
    ) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let sha256 = match sha256 {
            Some(s) => s.to_owned(),
            None => hex::encode(Sha256::digest(wasm)),
        };
        let (component, cache) = self.cache.load(&self.engine, label, wasm, &sha256)?;
        let contract = contract::inspect(&self.engine, &component, label)?;
        let link = |e: wasmtime::Error| PluginError::Link { plugin: label.to_owned(), reason: format!("{e:#}") };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(link)?;
        let pre = match contract.kind {
            PluginKind::Generator => Pre::Generator(generator::GeneratorPre::new(instance_pre).map_err(link)?),
            PluginKind::CacheStrategy => Pre::Strategy(strategy::CacheStrategyPre::new(instance_pre).map_err(link)?),
        };
        let load_time = started.elapsed();
        let mut plugin = Plugin {
            info: PluginInfo {
                name: label.to_owned(),
                version: String::new(),
                kind: contract.kind,
                description: String::new(),
                outputs: Vec::new(),
                contract_version: contract.version.clone(),
            },
            source,
            sha256,
            size: wasm.len(),
            imports: contract.imports,
            exports: contract.exports,
            cache,
            load_time,
            pre,
        };
        let info = self.info(&plugin)?.value;
        check_info(label, &info, &contract.version)?;
        plugin.info = info;
        Ok(plugin)
    }

    /// Calls `info`.
    pub fn info(&self, plugin: &Plugin) -> Result<Run<PluginInfo>, PluginError> {
        let raw = match &plugin.pre {
            Pre::Generator(pre) => self.call(plugin, "info", |store| {
                pre.instantiate(&mut *store)?.redplate_plugin_generator_api().call_info(&mut *store)
            })?,
            Pre::Strategy(pre) => self.call(plugin, "info", |store| {
                pre.instantiate(&mut *store)?.redplate_plugin_cache_strategy_api().call_info(&mut *store)
            })?,
        };
        Ok(Run { value: plugin_info(raw.value), report: raw.report })
    }

    /// Calls `validate` (either world).
    pub fn validate(&self, plugin: &Plugin, input_json: &str) -> Result<Run<Vec<Diagnostic>>, PluginError> {
        let run = match &plugin.pre {
            Pre::Generator(pre) => self.call(plugin, "validate", |store| {
                pre.instantiate(&mut *store)?.redplate_plugin_generator_api().call_validate(&mut *store, input_json)
            })?,
            Pre::Strategy(pre) => self.call(plugin, "validate", |store| {
                pre.instantiate(&mut *store)?
                    .redplate_plugin_cache_strategy_api()
                    .call_validate(&mut *store, input_json)
            })?,
        };
        let name = &plugin.info.name;
        Ok(Run { value: run.value.into_iter().map(|d| bindings::diagnostic(name, d)).collect(), report: run.report })
    }

    /// Calls a generator's `generate` and checks its output: caps, safe and
    /// unique paths. `Ok(Run { value: Err(diagnostics) })` is the plugin
    /// refusing the input; `Err` is the plugin failing.
    pub fn generate(
        &self,
        plugin: &Plugin,
        input_json: &str,
    ) -> Result<Run<Result<Generated, Vec<Diagnostic>>>, PluginError> {
        let Pre::Generator(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, "generate"));
        };
        let mut run = self.call(plugin, "generate", |store| {
            pre.instantiate(&mut *store)?.redplate_plugin_generator_api().call_generate(&mut *store, input_json)
        })?;
        let name = &plugin.info.name;
        let value = match run.value {
            Err(ds) => Err(ds.into_iter().map(|d| bindings::diagnostic(name, d)).collect()),
            Ok(out) => {
                let artifacts = self.check_artifacts(name, out.artifacts, &mut run.report)?;
                let diagnostics = out.diagnostics.into_iter().map(|d| bindings::diagnostic(name, d)).collect();
                Ok(Generated { artifacts, diagnostics })
            }
        };
        Ok(Run { value, report: run.report })
    }

    /// Calls a cache strategy's `plan`.
    pub fn plan(
        &self,
        plugin: &Plugin,
        input_json: &str,
    ) -> Result<Run<Result<StrategyPlan, Vec<Diagnostic>>>, PluginError> {
        let Pre::Strategy(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, "plan"));
        };
        let mut run = self.call(plugin, "plan", |store| {
            pre.instantiate(&mut *store)?.redplate_plugin_cache_strategy_api().call_plan(&mut *store, input_json)
        })?;
        let name = &plugin.info.name;
        let value = match run.value {
            Err(ds) => Err(ds.into_iter().map(|d| bindings::diagnostic(name, d)).collect()),
            Ok(plan) => Ok(StrategyPlan {
                directives: plan
                    .directives
                    .into_iter()
                    .map(|d| Directive { name: d.name, value: d.value, reason: d.reason })
                    .collect(),
                key_rules: plan.key_rules.into_iter().map(key_rule).collect(),
                artifacts: self.check_artifacts(name, plan.artifacts, &mut run.report)?,
                diagnostics: plan.diagnostics.into_iter().map(|d| bindings::diagnostic(name, d)).collect(),
            }),
        };
        Ok(Run { value, report: run.report })
    }

    /// Calls a cache strategy's `decide`.
    pub fn decide(
        &self,
        plugin: &Plugin,
        key: &str,
        tenant: Option<&str>,
        base_ttl_ms: u64,
        seed: u64,
    ) -> Result<Run<Decision>, PluginError> {
        let Pre::Strategy(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, "decide"));
        };
        let run = self.call(plugin, "decide", |store| {
            pre.instantiate(&mut *store)?.redplate_plugin_cache_strategy_api().call_decide(
                &mut *store,
                key,
                tenant,
                base_ttl_ms,
                seed,
            )
        })?;
        let d = run.value;
        let value = Decision {
            ttl_ms: d.ttl_ms,
            sliding: d.sliding,
            refresh_below_ms: d.refresh_below_ms,
            write_mode: write_mode(d.write_mode),
        };
        Ok(Run { value, report: run.report })
    }

    /// One sandboxed call: fresh store, limits armed, failure classified.
    fn call<T>(
        &self,
        plugin: &Plugin,
        call: &'static str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<Run<T>, PluginError> {
        let limits = &self.limits;
        let mut store = Store::new(&self.engine, State::new(limits, self.renderer.clone()));
        store.limiter(|s| &mut s.limiter);
        let engine_err =
            |e: wasmtime::Error| PluginError::Trap { plugin: plugin.info.name.clone(), call, message: e.to_string() };
        store.set_fuel(limits.fuel).map_err(engine_err)?;
        let ticks = limits.timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let started = Instant::now();
        let result = f(&mut store);
        let wall = started.elapsed();
        let fuel_left = store.get_fuel().unwrap_or(0);
        let failure = match result {
            Ok(value) if !store.data().render_overflow => Ok(value),
            Ok(_) => Err(None),
            Err(e) => Err(Some(e)),
        };
        let state = store.into_data();
        match failure {
            Ok(value) => {
                let mut report = CallReport {
                    fuel_used: limits.fuel - fuel_left,
                    peak_memory_bytes: state.limiter.peak_memory,
                    wall,
                    output_bytes: 0,
                    logs: Vec::new(),
                    logs_dropped: state.logs_dropped,
                };
                report.logs = collect_logs(state);
                Ok(Run { value, report })
            }
            Err(e) => Err(classify(&plugin.info.name, call, limits, e, state)),
        }
    }

    fn check_artifacts(
        &self,
        plugin: &str,
        artifacts: Vec<wit::Artifact>,
        report: &mut CallReport,
    ) -> Result<Vec<Artifact>, PluginError> {
        if artifacts.len() > self.limits.max_artifacts {
            return Err(PluginError::TooManyArtifacts {
                plugin: plugin.to_owned(),
                count: artifacts.len(),
                cap: self.limits.max_artifacts,
            });
        }
        let bytes: usize = artifacts.iter().map(|a| a.content.len() + a.path.len()).sum();
        if bytes > self.limits.max_output_bytes {
            return Err(PluginError::OutputTooLarge {
                plugin: plugin.to_owned(),
                bytes,
                cap: self.limits.max_output_bytes,
            });
        }
        report.output_bytes = bytes;
        let mut seen = std::collections::HashSet::new();
        artifacts
            .into_iter()
            .map(|a| {
                check_path(&a.path).map_err(|reason| PluginError::UnsafePath {
                    plugin: plugin.to_owned(),
                    path: a.path.escape_debug().to_string(),
                    reason,
                })?;
                if !seen.insert(a.path.clone()) {
                    return Err(PluginError::DuplicatePath { plugin: plugin.to_owned(), path: a.path });
                }
                Ok(Artifact {
                    path: a.path,
                    content: a.content,
                    media_type: a.media_type,
                    executable: a.executable,
                    plugin: plugin.to_owned(),
                })
            })
            .collect()
    }
}

/// Names a failed call after the limit or fault that ended it.
fn classify(
    plugin: &str,
    call: &'static str,
    limits: &Limits,
    error: Option<wasmtime::Error>,
    state: State,
) -> PluginError {
    let plugin = plugin.to_owned();
    if state.render_overflow {
        return PluginError::RenderTooLarge { plugin, call, cap: crate::templates::DEFAULT_RENDER_CAP };
    }
    if state.limiter.cap_hit {
        return PluginError::MemoryCap { plugin, call, cap: limits.memory_bytes };
    }
    let Some(error) = error else {
        return PluginError::Trap { plugin, call, message: "unknown failure".into() };
    };
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return PluginError::FuelExhausted { plugin, call, budget: limits.fuel },
        Some(Trap::Interrupt) => return PluginError::Deadline { plugin, call, timeout: limits.timeout },
        _ => {}
    }
    // A full stdio pipe makes the guest's print fail, which surfaces as a
    // trap or a panic; name the flood rather than its symptom.
    let near_full = |len: usize| len + 4096 >= limits.max_stdio_bytes;
    if near_full(state.stdout.contents().len()) {
        return PluginError::OutputFlood { plugin, call, stream: "stdout", cap: limits.max_stdio_bytes };
    }
    if near_full(state.stderr.contents().len()) {
        return PluginError::OutputFlood { plugin, call, stream: "stderr", cap: limits.max_stdio_bytes };
    }
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    if let Some(message) = panic_message(&stderr) {
        return PluginError::Panic { plugin, call, message };
    }
    let message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    PluginError::Trap { plugin, call, message }
}

/// The message of a Rust panic as printed to stderr by the guest's std.
fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.find("panicked at")?;
    let rest = &stderr[at..];
    let message: Vec<&str> = rest.lines().skip(1).take_while(|l| !l.starts_with("note: ")).collect();
    let mut message = message.join(" ").trim().to_owned();
    if message.is_empty() {
        message = rest.lines().next().unwrap_or_default().to_owned();
    }
    message.truncate(500);
    Some(message)
}

fn collect_logs(mut state: State) -> Vec<LogLine> {
    let mut logs = std::mem::take(&mut state.logs);
    for (pipe, level) in
        [(&state.stdout, redplate_config::Severity::Info), (&state.stderr, redplate_config::Severity::Warning)]
    {
        let text = pipe.contents();
        for line in String::from_utf8_lossy(&text).lines().filter(|l| !l.trim().is_empty()) {
            logs.push(LogLine { level, message: line.to_owned() });
        }
    }
    logs
}

fn check_info(label: &str, info: &PluginInfo, contract_version: &str) -> Result<(), PluginError> {
    let bad = |reason: String| Err(PluginError::BadInfo { plugin: label.to_owned(), reason });
    let valid_name = !info.name.is_empty()
        && info.name.len() <= 64
        && info.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !info.name.starts_with('-');
    if !valid_name {
        return bad(format!(
            "its name `{}` is not kebab-case ASCII of at most 64 characters",
            info.name.escape_debug()
        ));
    }
    if info.version.is_empty() {
        return bad("its version is empty".into());
    }
    if info.contract_version != contract_version {
        return bad(format!(
            "it says it targets contract {} but exports contract {contract_version}",
            info.contract_version
        ));
    }
    Ok(())
}

fn wrong_kind(plugin: &Plugin, call: &'static str) -> PluginError {
    PluginError::BadInfo {
        plugin: plugin.info.name.clone(),
        reason: format!("it is a {} and has no `{call}`", plugin.info.kind),
    }
}

fn plugin_info(i: wit::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: i.name,
        version: i.version,
        kind: match i.kind {
            wit::PluginKind::Generator => PluginKind::Generator,
            wit::PluginKind::CacheStrategy => PluginKind::CacheStrategy,
        },
        description: i.description,
        outputs: i.outputs,
        contract_version: i.contract_version,
    }
}

fn write_mode(m: strategy::exports::redplate::plugin::cache_strategy_api::WriteMode) -> WriteMode {
    use strategy::exports::redplate::plugin::cache_strategy_api::WriteMode as W;
    match m {
        W::Invalidate => WriteMode::Invalidate,
        W::WriteThrough => WriteMode::WriteThrough,
        W::WriteBehind => WriteMode::WriteBehind,
    }
}

fn key_rule(r: strategy::exports::redplate::plugin::cache_strategy_api::KeyRule) -> KeyRule {
    KeyRule {
        pattern: r.pattern,
        ttl_ms: r.ttl_ms,
        jitter_percent: r.jitter_percent,
        sliding: r.sliding,
        refresh_ahead_percent: r.refresh_ahead_percent,
        write_mode: write_mode(r.write_mode),
    }
}

/// Drives epoch deadlines: one thread per engine, ending with the engine.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("redplate-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    // Without the ticker deadlines never fire, but fuel still bounds every call.
    drop(spawned);
}
