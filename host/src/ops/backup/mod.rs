//! `redplate backup`, `backups` and `restore`: backups of a running
//! deployment, one per master (shard) grouped under one id, and restores
//! from them, to the moment of the backup or — from the AOF copy kept beside
//! it — to a given second. The work on files is done by the deployment's
//! rendered `backup/backup.sh` and `backup/restore.sh` (the artifacts other
//! targets run), so there is one implementation; this module picks the
//! nodes, runs the scripts, records what was taken in a manifest beside the
//! files, and drives the backend around a restore.

mod decode;
pub mod pitr;
mod restore;
mod scratch;
mod take;
mod verify;

pub use restore::{RestoreReport, restore};
pub use take::take;

use crate::exit::Failure;
use crate::registry::Record;
use redplate_config::Diagnostic;
use redplate_config::model::BackupDestination;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One shard's part of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    /// The shard (0 outside a cluster).
    pub shard: usize,
    /// The master of the shard when the backup was taken.
    pub master: String,
    /// The node the snapshot was read from (a replica when there is one).
    pub source: String,
    /// The first slot the shard served (cluster mode): restores find the shard's current master by it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_slot: Option<u16>,
    /// The RDB backup's file name in the backup folder.
    pub file: String,
    /// The SHA-256 of that file (as in its `.sha256`).
    pub sha256: String,
    /// The AOF copy's file name, when AOF was on (point-in-time restores need it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aof_file: Option<String>,
    /// Bytes on disk (RDB and AOF copy).
    pub size: u64,
    /// Keys on the source node right after the snapshot (`DBSIZE`).
    pub keys: u64,
}

/// A backup: one part per shard, one id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    pub deployment: String,
    /// When it finished, RFC 3339 UTC.
    pub time: String,
    pub unix: u64,
    /// The folder holding its files.
    pub dir: PathBuf,
    pub encrypted: bool,
    pub parts: Vec<Part>,
}

impl Backup {
    /// Bytes on disk, all parts.
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// Keys at backup time, all parts.
    pub fn keys(&self) -> u64 {
        self.parts.iter().map(|p| p.keys).sum()
    }

    /// Whether every part has an AOF copy (a restore `--to-time` is possible).
    pub fn point_in_time(&self) -> bool {
        !self.parts.is_empty() && self.parts.iter().all(|p| p.aof_file.is_some())
    }
}

/// Where a deployment's backups go, and why there.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    pub dir: PathBuf,
    /// `template` (the template's `backup.destination.directory`) or `state folder`.
    pub location: &'static str,
    pub why: String,
}

/// The template's backup directory when it is usable here, else
/// `<state folder>/backups`.
pub fn destination(record: &Record, dest: &BackupDestination) -> Destination {
    let fallback = |why: String| Destination { dir: record.state_dir.join("backups"), location: "state folder", why };
    let dir = match dest {
        BackupDestination::Directory(d) => {
            let p = Path::new(d);
            if p.is_absolute() { p.to_path_buf() } else { record.state_dir.join(p.strip_prefix("./").unwrap_or(p)) }
        }
        BackupDestination::S3(url) => {
            return fallback(format!(
                "the template sends backups to `{}`; they are kept here (set BACKUP_S3_URL to upload them too)",
                crate::text::clean(url, 200)
            ));
        }
        BackupDestination::Pvc(name) => {
            return fallback(format!(
                "the template's destination is the Kubernetes volume `{}`",
                crate::text::clean(name, 200)
            ));
        }
    };
    let usable = std::fs::create_dir_all(&dir).and_then(|()| tempfile::tempfile_in(&dir).map(drop));
    match usable {
        Ok(()) => {
            Destination { why: "the template's `backup.destination.directory`".into(), dir, location: "template" }
        }
        Err(e) => fallback(format!("the template's directory `{}` is not writable here: {e}", dir.display())),
    }
}

/// The manifest file of backup `id`.
fn manifest_path(dir: &Path, deployment: &str, id: &str) -> PathBuf {
    dir.join(format!("{deployment}-{id}.backup.json"))
}

fn io_failure(code: &'static str, what: String, e: std::io::Error) -> Failure {
    Failure::could_not_run(Diagnostic::error(code, "", format!("{what}: {e}")))
}

/// The backups of `record` in `dir`, oldest first. A manifest whose files
/// retention has pruned is removed (the scripts prune the files).
pub fn list_in(dir: &Path, deployment: &str) -> Result<Vec<Backup>, Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(io_failure("backup.list", format!("cannot read the backup folder `{}`", dir.display()), e));
        }
    };
    let prefix = format!("{deployment}-");
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".backup.json")) else { continue };
        if !pitr::is_id(id) {
            continue;
        }
        let path = entry.path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io_failure("backup.list", format!("cannot read `{}`", path.display()), e))?;
        let backup: Backup = serde_json::from_str(&text).map_err(|e| {
            Failure::could_not_run(
                Diagnostic::error(
                    "backup.manifest",
                    "",
                    format!("the backup manifest `{}` is unreadable: {e}", path.display()),
                )
                .with_hint("move it away; the backup files it names can still be restored with backup/restore.sh"),
            )
        })?;
        let present = backup
            .parts
            .iter()
            .all(|p| dir.join(&p.file).exists() && p.aof_file.as_ref().is_none_or(|a| dir.join(a).exists()));
        if present {
            out.push(backup);
        } else {
            // Pruned by retention (backup.sh): the manifest goes too.
            let _ = std::fs::remove_file(&path);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `redplate backups`: where the deployment's backups are and which there are.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub deployment: String,
    pub destination: Destination,
    pub backups: Vec<Backup>,
}

/// The backups of `record`, oldest first.
pub fn list(record: &Record) -> Result<Listing, Failure> {
    let config = crate::ops::stored::load(record)?.config;
    let destination = destination(record, &config.backup.destination);
    let backups = list_in(&destination.dir, &record.name)?;
    Ok(Listing { deployment: record.name.clone(), destination, backups })
}

/// Where `node`'s data folder is on this machine: what its `CONFIG GET dir`
/// says, as its backend maps it (a container's volume).
async fn data_dir(
    record: &Record,
    node: &crate::registry::NodeRecord,
    conn: &crate::client::Node,
) -> Result<PathBuf, Failure> {
    let pair: Vec<String> = conn.query(&["CONFIG", "GET", "dir"]).await.map_err(|e| {
        Failure::could_not_run(Diagnostic::error(
            "backup.unreachable",
            "",
            format!("`{}` did not say where its data is: {}", node.name, crate::text::clean(&e.to_string(), 300)),
        ))
    })?;
    let dir = pair.get(1).cloned().unwrap_or_default();
    crate::backend::host_data_dir(record, node, &dir).map_err(|e| {
        Failure::could_not_run(
            Diagnostic::error("backup.data-dir", "", e.to_string())
                .with_hint("the backup scripts read the nodes' data folders on this machine"),
        )
    })
}

/// Runs `backup/<script>` of the deployment with `args` and `env`;
/// returns its stdout. A failure carries the end of its log.
fn run_script(record: &Record, script: &str, args: &[String], env: &[(String, String)]) -> Result<String, Failure> {
    let path = record.state_dir.join("backup").join(script);
    let out = std::process::Command::new("bash")
        .arg(&path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&record.state_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| io_failure("backup.script", format!("cannot run `{}`", path.display()), e))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let log = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = log.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    Err(Failure::could_not_run(
        Diagnostic::error(
            "backup.script",
            "",
            format!(
                "`{}` failed ({}):\n{}",
                path.display(),
                out.status,
                crate::text::clean_lines(&tail.join("\n"), 2000)
            ),
        )
        .with_hint("the lines above are the script's own log; fix what it names and run the command again"),
    ))
}

/// The environment that points a script at `node` as redplate's admin user.
fn node_env(record: &Record, node: &crate::registry::NodeRecord) -> Vec<(String, String)> {
    let ep = crate::ops::connect::endpoint(record, node);
    let mut env = vec![
        ("REDIS_HOST".to_owned(), ep.host.clone()),
        ("REDIS_PORT".to_owned(), ep.port.to_string()),
        ("REDIS_TLS".to_owned(), if node.tls { "1" } else { "0" }.to_owned()),
    ];
    match (&record.tls, node.tls) {
        (Some(t), true) => {
            env.push(("REDIS_CACERT".into(), t.ca_file.display().to_string()));
            env.push(("REDIS_CERT".into(), t.cert_file.display().to_string()));
            env.push(("REDIS_KEY".into(), t.key_file.display().to_string()));
        }
        _ => {
            env.push(("REDIS_CERT".into(), String::new()));
            env.push(("REDIS_KEY".into(), String::new()));
        }
    }
    match (&record.admin_user, &record.admin_password_file) {
        (Some(user), Some(file)) => {
            env.push(("REDIS_USER".into(), user.clone()));
            env.push(("REDIS_PASSWORD_FILE".into(), record.state_dir.join(file).display().to_string()));
        }
        _ => {
            env.push(("REDIS_USER".into(), String::new()));
            env.push(("REDIS_PASSWORD_FILE".into(), String::new()));
        }
    }
    env
}

/// The backup `id` of `record`, or an error listing the ones there are.
pub fn find(record: &Record, id: &str) -> Result<(Destination, Backup), Failure> {
    let listing = list(record)?;
    if let Some(b) = listing.backups.iter().find(|b| b.id == id) {
        return Ok((listing.destination, b.clone()));
    }
    let known: Vec<&str> = listing.backups.iter().map(|b| b.id.as_str()).collect();
    let hint = if known.is_empty() {
        format!("`{}` has no backups yet: take one with `redplate backup {}`", record.name, record.name)
    } else {
        format!("its backups: {} (see `redplate backups {}`)", known.join(", "), record.name)
    };
    Err(Failure::invalid(vec![
        Diagnostic::error(
            "backup.unknown",
            "",
            format!(
                "`{}` has no backup `{}` in `{}`",
                record.name,
                crate::text::clean(id, 100),
                listing.destination.dir.display()
            ),
        )
        .with_hint(hint),
    ]))
}
