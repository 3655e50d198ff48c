//! The parts of the input document (wit/INPUT.md) this plugin reads. Every
//! field has the config model's default, so a partial document still works
//! and unknown fields are ignored.

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
    pub resources: Resources,
    pub persistence: Persistence,
    pub security: Security,
    pub monitoring: Monitoring,
    pub kubernetes: Kubernetes,
    pub compose: Compose,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Deployment {
    pub name: String,
    pub redis_version: String,
    pub image: String,
    pub image_tag: String,
    /// `sha256:…` of the image `image:tag` names; empty pins by tag only.
    pub image_digest: String,
    pub labels: BTreeMap<String, String>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            name: "redis".into(),
            redis_version: "7.4".into(),
            image: "redis".into(),
            image_tag: String::new(),
            image_digest: String::new(),
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: Value,
    pub cpu_millis: u32,
    pub sentinel_memory: Value,
    pub exporter_memory: Value,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Persistence {
    pub data_dir: String,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence { data_dir: "/data".into() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Security {
    pub auth_enabled: bool,
    pub system_users: bool,
    pub users: Vec<User>,
    pub tls: Tls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
    pub sentinel: bool,
    pub client_auth: String,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: false,
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            sentinel: true,
            client_auth: "none".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Monitoring {
    pub exporter: bool,
    pub exporter_port: u16,
    pub exporter_image: String,
    /// `sha256:…` of `exporter_image`; empty pins by tag only.
    pub exporter_image_digest: String,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            exporter: false,
            exporter_port: 9121,
            exporter_image: "oliver006/redis_exporter:v1.67.0".into(),
            exporter_image_digest: String::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Kubernetes {
    pub security_context: SecurityContext,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct SecurityContext {
    pub read_only_root_filesystem: bool,
    pub drop_all_capabilities: bool,
    pub allow_privilege_escalation: bool,
}

impl Default for SecurityContext {
    fn default() -> Self {
        SecurityContext {
            read_only_root_filesystem: true,
            drop_all_capabilities: true,
            allow_privilege_escalation: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Compose {
    pub project_name: String,
    pub image_registry: String,
    pub named_volumes: bool,
    pub bind_dir: String,
    pub extra_volumes: Vec<String>,
    pub publish_ports: bool,
    pub publish_address: String,
    pub restart: String,
    pub network: String,
}

impl Default for Compose {
    fn default() -> Self {
        Compose {
            project_name: String::new(),
            image_registry: String::new(),
            named_volumes: true,
            bind_dir: "./data".into(),
            extra_volumes: Vec::new(),
            publish_ports: true,
            publish_address: "127.0.0.1".into(),
            restart: "unless-stopped".into(),
            network: String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Topology {
    #[serde(default)]
    pub mode: String,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub ordinal: u16,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub ports: Ports,
    #[serde(default)]
    pub data_dir: String,
    #[serde(default)]
    pub replica_of: Option<String>,
}

impl Node {
    pub fn is_data(&self) -> bool {
        matches!(self.role.as_str(), "master" | "replica")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub client: Option<u16>,
    pub tls: Option<u16>,
    pub cluster_bus: Option<u16>,
    pub sentinel: Option<u16>,
    pub metrics: Option<u16>,
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
