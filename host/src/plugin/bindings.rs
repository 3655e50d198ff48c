//! `bindgen!` output for both worlds, and the host side of the `host`
//! interface. The cache-strategy world reuses the generator world's `types`
//! and `host` bindings so there is one implementation of each.

use super::sandbox::State;
use redplate_config::Severity;

pub(super) mod generator {
    wasmtime::component::bindgen!({ world: "generator", path: "../wit" });
}

pub(super) mod strategy {
    wasmtime::component::bindgen!({
        world: "cache-strategy",
        path: "../wit",
        with: {
            "redplate:plugin/types": super::generator::redplate::plugin::types,
            "redplate:plugin/host": super::generator::redplate::plugin::host,
        },
    });
}

pub(super) use generator::redplate::plugin::types as wit;

impl wit::Host for State {}

impl generator::redplate::plugin::host::Host for State {
    fn log(&mut self, level: wit::Severity, message: String) {
        self.push_log(severity(level), message);
    }

    fn render(&mut self, name: String, template: String, data_json: String) -> Result<String, String> {
        State::render(self, &name, &template, &data_json)
    }
}

pub(super) fn severity(s: wit::Severity) -> Severity {
    match s {
        wit::Severity::Error => Severity::Error,
        wit::Severity::Warning => Severity::Warning,
        wit::Severity::Info => Severity::Info,
    }
}

/// A plugin's diagnostic, tagged with the plugin's name.
pub(super) fn diagnostic(plugin: &str, d: wit::Diagnostic) -> redplate_config::Diagnostic {
    let mut out = redplate_config::Diagnostic::new(severity(d.severity), d.code, d.path, d.message);
    out.hint = d.hint;
    out.source = Some(plugin.to_owned());
    // Untrusted text: escaped and capped before anything shows or logs it.
    crate::text::clean_diagnostic(&mut out, false);
    out
}
