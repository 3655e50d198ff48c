//! After a restore: each restored master checked against what the backup
//! held (the scratch load), and the replicas waited for until they are
//! linked to their master and done syncing.

use super::scratch::{self, Contents};
use crate::client::Node;
use crate::exit::Failure;
use crate::ops::connect::unreachable;
use crate::registry::Record;
use redplate_config::Diagnostic;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How a restored master was checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub node: String,
    pub keys_expected: u64,
    pub keys_found: u64,
    /// `DEBUG DIGEST`, or `DUMP of N sampled keys` where DEBUG is not allowed.
    pub method: String,
    pub ok: bool,
}

/// `node` against what the backup held: key count and `DEBUG DIGEST`, or
/// the `DUMP` of the sampled keys where DEBUG is not allowed.
pub(super) async fn check(record: &Record, node: &str, want: &Contents) -> Result<Check, Failure> {
    let Some(n) = record.node(node) else {
        return Err(Failure::could_not_run(Diagnostic::error(
            "restore.verify",
            "",
            format!("`{node}` is no longer a node of `{}`", record.name),
        )));
    };
    let conn = Node::connect(&crate::ops::connect::endpoint(record, n)).await.map_err(unreachable)?;
    let keys_found: u64 = conn.query(&["DBSIZE"]).await.map_err(unreachable)?;
    let (method, same) = match scratch::digest(&conn).await {
        Ok(digest) => ("DEBUG DIGEST".to_owned(), digest == want.digest),
        Err(_) => {
            let mut sample: Vec<(Vec<u8>, String)> =
                want.sample.iter().map(|(k, _)| (k.clone(), String::new())).collect();
            scratch::dump(&conn, &mut sample).await.map_err(unreachable)?;
            let same = sample.iter().zip(&want.sample).all(|(a, b)| a.1 == b.1);
            (format!("DUMP of {} sampled keys", sample.len()), same)
        }
    };
    Ok(Check {
        node: node.to_owned(),
        keys_expected: want.keys,
        keys_found,
        method,
        ok: same && keys_found == want.keys,
    })
}

/// Waits (up to 2 minutes) until every replica is linked to its master and
/// done syncing; returns their names.
pub(super) async fn replicas_in_sync(record: &Record, restored: &[&str]) -> Result<Vec<String>, Failure> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = Vec::new();
    for node in record.data_nodes().filter(|n| !restored.contains(&n.name.as_str())) {
        let ep = crate::ops::connect::endpoint(record, node);
        loop {
            let synced = match Node::connect(&ep).await {
                Ok(conn) => conn.info("replication").await.is_ok_and(|i| {
                    i.get("role") == Some("slave")
                        && i.get("master_link_status") == Some("up")
                        && i.get("master_sync_in_progress") == Some("0")
                }),
                Err(_) => false,
            };
            if synced {
                done.push(node.name.clone());
                break;
            }
            if Instant::now() > deadline {
                return Err(Failure::could_not_run(
                    Diagnostic::error(
                        "restore.replicas",
                        "",
                        format!("replica `{}` was not back in sync 2 minutes after the restore", node.name),
                    )
                    .with_hint(format!("look at `redplate logs {} --node {}`", record.name, node.name)),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(done)
}
