//! `redplate scale`: the deployment's stored template rendered again with
//! another number of replicas per master (with the `--set`s it was deployed
//! with, so on its kept base port), and the backend adding or removing the
//! nodes. The registry record, its `--set`s and the stored template then
//! describe the new node set, so `status`, `stop`/`start`, `apply`,
//! `destroy` and later renders see it.

use super::deploy::{Context, failure, load_and_render};
use crate::backend::{self, BackendError};
use crate::exit::Failure;
use crate::ops;
use crate::registry::{Record, Registry};
use redplate_config::model::Mode;
use redplate_config::{Diagnostic, Role, Topology};
use std::collections::BTreeMap;

/// The setting that holds the number of replicas per master in `mode`.
fn replicas_key(mode: Mode) -> &'static str {
    match mode {
        Mode::Cluster => "cluster.replicas_per_shard",
        _ => "replication.replicas",
    }
}

/// Gives every master of deployment `name` `replicas` replicas and waits
/// until it is ready; returns the new record. A scale that fails leaves
/// the record listing the nodes that run.
pub fn scale(ctx: &Context, name: &str, replicas: u8) -> Result<Record, Failure> {
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let backend = backend::of(&record).map_err(failure)?;
    backend.check_scalable(&record).map_err(failure)?;
    let prefix = format!("{}=", replicas_key(record.mode));
    let mut sets: Vec<String> = record.sets.iter().filter(|s| !s.starts_with(&prefix)).cloned().collect();
    sets.push(format!("{prefix}{replicas}"));
    ctx.progress.step(&format!("rendering `{name}` with {replicas} replicas per master"));
    // The stored copy, not the user's file: made for a deployment from before copies.
    ops::stored::load(&record)?;
    let stored = ops::stored::path(&record);
    let (resolved, artifacts) = load_and_render(ctx, backend.target(), &stored, None, &sets)?;
    let topology = Topology::derive(&resolved.config, backend.target());
    same_fixed_nodes(&record, &topology, &resolved.config.deployment.name)?;
    // Held until the new nodes are recorded, so no deploy chooses their ports meanwhile.
    let _ports = registry.ports_lock().map_err(failure)?;
    not_reserved(&record, &topology, &registry.reserved_ports(name))?;
    let result = backend.scale(&mut record, replicas, &artifacts, ctx.progress);
    let wanted = topology.nodes.iter().filter(|n| n.role != Role::Sentinel).count();
    let scaled = record.data_nodes().count() == wanted;
    if scaled {
        record.sets = sets;
        ops::stored::save(&record, &resolved.config)?;
    }
    registry.save(&record).map_err(failure)?;
    result.map_err(failure)?;
    Ok(record)
}

/// The new render must keep the deployment's name, mode, masters and
/// sentinels, and every replica it keeps, on the same ports: scale changes
/// the number of replicas and nothing else.
fn same_fixed_nodes(record: &Record, topology: &Topology, name: &str) -> Result<(), Failure> {
    let rendered: Vec<(&str, Role, Vec<u16>)> = topology
        .nodes
        .iter()
        .map(|n| {
            let p = n.ports;
            (n.name.as_str(), n.role, [p.client, p.tls, p.cluster_bus, p.sentinel].into_iter().flatten().collect())
        })
        .collect();
    let recorded: Vec<(&str, Role, Vec<u16>)> =
        record.nodes.iter().map(|n| (n.name.as_str(), n.role, n.ports.clone())).collect();
    let fixed = |nodes: &[(&str, Role, Vec<u16>)]| {
        nodes
            .iter()
            .filter(|n| n.1 != Role::Replica)
            .map(|(a, b, c)| ((*a).to_owned(), *b, c.clone()))
            .collect::<Vec<_>>()
    };
    let kept_moved = recorded.iter().any(|r| rendered.iter().any(|n| n.0 == r.0 && (n.1 != r.1 || n.2 != r.2)));
    if name == record.name && topology.mode == record.mode && fixed(&rendered) == fixed(&recorded) && !kept_moved {
        return Ok(());
    }
    Err(Failure::invalid(vec![
        Diagnostic::error(
            "scale.topology",
            "",
            format!(
                "the stored template `{}` now gives `{}` another name, mode, masters, sentinels or ports; \
                 scale changes the number of replicas only",
                ops::stored::path(record).display(),
                record.name
            ),
        )
        .with_hint(format!(
            "print it with `redplate export {0}` and `redplate apply {0}` a template as it was deployed, \
             or `redplate destroy {0}` and deploy the new one",
            record.name
        )),
    ]))
}

/// The nodes the new render adds must not use ports another deployment
/// keeps (a stopped one's ports are still its own).
pub(super) fn not_reserved(
    record: &Record,
    topology: &Topology,
    reserved: &BTreeMap<u16, String>,
) -> Result<(), Failure> {
    let added = topology.nodes.iter().filter(|n| record.node(&n.name).is_none());
    for n in added {
        let p = n.ports;
        let ports = [p.client, p.tls, p.cluster_bus, p.sentinel].into_iter().flatten();
        if let Some((port, other)) = ports.filter_map(|port| Some((port, reserved.get(&port)?))).next() {
            return Err(failure(BackendError::CannotScale {
                deployment: record.name.clone(),
                reason: format!(
                    "port {port}, which `{}` would use, is kept for deployment `{other}`; \
                     move `{other}` with `redplate stop {other}` and `redplate start {other} --new-ports`, \
                     or `redplate destroy {other}`",
                    n.name
                ),
            }));
        }
    }
    Ok(())
}
