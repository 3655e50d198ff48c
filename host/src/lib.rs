//! redplate: render, validate, deploy and operate production Redis from one
//! typed template, through sandboxed WebAssembly plugins.
//!
//! Layers run one way: `cli` (clap structs) → `ops` (one function per
//! operation, taking resolved settings) → `plugin` (the wasm runtime, the
//! only module that names wasmtime), `artifact`, `templates`.

pub mod api;
pub mod artifact;
pub mod backend;
pub mod cli;
pub mod client;
pub mod exit;
pub mod gateway;
pub mod ops;
pub mod plugin;
pub mod registry;
pub mod secrets;
pub mod templates;
pub mod text;

pub use redplate_config as config;
