//! Operations: one function per thing redplate does, taking resolved
//! settings. The CLI and (later) the REST API are thin wrappers over these.

pub mod apply;
pub mod audit;
pub mod batch;
pub mod config;
pub mod confirm;
pub mod connect;
pub mod deploy;
pub mod exec;
pub mod flush;
pub mod lifecycle;
pub mod plugins;
pub mod render;
pub mod scale;
pub mod stored;
