//! `tenant update`: new quotas for a tenant (checked by the template's own
//! rules, as `create` checks them, and written to the stored template; with
//! `isolation: instance` a new memory quota is also its server's
//! `maxmemory`), and password rotation (a new generated password set with
//! `ACL SETUSER … resetpass` on every data node, saved, and kept where the
//! deployment keeps its passwords).

use super::{TenantInfo, acl, check_id, check_isolation, find, info, open, user_name};
use crate::exit::Failure;
use crate::ops::connect::unreachable;
use crate::ops::deploy::failure;
use crate::registry::Registry;
use crate::secrets::SecretStore;
use redplate_config::Diagnostic;
use redplate_config::model::SecretSource;
use redplate_config::units::ByteSize;
use serde::Serialize;
use std::path::Path;

/// What `tenant update` was asked; `None` leaves a quota as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub id: String,
    pub memory: Option<ByteSize>,
    pub connections: Option<u32>,
    pub ops_per_second: Option<u32>,
    /// Give the tenant a new generated password.
    pub rotate_password: bool,
}

/// What `tenant update` did.
#[derive(Debug, Clone, Serialize)]
pub struct Updated {
    pub deployment: String,
    pub tenant: TenantInfo,
    /// Whether a new password was set (on `nodes`).
    pub password_rotated: bool,
    pub nodes: Vec<String>,
}

/// Updates tenant `request.id` of `deployment`.
pub async fn update(home: &Path, deployment: &str, request: &UpdateRequest) -> Result<Updated, Failure> {
    let id = request.id.as_str();
    check_id(id)?;
    let registry = Registry::new(home);
    let _lock = registry.lock(deployment).map_err(failure)?;
    let opened = open(home, deployment)?;
    let old = &opened.resolved.config;
    check_isolation(old, deployment)?;
    let tenant = find(old, deployment, id)?.clone();
    let mut config = old.clone();
    if let Some(t) = config.tenancy.tenants.iter_mut().find(|t| t.id == id) {
        t.memory = request.memory.unwrap_or(t.memory);
        t.connections = request.connections.unwrap_or(t.connections);
        t.ops_per_second = request.ops_per_second.unwrap_or(t.ops_per_second);
    }
    let resolved = super::create::fits(old, config, &opened.record, deployment, id)?;
    let config = resolved.config;
    let holder = super::holder(home, deployment, id)?;
    let holder_record =
        if holder == deployment { opened.record.clone() } else { registry.load(&holder).map_err(failure)? };
    let nodes = acl::connect_all(&holder_record).await?;
    let user = user_name(id);

    // The instance's own server and template follow a new memory quota.
    if holder != deployment
        && let Some(memory) = request.memory
    {
        let bytes = memory.0.to_string();
        for n in &nodes {
            n.call(&["CONFIG", "SET", "maxmemory", &bytes]).await.map_err(unreachable)?;
        }
        let mut own = crate::ops::stored::load(&holder_record)?.config;
        own.memory.maxmemory = redplate_config::units::MemoryLimit::Size(memory);
        own.tenancy.memory_per_tenant = memory;
        for t in own.tenancy.tenants.iter_mut().filter(|t| t.id == id) {
            t.memory = memory;
        }
        crate::ops::stored::save(&holder_record, &own)?;
    }

    let mut rotated = false;
    if request.rotate_password {
        if let Some(source @ (SecretSource::File(_) | SecretSource::Env(_) | SecretSource::Value(_))) = &tenant.password
        {
            let from = match source {
                SecretSource::File(f) => format!("the file `{f}`"),
                SecretSource::Env(v) => format!("the variable `{v}`"),
                _ => "the template".to_owned(),
            };
            return Err(Failure::invalid(vec![
                Diagnostic::error(
                    "tenant.password-not-generated",
                    "",
                    format!("tenant `{id}`'s password comes from {from}"),
                )
                .with_hint(
                    "change it there and `redplate apply` the template; only generated passwords are rotated here",
                ),
            ]));
        }
        let password = crate::secrets::random_password().map_err(|e| {
            Failure::could_not_run(Diagnostic::error(
                "tenant.random",
                "",
                format!("the OS random generator failed: {e}"),
            ))
        })?;
        let set = format!(">{password}");
        for n in &nodes {
            n.call(&["ACL", "SETUSER", &user, "resetpass", &set]).await.map_err(unreachable)?;
        }
        acl::save_everywhere(&nodes).await.map_err(unreachable)?;
        SecretStore::new(home).set(&holder, &user, &password).map_err(|e| {
            Failure::could_not_run(Diagnostic::error(
                "tenant.kept-password",
                "",
                format!("the new password of `{user}` is set but could not be kept: {e}"),
            ))
        })?;
        crate::ops::config::write_file(&super::password_file(&holder_record, &user), password.as_bytes())?;
        rotated = true;
    }
    crate::ops::stored::save(&opened.record, &config)?;
    let tenant = find(&config, deployment, id)?;
    Ok(Updated {
        deployment: deployment.to_owned(),
        tenant: info(&config, &opened.record, tenant),
        password_rotated: rotated,
        nodes: nodes.iter().map(|n| n.endpoint().name.clone()).collect(),
    })
}
