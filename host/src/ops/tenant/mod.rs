//! Tenants of a running deployment, `key_prefix` isolation: create, list,
//! show, stats, tenant-scoped exec and removal. A tenant is an entry of the
//! deployment's stored template (`tenancy.tenants`, the source of truth)
//! plus its ACL user `tenant-<id>` on every data node, bound to
//! `<prefix>*` and its channels by the recipe the `redis-conf` plugin renders
//! (one implementation: the user's rules come from a render of the stored
//! template, never from a second copy of the recipe here).
//!
//! Every function takes a deployment name and resolved settings and returns
//! a serializable result: the CLI and the REST API call these.

mod acl;
mod create;
mod exec;
mod flush;
mod instance;
mod remove;
mod scan;
mod stats;
mod update;

pub use create::{CreateRequest, Created, Renderer, create};
pub use exec::{TenantExec, TenantReply, exec};
pub use flush::flush;
pub use instance::{deploy as deploy_instance, destroy_all as destroy_instances};
pub use remove::{Progress, RemoveRequest, Removed, Silent, remove};
pub use scan::{Pace, Scanner};
pub use stats::{Measured, NodeUsage, TenantStats, measure, stats};
pub use update::{UpdateRequest, Updated, update};

use crate::exit::Failure;
use crate::ops::deploy::failure;
use crate::registry::{DeployState, Record, Registry};
use redplate_config::model::{Isolation, SecretSource, Tenant};
use redplate_config::units::ByteSize;
use redplate_config::{Config, Diagnostic, Resolved};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a tenant is: its user, keys, channels, quotas and password.
#[derive(Debug, Clone, Serialize)]
pub struct TenantInfo {
    pub id: String,
    /// Its ACL user.
    pub user: String,
    /// Its keys start with this.
    pub prefix: String,
    /// Its channel pattern (none: no channels).
    pub channels: Option<String>,
    /// Whether it may run Lua scripts on its own keys (`tenancy.allow_scripts`).
    pub scripts: bool,
    /// With `isolation: instance`, the deployment that is its own redis-server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub quotas: Quotas,
    pub password: PasswordInfo,
}

/// A tenant's quotas, its own or the `tenancy` defaults. Redis cannot
/// enforce them per user (it declined per-user memory quotas, redis#12052):
/// they are recorded for the tenant gateway and compared in `stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Quotas {
    pub memory_bytes: u64,
    pub memory: String,
    pub connections: u32,
    pub ops_per_second: u32,
}

/// Where a tenant's password comes from and where a local client finds it.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordInfo {
    /// `generated`, `file`, `env`, `value` or `secret`.
    pub source: &'static str,
    /// The file the user named, or the environment variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The copy in the deployment's state folder (mode 0600).
    pub file: PathBuf,
}

/// A deployment opened for a tenant operation: its record and stored template.
pub(crate) struct Opened {
    pub record: Record,
    pub resolved: Resolved,
}

/// Loads `name`'s record and stored template; it must be running.
pub(crate) fn open(home: &Path, name: &str) -> Result<Opened, Failure> {
    let registry = Registry::new(home);
    let record = registry.load(name).map_err(failure)?;
    if record.state != DeployState::Running {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "tenant.not-running",
                "",
                format!("`{name}` is {}: tenants live on its running nodes", record.state),
            )
            .with_hint(format!("start it with `redplate start {name}`")),
        ]));
    }
    let resolved = crate::ops::stored::load(&record)?;
    Ok(Opened { record, resolved })
}

/// The ACL user of tenant `id`.
pub fn user_name(id: &str) -> String {
    format!("tenant-{id}")
}

/// Whether `id` can name a tenant: what the template schema allows
/// (`^[a-z0-9][a-z0-9_-]*$`, at most 64 characters), so it is safe in key
/// globs, ACL rules and file names.
pub fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(crate) fn check_id(id: &str) -> Result<(), Failure> {
    if valid_id(id) {
        return Ok(());
    }
    Err(Failure::invalid(vec![
        Diagnostic::error("tenant.bad-id", "", format!("`{}` cannot be a tenant id", crate::text::clean(id, 80)))
            .with_hint(
                "use 1 to 64 lowercase letters, digits, `-` and `_`, starting with a letter or digit (e.g. `acme`)",
            ),
    ]))
}

/// Tenancy must be on and by key prefix for a tenant to get an ACL user.
pub(crate) fn check_isolation(config: &Config, deployment: &str) -> Result<(), Failure> {
    let t = &config.tenancy;
    let refuse = |code: &str, message: String, hint: String| {
        Err(Failure::invalid(vec![Diagnostic::error(code, "/tenancy", message).with_hint(hint)]))
    };
    if !t.enabled {
        return refuse(
            "tenant.tenancy-off",
            format!("`{deployment}` has tenancy off (`tenancy.enabled: false`)"),
            format!(
                "set `tenancy.enabled: true` (and the `tenancy` quotas) in its template and run \
                 `redplate apply {deployment} <template>`, then create tenants"
            ),
        );
    }
    match t.isolation {
        Isolation::KeyPrefix => Ok(()),
        Isolation::Database => refuse(
            "tenant.database-isolation",
            format!(
                "`{deployment}` uses `tenancy.isolation: database`, which redis 7 cannot enforce: an acl user \
                 cannot be pinned to one database (`SELECT` is allowed or denied for all of them; redis declined \
                 per-database acls, redis#8099), so every tenant could read every other tenant's database"
            ),
            "use `isolation: key_prefix` (an acl user per tenant bound to its key prefix and channels) or \
             `isolation: instance` (a redis-server per tenant)"
                .into(),
        ),
        Isolation::Instance => Ok(()),
    }
}

/// The deployment that holds tenant `id`'s keys and user: `deployment`
/// itself, or with `isolation: instance` the tenant's own.
pub(crate) fn holder(home: &Path, deployment: &str, id: &str) -> Result<String, Failure> {
    let opened = open(home, deployment)?;
    let config = &opened.resolved.config;
    check_isolation(config, deployment)?;
    find(config, deployment, id)?;
    if instance::applies(config) { instance::name(deployment, id) } else { Ok(deployment.to_owned()) }
}

/// The key prefix of tenant `id` (`tenant:acme:`).
pub fn prefix(config: &Config, id: &str) -> String {
    config.tenancy.prefix_pattern.replace("{tenantId}", id)
}

/// `SCAN MATCH` pattern for every key starting with `prefix`, its glob
/// characters escaped.
pub fn match_pattern(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// The tenant `id` of the stored template, or an error naming the known ones.
pub(crate) fn find<'a>(config: &'a Config, deployment: &str, id: &str) -> Result<&'a Tenant, Failure> {
    config.tenancy.tenants.iter().find(|t| t.id == id).ok_or_else(|| unknown(config, deployment, id))
}

pub(crate) fn unknown(config: &Config, deployment: &str, id: &str) -> Failure {
    let known: Vec<&str> = config.tenancy.tenants.iter().map(|t| t.id.as_str()).collect();
    let hint = if known.is_empty() {
        format!("`{deployment}` has no tenants yet: `redplate tenant create {deployment} <id>`")
    } else {
        format!("its tenants: {}", known.join(", "))
    };
    // An unknown name is a command-line mistake, as an unknown deployment is (exit 2).
    Failure::could_not_run(
        Diagnostic::error("tenant.unknown", "", format!("`{deployment}` has no tenant `{id}`")).with_hint(hint),
    )
}

/// What the stored template says of `tenant`.
pub fn info(config: &Config, record: &Record, tenant: &Tenant) -> TenantInfo {
    let t = &config.tenancy;
    let user = user_name(&tenant.id);
    let memory = if tenant.memory.0 > 0 { tenant.memory } else { t.memory_per_tenant };
    let pick = |own: u32, default: u32| if own > 0 { own } else { default };
    let (source, origin) = match &tenant.password {
        None | Some(SecretSource::Generate(_)) => ("generated", None),
        Some(SecretSource::File(f)) => ("file", Some(f.clone())),
        Some(SecretSource::Env(v)) => ("env", Some(format!("${v}"))),
        Some(SecretSource::Value(_)) => ("value", None),
        // A Kubernetes secret cannot be read here: local nodes get a generated password.
        Some(SecretSource::Secret(_)) => ("secret", None),
    };
    let instance = if instance::applies(config) { instance::name(&record.name, &tenant.id).ok() } else { None };
    // An instance keeps the password in its own state folder, beside the parent's.
    let holder = instance.as_ref().map_or_else(|| record.state_dir.clone(), |i| record.state_dir.with_file_name(i));
    TenantInfo {
        instance,
        id: tenant.id.clone(),
        prefix: prefix(config, &tenant.id),
        channels: (!t.channel_pattern.is_empty()).then(|| t.channel_pattern.replace("{tenantId}", &tenant.id)),
        scripts: t.allow_scripts,
        quotas: Quotas {
            memory_bytes: memory.0,
            memory: ByteSize(memory.0).to_string(),
            connections: pick(tenant.connections, t.connections_per_tenant),
            ops_per_second: pick(tenant.ops_per_second, t.ops_per_second_per_tenant),
        },
        password: PasswordInfo { source, origin, file: holder.join(format!("secrets/{user}.password")) },
        user,
    }
}

/// The state folder's copy of `user`'s password.
pub(crate) fn password_file(record: &Record, user: &str) -> PathBuf {
    record.path(&format!("secrets/{user}.password"))
}

/// `tenant list`: every tenant of the stored template.
pub fn list(home: &Path, deployment: &str) -> Result<Vec<TenantInfo>, Failure> {
    let registry = Registry::new(home);
    let record = registry.load(deployment).map_err(failure)?;
    let resolved = crate::ops::stored::load(&record)?;
    let config = &resolved.config;
    Ok(config.tenancy.tenants.iter().map(|t| info(config, &record, t)).collect())
}

/// `tenant show`: one tenant, and its user's state on every data node
/// (`on`, `off` after an interrupted removal, `missing`, or why it could
/// not be asked).
pub async fn show(home: &Path, deployment: &str, id: &str) -> Result<Shown, Failure> {
    check_id(id)?;
    let registry = Registry::new(home);
    let record = registry.load(deployment).map_err(failure)?;
    let resolved = crate::ops::stored::load(&record)?;
    let tenant = find(&resolved.config, deployment, id)?;
    let info = info(&resolved.config, &record, tenant);
    let record = match &info.instance {
        Some(i) => registry.load(i).map_err(failure)?,
        None => record,
    };
    let users = acl::user_states(&record, &info.user).await;
    Ok(Shown { deployment: deployment.to_owned(), tenant: info, nodes: users })
}

/// What `show` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub deployment: String,
    pub tenant: TenantInfo,
    /// Each data node and the state of the tenant's user there.
    pub nodes: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_and_patterns_escape_globs() {
        for good in ["a", "acme", "a-b_c9", "9lives"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in ["", "-a", "A", "a b", "a*", "a:b", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert_eq!(match_pattern("tenant:a:"), "tenant:a:*");
        assert_eq!(match_pattern("t[1]*?\\:"), "t\\[1\\]\\*\\?\\\\:*");
    }
}
