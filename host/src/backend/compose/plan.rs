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
use super::network;
use crate::artifact::ArtifactSet;
use crate::backend::local::{plan as local_plan, process, tls as local_tls};
use crate::backend::{BackendError, Preparation, Progress};
use crate::registry::{NodeRecord, Record, TlsFiles};
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
/// redplate's own copy of the node key, in `tls/`.
const OWN_KEY: &str = "redplate.key";
/// Ports between two placements tried: data nodes from the base port,
/// sentinels from base + [`SENTINEL_OFFSET`], TLS container ports from base + 90.
const BLOCK: u16 = 100;
const SENTINEL_OFFSET: u16 = 70;

/// What must change in `config` to run as a Compose project redplate
/// manages: ports published (redplate talks to the containers through
/// them), the nodes announcing their service names, so a sentinel names a
/// master the way redplate finds it (every container listens on the same
/// port), and — with TLS and no certificate files — certificates from a
/// local CA in `dir/tls`, naming the services ([`tls`]).
pub fn prepare(config: &Config, dir: &Path, progress: &dyn Progress) -> Result<Preparation, BackendError> {
    let mut prep = Preparation::default();
    if config.security.tls.enabled {
        tls(config, dir, progress, &mut prep)?;
    }
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

/// TLS for the containers. Without certificate files, a local CA (as the
/// local backend makes) signs one node certificate that also names every
/// service, mounted from `tls/` as the compose file expects; with files,
/// they are copied there. The containers' user gets `tls/tls.key`;
/// redplate's own connections use `tls/redplate.key`, the same key kept by
/// the caller (with rootless podman the containers' copy is not theirs).
fn tls(config: &Config, dir: &Path, progress: &dyn Progress, prep: &mut Preparation) -> Result<(), BackendError> {
    let tls_dir = dir.join("tls");
    let copy = |from: &Path, to: &Path| -> Result<(), BackendError> {
        let bytes = std::fs::read(from).map_err(BackendError::io("read", from))?;
        crate::registry::write_atomic(to, &bytes, true).map_err(BackendError::from)
    };
    if local_plan::needs_local_certs(config) {
        progress.step("making a local certificate authority for the containers");
        let names: Vec<String> =
            Topology::derive(config, Target::Compose).nodes.iter().map(|n| n.name.clone()).collect();
        let t = local_tls::ensure_for(&tls_dir, &names)?;
        let own = tls_dir.join(OWN_KEY);
        copy(&t.key_file, &own)?;
        prep.adjustments.push(format!(
            "`security.tls` certificates made by a local CA in `{}`, naming the services (local use only)",
            tls_dir.display()
        ));
        prep.sets.push("security.tls.cert_source=files".into());
        prep.sets.push("security.tls.cert_file=tls/tls.crt".into());
        prep.sets.push("security.tls.key_file=tls/tls.key".into());
        prep.sets.push("security.tls.ca_file=tls/ca.crt".into());
        prep.tls = Some(TlsFiles { cert_file: t.cert_file, key_file: own, ca_file: t.ca_file });
        return Ok(());
    }
    // The template's own files: the compose file mounts `../tls/<file name>`.
    let t = &config.security.tls;
    for f in [&t.cert_file, &t.key_file, &t.ca_file] {
        let from = Path::new(f.as_str());
        let name = from.file_name().map(Path::new).unwrap_or(from);
        copy(from, &tls_dir.join(name))?;
    }
    prep.tls = Some(TlsFiles {
        cert_file: t.cert_file.clone().into(),
        key_file: t.key_file.clone().into(),
        ca_file: t.ca_file.clone().into(),
    });
    Ok(())
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
    record.nodes = node_records(topology, &record.state_dir)?;
    write_override(engine, record)?;
    hand_to_containers(engine, record)
}

/// One record per topology node: its host port (what redplate connects to).
/// A node is reached with TLS when its rendered config opens no plain port.
pub(super) fn node_records(topology: &Topology, dir: &Path) -> Result<Vec<NodeRecord>, BackendError> {
    topology
        .nodes
        .iter()
        .map(|n| {
            let port = host_port(n).ok_or(BackendError::NoFreePorts { from: 0, count: topology.nodes.len() })?;
            let p = n.ports;
            let (plain, tls) = local_plan::conf_ports(&dir.join(local_plan::conf_path(n)))?;
            Ok(NodeRecord {
                name: n.name.clone(),
                role: n.role,
                port,
                tls: plain.is_none() && tls.is_some(),
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

/// The images the rendered file runs, each once, in the order it names them.
pub fn images(record: &Record) -> Vec<String> {
    images_in(&record.path(COMPOSE_FILE))
}

/// The images the compose file `path` runs, each once, in the order it names them.
pub fn images_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for value in text.lines().filter_map(|l| l.strip_prefix("    image:")) {
        let image = value.trim().trim_matches('"').to_owned();
        if !image.is_empty() && !out.contains(&image) {
            out.push(image);
        }
    }
    out
}

/// After the node list changed (a scale): the override file for the
/// services rendered now, and their files handed to the containers' user.
pub fn refresh(engine: &Engine, record: &Record) -> Result<(), BackendError> {
    write_override(engine, record)?;
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

/// The address [`write_override`] pinned `service` to.
pub fn pinned_address(record: &Record, service: &str) -> Option<String> {
    let text = std::fs::read_to_string(record.path(OVERRIDE_FILE)).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    let pointer = format!("/services/{}/networks/default/ipv4_address", service.replace('~', "~0").replace('/', "~1"));
    doc.pointer(&pointer)?.as_str().map(str::to_owned)
}

/// Writes [`OVERRIDE_FILE`]: the rendered file stays as rendered. It adds
/// the limits, and pins the network's addresses ([`network`]).
fn write_override(engine: &Engine, record: &Record) -> Result<(), BackendError> {
    let existing: Option<Value> =
        std::fs::read_to_string(record.path(OVERRIDE_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok());
    let prefix = network::subnet(engine, record, existing.as_ref())?;
    let services = services(record);
    let mut each = Map::new();
    for s in &services {
        each.insert(s.clone(), json!({ "ulimits": ulimits() }));
    }
    let networks = network::pin(record, prefix, &services, &mut each)?;
    let text = serde_json::to_string_pretty(&json!({ "services": each, "networks": networks })).unwrap_or_default();
    Ok(crate::registry::write_atomic(&record.path(OVERRIDE_FILE), text.as_bytes(), false)?)
}

/// The files the containers read: node configs, `users.acl`, the password
/// files the compose file publishes as secrets.
fn container_files(record: &Record) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = record.nodes.iter().map(|n| record.path(&n.conf)).collect();
    out.push(record.path("redis/users.acl"));
    out.push(record.path("tls/tls.key"));
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
    give(engine, &container_files(record))
}

/// Hands `paths` (folders with all they hold) to the containers' user.
pub fn give(engine: &Engine, files: &[PathBuf]) -> Result<(), BackendError> {
    if rustix::process::geteuid().is_root() {
        fn chown_all(f: &Path) -> Result<(), BackendError> {
            std::os::unix::fs::lchown(f, Some(CONTAINER_UID), Some(CONTAINER_UID))
                .map_err(BackendError::io("hand to the containers' user (uid 999)", f))?;
            if f.is_dir() && !f.is_symlink() {
                for e in std::fs::read_dir(f).map_err(BackendError::io("list", f))? {
                    chown_all(&e.map_err(BackendError::io("list", f))?.path())?;
                }
            }
            Ok(())
        }
        for f in files {
            chown_all(f)?;
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
    let mut args: Vec<String> =
        vec!["unshare".into(), "chown".into(), "-R".into(), format!("{CONTAINER_UID}:{CONTAINER_UID}")];
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
