//! Reading a backup before a restore: each part decoded by the rendered
//! `restore.sh --decode-to` (checksum first, then decrypt, decompress and,
//! with `--to-time`, the AOF cut at that second), the time checked against
//! what the AOF covers, and what it holds read from a scratch load.

use super::restore::{Target, refuse};
use super::scratch::{self, Contents};
use super::{Backup, io_failure, pitr, run_script};
use crate::exit::Failure;
use crate::registry::Record;

/// Decodes every part (`restore.sh --decode-to`), checks `to_time` against
/// what its AOF covers, and loads it into a scratch server.
pub(super) async fn decode_all(
    record: &Record,
    backup: &Backup,
    targets: &[Target],
    to_time: Option<u64>,
) -> Result<Vec<Contents>, Failure> {
    let id = backup.id.as_str();
    let work = tempfile::Builder::new().prefix(".restore-").tempdir_in(&record.state_dir).map_err(|e| {
        io_failure("restore.scratch", format!("cannot make a scratch folder in `{}`", record.state_dir.display()), e)
    })?;
    let mut expected = Vec::new();
    for target in targets {
        let part = &backup.parts[target.shard];
        let dir = work.path().join(format!("shard{}", target.shard));
        if let Some(t) = to_time {
            // The span first, on the whole AOF (redis-check-aof refuses to
            // cut before its first annotation).
            let whole = work.path().join(format!("whole{}", target.shard));
            let mut args = files_args(backup, target.shard, None);
            args.extend(aof_args(backup, target.shard));
            args.extend(["--decode-to".to_owned(), whole.display().to_string()]);
            run_blocking(record, args, Vec::new()).await?;
            let start = pitr::aof_start(&whole.join("aof"));
            let _ = std::fs::remove_dir_all(&whole);
            let Some(start) = start else {
                return Err(refuse(
                    "restore.no-timestamps",
                    format!(
                        "the AOF copy of shard {} in backup `{id}` has writes without `#TS:` annotations, so no second in it can be told apart",
                        part.shard
                    ),
                    "restore it without `--to-time`; set `persistence.aof_timestamp_enabled: true` for later backups"
                        .into(),
                ));
            };
            if t < start {
                return Err(refuse(
                    "restore.out-of-range",
                    format!(
                        "backup `{id}` covers {} to {} (shard {}); {} is before it",
                        pitr::rfc3339(start),
                        backup.time,
                        part.shard,
                        pitr::rfc3339(t)
                    ),
                    "choose a time in that range, or an earlier backup (`redplate backups`)".into(),
                ));
            }
        }
        let mut args = files_args(backup, target.shard, to_time);
        args.extend(["--decode-to".to_owned(), dir.display().to_string()]);
        run_blocking(record, args, Vec::new()).await?;
        expected.push(scratch::contents(&dir, to_time.is_some()).await?);
    }

    Ok(expected)
}

/// The backup and AOF files of part `shard` as `restore.sh` arguments.
pub(super) fn files_args(backup: &Backup, shard: usize, to_time: Option<u64>) -> Vec<String> {
    let mut args = vec![backup.dir.join(&backup.parts[shard].file).display().to_string()];
    if let Some(t) = to_time {
        args.extend(aof_args(backup, shard));
        args.extend(["--to-time".to_owned(), t.to_string()]);
    }
    args
}

/// `--aof FILE` for part `shard`, when it has an AOF copy.
fn aof_args(backup: &Backup, shard: usize) -> Vec<String> {
    match &backup.parts[shard].aof_file {
        Some(aof) => vec!["--aof".to_owned(), backup.dir.join(aof).display().to_string()],
        None => Vec::new(),
    }
}

pub(super) async fn run_blocking(
    record: &Record,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> Result<String, Failure> {
    let rec = record.clone();
    tokio::task::spawn_blocking(move || run_script(&rec, "restore.sh", &args, &env)).await.map_err(|e| {
        io_failure("restore.script", "the restore script's thread failed".into(), std::io::Error::other(e))
    })?
}
