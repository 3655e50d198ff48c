//! `tenancy.isolation: instance`: every tenant gets a redis-server of its
//! own. That server is a deployment of its own, named `<deployment>-<id>`:
//! a standalone copy of the parent's template (its security, TLS,
//! persistence, preset choices) with `maxmemory` set to the tenant's memory
//! quota, holding exactly one `key_prefix` tenant — this one. So the tenant
//! is kept apart twice, by process and by its ACL user, and every tenant
//! operation (exec, stats, flush, show) runs on that deployment through the
//! `key_prefix` code; `tenant remove` destroys it. The parent's stored
//! template lists the tenant; its instance's template is kept in the
//! parent's state folder (`tenants/<id>.json`).

use super::{Created, Progress, RemoveRequest, Removed, info, remove};
use crate::exit::Failure;
use crate::ops::deploy::{Context, DeployRequest};
use crate::ops::tenant::Renderer;
use crate::registry::{Record, Registry};
use redplate_config::model::{Isolation, Mode, Tenant};
use redplate_config::units::{ByteSize, MemoryLimit};
use redplate_config::{Config, Diagnostic};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The deployment that holds tenant `id` of `deployment`: a DNS label of
/// at most 40 characters, as every deployment name is.
pub fn name(deployment: &str, id: &str) -> Result<String, Failure> {
    let name = format!("{deployment}-{}", id.replace('_', "-"));
    if name.len() > 40 {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "tenant.instance-name",
                "",
                format!(
                    "tenant `{id}` would get the deployment `{name}`, longer than the 40 characters a name may have"
                ),
            )
            .with_hint(format!("use a tenant id of at most {} characters", 39usize.saturating_sub(deployment.len()))),
        ]));
    }
    Ok(name)
}

/// Whether `config` gives each tenant an instance.
pub fn applies(config: &Config) -> bool {
    config.tenancy.isolation == Isolation::Instance
}

/// The template of tenant `tenant`'s own deployment.
fn template(parent: &Config, tenant: &Tenant, name: &str) -> Config {
    let mut c = parent.clone();
    let quota = if tenant.memory.0 > 0 { tenant.memory } else { parent.tenancy.memory_per_tenant };
    c.deployment.name = name.to_owned();
    c.deployment.mode = Mode::Standalone;
    c.replication.replicas = 0;
    c.memory.maxmemory = MemoryLimit::Size(quota);
    c.tenancy.isolation = Isolation::KeyPrefix;
    c.tenancy.max_tenants = 1;
    c.tenancy.memory_per_tenant = ByteSize(quota.0);
    c.tenancy.tenants = vec![Tenant { memory: quota, ..tenant.clone() }];
    c
}

/// Where the instance's template is kept: the parent's state folder.
fn template_file(parent: &Record, id: &str) -> PathBuf {
    parent.path(&format!("tenants/{id}.json"))
}

/// Deploys the instance of tenant `tenant` of `parent` (whose template is
/// `config`); returns its record.
pub fn deploy(ctx: &Context, parent: &Record, config: &Config, tenant: &Tenant) -> Result<Record, Failure> {
    let name = name(&parent.name, &tenant.id)?;
    let file = template_file(parent, &tenant.id);
    let text = redplate_config::export(&template(config, tenant, &name));
    crate::ops::config::write_file(&file, text.as_bytes())?;
    ctx.progress.step(&format!("deploying `{name}`, the instance of tenant `{}`", tenant.id));
    crate::ops::deploy::deploy(
        ctx,
        &DeployRequest {
            template: file,
            name: None,
            preset: None,
            sets: Vec::new(),
            // An instance runs where its parent runs.
            backend: Some(parent.backend.clone()),
        },
    )
}

/// Deploys tenant `tenant`'s instance and then records the tenant in the
/// parent's stored template (`config`, which already lists it). If the
/// second step fails the instance is destroyed again.
pub async fn create(
    home: &Path,
    renderer: &Renderer,
    parent: &Record,
    config: &Config,
    tenant: &Tenant,
    mut warnings: Vec<Diagnostic>,
) -> Result<Created, Failure> {
    let name = name(&parent.name, &tenant.id)?;
    let record = match adoptable(home, &name, &tenant.id) {
        // A create interrupted after the deploy: this run finishes it.
        Some(record) => record,
        None => {
            let (p, c, t) = (parent.clone(), config.clone(), tenant.clone());
            blocking(home, renderer, move |ctx| deploy(ctx, &p, &c, &t)).await?
        }
    };
    if let Err(f) = crate::ops::stored::save(parent, config) {
        let _ = destroy(home, &name, true).await;
        return Err(f);
    }
    if record.users.is_empty() {
        warnings.push(Diagnostic::warning(
            "tenant.instance-no-auth",
            "/security/auth_enabled",
            format!("`{name}` has no acl users (auth is off): anyone reaching its port is the tenant"),
        ));
    }
    let mut shown = info(config, parent, tenant);
    shown.password.file = super::password_file(&record, &shown.user);
    Ok(Created {
        deployment: parent.name.clone(),
        tenant: shown,
        nodes: record.data_nodes().map(|n| n.name.clone()).collect(),
        // Rendered into the instance's users.acl at its deploy.
        persisted: record.data_nodes().map(|n| n.name.clone()).collect(),
        warnings,
    })
}

/// The deployment `name` if it is tenant `id`'s instance already (its stored
/// template holds exactly that tenant): left by a create that was cut off
/// before the parent's template recorded the tenant.
fn adoptable(home: &Path, name: &str, id: &str) -> Option<Record> {
    let record = Registry::new(home).load(name).ok()?;
    let own = crate::ops::stored::load(&record).ok()?.config;
    let ours = own.tenancy.tenants.len() == 1 && own.tenancy.tenants[0].id == id;
    ours.then_some(record)
}

/// Removes tenant `request.id`'s instance: counts its keys (all a dry run
/// does), destroys it (its data too unless `keep_data`) and drops the
/// tenant from the parent's stored template. Run again after an
/// interruption, it finishes the job.
pub async fn remove_instance(
    home: &Path,
    parent: &Record,
    config: &Config,
    request: &RemoveRequest,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Removed, Failure> {
    let name = name(&parent.name, &request.id)?;
    let registry = Registry::new(home);
    let exists = registry.exists(&name);
    let mut removed = if exists {
        let count = RemoveRequest { dry_run: true, ..request.clone() };
        Box::pin(remove(home, &name, &count, progress, cancel)).await?
    } else {
        Removed {
            deployment: name.clone(),
            tenant: request.id.clone(),
            user: super::user_name(&request.id),
            prefix: super::prefix(config, &request.id),
            dry_run: request.dry_run,
            kept_data: request.keep_data,
            keys: Default::default(),
            total_keys: 0,
            deleted: 0,
            seconds: 0.0,
            warnings: Vec::new(),
        }
    };
    removed.deployment = parent.name.clone();
    removed.dry_run = request.dry_run;
    removed.kept_data = request.keep_data;
    if request.dry_run {
        return Ok(removed);
    }
    if exists || registry.dir(&name).exists() {
        progress.step(&format!("destroying `{name}`"));
        destroy(home, &name, !request.keep_data).await?;
    }
    if !request.keep_data {
        removed.deleted = removed.total_keys;
        let _ = std::fs::remove_file(template_file(parent, &request.id));
    }
    let mut config = config.clone();
    config.tenancy.tenants.retain(|t| t.id != request.id);
    crate::ops::stored::save(parent, &config)?;
    Ok(removed)
}

/// Destroys the instances of every tenant of `config` (before the parent
/// itself goes); an instance already gone is skipped.
pub fn destroy_all(home: &Path, parent: &str, config: &Config, purge: bool) -> Result<(), Failure> {
    if !applies(config) {
        return Ok(());
    }
    let registry = Registry::new(home);
    for t in &config.tenancy.tenants {
        let name = name(parent, &t.id)?;
        if registry.exists(&name) || (purge && registry.dir(&name).exists()) {
            crate::ops::lifecycle::destroy(home, &name, purge, &crate::backend::Silent)?;
        }
    }
    Ok(())
}

async fn destroy(home: &Path, name: &str, purge: bool) -> Result<(), Failure> {
    let (home, name) = (home.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || crate::ops::lifecycle::destroy(&home, &name, purge, &crate::backend::Silent))
        .await
        .map_err(joined)?
}

/// Runs a deploy on a blocking thread (the local backend is synchronous).
async fn blocking<T: Send + 'static>(
    home: &Path,
    renderer: &Renderer,
    work: impl FnOnce(&Context) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let (home, host, plugin_dirs) = (home.to_owned(), renderer.host.clone(), renderer.plugin_dirs.clone());
    tokio::task::spawn_blocking(move || {
        let ctx = Context { home, host: &host, plugin_dirs: &plugin_dirs, progress: &crate::backend::Silent };
        work(&ctx)
    })
    .await
    .map_err(joined)?
}

fn joined(e: tokio::task::JoinError) -> Failure {
    Failure::could_not_run(Diagnostic::error("tenant.worker", "", format!("the worker thread failed: {e}")))
}
