//! The wasm side of the SDK: wit-bindgen bindings for each world and the
//! conversions between them and the plain types in [`crate::types`]. Used
//! only through the export macros.

#[cfg(feature = "generator")]
pub mod generator {
    wit_bindgen::generate!({
        world: "generator",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_generator_world",
        runtime_path: "::redplate_plugin_sdk::wasm::rt",
    });
}

#[cfg(feature = "cache-strategy")]
pub mod cache_strategy {
    wit_bindgen::generate!({
        world: "cache-strategy",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_cache_strategy_world",
        runtime_path: "::redplate_plugin_sdk::wasm::rt",
    });
}

pub use wit_bindgen::rt;

/// Conversions shared by both worlds: each world generates its own copy of
/// the `types` interface, so the conversions are written once as a macro.
macro_rules! conversions {
    ($($w:ident)::+) => {
        use crate::types as sdk;
        use $($w)::+::redplate::plugin::host as wit_host;
        use $($w)::+::redplate::plugin::types as wit;

        pub(crate) fn severity_to_wit(s: sdk::Severity) -> wit::Severity {
            match s {
                sdk::Severity::Error => wit::Severity::Error,
                sdk::Severity::Warning => wit::Severity::Warning,
                sdk::Severity::Info => wit::Severity::Info,
            }
        }

        pub fn diagnostics(ds: Vec<sdk::Diagnostic>) -> Vec<wit::Diagnostic> {
            ds.into_iter()
                .map(|d| wit::Diagnostic {
                    severity: severity_to_wit(d.severity),
                    code: d.code,
                    path: d.path,
                    message: d.message,
                    hint: d.hint,
                })
                .collect()
        }

        pub fn artifacts(a: Vec<sdk::Artifact>) -> Vec<wit::Artifact> {
            a.into_iter()
                .map(|a| wit::Artifact { path: a.path, content: a.content, media_type: a.media_type, executable: a.executable })
                .collect()
        }

        pub fn plugin_info(i: sdk::PluginInfo) -> wit::PluginInfo {
            wit::PluginInfo {
                name: i.name,
                version: i.version,
                kind: match i.kind {
                    sdk::PluginKind::Generator => wit::PluginKind::Generator,
                    sdk::PluginKind::CacheStrategy => wit::PluginKind::CacheStrategy,
                },
                description: i.description,
                outputs: i.outputs,
                contract_version: i.contract_version,
            }
        }

        /// The host's imports, behind the SDK's [`crate::Host`] trait.
        pub struct WasmHost;
        impl crate::Host for WasmHost {
            fn log(&self, level: sdk::Severity, message: &str) {
                wit_host::log(severity_to_wit(level), message);
            }
            fn render(&self, name: &str, template: &str, data_json: &str) -> Result<String, String> {
                wit_host::render(name, template, data_json)
            }
        }
    };
}

#[cfg(feature = "generator")]
pub mod gen_adapter {
    conversions!(super::generator);

    /// What the `generate` export returns.
    pub type GenerateResult = Result<wit::Output, Vec<wit::Diagnostic>>;

    pub fn info<G: crate::Generator>() -> wit::PluginInfo {
        plugin_info(G::info())
    }
    pub fn validate<G: crate::Generator>(input: &str) -> Vec<wit::Diagnostic> {
        diagnostics(G::validate(input))
    }
    pub fn generate<G: crate::Generator>(input: &str) -> GenerateResult {
        match G::generate(input, &WasmHost) {
            Ok(out) => {
                Ok(wit::Output { artifacts: artifacts(out.artifacts), diagnostics: diagnostics(out.diagnostics) })
            }
            Err(ds) => Err(diagnostics(ds)),
        }
    }
}

#[cfg(feature = "cache-strategy")]
pub mod strategy_adapter {
    conversions!(super::cache_strategy);
    use super::cache_strategy::exports::redplate::plugin::cache_strategy_api as api;

    fn write_mode(m: sdk::WriteMode) -> api::WriteMode {
        match m {
            sdk::WriteMode::Invalidate => api::WriteMode::Invalidate,
            sdk::WriteMode::WriteThrough => api::WriteMode::WriteThrough,
            sdk::WriteMode::WriteBehind => api::WriteMode::WriteBehind,
        }
    }

    pub fn info<S: crate::CacheStrategy>() -> wit::PluginInfo {
        plugin_info(S::info())
    }
    pub fn validate<S: crate::CacheStrategy>(input: &str) -> Vec<wit::Diagnostic> {
        diagnostics(S::validate(input))
    }
    pub fn plan<S: crate::CacheStrategy>(input: &str) -> Result<api::CachePlan, Vec<wit::Diagnostic>> {
        let plan = S::plan(input, &WasmHost).map_err(diagnostics)?;
        Ok(api::CachePlan {
            directives: plan
                .directives
                .into_iter()
                .map(|d| api::Directive { name: d.name, value: d.value, reason: d.reason })
                .collect(),
            key_rules: plan
                .key_rules
                .into_iter()
                .map(|r| api::KeyRule {
                    pattern: r.pattern,
                    ttl_ms: r.ttl_ms,
                    jitter_percent: r.jitter_percent,
                    sliding: r.sliding,
                    refresh_ahead_percent: r.refresh_ahead_percent,
                    write_mode: write_mode(r.write_mode),
                })
                .collect(),
            artifacts: artifacts(plan.artifacts),
            diagnostics: diagnostics(plan.diagnostics),
        })
    }
    pub fn decide<S: crate::CacheStrategy>(
        key: &str,
        tenant: Option<&str>,
        base_ttl_ms: u64,
        seed: u64,
    ) -> api::Decision {
        let d = S::decide(key, tenant, base_ttl_ms, seed);
        api::Decision {
            ttl_ms: d.ttl_ms,
            sliding: d.sliding,
            refresh_below_ms: d.refresh_below_ms,
            write_mode: write_mode(d.write_mode),
        }
    }
}
