//! Operations: one function per thing redplate does, taking resolved
//! settings. The CLI and (later) the REST API are thin wrappers over these.

pub mod analyze;
pub mod apply;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod config;
pub mod confirm;
pub mod connect;
pub mod deploy;
pub mod exec;
pub mod exposition;
pub mod flush;
pub mod health;
pub mod lifecycle;
pub mod metrics;
pub mod optimize;
pub mod plugins;
pub mod probe;
pub mod render;
pub mod scale;
pub mod shards;
pub mod stats;
pub mod stored;
pub mod tenant;
pub mod tokens;
pub mod usage;
pub mod vertical;
pub mod warm;
