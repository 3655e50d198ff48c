//! The redplate template model: typed config, presets, layering, host
//! validation rules and topology derivation. Knows nothing of wasm or of
//! running processes.

// A `Diagnostic` is the error of parsing by design (it carries the position
// and the hint); it is built only on the failure path, so its size does not
// matter for speed.
#![allow(clippy::result_large_err)]

pub mod convert;
pub mod diagnostic;
pub mod layer;
pub mod load;
pub mod model;
pub mod presets;
pub mod rules;
pub mod schema;
pub mod source;
pub mod strict;
pub mod topology;
pub mod units;

pub use convert::{Adaptation, adapt, export, import};
pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::Config;
pub use load::{LoadError, LoadRequest, Resolved, load, load_str};
pub use rules::{RULES, validate, validate_config};
pub use schema::schema;
pub use topology::{Role, Target, Topology};
pub use source::{Format, SourceMap};

#[cfg(test)]
mod dump {
    #[test]
    fn dump_schema() {
        let s = serde_json::to_string_pretty(&crate::schema()).unwrap_or_default();
        std::fs::write("/tmp/schema.json", s).ok();
        println!("options: {}", crate::schema::options().len());
    }
}

#[cfg(test)]
mod preset_check {
    #[test]
    fn show_preset_diagnostics() {
        for env in crate::model::Environment::ALL {
            match crate::load_str("", crate::Format::Yaml, "t", Some(env), &[]) {
                Ok(r) => {
                    for d in crate::validate(&r) {
                        println!("{env}: {d}");
                    }
                }
                Err(e) => println!("{env}: LOAD {e}"),
            }
        }
    }
}
