//! `tenant create`: the tenant is added to the stored template, checked by
//! the template's own rules (its quotas must fit the instance), its ACL user
//! rendered through the normal pipeline (the `redis-conf` plugin's recipe,
//! for the `local` target), checked against the servers' versions, set on
//! every data node and saved; any failure undoes what was done.

use super::{TenantInfo, acl, check_id, check_isolation, info, open, user_name};
use crate::backend::BackendError;
use crate::exit::Failure;
use crate::ops::deploy::failure;
use crate::ops::render::{PluginSet, render, template_plugins};
use crate::plugin::PluginHost;
use crate::registry::{Record, Registry, valid_name};
use crate::secrets::SecretStore;
use redplate_config::model::{SecretSource, Tenant};
use redplate_config::units::ByteSize;
use redplate_config::{Config, Diagnostic, Resolved, Target};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What rendering needs: the plugin engine and third-party plugin folders.
pub struct Renderer {
    pub host: Arc<PluginHost>,
    pub plugin_dirs: Vec<PathBuf>,
}

/// What `tenant create` was asked; `None` quotas use the `tenancy` defaults.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub id: String,
    pub memory: Option<ByteSize>,
    pub connections: Option<u32>,
    pub ops_per_second: Option<u32>,
    /// A file holding the tenant's password; default: generated and kept.
    pub password_file: Option<PathBuf>,
}

/// What `tenant create` did.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub deployment: String,
    pub tenant: TenantInfo,
    /// The data nodes the user was set on.
    pub nodes: Vec<String>,
    /// The nodes whose ACL file holds it (`ACL SAVE`).
    pub persisted: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

/// Creates tenant `request.id` on the running deployment `deployment`.
pub async fn create(
    home: &Path,
    renderer: &Renderer,
    deployment: &str,
    request: &CreateRequest,
) -> Result<Created, Failure> {
    let id = request.id.as_str();
    check_id(id)?;
    if !valid_name(deployment) {
        return Err(failure(BackendError::Unknown(deployment.to_owned())));
    }
    let registry = Registry::new(home);
    let _lock = registry.lock(deployment).map_err(failure)?;
    let opened = open(home, deployment)?;
    let old = &opened.resolved.config;
    check_isolation(old, deployment)?;
    if old.tenancy.tenants.iter().any(|t| t.id == id) {
        return Err(Failure::invalid(vec![
            Diagnostic::error("tenant.exists", "", format!("`{deployment}` already has a tenant `{id}`")).with_hint(
                format!("choose another id; `redplate tenant show {deployment} {id}` shows the existing one"),
            ),
        ]));
    }
    let user = user_name(id);
    let mut config = old.clone();
    config.tenancy.tenants.push(Tenant {
        id: id.to_owned(),
        memory: request.memory.unwrap_or(ByteSize(0)),
        connections: request.connections.unwrap_or(0),
        ops_per_second: request.ops_per_second.unwrap_or(0),
        password: match &request.password_file {
            Some(f) => Some(SecretSource::File(readable(f)?)),
            None => None,
        },
        database: None,
    });
    let resolved = fits(old, config, &opened.record, deployment, id)?;
    let config = &resolved.config;
    let mut warnings = advice(config, deployment);
    if super::instance::applies(config) {
        let Some(tenant) = config.tenancy.tenants.iter().find(|t| t.id == id) else {
            return Err(Failure::could_not_run(Diagnostic::error(
                "tenant.internal",
                "",
                format!("tenant `{id}` went missing"),
            )));
        };
        return super::instance::create(home, renderer, &opened.record, config, tenant, warnings).await;
    }
    let store = SecretStore::new(home);
    let forget = |f: Failure| {
        // A password generated for a tenant that was not made is not kept.
        let _ = store.forget(deployment, &user);
        f
    };
    let (rules, password) =
        render_user(renderer, home, &opened.record, resolved.clone(), &user).await.map_err(forget)?;
    let nodes = acl::connect_all(&opened.record).await.map_err(forget)?;
    acl::check_rules(&nodes, &user, &rules).await.map_err(forget)?;
    acl::set_everywhere(&nodes, &user, &rules).await.map_err(forget)?;
    let persisted = match acl::save_everywhere(&nodes).await {
        Ok(saved) => saved,
        Err(e) => {
            let f = crate::ops::connect::unreachable(e);
            return Err(forget(acl::rolled_back(f, &nodes, &user).await));
        }
    };
    if persisted.is_empty() {
        warnings.push(
            Diagnostic::warning(
                "tenant.not-persisted",
                "",
                format!("the nodes of `{deployment}` use no acl file: `{user}` lives until they restart"),
            )
            .with_hint(format!(
                "the stored template keeps the tenant: `redplate apply {deployment} <template>` with auth on \
                 (`security.auth_enabled: true`) renders it into `users.acl`"
            )),
        );
    }
    let mut record = opened.record.clone();
    if let Err(f) = keep(&record, config, &user, password.as_deref()) {
        return Err(forget(acl::rolled_back(f, &nodes, &user).await));
    }
    warnings.extend(list_user(&registry, &mut record, &user));
    let tenant = config.tenancy.tenants.iter().find(|t| t.id == id).map(|t| info(config, &record, t));
    let Some(tenant) = tenant else {
        return Err(Failure::could_not_run(Diagnostic::error(
            "tenant.internal",
            "",
            format!("tenant `{id}` went missing from the template it was just added to"),
        )));
    };
    Ok(Created {
        deployment: deployment.to_owned(),
        tenant,
        nodes: nodes.iter().map(|n| n.endpoint().name.clone()).collect(),
        persisted,
        warnings,
    })
}

/// An absolute path to a readable password file.
fn readable(path: &Path) -> Result<String, Failure> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match std::fs::metadata(&absolute) {
        Ok(m) if m.is_file() => Ok(absolute.display().to_string()),
        Ok(_) => Err(bad_password_file(&absolute, "it is not a file".into())),
        Err(e) => Err(bad_password_file(&absolute, e.to_string())),
    }
}

fn bad_password_file(path: &Path, why: String) -> Failure {
    Failure::invalid(vec![
        Diagnostic::error(
            "tenant.password-file",
            "",
            format!("cannot use `{}` as the password file: {why}", path.display()),
        )
        .with_hint("give a file holding the password (mode 0600), or leave `--password-file` out to generate one"),
    ])
}

/// The template with the new tenant, checked as a loaded template is
/// (types, ranges) and by the host rules: an error the old template did not
/// have is the new tenant's (a quota that does not fit the instance).
pub(super) fn fits(
    old: &Config,
    config: Config,
    record: &Record,
    deployment: &str,
    id: &str,
) -> Result<Resolved, Failure> {
    let file = crate::ops::stored::path(record).display().to_string();
    let refuse = |mut ds: Vec<Diagnostic>| {
        ds.insert(
            0,
            Diagnostic::error("tenant.does-not-fit", "", format!("tenant `{id}` does not fit `{deployment}`"))
                .with_hint(
                    "give smaller quotas (`--memory`, `--connections`, `--ops-per-second`), or change what the \
                            errors below name in the deployment's template and `redplate apply` it",
                ),
        );
        Failure::invalid(ds)
    };
    let resolved =
        redplate_config::import_file(&redplate_config::export(&config), &file).map_err(|e| refuse(e.diagnostics()))?;
    let key = |d: &Diagnostic| (d.code.clone(), d.pointer.clone());
    let before: BTreeSet<_> = redplate_config::validate_config(old).iter().filter(|d| d.is_error()).map(key).collect();
    let mut new: Vec<Diagnostic> = redplate_config::validate_config(&resolved.config)
        .into_iter()
        .filter(|d| d.is_error() && !before.contains(&key(d)))
        .collect();
    let t = &resolved.config.tenancy;
    let connections = t.tenants.iter().find(|x| x.id == id).map_or(0, |x| x.connections);
    if connections > resolved.config.performance.maxclients {
        new.push(
            Diagnostic::error(
                "tenancy.tenant-connections-exceed",
                "/tenancy/tenants",
                format!(
                    "a quota of {connections} connections exceeds `performance.maxclients` ({})",
                    resolved.config.performance.maxclients
                ),
            )
            .with_hint("lower `--connections` or raise `performance.maxclients`"),
        );
    }
    if new.is_empty() { Ok(resolved) } else { Err(refuse(new)) }
}

/// What the user should know about the tenants of this template.
fn advice(config: &Config, deployment: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if !config.security.auth_enabled {
        out.push(
            Diagnostic::warning(
                "tenant.no-auth",
                "/security/auth_enabled",
                format!(
                    "`{deployment}` has auth off: any client can connect as `default` without a password and \
                     read every tenant's keys"
                ),
            )
            .with_hint("set `security.auth_enabled: true` for tenants to be kept apart"),
        );
    }
    if !config.tenancy.allow_scripts {
        out.push(
            Diagnostic::new(
                redplate_config::Severity::Info,
                "tenant.no-scripts",
                "/tenancy/allow_scripts",
                format!("tenants of `{deployment}` cannot run lua scripts (`tenancy.allow_scripts: false`)"),
            )
            .with_hint(
                "set `tenancy.allow_scripts: true` to let them run EVAL/EVALSHA on their own keys (redis 7 checks \
                 every key a script touches against the tenant's acl)",
            ),
        );
    }
    out
}

/// Renders the template for `local` with the `redis-conf` generator and
/// returns `user`'s ACL rules (after its name) and its clear password file.
async fn render_user(
    renderer: &Renderer,
    home: &Path,
    record: &Record,
    resolved: Resolved,
    user: &str,
) -> Result<(Vec<String>, Option<Vec<u8>>), Failure> {
    let host = renderer.host.clone();
    let dirs = renderer.plugin_dirs.clone();
    let template = record.template.clone();
    let home = home.to_path_buf();
    let user = user.to_owned();
    // Plugin calls are CPU work: off the runtime's thread.
    let job = tokio::task::spawn_blocking(move || {
        let config = &resolved.config;
        let extra = template_plugins(config, Some(&template));
        let mut set = PluginSet::load(&host, &[Target::Local], Some(&config.cache.strategy), &extra, &dirs)?;
        set.generators.retain(|p| p.info.name == "redis-conf");
        let rendered = render(&host, &set, &resolved, &[Target::Local], &SecretStore::new(&home), false)?;
        let file = |path: &str| rendered.artifacts.iter().find(|a| a.path == path).map(|a| a.content.clone());
        let acl = file("redis/users.acl").map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let head = format!("user {user} ");
        let Some(line) = acl.lines().find(|l| l.starts_with(&head)) else {
            return Err(Failure::could_not_run(
                Diagnostic::error("tenant.no-acl-user", "", format!("the rendered `users.acl` has no user `{user}`"))
                    .with_hint("this is a bug in redplate or in the `redis-conf` plugin: please report it"),
            ));
        };
        let rules = line[head.len()..].split_whitespace().map(str::to_owned).collect();
        Ok((rules, file(&format!("secrets/{user}.password"))))
    });
    match job.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Failure::panicked("rendering the tenant's acl user", &*e.into_panic())),
        Err(e) => Err(Failure::could_not_run(Diagnostic::error("tenant.render", "", e.to_string()))),
    }
}

/// Keeps the tenant: its password's copy in the state folder, then the
/// stored template (the commit point). On failure the copy goes again.
fn keep(record: &Record, config: &Config, user: &str, password: Option<&[u8]>) -> Result<(), Failure> {
    let file = super::password_file(record, user);
    if let Some(p) = password {
        crate::ops::config::write_file(&file, p)?;
    }
    crate::ops::stored::save(record, config).inspect_err(|_| {
        let _ = std::fs::remove_file(&file);
    })
}

/// Adds `user` to the record's user list (what `deploy` prints as the
/// connection info); a failure here is a warning, the tenant exists.
fn list_user(registry: &Registry, record: &mut Record, user: &str) -> Option<Diagnostic> {
    if record.users.iter().any(|u| u == user) {
        return None;
    }
    record.users.push(user.to_owned());
    registry
        .save(record)
        .err()
        .map(|e| Diagnostic::warning("tenant.record", "", format!("the deployment record does not list `{user}`: {e}")))
}
