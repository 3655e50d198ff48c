//! `flush --tenant`: deletes one tenant's keys and keeps the tenant (its
//! user, quotas and password stay). Guarded like a whole flush: without a
//! token it only counts the tenant's keys per master and hands out a token
//! bound to this deployment and this tenant; with it, the keys go through
//! the removal path (paced `SCAN MATCH` + `UNLINK` on every master), so an
//! interrupted flush is finished by running it again. Audited.

use super::remove::{count_keys, delete_keys};
use super::scan::Pace;
use super::{Progress, check_id, check_isolation, find, match_pattern, open, prefix};
use crate::exit::Failure;
use crate::ops::confirm;
use crate::ops::connect::masters;
use crate::ops::flush::{FlushReport, audit};
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Counts tenant `id`'s keys of `deployment`; with a valid `token`, deletes them.
pub async fn flush(
    home: &Path,
    deployment: &str,
    id: &str,
    token: Option<&str>,
    actor: &str,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<FlushReport, Failure> {
    check_id(id)?;
    let deployment = &super::holder(home, deployment, id)?;
    let opened = open(home, deployment)?;
    let config = &opened.resolved.config;
    check_isolation(config, deployment)?;
    find(config, deployment, id)?;
    let pattern = match_pattern(&prefix(config, id));
    let pace = Pace::gentle(config.tenancy.removal_batch_size);
    let stop = || -> Result<(), Failure> {
        if cancel.load(Ordering::Relaxed) { Err(interrupted(deployment, id)) } else { Ok(()) }
    };
    let scope = format!("flush:tenant:{id}");

    progress.step(&format!("counting the keys of tenant `{id}`"));
    let found = masters(&opened.record).await?;
    let keys = count_keys(&found, &pattern, pace, &stop).await?;
    let total_keys = keys.values().sum();
    let mut report = FlushReport {
        deployment: deployment.to_owned(),
        tenant: Some(id.to_owned()),
        keys: keys.into_iter().collect(),
        total_keys,
        token: None,
        flushed: false,
        deleted: 0,
    };
    let Some(token) = token else {
        report.token = Some(confirm::issue(home, deployment, &scope)?);
        return Ok(report);
    };
    let record = &opened.record;
    let command = format!("SCAN MATCH {pattern} + UNLINK");
    let again = format!("redplate flush {deployment} --tenant {id}");
    if let Err(f) = confirm::check(home, deployment, &scope, token, &again) {
        audit(record, actor, "-", &command, "refused: confirm.rejected".into())?;
        return Err(f);
    }
    let targets: Vec<&str> = found.iter().map(|(n, _)| n.name.as_str()).collect();
    let target = targets.join(",");
    audit(record, actor, &target, &command, "started".into())?;
    progress.step(&format!("deleting {total_keys} keys of tenant `{id}`"));
    progress.total(total_keys);
    let deleted = delete_keys(&found, &pattern, pace, record.mode == Mode::Cluster, progress, &stop).await;
    let outcome = match &deleted {
        Ok(n) => format!("ok: {n} keys deleted"),
        Err(f) => format!("failed: {}", f.diagnostics.first().map_or("", |d| d.code.as_str())),
    };
    audit(record, actor, &target, &command, outcome)?;
    report.deleted = deleted?;
    report.flushed = true;
    Ok(report)
}

fn interrupted(deployment: &str, id: &str) -> Failure {
    Failure::could_not_run(
        Diagnostic::error(
            "flush.interrupted",
            "",
            format!("the flush of tenant `{id}` was interrupted: some of its keys are left"),
        )
        .with_hint(format!("run `redplate flush {deployment} --tenant {id}` again to finish it")),
    )
}
