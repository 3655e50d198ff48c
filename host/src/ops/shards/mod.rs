//! `redplate scale <deployment> --shards N`: a cluster gets another number
//! of shards, keeping every key, while clients go on reading and writing.
//!
//! In order: slots an interrupted run left open are closed ([`moves`]);
//! the cluster must then serve all 16384 slots and be `ok`; adding shards,
//! the backend starts and joins the new nodes (through the trait:
//! [`crate::backend::Backend::reshape`]) before the slots are evened out
//! over the shards; removing shards, the slots of the shards that go are
//! spread over every shard that stays before the backend forgets and
//! stops their nodes. A journal ([`journal`]) marks a run under way; the
//! stored template and the record's `--set`s get the new number of shards
//! only once it is done. Every step reads what is left from the cluster,
//! so running the command again finishes an interrupted run (or, with the
//! old number, undoes it).

pub mod journal;
pub mod moves;
pub mod view;

use super::deploy::{Context, failure, load_and_render};
use crate::backend;
use crate::exit::Failure;
use crate::ops;
use crate::registry::{Record, Registry};
use journal::Journal;
use redplate_config::model::Mode;
use redplate_config::{Diagnostic, Role, Topology};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Where a scale of the shards reports to (the CLI draws a progress bar
/// for the slot moves).
pub trait Progress: crate::backend::Progress {
    /// `total` slots are about to move.
    fn slots(&self, _total: u64) {}
    /// `slots` more have moved.
    fn moved(&self, _slots: u64) {}
}

impl Progress for crate::backend::Silent {}

/// What `scale --shards` did.
#[derive(Debug, Clone, Serialize)]
pub struct Resharded {
    pub deployment: String,
    pub from_shards: usize,
    pub to_shards: usize,
    /// The run an interrupted one left, which this one finished.
    pub resumed: Option<Journal>,
    /// Slots an interrupted run had left open, and what was done with each.
    pub closed_slots: Vec<String>,
    pub slots_moved: u64,
    pub keys_moved: u64,
    /// Each master's slots afterwards.
    pub slots: BTreeMap<String, usize>,
    pub seconds: f64,
}

fn refuse(code: &'static str, message: String, hint: String) -> Failure {
    Failure::invalid(vec![Diagnostic::error(code, "/cluster/shards", message).with_hint(hint)])
}

/// Gives cluster `name` `shards` shards (see the module comment).
pub fn scale_shards(ctx: &Context, name: &str, shards: u8, progress: &dyn Progress) -> Result<Resharded, Failure> {
    let started = Instant::now();
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    if record.mode != Mode::Cluster {
        return Err(refuse(
            "scale.not-cluster",
            format!("`{name}` is a {} deployment; only a cluster has shards", mode_name(record.mode)),
            format!(
                "scale it up with `redplate scale {name} --memory SIZE` or `--replicas N`; for shards, deploy a template \
                 with `deployment.mode: cluster`"
            ),
        ));
    }
    let backend = backend::of(&record).map_err(failure)?;
    let resumed = journal::load(&record.state_dir)?;
    // A run that died while the backend changed the nodes may have left
    // some stopped or unrecorded: the backend's reshape sorts that out first.
    let mid_reshape = resumed.as_ref().is_some_and(|j| j.phase.starts_with("nodes-"));
    if !mid_reshape {
        backend.check_scalable(&record).map_err(failure)?;
    }
    let from = masters(&record);
    let key = "cluster.shards=";
    let mut sets: Vec<String> = record.sets.iter().filter(|s| !s.starts_with(key)).cloned().collect();
    sets.push(format!("{key}{shards}"));
    progress.step(&format!("rendering `{name}` with {shards} shards"));
    ops::stored::load(&record)?;
    let stored = ops::stored::path(&record);
    let (resolved, artifacts) = load_and_render(ctx, backend.target(), &stored, None, &sets)?;
    let topology = Topology::derive(&resolved.config, backend.target());
    if resolved.config.deployment.name != record.name || topology.mode != record.mode {
        return Err(refuse(
            "scale.topology",
            format!("the stored template `{}` now gives `{name}` another name or mode", stored.display()),
            format!("print it with `redplate export {name}`"),
        ));
    }

    if mid_reshape {
        progress.step("finishing the nodes' change an interrupted run began");
        reshape(&registry, backend.as_ref(), &mut record, &topology, &artifacts, progress)?;
    }
    let runtime = crate::client::runtime().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
    })?;
    let closed_slots = runtime.block_on(moves::close_open_slots(&record, progress))?;
    progress.step("checking that the cluster serves every slot and is ok");
    runtime.block_on(moves::check_healthy(&record))?;
    let mut journal = Journal {
        from: u8::try_from(from).unwrap_or(u8::MAX),
        to: shards,
        phase: "nodes-added".into(),
        started_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    if let Some(j) = &resumed
        && j.to == shards
    {
        journal.from = j.from;
        journal.started_unix = j.started_unix;
    }
    journal::save(&record.state_dir, &journal)?;

    if usize::from(shards) >= from {
        reshape(&registry, backend.as_ref(), &mut record, &topology, &artifacts, progress)?;
    }
    journal.phase = "slots".into();
    journal::save(&record.state_dir, &journal)?;
    progress.step("moving slots");
    let targets: Vec<String> = (0..u16::from(shards)).map(|s| Topology::data_node_name(name, s)).collect();
    let moved = runtime.block_on(moves::rebalance(&record, &targets, progress))?;
    if usize::from(shards) < from {
        journal.phase = "nodes-removed".into();
        journal::save(&record.state_dir, &journal)?;
        reshape(&registry, backend.as_ref(), &mut record, &topology, &artifacts, progress)?;
    }
    let slots = runtime.block_on(moves::slot_counts(&record))?;
    record.sets = sets;
    ops::stored::save(&record, &resolved.config)?;
    registry.save(&record).map_err(failure)?;
    journal::remove(&record.state_dir)?;
    Ok(Resharded {
        deployment: name.to_owned(),
        from_shards: resumed.as_ref().filter(|j| j.to == shards).map_or(from, |j| usize::from(j.from)),
        to_shards: usize::from(shards),
        resumed,
        closed_slots,
        slots_moved: moved.slots,
        keys_moved: moved.keys,
        slots,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The backend makes the node set that of `topology`; the record is saved
/// whatever happens, so it lists the nodes that run.
fn reshape(
    registry: &Registry,
    backend: &dyn backend::Backend,
    record: &mut Record,
    topology: &Topology,
    artifacts: &crate::artifact::ArtifactSet,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    // Held until the new nodes are recorded, so no deploy chooses their ports meanwhile.
    let _ports = registry.ports_lock().map_err(failure)?;
    super::scale::not_reserved(record, topology, &registry.reserved_ports(&record.name))?;
    let result = backend.reshape(record, topology, artifacts, progress);
    registry.save(record).map_err(failure)?;
    result.map_err(failure)
}

/// The deployment's shards: its masters as deployed.
fn masters(record: &Record) -> usize {
    record.data_nodes().filter(|n| n.role == Role::Master).count()
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Standalone => "standalone",
        Mode::Replication => "replication",
        Mode::Sentinel => "sentinel",
        Mode::Cluster => "cluster",
    }
}
