//! The parts of the input document (wit/INPUT.md) the backup scripts need,
//! each with the config model's default.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct Input {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub config: Config,
    pub topology: Topology,
    #[serde(default)]
    pub secrets: Secrets,
    /// Templates the user overrides: those go through the host's `render`.
    #[serde(default)]
    pub template_overrides: redplate_plugin_sdk::TemplateOverrides,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub deployment: Deployment,
    pub persistence: Persistence,
    pub security: Security,
    pub backup: Backup,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Deployment {
    pub name: String,
    pub redis_version: String,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment { name: "redis".into(), redis_version: "7.4".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Persistence {
    pub mode: String,
    pub rdb_filename: String,
    pub aof_dirname: String,
    pub data_dir: String,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            mode: "none".into(),
            rdb_filename: "dump.rdb".into(),
            aof_dirname: "appendonlydir".into(),
            data_dir: "/data".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Security {
    pub auth_enabled: bool,
    pub users: Vec<User>,
    pub tls: Tls,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct User {
    pub name: String,
    pub role: String,
    pub enabled: bool,
}

impl Default for User {
    fn default() -> Self {
        User { name: String::new(), role: "app".into(), enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
    pub client_auth: String,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: false,
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            client_auth: "none".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Backup {
    pub enabled: bool,
    pub retention_count: u32,
    pub retention_age: Value,
    pub compression: String,
    pub compression_level: u8,
    pub encryption: Encryption,
    pub destination: Value,
    pub from_replica: bool,
    pub verify: bool,
    pub timeout: Value,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            enabled: false,
            retention_count: 7,
            retention_age: Value::from("0s"),
            compression: "zstd".into(),
            compression_level: 3,
            encryption: Encryption::default(),
            destination: serde_json::json!({ "directory": "./backups" }),
            from_replica: true,
            verify: true,
            timeout: Value::from("1h"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Encryption {
    pub enabled: bool,
    pub key: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Topology {
    #[serde(default)]
    pub mode: String,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub role: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub ports: Ports,
    #[serde(default)]
    pub data_dir: String,
    #[serde(default)]
    pub shard: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub client: Option<u16>,
    pub tls: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Secrets {
    pub users: BTreeMap<String, Value>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
}
