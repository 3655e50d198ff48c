//! The parts of the input document (wit/INPUT.md) this generator reads:
//! `target`, `topology`, `strategy` and `secrets` typed; `config` kept as JSON
//! and read through [`crate::cfg::Cfg`]. Unknown fields are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct Input {
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub config: Value,
    pub topology: Topology,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub secrets: Secrets,
    /// Templates the user overrides: those go through the host's `render`.
    #[serde(default)]
    pub template_overrides: redplate_plugin_sdk::TemplateOverrides,
}

impl Input {
    /// Kubernetes manifests never carry clear-text passwords or hashes.
    pub fn clear_secrets(&self) -> bool {
        self.target != "kubernetes"
    }
}

#[derive(Debug, Deserialize)]
pub struct Topology {
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub master_name: Option<String>,
    pub nodes: Vec<Node>,
}

impl Topology {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn is_cluster(&self) -> bool {
        self.mode == "cluster"
    }
    pub fn data_nodes(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.is_data())
    }
    pub fn sentinels(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.role == "sentinel")
    }
    /// Replicas of the master named `master`.
    pub fn replicas_of(&self, master: &str) -> usize {
        self.nodes.iter().filter(|n| n.replica_of.as_deref() == Some(master)).count()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Node {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub shard: Option<u16>,
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

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
pub struct Ports {
    #[serde(default)]
    pub client: Option<u16>,
    #[serde(default)]
    pub tls: Option<u16>,
    #[serde(default)]
    pub cluster_bus: Option<u16>,
    #[serde(default)]
    pub sentinel: Option<u16>,
}

#[derive(Debug, Deserialize)]
pub struct Strategy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub directives: Vec<StrategyDirective>,
}

#[derive(Debug, Deserialize)]
pub struct StrategyDirective {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Secrets {
    #[serde(default)]
    pub users: BTreeMap<String, UserSecret>,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserSecret {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TlsFiles {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
    #[serde(default)]
    pub ca_file: String,
}

impl TlsFiles {
    pub fn complete(&self) -> bool {
        [&self.cert_file, &self.key_file, &self.ca_file].iter().all(|f| !f.trim().is_empty())
    }
}
