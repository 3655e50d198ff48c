//! What the local backend derives from a config before it starts anything:
//! the ports a base port would use (for the free-port search), whether it
//! must make certificates, and the node records (ports read back from the
//! rendered configs, which decide between the plain and the TLS port).

use super::files;
use crate::backend::BackendError;
use crate::registry::NodeRecord;
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
        let (plain, tls) = conf_ports(&dir.join(&conf))?;
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

/// The record of replica `ordinal` of deployment `name` with `shards`
/// masters, from its rendered config under `dir` (what a scale adds: the
/// topology's ordinals are stable, see [`Topology::shard_of`]).
pub fn replica_record(name: &str, shards: u16, ordinal: u16, dir: &Path) -> Result<NodeRecord, BackendError> {
    let node = Topology::data_node_name(name, ordinal);
    let conf = format!("redis/{node}/redis.conf");
    let path = dir.join(&conf);
    let (plain, tls) = conf_ports(&path)?;
    let bus = files::conf_value(&path, "cluster-port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
    let Some(port) = plain.or(tls) else {
        return Err(BackendError::Io {
            action: "read a client port from",
            path,
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        });
    };
    Ok(NodeRecord {
        name: node,
        role: Role::Replica,
        port,
        tls: plain.is_none(),
        ports: [plain, tls, bus].into_iter().flatten().collect(),
        conf,
        pid: None,
        replica_of: Some(Topology::data_node_name(name, Topology::shard_of(shards, ordinal))),
    })
}

/// The plain and TLS ports a rendered config opens (`port 0` is none).
fn conf_ports(path: &Path) -> Result<(Option<u16>, Option<u16>), BackendError> {
    if !path.is_file() {
        return Err(BackendError::Io {
            action: "find the rendered config",
            path: path.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let port = |key| files::conf_value(path, key).and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0);
    Ok((port("port"), port("tls-port")))
}

/// How many processes the config asks for.
pub fn config_nodes(c: &Config) -> usize {
    Topology::derive(c, Target::Local).nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_record_comes_from_its_rendered_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let conf = tmp.path().join("redis/shop-7/redis.conf");
        std::fs::create_dir_all(conf.parent().expect("parent")).expect("mkdir");
        std::fs::write(&conf, "port 0\ntls-port 7071\ncluster-enabled yes\ncluster-port 17071\n").expect("write");
        let r = replica_record("shop", 3, 7, tmp.path()).expect("record");
        assert_eq!((r.name.as_str(), r.role, r.port, r.tls), ("shop-7", Role::Replica, 7071, true));
        assert_eq!(r.ports, [7071, 17071]);
        assert_eq!(r.replica_of.as_deref(), Some("shop-1"), "replica 7 of 3 shards serves shard 1");
        assert_eq!(r.conf, "redis/shop-7/redis.conf");
        assert!(replica_record("shop", 3, 8, tmp.path()).is_err(), "no rendered config, no node");
    }
}
