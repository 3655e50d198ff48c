//! `redplate flush`: empties a deployment only on purpose. Without a token
//! it changes nothing and says what would go (keys per master) with a
//! confirmation token bound to the deployment; with the token it runs
//! `FLUSHALL ASYNC` on every master (replicas follow). Audited. One
//! tenant's keys are flushed by `ops::tenant::flush`, which returns the same
//! report.

use crate::exit::Failure;
use crate::ops::connect::{masters, unreachable};
use crate::ops::{audit, confirm};
use crate::registry::Record;
use redplate_config::Diagnostic;
use std::path::Path;

/// What a flush would delete, or deleted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlushReport {
    pub deployment: String,
    /// The tenant whose keys are flushed; none: the whole deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Keys per master before the flush.
    pub keys: Vec<(String, u64)>,
    pub total_keys: u64,
    /// Without `--confirm`: the token that makes the next call act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether the flush ran.
    pub flushed: bool,
    /// Keys deleted one by one (a tenant's flush); a whole flush deletes
    /// `total_keys` at once.
    pub deleted: u64,
}

const SCOPE: &str = "flush:all";

/// Counts the keys on every master; with a valid `token`, flushes them.
pub async fn flush(home: &Path, record: &Record, token: Option<&str>, actor: &str) -> Result<FlushReport, Failure> {
    let nodes = masters(record).await?;
    let mut keys = Vec::new();
    for (node, conn) in &nodes {
        let n: u64 = conn.query(&["DBSIZE"]).await.map_err(unreachable)?;
        keys.push((node.name.clone(), n));
    }
    let total_keys = keys.iter().map(|(_, n)| n).sum();
    let mut report = FlushReport {
        deployment: record.name.clone(),
        tenant: None,
        keys,
        total_keys,
        token: None,
        flushed: false,
        deleted: 0,
    };
    let Some(token) = token else {
        report.token = Some(confirm::issue(home, &record.name, SCOPE)?);
        return Ok(report);
    };
    let again = format!("redplate flush {}", record.name);
    let write_audit = |target: &str, outcome: String| audit(record, actor, target, "FLUSHALL ASYNC", outcome);
    if let Err(f) = confirm::check(home, &record.name, SCOPE, token, &again) {
        write_audit("-", "refused: confirm.rejected".into())?;
        return Err(f);
    }
    for (node, conn) in &nodes {
        write_audit(&node.name, "started".into())?;
        let done = conn.call(&["FLUSHALL", "ASYNC"]).await;
        write_audit(
            &node.name,
            match &done {
                Ok(_) => "ok".into(),
                Err(e) => format!("failed: {}", crate::text::clean(&e.to_string(), 512)),
            },
        )?;
        // Flushing is idempotent: after a failure half-way, running it
        // again (with a new token) finishes the job.
        done.map_err(unreachable)?;
    }
    report.flushed = true;
    Ok(report)
}

/// Writes one line of a flush to the deployment's audit log; a flush that
/// cannot be audited does not run.
pub(crate) fn audit(record: &Record, actor: &str, target: &str, command: &str, outcome: String) -> Result<(), Failure> {
    let entry = audit::Entry {
        time: audit::now(),
        actor: actor.to_owned(),
        operation: "flush",
        target: target.to_owned(),
        command: command.to_owned(),
        arguments: 1,
        outcome,
    };
    audit::append(&record.state_dir, &entry).map_err(|e| {
        Failure::could_not_run(Diagnostic::error(
            "audit.write",
            "",
            format!("cannot write the audit log of `{}`: {e}; nothing was flushed", record.name),
        ))
    })
}
