//! What the local backend derives from a config before it starts anything:
//! what must change so the template runs on this machine (certificates,
//! settings its Redis build refuses), a free block of ports, and — from the
//! rendered tree — the node records (ports read back from the rendered
//! configs, which decide between the plain and the TLS port).

use super::apply::RENDERED;
use super::{files, process, tls};
use crate::artifact::ArtifactSet;
use crate::backend::{BackendError, Preparation, Progress};
use crate::registry::{NodeRecord, Record, TlsFiles};
use redplate_config::{Config, Role, Target, Topology};
use std::collections::BTreeMap;
use std::path::Path;

/// What must change in `config` to run on this machine: `activedefrag`
/// off when this `redis-server` cannot run it, and certificates from a
/// local CA (in `dir/tls`) when the template asks for TLS without files.
pub fn prepare(config: &Config, dir: &Path, progress: &dyn Progress) -> Result<Preparation, BackendError> {
    let mut prep = Preparation::default();
    if config.memory.active_defrag && !process::active_defrag_supported()? {
        prep.sets.push("memory.active_defrag=false".into());
        prep.adjustments.push(
            "`memory.active_defrag` off: this machine's redis-server is built without active defragmentation".into(),
        );
    }
    if needs_local_certs(config) {
        progress.step("making a local certificate authority");
        let t = tls::ensure(&dir.join("tls"))?;
        prep.adjustments.push(format!(
            "`security.tls` certificates made by a local CA in `{}` (local use only)",
            dir.join("tls").display()
        ));
        prep.sets.push("security.tls.cert_source=files".into());
        prep.sets.push(format!("security.tls.cert_file={}", t.cert_file.display()));
        prep.sets.push(format!("security.tls.key_file={}", t.key_file.display()));
        prep.sets.push(format!("security.tls.ca_file={}", t.ca_file.display()));
        prep.tls = Some(t);
    } else if config.security.tls.enabled {
        let t = &config.security.tls;
        prep.tls = Some(TlsFiles {
            cert_file: t.cert_file.clone().into(),
            key_file: t.key_file.clone().into(),
            ca_file: t.ca_file.clone().into(),
        });
    }
    Ok(prep)
}

/// The ports between two base ports tried: one block per node.
fn block(config: &Config) -> u16 {
    u16::try_from(10 * config_nodes(config)).unwrap_or(u16::MAX).max(10)
}

/// A base port whose ports are all free and none `reserved`, from the
/// template's base port, or past the block of a placement that failed.
pub fn place(config: &Config, reserved: &BTreeMap<u16, String>, failed: Option<&Record>) -> Result<u16, BackendError> {
    let block = block(config);
    let from = match failed {
        Some(r) => r.base_port.saturating_add(block),
        None => config.network.local_base_port,
    };
    process::free_base(from, block, reserved, |b| ports_for(config, b))
}

/// Writes the rendered tree into the state folder and its pristine copy
/// (which `apply` compares the next render with), adds redplate's admin
/// user where an ACL file is used, and fills in the record's nodes, users
/// and admin credentials.
pub fn install(record: &mut Record, artifacts: &ArtifactSet, topology: &Topology) -> Result<(), BackendError> {
    let dir = record.state_dir.clone();
    files::write_tree(artifacts, &dir)?;
    files::write_tree(artifacts, &dir.join(RENDERED))?;
    let admin = files::add_admin_user(&dir)?;
    record.nodes = node_records(topology, &dir)?;
    // Without an ACL file, the default user has a password only when the
    // configs set one (a password file is rendered for a template that
    // names a password with `auth_enabled` off, and the server refuses an
    // AUTH it does not expect).
    let requirepass = record.data_nodes().any(|n| files::conf_value(&dir.join(&n.conf), "requirepass").is_some());
    (record.admin_user, record.admin_password_file) = if admin {
        (Some(files::ADMIN_USER.to_owned()), Some(files::ADMIN_PASSWORD_FILE.to_owned()))
    } else if requirepass && dir.join("secrets/default.password").is_file() {
        (None, Some("secrets/default.password".to_owned()))
    } else {
        (None, None)
    };
    record.users = files::acl_users(&dir);
    Ok(())
}

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
    if c.tenancy.enabled && c.tenancy.gateway {
        ports.push(base.checked_add(crate::registry::GATEWAY_PORT_OFFSET)?);
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
pub(crate) fn conf_ports(path: &Path) -> Result<(Option<u16>, Option<u16>), BackendError> {
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
