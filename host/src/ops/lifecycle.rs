//! A registered deployment's life after `deploy`: list, status, logs, stop,
//! start and destroy. Each loads the registry record and hands it to the
//! deployment's backend through the [`Backend`](crate::backend::Backend)
//! trait; commands that change a deployment hold its lock for their run.

use super::deploy::failure;
use crate::backend::{self, BackendError, Progress, Status};
use crate::exit::Failure;
use crate::registry::{DeployState, Record, Registry, RegistryError, valid_name};
use crate::secrets::SecretStore;
use redplate_config::Diagnostic;
use std::path::Path;

/// `redplate list`: every readable record, and a warning for each
/// unreadable one (one broken entry does not hide the others).
pub fn list(home: &Path) -> (Vec<Record>, Vec<Diagnostic>) {
    let (records, problems) = Registry::new(home).list();
    let warnings = problems.into_iter().map(|e| Diagnostic::warning("deploy.registry", "", e.to_string())).collect();
    (records, warnings)
}

/// `redplate status`.
pub fn status(home: &Path, name: &str) -> Result<(Record, Status), Failure> {
    let record = Registry::new(home).load(name).map_err(failure)?;
    let status = backend::of(&record).and_then(|b| b.status(&record)).map_err(failure)?;
    Ok((record, status))
}

/// `redplate logs`: the last `lines` lines of each node's log, as written
/// (they hold what clients and peers sent: the caller escapes them).
pub fn logs(home: &Path, name: &str, node: Option<&str>, lines: usize) -> Result<Vec<(String, String)>, Failure> {
    let record = Registry::new(home).load(name).map_err(failure)?;
    backend::of(&record).and_then(|b| b.logs(&record, node, lines)).map_err(failure)
}

/// `redplate stop`: every process stopped. Returns the data nodes that
/// lost their data (no persistence); `warn` hears of them before anything
/// stops.
pub fn stop(
    home: &Path,
    name: &str,
    progress: &dyn Progress,
    warn: &dyn Fn(&Diagnostic),
) -> Result<(Record, Vec<String>), Failure> {
    let registry = Registry::new(home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let backend = backend::of(&record).map_err(failure)?;
    let lost = backend.unpersisted(&record);
    if !lost.is_empty() {
        let message = if lost.len() == record.data_nodes().count() {
            format!("`{name}` persists nothing (`persistence.mode: none`): the data it holds is lost when it stops")
        } else {
            let nodes = lost.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            format!("{nodes} of `{name}` persist nothing: the data they hold is lost when they stop")
        };
        let hint =
            format!("to keep it, set `persistence.mode` to `rdb` or `aof` and `redplate apply {name} <template>`");
        warn(&Diagnostic::warning("stop.data-lost", "/persistence/mode", message).with_hint(hint));
    }
    let result = backend.stop(&mut record, progress);
    record.state = DeployState::Stopped;
    registry.save(&record).map_err(failure)?;
    result.map_err(failure)?;
    Ok((record, lost))
}

/// `redplate start`: starts the nodes that are not running (after `stop`,
/// or a crash) where the registry says, and waits until ready. With
/// `new_ports`, the stopped deployment first moves to free ports (its
/// files rewritten, the ports recorded). All or nothing: a start that fails
/// stops what it started, and the record says what runs.
pub fn start(home: &Path, name: &str, new_ports: bool, progress: &dyn Progress) -> Result<Record, Failure> {
    let registry = Registry::new(home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let backend = backend::of(&record).map_err(failure)?;
    let save = |r: &Record| registry.save(r).map_err(BackendError::from);
    if new_ports {
        let _ports = registry.ports_lock().map_err(failure)?;
        backend.relocate(&mut record, &registry.reserved_ports(name), &save, progress).map_err(failure)?;
    }
    let result = backend.start(&mut record, &save, progress);
    match &result {
        Ok(()) => record.state = DeployState::Running,
        Err(_) if record.nodes.iter().all(|n| n.pid.is_none()) && record.state == DeployState::Running => {
            record.state = DeployState::Stopped;
        }
        Err(_) => {}
    }
    registry.save(&record).map_err(failure)?;
    result.map_err(|e| {
        let hint = match &e {
            BackendError::PortTaken { port, .. } => {
                Some(crate::backend::local::process::ephemeral_hint(*port).unwrap_or_else(|| {
                    format!(
                        "another program listens on port {port}: stop it, or move `{name}` to free ports with \
                         `redplate start {name} --new-ports`"
                    )
                }))
            }
            _ => None,
        };
        let mut f = failure(e);
        if let Some(h) = hint {
            f.diagnostics = f.diagnostics.into_iter().map(|d| d.with_hint(h.clone())).collect();
        }
        f
    })?;
    Ok(record)
}

/// `redplate destroy`: processes gone, ports free, the registry entry
/// removed; the data stays unless `purge`. A name with no entry but a
/// leftover state folder can still be purged.
pub fn destroy(home: &Path, name: &str, purge: bool, progress: &dyn Progress) -> Result<(), Failure> {
    let registry = Registry::new(home);
    if !valid_name(name) {
        return Err(failure(BackendError::Unknown(name.into())));
    }
    let _lock = registry.lock(name).map_err(failure)?;
    match registry.load(name) {
        Ok(record) => {
            // Tenants with `isolation: instance` are deployments of their own: they go first.
            if let Ok(stored) = crate::ops::stored::load(&record) {
                crate::ops::tenant::destroy_instances(home, name, &stored.config, purge)?;
            }
            backend::of(&record).and_then(|b| b.destroy(&record, purge, progress)).map_err(failure)?;
            if !purge {
                registry.remove(name).map_err(failure)?;
            }
        }
        // A leftover folder (purge only), or an entry that cannot be read:
        // the processes are found by their working directory, and a
        // Compose project by the rendered file in it, instead.
        Err(e @ (RegistryError::Unknown(_) | RegistryError::Corrupt { .. }))
            if registry.dir(name).exists() && (purge || matches!(e, RegistryError::Corrupt { .. })) =>
        {
            let dir = registry.dir(name);
            for kind in [backend::DEFAULT, "compose"] {
                backend::named(kind).map_err(failure)?.reap(&dir);
            }
            if purge {
                std::fs::remove_dir_all(&dir).map_err(|e| failure(BackendError::io("remove", &dir)(e)))?;
            } else {
                registry.remove(name).map_err(failure)?;
            }
        }
        Err(e) => return Err(failure(e)),
    }
    if purge {
        let _ = std::fs::remove_file(SecretStore::new(home).file(name));
    }
    Ok(())
}
