//! `redplate apply <deployment> <template>`: a changed template rendered
//! with the deploy's settings and applied to the running deployment by its
//! backend (the nodes, their roles and ports stay as they are). The
//! template becomes the deployment's stored copy — keeping the tenants made
//! at run time (`redplate tenant create`), which live in that copy only.

use super::deploy::{Context, failure, render, to_store};
use crate::backend;
use crate::exit::Failure;
use crate::ops;
use crate::registry::Registry;
use redplate_config::{Config, Diagnostic, Topology};
use std::path::Path;

/// What `apply` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// One line per action the backend took (`no change` when none).
    pub actions: Vec<String>,
    /// Tenants of the stored copy that the template does not list, kept.
    pub kept_tenants: Vec<String>,
}

/// Re-renders `template` (with the deploy's `--set`s and `sets` on top)
/// and applies the difference to the running deployment `name`.
pub fn apply(ctx: &Context, name: &str, template: &Path, sets: &[String]) -> Result<Applied, Failure> {
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let backend = backend::of(&record).map_err(failure)?;
    let template = std::path::absolute(template).unwrap_or_else(|_| template.to_owned());
    let mut all = record.sets.clone();
    all.extend(sets.iter().cloned());
    ctx.progress.step("rendering the changed template");
    let mut resolved = ops::config::load(Some(&template), record.preset, &all)?;
    // A deployment made before stored copies has no tenants made at run time.
    let kept_tenants = match ops::stored::path(&record).exists() {
        true => keep_tenants(&ops::stored::load(&record)?.config, &mut resolved.config, name)?,
        false => Vec::new(),
    };
    if resolved.config.deployment.name != record.name {
        return Err(Failure::invalid(vec![Diagnostic::error(
            "apply.renamed",
            "/deployment/name",
            format!("the template names `{}`, not `{}`", resolved.config.deployment.name, record.name),
        )]));
    }
    let topology = Topology::derive(&resolved.config, backend.target());
    let same = topology.nodes.len() == record.nodes.len()
        && topology.nodes.iter().zip(&record.nodes).all(|(t, r)| t.name == r.name && t.role == r.role);
    if !same || resolved.config.deployment.mode != record.mode {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "apply.topology",
                "/deployment/mode",
                "the changed template has other nodes (mode, replicas, shards or sentinels); apply changes settings only",
            )
            .with_hint(format!("`redplate destroy {name}` and deploy the new template")),
        ]));
    }
    let artifacts = render(ctx, backend.target(), &resolved, &template)?;
    let mut result = backend.update(&mut record, &artifacts, ctx.progress);
    if result.is_ok() {
        ops::stored::save(&record, &to_store(&resolved.config, &template))?;
        record.template = template;
        record.sets = all;
    }
    // The gateway reads the stored template: started or stopped once it is saved.
    let wanted = resolved.config.tenancy.enabled && resolved.config.tenancy.gateway;
    if let Ok(actions) = &mut result
        && wanted != record.gateway.is_some()
    {
        match backend.set_gateway(&mut record, wanted) {
            Ok(done) => actions.push(done),
            Err(e) => result = Err(e),
        }
    }
    registry.save(&record).map_err(failure)?;
    let actions = result.map_err(failure)?;
    Ok(Applied { actions, kept_tenants })
}

/// Adds to `new` the tenants of the stored copy `old` that it does not
/// list, and returns their ids: they were made at run time, and a template
/// written before them must not remove them (`redplate tenant remove`
/// does, with their keys). A template that turns tenancy off while there
/// are tenants is refused.
fn keep_tenants(old: &Config, new: &mut Config, name: &str) -> Result<Vec<String>, Failure> {
    let missing: Vec<_> =
        old.tenancy.tenants.iter().filter(|t| !new.tenancy.tenants.iter().any(|n| n.id == t.id)).cloned().collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = missing.iter().map(|t| t.id.clone()).collect();
    if old.tenancy.enabled && !new.tenancy.enabled {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "apply.tenants",
                "/tenancy/enabled",
                format!("the template turns tenancy off, but `{name}` has tenants: {}", ids.join(", ")),
            )
            .with_hint(format!("remove them first with `redplate tenant remove {name} <tenant-id>`")),
        ]));
    }
    new.tenancy.tenants.extend(missing);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redplate_config::model::Tenant;

    fn with_tenants(enabled: bool, ids: &[&str]) -> Config {
        let mut c = Config::default();
        c.tenancy.enabled = enabled;
        c.tenancy.tenants = ids.iter().map(|id| Tenant { id: (*id).into(), ..Tenant::default() }).collect();
        c
    }

    #[test]
    fn tenants_made_at_run_time_are_kept_and_named() {
        let old = with_tenants(true, &["beta", "acme"]);
        let mut new = with_tenants(true, &["beta"]);
        assert_eq!(keep_tenants(&old, &mut new, "shop").expect("kept"), ["acme"]);
        let ids: Vec<&str> = new.tenancy.tenants.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["beta", "acme"]);
        assert!(keep_tenants(&old, &mut new, "shop").expect("again").is_empty(), "nothing more to keep");
    }

    #[test]
    fn tenancy_turned_off_with_tenants_left_is_refused() {
        let old = with_tenants(true, &["acme"]);
        let mut new = with_tenants(false, &[]);
        let f = keep_tenants(&old, &mut new, "shop").expect_err("refused");
        assert_eq!(f.diagnostics[0].code, "apply.tenants");
    }
}
