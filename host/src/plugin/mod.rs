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
mod classify;
mod contract;
mod decider;
mod error;
mod sandbox;
mod types;

pub use cache::CacheOutcome;
pub use contract::{HOST_CONTRACT, compatible};
pub use decider::Decider;
pub use error::PluginError;
pub use sandbox::LogLine;
pub use types::*;

use crate::artifact::{Artifact, check_path};
use crate::templates::Renderer;
use bindings::{generator, strategy, wit};
use classify::{check_info, classify, collect_logs};
use redplate_config::Diagnostic;
use sandbox::State;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use types::{key_rule, plugin_info, write_mode};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// How often the epoch ticks; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

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

/// The component bytes of a built-in plugin.
pub fn builtin_component(name: &str) -> Option<&'static [u8]> {
    builtin::BUILTINS.iter().find(|(n, _, _)| *n == name).map(|(_, bytes, _)| *bytes)
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
        // For profiling plugins with `perf`: `REDPLATE_PERFMAP=1 perf record …`
        // names their functions (build them unstripped to get the names).
        if std::env::var_os("REDPLATE_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // A pool of pre-reserved instance slots makes instantiation cheap (no
        // mmap per call); where the address space is too small for it, fall
        // back to on-demand allocation.
        let engine = Engine::new(config.clone().allocation_strategy(pooling(&options.limits)))
            .or_else(|_| Engine::new(&config))
            .map_err(|e| HostError::Engine(e.to_string()))?;
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

    /// The template names the user overrides (`--templates DIR`), sorted:
    /// `template_overrides` in the input document.
    pub fn template_overrides(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.renderer.override_names().collect();
        names.sort_unstable();
        names
    }

    /// The `--templates` overrides no plugin has asked for yet (likely a
    /// misspelt name: each template is named after the file it makes).
    pub fn unused_template_overrides(&self) -> Vec<String> {
        self.renderer.unused_overrides()
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
        let mut store = self.new_store();
        let engine_err =
            |e: wasmtime::Error| PluginError::Trap { plugin: plugin.info.name.clone(), call, message: e.to_string() };
        store.set_fuel(limits.fuel).map_err(engine_err)?;
        store.set_epoch_deadline(epoch_ticks(limits));
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

    /// A store with the memory limiter and captured stdio, not yet armed.
    fn new_store(&self) -> Store<State> {
        let mut store = Store::new(&self.engine, State::new(&self.limits, self.renderer.clone()));
        store.limiter(|s| &mut s.limiter);
        store
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
                    secret: false,
                    plugin: plugin.to_owned(),
                })
            })
            .collect()
    }
}

/// The call timeout in epoch ticks (at least one).
fn epoch_ticks(limits: &Limits) -> u64 {
    let ticks = limits.timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

fn wrong_kind(plugin: &Plugin, call: &'static str) -> PluginError {
    PluginError::BadInfo {
        plugin: plugin.info.name.clone(),
        reason: format!("it is a {} and has no `{call}`", plugin.info.kind),
    }
}

/// Instance slots for concurrent calls (parallel generators, `--batch`).
fn pooling(limits: &Limits) -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(64)
        .total_core_instances(512)
        .total_memories(128)
        .total_tables(256)
        .total_stacks(64)
        .max_core_instances_per_component(16)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .table_elements(100_000)
        // The `StoreLimits` cap decides; the pool only needs to be larger.
        .max_memory_size(limits.memory_bytes.saturating_add(64 << 20));
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
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
