//! Restoring a backup onto the deployment's masters, guarded like `flush`:
//! the first call decodes the backup (through `restore.sh --decode-to`),
//! loads it into a scratch server and shows what would be replaced (keys
//! now vs in the backup) with a token; the call with the token (reusing
//! what the first call read, when the backup is unchanged) stops the
//! deployment through its backend, has `restore.sh --offline` place each
//! shard's files on its master, starts it again, waits until the replicas
//! have resynchronised and checks each master against the scratch load.
//! A journal in the state folder makes an interrupted restore finish when
//! run again.

use super::decode::{decode_all, files_args, run_blocking};
use super::scratch::Contents;
pub use super::verify::Check;
use super::verify::{check, replicas_in_sync};
use super::{Backup, io_failure, node_env, pitr};
use crate::backend::Silent;
use crate::client::Node;
use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::{audit, confirm, lifecycle};
use crate::registry::Record;
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One master the restore replaces.
#[derive(Debug, Clone, Serialize)]
pub struct Replaced {
    pub shard: usize,
    pub node: String,
    /// Keys it holds now (`None` when it does not answer).
    pub keys_now: Option<u64>,
    /// Keys the backup (cut at `--to-time`) holds for it.
    pub keys_in_backup: u64,
}

/// What a restore would replace, or replaced and how it was checked.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub deployment: String,
    pub backup: String,
    /// The second restored to (`--to-time`), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_time: Option<String>,
    pub replaced: Vec<Replaced>,
    /// Without `--confirm`: the token that makes the next call act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub restored: bool,
    /// Whether this run finished an interrupted one.
    pub resumed: bool,
    pub checks: Vec<Check>,
    /// Replicas seen back in sync with their master.
    pub replicas_in_sync: Vec<String>,
    pub seconds: f64,
}

/// A master to restore and where its files are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Target {
    pub(super) shard: usize,
    pub(super) node: String,
    data_dir: String,
    rdb_filename: String,
    aof_enabled: String,
    aof_dirname: String,
    aof_filename: String,
}

/// Kept in the state folder from the token's check until the checks pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    backup: String,
    to_time: Option<u64>,
    targets: Vec<Target>,
}

const JOURNAL: &str = "restore.journal.json";

/// What the preview found in the backup, for the confirmed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Expected {
    backup: String,
    to_time: Option<u64>,
    /// `<file> <sha256>` of every part: the same backup, unchanged.
    parts: Vec<String>,
    made: u64,
    contents: Vec<Contents>,
}

const EXPECTED: &str = "restore.expected.json";

pub(super) fn refuse(code: &'static str, message: String, hint: String) -> Failure {
    Failure::invalid(vec![Diagnostic::error(code, "", message).with_hint(hint)])
}

fn again(record: &Record, id: &str, to_time: Option<u64>) -> String {
    let t = to_time.map(|t| format!(" --to-time {}", pitr::rfc3339(t))).unwrap_or_default();
    format!("redplate restore {} {id}{t}", record.name)
}

/// Restores backup `id` of `record` (to `to_time`, Unix seconds, when given).
pub async fn restore(
    home: &Path,
    record: &Record,
    id: &str,
    to_time: Option<u64>,
    token: Option<&str>,
    actor: &str,
) -> Result<RestoreReport, Failure> {
    let started = Instant::now();
    let (_, backup) = super::find(record, id)?;
    if to_time.is_some() && !backup.point_in_time() {
        return Err(refuse(
            "restore.no-aof",
            format!("backup `{id}` of `{}` has no AOF copy, so it cannot be restored to a given second", record.name),
            "point-in-time restores need `persistence.mode: aof` or `mixed` with `aof_timestamp_enabled: true` when the backup is taken; restore it without `--to-time`".into(),
        ));
    }
    if let Some(t) = to_time
        && t > backup.unix
    {
        return Err(refuse(
            "restore.out-of-range",
            format!("backup `{id}` ends at {}; {} is after it", backup.time, pitr::rfc3339(t)),
            "choose a time the backup covers, or a later backup (`redplate backups`)".into(),
        ));
    }
    let journal_path = record.state_dir.join(JOURNAL);
    let journal: Option<Journal> =
        std::fs::read_to_string(&journal_path).ok().and_then(|t| serde_json::from_str(&t).ok());
    if let Some(j) = &journal
        && (j.backup != id || j.to_time != to_time)
    {
        return Err(refuse(
            "restore.interrupted",
            format!("a restore of `{}` from backup `{}` was interrupted and is not finished", record.name, j.backup),
            format!("finish it first: `{}`", again(record, &j.backup, j.to_time)),
        ));
    }
    let resumed = journal.is_some();
    let targets = match journal {
        Some(j) => j.targets,
        None => targets(record, &backup).await?,
    };
    if targets.iter().any(|t| t.shard >= backup.parts.len()) {
        return Err(Failure::could_not_run(
            Diagnostic::error(
                "restore.journal",
                "",
                format!("`{}` names shards backup `{id}` does not have", journal_path.display()),
            )
            .with_hint("the journal was edited or belongs to another backup: move it away and restore again"),
        ));
    }

    // What each part holds: from the preview that issued the token when it
    // is still valid for this backup, else decoded and loaded now (nothing
    // is touched yet).
    let expected_path = record.state_dir.join(EXPECTED);
    let fingerprint: Vec<String> = backup.parts.iter().map(|p| format!("{} {}", p.file, p.sha256)).collect();
    let cached = token
        .and_then(|_| std::fs::read_to_string(&expected_path).ok())
        .and_then(|t| serde_json::from_str::<Expected>(&t).ok())
        .filter(|e| {
            e.backup == id
                && e.to_time == to_time
                && e.parts == fingerprint
                && e.made + confirm::VALID_FOR.as_secs() >= pitr::now()
                && e.contents.len() == targets.len()
        });
    let expected = match cached {
        Some(e) => e.contents,
        None => decode_all(record, &backup, &targets, to_time).await?,
    };
    if token.is_none() {
        let e = Expected {
            backup: id.to_owned(),
            to_time,
            parts: fingerprint,
            made: pitr::now(),
            contents: expected.clone(),
        };
        // A cache only: without it the confirmed call decodes again.
        let _ = crate::registry::write_atomic(
            &expected_path,
            serde_json::to_string(&e).unwrap_or_default().as_bytes(),
            false,
        );
    }

    let mut replaced = Vec::new();
    for (target, contents) in targets.iter().zip(&expected) {
        let keys_now = match record.node(&target.node) {
            Some(n) => match Node::connect(&crate::ops::connect::endpoint(record, n)).await {
                Ok(conn) => conn.query::<u64, _>(&["DBSIZE"]).await.ok(),
                Err(_) => None,
            },
            None => None,
        };
        replaced.push(Replaced {
            shard: target.shard,
            node: target.node.clone(),
            keys_now,
            keys_in_backup: contents.keys,
        });
    }
    let mut report = RestoreReport {
        deployment: record.name.clone(),
        backup: id.to_owned(),
        to_time: to_time.map(pitr::rfc3339),
        replaced,
        token: None,
        restored: false,
        resumed,
        checks: Vec::new(),
        replicas_in_sync: Vec::new(),
        seconds: 0.0,
    };
    let scope = format!("restore:{id}:{}", to_time.map_or_else(|| "end".to_owned(), |t| t.to_string()));
    let Some(token) = token else {
        report.token = Some(confirm::issue(home, &record.name, &scope)?);
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    };
    let write_audit = |target: &str, outcome: String| {
        let entry = audit::Entry {
            time: audit::now(),
            actor: actor.to_owned(),
            operation: "restore",
            target: target.to_owned(),
            command: format!("restore {id}"),
            arguments: usize::from(to_time.is_some()),
            outcome,
        };
        audit::append(&record.state_dir, &entry).map_err(|e| {
            Failure::could_not_run(Diagnostic::error(
                "audit.write",
                "",
                format!("cannot write the audit log of `{}`: {e}; nothing was restored", record.name),
            ))
        })
    };
    if let Err(f) = confirm::check(home, &record.name, &scope, token, &again(record, id, to_time)) {
        write_audit("-", "refused: confirm.rejected".into())?;
        return Err(f);
    }
    let nodes: Vec<&str> = targets.iter().map(|t| t.node.as_str()).collect();
    write_audit(&nodes.join(","), "started".into())?;
    let journal = Journal { backup: id.to_owned(), to_time, targets: targets.clone() };
    crate::registry::write_atomic(
        &journal_path,
        serde_json::to_string_pretty(&journal).unwrap_or_default().as_bytes(),
        false,
    )
    .map_err(|e| Failure::could_not_run(Diagnostic::error("restore.journal", "", e.to_string())))?;

    let result = replace(home, record, &backup, &targets, to_time).await;
    write_audit(
        &nodes.join(","),
        match &result {
            Ok(()) => "ok".into(),
            Err(f) => format!("failed: {}", f.diagnostics.first().map_or("", |d| d.code.as_str())),
        },
    )?;
    result?;

    // Check: each master against what the backup held; replicas back in sync.
    let record = crate::registry::Registry::new(home).load(&record.name).map_err(crate::ops::deploy::failure)?;
    for (target, want) in targets.iter().zip(&expected) {
        report.checks.push(check(&record, &target.node, want).await?);
    }
    report.replicas_in_sync = replicas_in_sync(&record, &nodes).await?;
    let _ = std::fs::remove_file(&journal_path);
    let _ = std::fs::remove_file(&expected_path);
    report.restored = true;
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(bad) = report.checks.iter().find(|c| !c.ok) {
        return Err(Failure::could_not_run(
            Diagnostic::error(
                "restore.verify",
                "",
                format!(
                    "`{}` after the restore holds {} keys where the backup has {} ({} differs)",
                    bad.node, bad.keys_found, bad.keys_expected, bad.method
                ),
            )
            .with_hint("something wrote to it while it restarted, or the files were changed; look at its log"),
        ));
    }
    Ok(report)
}

/// The current master of each shard of the backup, and where its files are.
async fn targets(record: &Record, backup: &Backup) -> Result<Vec<Target>, Failure> {
    let current = masters(record).await?;
    let layout = match (record.mode, current.first()) {
        (Mode::Cluster, Some((_, conn))) => crate::client::cluster_masters(conn).await.map_err(unreachable)?,
        _ => Vec::new(),
    };
    if current.len() != backup.parts.len() {
        return Err(refuse(
            "restore.shape",
            format!(
                "backup `{}` has {} shard(s) but `{}` has {} master(s) now",
                backup.id,
                backup.parts.len(),
                record.name,
                current.len()
            ),
            "restore it onto a deployment of the same shape".into(),
        ));
    }
    let mut out = Vec::new();
    for (shard, part) in backup.parts.iter().enumerate() {
        let found = match part.first_slot {
            Some(slot) => {
                let port =
                    layout.iter().find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))).map(|m| m.port);
                current.iter().find(|(n, _)| Some(n.port) == port)
            }
            None => current.first(),
        };
        let Some((node, conn)) = found else {
            return Err(refuse(
                "restore.shape",
                format!("no master of `{}` serves the slots of shard {} of the backup", record.name, part.shard),
                "check the cluster with `redplate status`".into(),
            ));
        };
        let role = conn.info("replication").await.map_err(unreachable)?;
        if role.get("role") != Some("master") {
            return Err(refuse(
                "restore.replica",
                format!("`{}` is a replica: a restore onto it would be overwritten by its master", node.name),
                "restore the master (run the command again once the topology has settled)".into(),
            ));
        }
        let get = |name: &'static str| async move {
            let pair: Vec<String> = conn.query(&["CONFIG", "GET", name]).await.map_err(unreachable)?;
            Ok::<String, Failure>(pair.get(1).cloned().unwrap_or_default())
        };
        out.push(Target {
            shard,
            node: node.name.clone(),
            data_dir: get("dir").await?,
            rdb_filename: get("dbfilename").await?,
            aof_enabled: get("appendonly").await?,
            aof_dirname: get("appenddirname").await?,
            aof_filename: get("appendfilename").await?,
        });
    }
    Ok(out)
}

/// Stops the deployment, places every shard's files, starts it again.
async fn replace(
    home: &Path,
    record: &Record,
    backup: &Backup,
    targets: &[Target],
    to_time: Option<u64>,
) -> Result<(), Failure> {
    let (h, name) = (home.to_path_buf(), record.name.clone());
    join(tokio::task::spawn_blocking(move || lifecycle::stop(&h, &name, &Silent, &|_| {}).map(drop)).await)?;
    for target in targets {
        let Some(node) = record.node(&target.node) else { continue };
        let mut env = node_env(record, node);
        let data_dir = crate::backend::host_data_dir(record, node, &target.data_dir).map_err(backend_failure)?;
        env.extend([
            ("REDIS_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("RDB_FILENAME".to_owned(), target.rdb_filename.clone()),
            ("AOF_ENABLED".to_owned(), target.aof_enabled.clone()),
            ("AOF_DIRNAME".to_owned(), target.aof_dirname.clone()),
            ("AOF_FILENAME".to_owned(), target.aof_filename.clone()),
        ]);
        let mut args = files_args(backup, target.shard, to_time);
        args.extend(["--offline".to_owned(), "--yes".to_owned()]);
        run_blocking(record, args, env).await?;
        // The node's server may run as another user (a container's).
        crate::backend::data_placed(record, node, &data_dir).map_err(backend_failure)?;
    }
    let (h, name) = (home.to_path_buf(), record.name.clone());
    join(tokio::task::spawn_blocking(move || lifecycle::start(&h, &name, false, &Silent).map(drop)).await)
}

fn backend_failure(e: crate::backend::BackendError) -> Failure {
    io_failure("restore.backend", e.to_string(), std::io::Error::other("backend"))
}

fn join(r: Result<Result<(), Failure>, tokio::task::JoinError>) -> Result<(), Failure> {
    r.map_err(|e| {
        io_failure("restore.backend", "stopping or starting the deployment failed".into(), std::io::Error::other(e))
    })?
}
