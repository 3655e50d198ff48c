//! `tenant remove`: counts the tenant's keys (all a dry run does); then turns
//! its user off and disconnects its clients on every data node, deletes its
//! keys on every master with paced `SCAN MATCH` + `UNLINK` batches, deletes
//! the user (`ACL DELUSER`, `ACL SAVE`) and last drops the tenant from the
//! stored template. Every step can be repeated, so a removal interrupted
//! anywhere leaves a tenant that is off (or already gone) and running it
//! again finishes the job.

use super::scan::{Pace, Scanner};
use super::{acl, check_id, check_isolation, match_pattern, open, prefix, unknown, user_name};
use crate::backend::BackendError;
use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::deploy::failure;
use crate::registry::{NodeRecord, Record, Registry, valid_name};
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What `tenant remove` was asked.
#[derive(Debug, Clone, Default)]
pub struct RemoveRequest {
    pub id: String,
    /// Count the keys and change nothing.
    pub dry_run: bool,
    /// Remove the user and the tenant but leave its keys.
    pub keep_data: bool,
}

/// What `tenant remove` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub deployment: String,
    pub tenant: String,
    pub user: String,
    pub prefix: String,
    pub dry_run: bool,
    pub kept_data: bool,
    /// The tenant's keys on each master before the removal.
    pub keys: BTreeMap<String, u64>,
    pub total_keys: u64,
    /// Keys `UNLINK` deleted.
    pub deleted: u64,
    pub seconds: f64,
    pub warnings: Vec<Diagnostic>,
}

/// Where a long removal reports to (the CLI draws a progress bar).
pub trait Progress: Send + Sync {
    /// A new step began.
    fn step(&self, _message: &str) {}
    /// The keys that are about to be deleted.
    fn total(&self, _keys: u64) {}
    /// `keys` more were deleted.
    fn deleted(&self, _keys: u64) {}
}

/// A progress sink that shows nothing.
pub struct Silent;

impl Progress for Silent {}

/// Removes tenant `request.id` of `deployment`; `cancel` stops it between
/// two batches (then it fails with `tenant.remove-interrupted`).
pub async fn remove(
    home: &Path,
    deployment: &str,
    request: &RemoveRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Removed, Failure> {
    let started = Instant::now();
    let id = request.id.as_str();
    check_id(id)?;
    if !valid_name(deployment) {
        return Err(failure(BackendError::Unknown(deployment.to_owned())));
    }
    let registry = Registry::new(home);
    let _lock = if request.dry_run { None } else { Some(registry.lock(deployment).map_err(failure)?) };
    let opened = open(home, deployment)?;
    let mut config = opened.resolved.config.clone();
    check_isolation(&config, deployment)?;
    let user = user_name(id);
    let declared = config.tenancy.tenants.iter().any(|t| t.id == id);
    if super::instance::applies(&config) {
        if !declared {
            return Err(unknown(&config, deployment, id));
        }
        return super::instance::remove_instance(home, &opened.record, &config, request, progress, cancel).await;
    }
    let nodes = acl::connect_all(&opened.record).await?;
    if !declared {
        // Only the end of an interrupted removal is left: the user may
        // still be on some node.
        let mut left = false;
        for n in &nodes {
            left |= acl::exists(n, &user).await.map_err(unreachable)?;
        }
        if !left {
            return Err(unknown(&config, deployment, id));
        }
    }
    let prefix = prefix(&config, id);
    let pattern = match_pattern(&prefix);
    let pace = Pace::gentle(config.tenancy.removal_batch_size);
    let stop = || -> Result<(), Failure> {
        if cancel.load(Ordering::Relaxed) { Err(interrupted(deployment, id)) } else { Ok(()) }
    };

    progress.step(&format!("counting the keys under `{prefix}`"));
    let found = masters(&opened.record).await?;
    let keys = count_keys(&found, &pattern, pace, &stop).await?;
    let total_keys = keys.values().sum();
    let mut removed = Removed {
        deployment: deployment.to_owned(),
        tenant: id.to_owned(),
        user: user.clone(),
        prefix,
        dry_run: request.dry_run,
        kept_data: request.keep_data,
        keys,
        total_keys,
        deleted: 0,
        seconds: 0.0,
        warnings: Vec::new(),
    };
    if request.dry_run {
        removed.seconds = started.elapsed().as_secs_f64();
        return Ok(removed);
    }

    progress.step(&format!("turning `{user}` off and disconnecting its clients"));
    for n in &nodes {
        n.call(&["ACL", "SETUSER", &user, "off"]).await.map_err(unreachable)?;
        kill_clients(n, &user).await.map_err(unreachable)?;
    }
    acl::save_everywhere(&nodes).await.map_err(unreachable)?;

    if !request.keep_data {
        progress.step(&format!("deleting {total_keys} keys"));
        progress.total(total_keys);
        let cluster = opened.record.mode == Mode::Cluster;
        removed.deleted = delete_keys(&found, &pattern, pace, cluster, progress, &stop).await?;
    }

    progress.step(&format!("deleting `{user}`"));
    for n in &nodes {
        n.call(&["ACL", "DELUSER", &user]).await.map_err(unreachable)?;
    }
    acl::save_everywhere(&nodes).await.map_err(unreachable)?;
    config.tenancy.tenants.retain(|t| t.id != id);
    if declared {
        crate::ops::stored::save(&opened.record, &config)?;
    }
    removed.warnings = forget(home, &registry, opened.record, &user);
    removed.seconds = started.elapsed().as_secs_f64();
    Ok(removed)
}

/// The keys matching `pattern` on each master, counted with paced scans.
pub(super) async fn count_keys(
    found: &[(&NodeRecord, Node)],
    pattern: &str,
    pace: Pace,
    stop: &(dyn Fn() -> Result<(), Failure> + Sync),
) -> Result<BTreeMap<String, u64>, Failure> {
    let mut keys = BTreeMap::new();
    for (node, conn) in found {
        let mut scan = Scanner::new(conn, pattern.to_owned(), pace);
        let mut n = 0u64;
        while let Some(batch) = scan.next().await.map_err(unreachable)? {
            stop()?;
            n += batch.len() as u64;
        }
        keys.insert(node.name.clone(), n);
    }
    Ok(keys)
}

/// Deletes the keys matching `pattern` on every master with paced
/// `SCAN MATCH` + `UNLINK` batches; returns how many were deleted. It can
/// be stopped between two batches and run again.
pub(super) async fn delete_keys(
    found: &[(&NodeRecord, Node)],
    pattern: &str,
    pace: Pace,
    cluster: bool,
    progress: &dyn Progress,
    stop: &(dyn Fn() -> Result<(), Failure> + Sync),
) -> Result<u64, Failure> {
    let mut deleted = 0;
    for (_, conn) in found {
        let mut scan = Scanner::new(conn, pattern.to_owned(), pace);
        while let Some(batch) = scan.next().await.map_err(unreachable)? {
            stop()?;
            if batch.is_empty() {
                continue;
            }
            let t = Instant::now();
            let n = unlink(conn, &batch, cluster).await.map_err(unreachable)?;
            scan.spent(t.elapsed(), false);
            deleted += n;
            progress.deleted(n);
        }
    }
    Ok(deleted)
}

fn interrupted(deployment: &str, id: &str) -> Failure {
    Failure::could_not_run(
        Diagnostic::error(
            "tenant.remove-interrupted",
            "",
            format!(
                "the removal of tenant `{id}` was interrupted: its user is off (or gone) and some of its keys \
                 may be left"
            ),
        )
        .with_hint(format!("run `redplate tenant remove {deployment} {id}` again to finish it")),
    )
}

/// `CLIENT KILL USER`; a node that does not know the user has no client of it.
async fn kill_clients(node: &Node, user: &str) -> Result<(), ClientError> {
    match node.call(&["CLIENT", "KILL", "USER", user]).await {
        Err(e) if e.reply().is_some_and(|r| r.contains("No such user")) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `UNLINK`s `keys` in one round trip: one command, or in a cluster (where
/// one command's keys must share a slot) a pipeline of one per key.
async fn unlink(node: &Node, keys: &[Vec<u8>], cluster: bool) -> Result<u64, ClientError> {
    let timeout = Duration::from_secs(30);
    if cluster {
        let commands: Vec<Vec<Vec<u8>>> = keys.iter().map(|k| vec![b"UNLINK".to_vec(), k.clone()]).collect();
        let replies = node.pipeline(&commands, timeout).await?;
        return Ok(replies.iter().map(|r| if let redis::Value::Int(n) = r { *n as u64 } else { 0 }).sum());
    }
    let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
    args.push(b"UNLINK");
    args.extend(keys.iter().map(Vec::as_slice));
    match node.call_within(&args, timeout).await? {
        redis::Value::Int(n) => Ok(n.max(0) as u64),
        _ => Ok(0),
    }
}

/// After the user is gone: its password's copy, the kept generated
/// password (a tenant made again under this id gets a new one) and the
/// record's user list. The removal is done; what fails here is a warning.
fn forget(home: &Path, registry: &Registry, mut record: Record, user: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let file = super::password_file(&record, user);
    if let Err(e) = std::fs::remove_file(&file)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        out.push(Diagnostic::warning("tenant.password-file", "", format!("cannot remove `{}`: {e}", file.display())));
    }
    if let Err(e) = crate::secrets::SecretStore::new(home).forget(&record.name, user) {
        out.push(
            Diagnostic::warning("tenant.kept-password", "", format!("the kept password of `{user}` stays: {e}"))
                .with_hint("a tenant made again under this id would get the same password: remove its entry by hand"),
        );
    }
    if record.users.iter().any(|u| u == user) {
        record.users.retain(|u| u != user);
        if let Err(e) = registry.save(&record) {
            out.push(Diagnostic::warning(
                "tenant.record",
                "",
                format!("the deployment record still lists `{user}`: {e}"),
            ));
        }
    }
    out
}
