//! The redplate template model: typed config, presets, layering, host
//! validation rules and topology derivation. Knows nothing of wasm or of
//! running processes.

pub mod diagnostic;
pub mod layer;
pub mod load;
pub mod model;
pub mod presets;
pub mod schema;
pub mod source;
pub mod strict;
pub mod units;

pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::Config;
pub use load::{LoadError, LoadRequest, Resolved, load, load_str};
pub use schema::schema;
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
