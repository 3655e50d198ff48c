//! What the local backend derives from a config before it starts anything:
//! the ports a base port would use (for the free-port search), whether it
//! must make certificates, and the node records (ports read back from the
//! rendered configs, which decide between the plain and the TLS port).

use super::files;
use crate::backend::BackendError;
use crate::backend::registry::NodeRecord;
use redplate_config::{Config, Role, Target, Topology};
use std::path::Path;

/// The rendered config file of a node, relative to the state folder.
pub fn conf_path(node: &redplate_config::topology::Node) -> String {
    match node.role {
        Role::Sentinel => format!("sentinel/{}/sentinel.conf", node.name),
        _ => format!("redis/{}/redis.conf", node.name),
    }
}

/// Every port the nodes of `config` would use with `base` as the local base port.
pub fn ports_for(config: &Config, base: u16) -> Option<Vec<u16>> {
    let mut c = config.clone();
    c.network.local_base_port = base;
    if Topology::last_local_port(&c) > 65535 {
        return None;
    }
    let topology = Topology::derive(&c, Target::Local);
    let mut ports = Vec::new();
    for n in &topology.nodes {
        let p = n.ports;
        ports.extend([p.client, p.tls, p.cluster_bus, p.sentinel].into_iter().flatten());
    }
    Some(ports)
}

/// Whether the template asks for TLS without certificate files that exist here.
pub fn needs_local_certs(config: &Config) -> bool {
    let t = &config.security.tls;
    t.enabled
        && ![&t.cert_file, &t.key_file, &t.ca_file]
            .iter()
            .all(|f| !f.trim().is_empty() && Path::new(f.as_str()).is_file())
}

/// The nodes of the record, from the topology and the rendered configs.
pub fn node_records(topology: &Topology, dir: &Path) -> Result<Vec<NodeRecord>, BackendError> {
    let mut out = Vec::new();
    for n in &topology.nodes {
        let conf = conf_path(n);
        let path = dir.join(&conf);
        if !path.is_file() {
            return Err(BackendError::Io {
                action: "find the rendered config",
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let plain = files::conf_value(&path, "port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
        let tls = files::conf_value(&path, "tls-port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
        let (port, is_tls) = match (plain, tls) {
            (Some(p), _) => (p, false),
            (None, Some(t)) => (t, true),
            (None, None) => (n.ports.client.or(n.ports.sentinel).unwrap_or(0), false),
        };
        let p = n.ports;
        out.push(NodeRecord {
            name: n.name.clone(),
            role: n.role,
            port,
            tls: is_tls,
            ports: [p.client, p.tls, p.cluster_bus, p.sentinel].into_iter().flatten().collect(),
            conf,
            pid: None,
            replica_of: n.replica_of.clone(),
        });
    }
    Ok(out)
}

/// How many processes the config asks for.
pub fn config_nodes(c: &Config) -> usize {
    Topology::derive(c, Target::Local).nodes.len()
}
