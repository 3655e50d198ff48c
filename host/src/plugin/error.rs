//! What can go wrong with a plugin. Every variant names the plugin and, for
//! limits, the limit; every variant becomes a [`Diagnostic`] with a stable
//! `plugin.*` code. None of them is the host's fault, so none panics.

use redplate_config::Diagnostic;
use std::path::PathBuf;
use std::time::Duration;

/// A plugin could not be loaded or misbehaved while running.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin file could not be read.
    #[error("cannot read plugin `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("plugin `{plugin}` is not a WebAssembly file (it does not start with `\\0asm`)")]
    NotWasm { plugin: String },
    /// A core module where a component is needed.
    #[error("plugin `{plugin}` is a core WebAssembly module, not a component")]
    CoreModule { plugin: String },
    /// Looks like wasm but does not compile (truncated, corrupt, unsupported).
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {reason}")]
    Invalid { plugin: String, reason: String },
    /// A valid component that implements neither redplate world.
    #[error("plugin `{plugin}` does not implement a redplate world (it exports {exports})")]
    NotAPlugin { plugin: String, exports: String },
    /// Built against a contract version this host does not speak.
    #[error("plugin `{plugin}` targets contract redplate:plugin@{targets}, but this host speaks {host}")]
    IncompatibleContract { plugin: String, targets: String, host: String },
    /// The component needs imports the sandbox does not grant.
    #[error("plugin `{plugin}` needs imports the sandbox does not grant: {reason}")]
    Link { plugin: String, reason: String },
    /// `info()` returned something unusable.
    #[error("plugin `{plugin}` describes itself wrongly: {reason}")]
    BadInfo { plugin: String, reason: String },
    /// Ran out of its fuel budget (an endless or too-long computation).
    #[error("plugin `{plugin}` used up its fuel budget of {budget} units in `{call}`")]
    FuelExhausted { plugin: String, call: &'static str, budget: u64 },
    /// Ran past its wall-clock deadline.
    #[error("plugin `{plugin}` ran past its {}ms deadline in `{call}`", timeout.as_millis())]
    Deadline { plugin: String, call: &'static str, timeout: Duration },
    /// Tried to grow its memory past the cap.
    #[error("plugin `{plugin}` tried to use more than its {} MiB memory cap in `{call}`", cap / (1024 * 1024))]
    MemoryCap { plugin: String, call: &'static str, cap: usize },
    /// Wrote more to stdout/stderr than the cap allows.
    #[error("plugin `{plugin}` printed more than {cap} bytes to {stream} in `{call}`")]
    OutputFlood { plugin: String, call: &'static str, stream: &'static str, cap: usize },
    /// Asked the host to render more text than the cap allows.
    #[error("plugin `{plugin}` asked the host to render more than {} MiB in `{call}`", cap / (1024 * 1024))]
    RenderTooLarge { plugin: String, call: &'static str, cap: usize },
    /// Panicked (Rust) — the message is the plugin's own.
    #[error("plugin `{plugin}` panicked in `{call}`: {message}")]
    Panic { plugin: String, call: &'static str, message: String },
    /// Trapped (unreachable, out-of-bounds access, …).
    #[error("plugin `{plugin}` trapped in `{call}`: {message}")]
    Trap { plugin: String, call: &'static str, message: String },
    /// Returned more artifacts than allowed.
    #[error("plugin `{plugin}` returned {count} artifacts; the cap is {cap}")]
    TooManyArtifacts { plugin: String, count: usize, cap: usize },
    /// Returned more bytes than allowed.
    #[error("plugin `{plugin}` returned {bytes} bytes of output; the cap is {cap}")]
    OutputTooLarge { plugin: String, bytes: usize, cap: usize },
    /// Returned an artifact whose path is not a safe relative path.
    #[error("plugin `{plugin}` returned an unsafe artifact path `{path}`: {reason}")]
    UnsafePath { plugin: String, path: String, reason: &'static str },
    /// Two artifacts with the same path.
    #[error("plugin `{plugin}` returned the artifact path `{path}` twice")]
    DuplicatePath { plugin: String, path: String },
    /// Asked for a plugin that is neither built in nor found.
    #[error("no plugin named `{name}`")]
    NotFound { name: String, known: Vec<String> },
}

impl PluginError {
    /// The stable diagnostic code.
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::Read { .. } => "plugin.unreadable",
            PluginError::NotWasm { .. } => "plugin.not-wasm",
            PluginError::CoreModule { .. } => "plugin.core-module",
            PluginError::Invalid { .. } => "plugin.invalid-component",
            PluginError::NotAPlugin { .. } => "plugin.not-a-plugin",
            PluginError::IncompatibleContract { .. } => "plugin.incompatible-contract",
            PluginError::Link { .. } => "plugin.link",
            PluginError::BadInfo { .. } => "plugin.bad-info",
            PluginError::FuelExhausted { .. } => "plugin.fuel-exhausted",
            PluginError::Deadline { .. } => "plugin.deadline-exceeded",
            PluginError::MemoryCap { .. } => "plugin.memory-cap",
            PluginError::OutputFlood { .. } => "plugin.output-flood",
            PluginError::RenderTooLarge { .. } => "plugin.render-too-large",
            PluginError::Panic { .. } => "plugin.panic",
            PluginError::Trap { .. } => "plugin.trap",
            PluginError::TooManyArtifacts { .. } => "plugin.too-many-artifacts",
            PluginError::OutputTooLarge { .. } => "plugin.output-too-large",
            PluginError::UnsafePath { .. } => "plugin.unsafe-path",
            PluginError::DuplicatePath { .. } => "plugin.duplicate-path",
            PluginError::NotFound { .. } => "plugin.not-found",
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PluginError::Read { .. } => "check the path in `plugins:` or `--plugin-dir`".into(),
            PluginError::NotWasm { .. } | PluginError::Invalid { .. } => {
                "rebuild the plugin (`cargo build --target wasm32-wasip2`); the file may be truncated or not a plugin".into()
            }
            PluginError::CoreModule { .. } => {
                "build for `wasm32-wasip2` (which emits components) or wrap it with `wasm-tools component new`".into()
            }
            PluginError::NotAPlugin { .. } => {
                "a plugin exports `redplate:plugin/generator-api` or `redplate:plugin/cache-strategy-api` (see wit/plugin.wit)".into()
            }
            PluginError::IncompatibleContract { host, .. } => {
                format!("rebuild the plugin against redplate:plugin@{host}, or use a redplate release that speaks its version")
            }
            PluginError::Link { .. } => "plugins get WASI without files, network or environment, and the `host` interface".into(),
            PluginError::BadInfo { .. } => "fix the plugin's `info()`".into(),
            PluginError::FuelExhausted { .. } => {
                "the plugin may loop forever; if it really needs more work, raise `--fuel`".into()
            }
            PluginError::Deadline { .. } => "the plugin may hang; if it is just slow, raise `--timeout-ms`".into(),
            PluginError::MemoryCap { .. } => "if the plugin really needs more, raise `--memory-mb`".into(),
            PluginError::OutputFlood { .. } => "plugins should log through the host's `log`, briefly".into(),
            PluginError::RenderTooLarge { .. } => "check the plugin's templates for runaway loops".into(),
            PluginError::Panic { .. } | PluginError::Trap { .. } => "this is a bug in the plugin; report it to its authors".into(),
            PluginError::TooManyArtifacts { .. } | PluginError::OutputTooLarge { .. } => {
                "this is a bug in the plugin, or raise the output caps".into()
            }
            PluginError::UnsafePath { .. } | PluginError::DuplicatePath { .. } => {
                "artifact paths must be unique, relative, `/`-separated, without `.`, `..` or empty components".into()
            }
            PluginError::NotFound { known, .. } => format!("known plugins: {}", known.join(", ")),
        })
    }

    /// The plugin's name, where the error concerns one.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::Read { .. } | PluginError::NotFound { .. } => None,
            PluginError::NotWasm { plugin }
            | PluginError::CoreModule { plugin }
            | PluginError::Invalid { plugin, .. }
            | PluginError::NotAPlugin { plugin, .. }
            | PluginError::IncompatibleContract { plugin, .. }
            | PluginError::Link { plugin, .. }
            | PluginError::BadInfo { plugin, .. }
            | PluginError::FuelExhausted { plugin, .. }
            | PluginError::Deadline { plugin, .. }
            | PluginError::MemoryCap { plugin, .. }
            | PluginError::OutputFlood { plugin, .. }
            | PluginError::RenderTooLarge { plugin, .. }
            | PluginError::Panic { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::TooManyArtifacts { plugin, .. }
            | PluginError::OutputTooLarge { plugin, .. }
            | PluginError::UnsafePath { plugin, .. }
            | PluginError::DuplicatePath { plugin, .. } => Some(plugin),
        }
    }

    /// As a diagnostic for the user.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::error(self.code(), "", self.to_string());
        d.hint = self.hint();
        d.source = self.plugin().map(str::to_owned);
        d
    }
}
