//! What the Compose backend decides before it starts anything: what must
//! change in a template so redplate can reach and follow its containers
//! (published ports, host names announced), a free block of host ports,
//! and — from the rendered tree — the node records, the override file the
//! engine needs on this machine (ulimits) and files the containers' user can
//! read.
//!
//! Secrets: the rendered files holding passwords (configs, `users.acl`,
//! `secrets/<user>.password`) are mode 0600, and the rendered services run as
//! uid 999 (the `redis` image's user). Bind-mounted files keep their host
//! owner, and Compose file secrets are bind mounts too, so the backend hands
//! those files to uid 999 in the state folder, still 0600 (as root: `chown`;
//! rootless podman: `podman unshare chown`, the container's uid 999 seen from
//! the host). redplate's own admin password stays the caller's.

use super::engine::Engine;
use crate::artifact::ArtifactSet;
use crate::backend::local::{plan as local_plan, process};
use crate::backend::{BackendError, Preparation};
use crate::registry::{NodeRecord, Record};
use redplate_config::model::Mode;
use redplate_config::{Config, Role, Target, Topology};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The rendered Compose file, relative to the state folder.
pub const COMPOSE_FILE: &str = "compose/compose.yaml";
/// The backend's override file (JSON, which Compose reads as YAML).
pub const OVERRIDE_FILE: &str = "compose/redplate.override.yaml";
/// The user the rendered services run as (`services.rs`'s `REDIS_USER`).
pub const CONTAINER_UID: u32 = 999;
/// Ports between two placements tried: data nodes from the base port,
/// sentinels from base + [`SENTINEL_OFFSET`], TLS container ports from base + 90.
const BLOCK: u16 = 100;
const SENTINEL_OFFSET: u16 = 70;

/// What must change in `config` to run as a Compose project redplate
/// manages: ports published (redplate talks to the containers through
/// them), and the nodes announcing their service names, so a sentinel names
/// a master the way redplate finds it (every container listens on the same
/// port). TLS is refused: the local CA's certificates do not name the
/// containers yet.
pub fn prepare(config: &Config) -> Result<Preparation, BackendError> {
    if config.security.tls.enabled {
        return Err(BackendError::Refused {
            backend: "compose".into(),
            operation: "run a template with `security.tls.enabled`",
            reason: "no certificates are made for containers yet; deploy it with `--backend local`, or set \
                     `security.tls.enabled=false`",
        });
    }
    let mut prep = Preparation::default();
    let c = &config.compose;
    if !c.publish_ports {
        prep.sets.push("compose.publish_ports=true".into());
        prep.adjustments.push("`compose.publish_ports` on: redplate reaches the containers through them".into());
    }
    if !matches!(c.publish_address.as_str(), "127.0.0.1" | "" | "0.0.0.0") {
        prep.sets.push("compose.publish_address=127.0.0.1".into());
        prep.adjustments.push("`compose.publish_address` 127.0.0.1: redplate connects there".into());
    }
    if config.deployment.mode != Mode::Cluster && !config.network.announce_hostname {
        prep.sets.push("network.announce_hostname=true".into());
        prep.adjustments.push(
            "`network.announce_hostname` on: replicas are known by their service names, not container IPs".into(),
        );
    }
    if config.deployment.mode == Mode::Cluster && !config.cluster.announce_hostnames {
        prep.sets.push("cluster.announce_hostnames=true".into());
        prep.adjustments.push("`cluster.announce_hostnames` on: `CLUSTER NODES` names each node's service".into());
    }
    if config.deployment.mode == Mode::Sentinel && !config.sentinel.announce_hostnames {
        prep.sets.push("sentinel.announce_hostnames=true".into());
        prep.adjustments.push("`sentinel.announce_hostnames` on: sentinels name the master by its service name".into());
    }
    Ok(prep)
}

/// The host ports the nodes of `config` publish with `base` as the client port.
fn host_ports(config: &Config, base: u16) -> Option<Vec<u16>> {
    let mut c = config.clone();
    set_base(&mut c, base)?;
    let topology = Topology::derive(&c, Target::Compose);
    topology.nodes.iter().map(host_port).collect()
}

fn set_base(c: &mut Config, base: u16) -> Option<()> {
    c.network.port = base;
    c.network.sentinel_port = base.checked_add(SENTINEL_OFFSET)?;
    c.network.tls_port = base.checked_add(90)?;
    // The cluster bus stays inside the project's network, but must be a port.
    base.checked_add(c.network.cluster_bus_port_offset)?;
    Some(())
}

/// The port a node publishes on the host: its container port plus its
/// ordinal, as the compose plugin renders `ports:`.
pub fn host_port(n: &redplate_config::topology::Node) -> Option<u16> {
    let p = n.ports;
    let container = match n.role {
        Role::Sentinel => p.sentinel?,
        _ => p.client.or(p.tls)?,
    };
    container.checked_add(n.ordinal)
}

/// `--set`s placing the deployment on a block of free host ports, from the
/// template's `network.local_base_port` (or past a placement that failed).
pub fn place(
    config: &Config,
    reserved: &BTreeMap<u16, String>,
    failed: Option<&Record>,
) -> Result<Vec<String>, BackendError> {
    let from = match failed.and_then(|r| r.data_nodes().map(|n| n.port).min()) {
        Some(p) => p.saturating_add(BLOCK),
        None => config.network.local_base_port,
    };
    let base = process::free_base(from, BLOCK, reserved, |b| host_ports(config, b))?;
    let mut c = config.clone();
    set_base(&mut c, base).ok_or(BackendError::NoFreePorts { from, count: 0 })?;
    Ok(vec![
        format!("network.port={}", c.network.port),
        format!("network.sentinel_port={}", c.network.sentinel_port),
        format!("network.tls_port={}", c.network.tls_port),
    ])
}

/// Writes the rendered tree into the state folder (as the local backend
/// does: redplate's admin user added to `users.acl`, the record's users and
/// admin credentials), then the node records with their host ports, the
/// override file, and the containers' files handed to their user.
pub fn install(
    engine: &Engine,
    record: &mut Record,
    artifacts: &ArtifactSet,
    topology: &Topology,
) -> Result<(), BackendError> {
    local_plan::install(record, artifacts, topology)?;
    record.nodes = node_records(topology)?;
    write_override(record)?;
    hand_to_containers(engine, record)
}

/// One record per topology node: its host port (what redplate connects to).
fn node_records(topology: &Topology) -> Result<Vec<NodeRecord>, BackendError> {
    topology
        .nodes
        .iter()
        .map(|n| {
            let port = host_port(n).ok_or(BackendError::NoFreePorts { from: 0, count: topology.nodes.len() })?;
            let p = n.ports;
            Ok(NodeRecord {
                name: n.name.clone(),
                role: n.role,
                port,
                tls: false,
                // The ports it listens on in its container (what `scale`
                // compares with a new render); `port` is the published one.
                ports: [p.client, p.tls, p.cluster_bus, p.sentinel].into_iter().flatten().collect(),
                conf: local_plan::conf_path(n),
                pid: None,
                replica_of: n.replica_of.clone(),
            })
        })
        .collect()
}

/// The services of the rendered file: the nodes, and the one-shot and
/// exporter services the compose plugin adds when it renders them.
pub fn services(record: &Record) -> Vec<String> {
    let text = std::fs::read_to_string(record.path(COMPOSE_FILE)).unwrap_or_default();
    let declared = |s: &str| text.lines().any(|l| l == format!("  \"{s}\":") || l == format!("  {s}:"));
    let mut out: Vec<String> = record.nodes.iter().map(|n| n.name.clone()).collect();
    out.push(init_service(record));
    out.push(format!("{}-exporter-auth", record.name));
    out.extend(record.data_nodes().map(|n| format!("{}-exporter", n.name)));
    out.retain(|s| declared(s));
    out
}

/// After the node list changed (a scale): the override file for the
/// services rendered now, and their files handed to the containers' user.
pub fn refresh(engine: &Engine, record: &Record) -> Result<(), BackendError> {
    write_override(record)?;
    hand_to_containers(engine, record)
}

/// The one-shot service that forms a cluster.
pub fn init_service(record: &Record) -> String {
    format!("{}-cluster-init", record.name)
}

/// Limits every container gets: the engine's defaults (podman's: 1048576
/// open files) may exceed what this machine allows, and the container then
/// fails with `setrlimit … Operation not permitted`. Redis needs
/// `maxclients` + 32 open files; capped by this process's own hard limits.
fn ulimits() -> Value {
    use rustix::process::{Resource, getrlimit};
    let hard = |r: Resource, want: u64| getrlimit(r).maximum.map_or(want, |m| m.min(want));
    let nofile = hard(Resource::Nofile, 65536);
    let nproc = hard(Resource::Nproc, 4096);
    json!({ "nofile": { "soft": nofile, "hard": nofile }, "nproc": { "soft": nproc, "hard": nproc } })
}

/// Writes [`OVERRIDE_FILE`]: the rendered file stays as rendered.
fn write_override(record: &Record) -> Result<(), BackendError> {
    let mut each = Map::new();
    for s in services(record) {
        each.insert(s, json!({ "ulimits": ulimits() }));
    }
    let text = serde_json::to_string_pretty(&json!({ "services": each })).unwrap_or_default();
    Ok(crate::registry::write_atomic(&record.path(OVERRIDE_FILE), text.as_bytes(), false)?)
}

/// The files the containers read: node configs, `users.acl`, the password
/// files the compose file publishes as secrets.
fn container_files(record: &Record) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = record.nodes.iter().map(|n| record.path(&n.conf)).collect();
    out.push(record.path("redis/users.acl"));
    let admin = record.admin_password_file.as_deref().map(|f| record.path(f));
    for e in std::fs::read_dir(record.path("secrets")).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "password") && Some(&p) != admin.as_ref() {
            out.push(p);
        }
    }
    out.retain(|p| p.is_file());
    out
}

/// Gives the containers' user the files it reads (mode stays 0600).
fn hand_to_containers(engine: &Engine, record: &Record) -> Result<(), BackendError> {
    let files = container_files(record);
    if rustix::process::geteuid().is_root() {
        for f in &files {
            std::os::unix::fs::chown(f, Some(CONTAINER_UID), Some(CONTAINER_UID))
                .map_err(BackendError::io("hand to the containers' user (uid 999)", f))?;
        }
        return Ok(());
    }
    if engine.cli != "podman" {
        return Err(BackendError::Engine {
            command: "chown 999".into(),
            message: format!(
                "the containers run as uid {CONTAINER_UID} and must read the 0600 password files; \
                 run redplate as root with {}, or use rootless podman",
                engine.name
            ),
        });
    }
    let mut args: Vec<String> = vec!["unshare".into(), "chown".into(), format!("{CONTAINER_UID}:{CONTAINER_UID}")];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    engine.cli_ok(&args, super::engine::SHORT).map(|_| ())
}

/// Whether `dir` holds a rendered Compose project.
pub fn has_project(dir: &Path) -> bool {
    dir.join(COMPOSE_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_are_the_container_port_plus_the_ordinal() {
        let mut c = Config::default();
        c.deployment.name = "shop".into();
        c.deployment.mode = Mode::Sentinel;
        c.replication.replicas = 2;
        let ports = host_ports(&c, 7100).expect("ports");
        assert_eq!(ports, [7100, 7101, 7102, 7170, 7171, 7172], "3 data nodes, 3 sentinels");
        assert!(host_ports(&c, 65500).is_none(), "no port past 65535");
    }
}
