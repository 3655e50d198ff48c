//! The redplate template model: typed config, presets, layering, host
//! validation rules and topology derivation. Knows nothing of wasm or of
//! running processes.
//!
//! # The API the CLI calls
//!
//! ```no_run
//! use redplate_config::{LoadRequest, Target, Topology, load, validate};
//! use redplate_config::model::Environment;
//!
//! // preset ← file ← --set, checked strictly (unknown keys, types, ranges).
//! let request = LoadRequest {
//!     path: Some("examples/sentinel-production.yaml".into()),
//!     preset: None, // `--preset`; overrides the file's `extends:`
//!     sets: vec!["memory.maxmemory_policy=allkeys-lru".into()],
//! };
//! let resolved = match load(&request) {
//!     Ok(r) => r,
//!     Err(e) => {
//!         for d in e.diagnostics() {
//!             eprintln!("{d}"); // error[template.unknown-key]: … --> file:line:col (`/pointer`)
//!         }
//!         std::process::exit(1);
//!     }
//! };
//! // Cross-field host rules, with locations from the source map.
//! let diagnostics = validate(&resolved);
//! let topology = Topology::derive(&resolved.config, Target::Kubernetes);
//! # let _ = (diagnostics, topology, Environment::Production);
//! ```
//!
//! - [`load`] / [`load_str`]: read, layer and type a template → [`Resolved`]
//!   (typed [`Config`], merged JSON `value`, [`SourceMap`]) or [`LoadError`]
//!   (`.diagnostics()` gives every problem, pointed).
//! - [`validate`]: host rules ([`RULES`]) → `Vec<Diagnostic>`;
//!   [`validate_config`] does the same without locations.
//! - [`schema()`]: the JSON Schema (also committed as
//!   `config/schema/redplate.schema.json` for editors); [`schema::options`]
//!   lists every leaf option with its description.
//! - [`presets::list`], [`presets::show`]: the embedded presets.
//! - [`adapt`]: re-base a template on another environment → diff lines,
//!   adapted YAML and its diagnostics.
//! - [`export`] / [`import`]: canonical JSON, `import(export(c)) == c`;
//!   [`import_file`] keeps the file's name and positions for [`validate`].
//! - [`Topology::derive`]: nodes, roles, shards, host names, ports, data dirs.

// A `Diagnostic` is the error of parsing by design (it carries the position
// and the hint); it is built only on the failure path, so its size does not
// matter for speed.
#![allow(clippy::result_large_err)]

pub mod convert;
pub mod diagnostic;
#[doc(hidden)]
pub mod fuzzing;
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

pub use convert::{Adaptation, adapt, export, import, import_file};
pub use diagnostic::{Diagnostic, Location, Severity};
pub use load::{LoadError, LoadRequest, Resolved, load, load_str};
pub use model::Config;
pub use rules::{RULES, validate, validate_config};
pub use schema::schema;
pub use source::{Format, SourceMap};
pub use topology::{Role, Target, Topology};
