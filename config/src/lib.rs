//! The redplate template model: typed config, presets, layering, host
//! validation rules and topology derivation. Knows nothing of wasm or of
//! running processes.

pub mod diagnostic;
pub mod model;
pub mod units;

pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::Config;
