//! The guest SDK for redplate plugins written in Rust.
//!
//! A plugin is plain functions behind the [`Generator`] or [`CacheStrategy`]
//! trait plus one line, [`export_generator!`] or [`export_cache_strategy!`],
//! that binds them to the WIT contract in `wit/plugin.wit`. The logic never
//! sees wit-bindgen types, so it compiles and is unit-tested natively (with
//! [`NativeHost`] standing in for the host's `render`).
//!
//! ```ignore
//! struct Hello;
//! impl redplate_plugin_sdk::Generator for Hello {
//!     fn info() -> PluginInfo { PluginInfo::generator("hello", env!("CARGO_PKG_VERSION"), "says hello", &["hello.txt"]) }
//!     fn generate(input: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
//!         let text = host.render("hello", "hello {{name}}\n", input).map_err(|e| vec![Diagnostic::error("hello.render", "", e)])?;
//!         Ok(Output::new(vec![Artifact::text("hello.txt", text)]))
//!     }
//! }
//! redplate_plugin_sdk::export_generator!(Hello);
//! ```

extern crate self as redplate_plugin_sdk;

mod types;
pub use types::*;

pub mod template;

#[cfg(feature = "native-host")]
mod native;
#[cfg(feature = "native-host")]
pub use native::NativeHost;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

#[cfg(target_arch = "wasm32")]
mod bump;
#[cfg(target_arch = "wasm32")]
pub use bump::BumpAllocator;

/// The WIT contract version this SDK builds plugins against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// What the host offers a plugin.
pub trait Host {
    /// Writes a line to the plugin's log.
    fn log(&self, level: Severity, message: &str);
    /// Renders a Handlebars template (strict mode) against a JSON document;
    /// a user's template of the same `name` wins over `template`.
    fn render(&self, name: &str, template: &str, data_json: &str) -> Result<String, String>;
}

/// The template names the user overrides: `template_overrides` in the
/// input document (wit/INPUT.md). Deserialize it as a field of the input.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct TemplateOverrides(Vec<String>);

impl TemplateOverrides {
    /// Whether the user overrides the template `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    /// Renders the template `name`: through the host when the user
    /// overrides it (with the JSON `data` the template documents),
    /// otherwise with `native`, the plugin's own layout of its built-in
    /// `template`, which saves serializing the data and a host call. Each
    /// built-in plugin tests that both give the same bytes.
    pub fn render(
        &self,
        host: &dyn Host,
        name: &str,
        template: &str,
        data: impl FnOnce() -> Result<String, String>,
        native: impl FnOnce() -> String,
    ) -> Result<String, String> {
        if self.contains(name) { host.render(name, template, &data()?) } else { Ok(native()) }
    }

    /// Renders the template `name` against `data`: through the host when
    /// the user overrides it, or when the template or data leave what
    /// [`template::render`] handles; otherwise in the plugin, which gives
    /// the same bytes without a host call or serializing `data`.
    pub fn render_value(
        &self,
        host: &dyn Host,
        name: &str,
        template: &str,
        data: &serde_json::Value,
    ) -> Result<String, String> {
        if !self.contains(name)
            && let Some(text) = template::render(template, data)
        {
            return Ok(text);
        }
        host.render(name, template, &data.to_string())
    }
}

/// Drops `value`, except in wasm, where the host throws the instance's
/// memory away after the call: there the drop glue (walking every node of a
/// JSON tree to free it) is skipped. For the big values a call builds.
pub fn discard<T>(value: T) {
    if cfg!(target_arch = "wasm32") {
        std::mem::forget(value);
    } else {
        drop(value);
    }
}

/// A plugin that renders artifacts from a validated deployment.
pub trait Generator {
    /// Names the plugin.
    fn info() -> PluginInfo;
    /// Checks the input; an empty list means `generate` can run.
    fn validate(_input_json: &str) -> Vec<Diagnostic> {
        Vec::new()
    }
    /// Renders the artifacts. Must be deterministic.
    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>>;
}

/// A plugin that plans caching for a deployment and decides per key.
pub trait CacheStrategy {
    /// Names the plugin.
    fn info() -> PluginInfo;
    /// Checks the input; an empty list means `plan` can run.
    fn validate(_input_json: &str) -> Vec<Diagnostic> {
        Vec::new()
    }
    /// Returns the strategy's plan.
    fn plan(input_json: &str, host: &dyn Host) -> Result<Plan, Vec<Diagnostic>>;
    /// Decides for one key; pure.
    fn decide(key: &str, tenant: Option<&str>, base_ttl_ms: u64, seed: u64) -> Decision;
}

/// Parses the input document, turning a parse error into a diagnostic coded
/// `<plugin>.bad-input`.
pub fn parse_input<T: serde::de::DeserializeOwned>(plugin: &str, input_json: &str) -> Result<T, Vec<Diagnostic>> {
    serde_json::from_str(input_json).map_err(|e| {
        vec![
            Diagnostic::error(
                format!("{plugin}.bad-input"),
                "",
                format!("the input document does not fit this plugin: {e}"),
            )
            .with_hint("run `redplate validate` on the template first"),
        ]
    })
}

/// Installs the bump allocator (`BumpAllocator`, see `src/bump.rs`) as the plugin's global allocator (wasm32
/// only; native builds and tests keep the system allocator).
#[macro_export]
macro_rules! bump_allocator {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static REDPLATE_BUMP_ALLOCATOR: $crate::BumpAllocator = $crate::BumpAllocator::new();
    };
}

/// Binds a [`Generator`] to the `generator` world's exports. Needs the SDK's
/// `generator` feature; expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_generator {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct RedplateGeneratorExports;
            impl $crate::wasm::generator::exports::redplate::plugin::generator_api::Guest for RedplateGeneratorExports {
                fn info() -> $crate::wasm::generator::redplate::plugin::types::PluginInfo {
                    $crate::wasm::gen_adapter::info::<$plugin>()
                }
                fn validate(input: ::std::string::String) -> ::std::vec::Vec<$crate::wasm::generator::redplate::plugin::types::Diagnostic> {
                    $crate::wasm::gen_adapter::validate::<$plugin>(&input)
                }
                fn generate(input: ::std::string::String) -> $crate::wasm::gen_adapter::GenerateResult {
                    $crate::wasm::gen_adapter::generate::<$plugin>(&input)
                }
            }
            $crate::wasm::generator::export_generator_world!(RedplateGeneratorExports with_types_in $crate::wasm::generator);
        };
    };
}

/// Binds a [`CacheStrategy`] to the `cache-strategy` world's exports. Needs
/// the SDK's `cache-strategy` feature; expands to nothing outside wasm32.
#[macro_export]
macro_rules! export_cache_strategy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::cache_strategy::exports::redplate::plugin::cache_strategy_api as api;
            struct RedplateStrategyExports;
            impl api::Guest for RedplateStrategyExports {
                fn info() -> $crate::wasm::cache_strategy::redplate::plugin::types::PluginInfo {
                    $crate::wasm::strategy_adapter::info::<$plugin>()
                }
                fn validate(input: ::std::string::String) -> ::std::vec::Vec<$crate::wasm::cache_strategy::redplate::plugin::types::Diagnostic> {
                    $crate::wasm::strategy_adapter::validate::<$plugin>(&input)
                }
                fn plan(input: ::std::string::String) -> ::std::result::Result<api::CachePlan, ::std::vec::Vec<$crate::wasm::cache_strategy::redplate::plugin::types::Diagnostic>> {
                    $crate::wasm::strategy_adapter::plan::<$plugin>(&input)
                }
                fn decide(key: ::std::string::String, tenant: ::std::option::Option<::std::string::String>, base_ttl_ms: u64, seed: u64) -> api::Decision {
                    $crate::wasm::strategy_adapter::decide::<$plugin>(&key, tenant.as_deref(), base_ttl_ms, seed)
                }
            }
            $crate::wasm::cache_strategy::export_cache_strategy_world!(RedplateStrategyExports with_types_in $crate::wasm::cache_strategy);
        };
    };
}
