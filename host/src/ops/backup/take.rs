//! Taking a backup: for every master (shard), the rendered `backup.sh` run
//! against one of its online replicas when there is one (the master is not
//! forked), else against the master; then a manifest groups the parts
//! under one id. Compression, encryption, checksums, the AOF copy and
//! retention are the script's.

use super::{Backup, Destination, Part, io_failure, manifest_path, node_env, pitr, run_script};
use crate::client::Node;
use crate::exit::Failure;
use crate::ops::connect::{data_endpoints, masters, unreachable};
use crate::registry::{NodeRecord, Record};
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use std::path::Path;

/// What `redplate backup` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Taken {
    pub backup: Backup,
    pub destination: Destination,
    pub seconds: f64,
}

/// The online replicas of a master, from its `INFO replication` (`slaveN:ip=…,port=…,state=online,…`).
fn online_replicas<'r>(record: &'r Record, info: &crate::client::Info) -> Vec<&'r NodeRecord> {
    // By address, as the backend knows its nodes (containers share a port).
    online_replica_addresses(info)
        .into_iter()
        .filter_map(|(ip, port)| crate::backend::node_at(record, &ip, port))
        .collect()
}

/// The `ip` and `port` of the master's online replicas, from its INFO.
fn online_replica_addresses(info: &crate::client::Info) -> Vec<(String, u16)> {
    info.0
        .iter()
        .filter(|(k, _)| k.starts_with("slave") && k[5..].bytes().all(|b| b.is_ascii_digit()))
        .filter(|(_, v)| v.split(',').any(|f| f == "state=online"))
        .filter_map(|(_, v)| {
            let field = |name: &str| v.split(',').find_map(|f| f.strip_prefix(name));
            Some((field("ip=").unwrap_or_default().to_owned(), field("port=")?.parse().ok()?))
        })
        .collect()
}

/// Whether the replica at `ep` has every write the master had at replication
/// offset `offset`, waiting up to 10 s for it.
async fn caught_up(ep: &crate::client::Endpoint, offset: u64) -> bool {
    let Ok(conn) = Node::connect(ep).await else { return false };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(info) = conn.info("replication").await
            && info.uint("slave_repl_offset").is_some_and(|o| o >= offset)
        {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Backs up every shard of `record`.
pub async fn take(record: &Record) -> Result<Taken, Failure> {
    let started = std::time::Instant::now();
    let config = crate::ops::stored::load(record)?.config;
    let destination = super::destination(record, &config.backup.destination);
    let mut shards = masters(record).await?;
    // Cluster: shards in slot order, each with the first slot it serves.
    let mut first_slots = vec![None; shards.len()];
    if record.mode == Mode::Cluster
        && let Some((_, conn)) = shards.first()
    {
        let layout = crate::client::cluster_masters(conn).await.map_err(unreachable)?;
        let first = |port: u16| layout.iter().find(|m| m.port == port).and_then(|m| m.slots.iter().map(|s| s.0).min());
        shards.sort_by_key(|(n, _)| first(n.port).unwrap_or(u16::MAX));
        first_slots = shards.iter().map(|(n, _)| first(n.port)).collect();
    }
    let data = data_endpoints(record);
    // The shards' scripts run side by side: each waits for its own BGSAVE.
    let mut runs = Vec::new();
    let mut sources = Vec::new();
    for (shard, (master, conn)) in shards.iter().enumerate() {
        let source: &NodeRecord = if config.backup.from_replica {
            let info = conn.info("replication").await.map_err(unreachable)?;
            let online = online_replicas(record, &info);
            let offset = info.uint("master_repl_offset").unwrap_or(0);
            let mut chosen = *master;
            for (n, ep) in data.iter().filter(|(n, _)| online.iter().any(|o| o.name == n.name)) {
                // A replica that is behind would give a snapshot without the
                // latest writes: it must first have what the master had.
                if caught_up(ep, offset).await {
                    chosen = *n;
                    break;
                }
            }
            chosen
        } else {
            master
        };
        let prefix =
            if record.mode == Mode::Cluster { format!("{}-shard{shard}", record.name) } else { record.name.clone() };
        let mut env = node_env(record, source);
        let source_conn = Node::connect(&crate::ops::connect::endpoint(record, source)).await.map_err(unreachable)?;
        env.push(("REDIS_DATA_DIR".into(), super::data_dir(record, source, &source_conn).await?.display().to_string()));
        env.push(("BACKUP_DIR".into(), destination.dir.display().to_string()));
        env.push(("BACKUP_PREFIX".into(), prefix));
        // The template's bucket is for the scheduled jobs of other targets;
        // here backups stay local unless the caller's environment asks.
        if std::env::var_os("BACKUP_S3_URL").is_none() {
            env.push(("BACKUP_S3_URL".into(), String::new()));
        }
        let rec = record.clone();
        runs.push(tokio::task::spawn_blocking(move || run_script(&rec, "backup.sh", &[], &env)));
        sources.push((shard, *master, source));
    }
    let outputs = futures_util::future::join_all(runs).await;
    let mut parts = Vec::new();
    for ((shard, master, source), out) in sources.into_iter().zip(outputs) {
        let out = out.map_err(|e| {
            io_failure("backup.script", "the backup script's thread failed".into(), std::io::Error::other(e))
        })??;
        let Some(path) = out.lines().last().map(str::trim).filter(|l| !l.is_empty()) else {
            return Err(Failure::could_not_run(Diagnostic::error(
                "backup.script",
                "",
                "backup.sh succeeded but did not print the backup's path",
            )));
        };
        let source_conn = Node::connect(&crate::ops::connect::endpoint(record, source)).await.map_err(unreachable)?;
        let keys: u64 = source_conn.query(&["DBSIZE"]).await.map_err(unreachable)?;
        parts.push(part(&destination.dir, Path::new(path), shard, master, source, first_slots[shard], keys)?);
    }
    // One id per backup; a second one within the same second waits for the next.
    let mut unix = pitr::now();
    while manifest_path(&destination.dir, &record.name, &pitr::id(unix)).exists() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        unix = pitr::now();
    }
    let backup = Backup {
        id: pitr::id(unix),
        deployment: record.name.clone(),
        time: pitr::rfc3339(unix),
        unix,
        dir: destination.dir.clone(),
        encrypted: config.backup.encryption.enabled,
        parts,
    };
    let path = manifest_path(&destination.dir, &record.name, &backup.id);
    let text = serde_json::to_string_pretty(&backup).unwrap_or_default();
    crate::registry::write_atomic(&path, text.as_bytes(), false)
        .map_err(|e| Failure::could_not_run(Diagnostic::error("backup.manifest", "", e.to_string())))?;
    // Retention pruned older files: their manifests go too.
    super::list_in(&destination.dir, &record.name)?;
    Ok(Taken { backup, destination, seconds: started.elapsed().as_secs_f64() })
}

/// The part `backup.sh` wrote at `path` (its AOF copy beside it, if any).
fn part(
    dir: &Path,
    path: &Path,
    shard: usize,
    master: &NodeRecord,
    source: &NodeRecord,
    first_slot: Option<u16>,
    keys: u64,
) -> Result<Part, Failure> {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = file.split(".rdb").next().unwrap_or_default().to_owned();
    let size_of = |name: &str| std::fs::metadata(dir.join(name)).map(|m| m.len());
    let size =
        size_of(&file).map_err(|e| io_failure("backup.files", format!("cannot read `{}`", path.display()), e))?;
    let sum_file = dir.join(format!("{file}.sha256"));
    let sha256 = std::fs::read_to_string(&sum_file)
        .map_err(|e| io_failure("backup.files", format!("cannot read `{}`", sum_file.display()), e))?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let aof_prefix = format!("{stem}.aof.tar");
    let aof_file = std::fs::read_dir(dir)
        .map_err(|e| io_failure("backup.files", format!("cannot read `{}`", dir.display()), e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&aof_prefix) && !n.ends_with(".sha256"));
    let aof_size = aof_file.as_deref().map_or(0, |a| size_of(a).unwrap_or(0));
    Ok(Part {
        shard,
        master: master.name.clone(),
        source: source.name.clone(),
        first_slot,
        file,
        sha256,
        aof_file,
        size: size + aof_size,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_online_replicas_are_sources() {
        let mut info = crate::client::Info(Default::default());
        info.0.insert("slave0".into(), "ip=127.0.0.1,port=7010,state=online,offset=10,lag=0".into());
        info.0.insert("slave1".into(), "ip=127.0.0.1,port=7020,state=wait_bgsave,offset=0,lag=0".into());
        info.0.insert("slave_read_repl_offset".into(), "10".into());
        assert_eq!(online_replica_addresses(&info), [("127.0.0.1".to_owned(), 7010)]);
    }
}
