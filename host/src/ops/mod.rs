//! Operations: one function per thing redplate does, taking resolved
//! settings. The CLI and (later) the REST API are thin wrappers over these.

pub mod batch;
pub mod config;
pub mod connect;
pub mod deploy;
pub mod plugins;
pub mod render;
pub mod scale;
pub mod stored;
