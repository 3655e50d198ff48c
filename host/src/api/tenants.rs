//! Tenants of a deployment: create, list, show, update (quotas, password
//! rotation), remove (a job), stats and execute. A tenant token reaches
//! only show, stats and execute of its own tenant.

use super::AppState;
use super::auth::Caller;
use super::deployments::{accepted, record};
use super::extract::{Json, Path, Query};
use super::problem::{ApiError, ApiResult, Problems};
use crate::ops::tenant as ops;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use redplate_config::units::ByteSize;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

fn size(field: &str, text: &Option<String>) -> ApiResult<Option<ByteSize>> {
    match text {
        None => Ok(None),
        Some(t) => ByteSize::parse(t).map(Some).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request.size",
                format!("`{field}`: {}: give a size like `256mb`", crate::text::clean(&e.to_string(), 200)),
            )
        }),
    }
}

fn renderer(state: &AppState) -> ops::Renderer {
    ops::Renderer { host: state.host.clone(), plugin_dirs: state.plugin_dirs.clone() }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    /// 1 to 64 lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// Its memory quota, e.g. `256mb` (default: `tenancy.memory_per_tenant`).
    pub memory: Option<String>,
    pub connections: Option<u32>,
    pub ops_per_second: Option<u32>,
}

/// Create a tenant: an ACL user bound to its key prefix on every data node
/// (or, with `isolation: instance`, a redis-server of its own).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/tenants", tag = "tenants", request_body = CreateBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 201, body = Object), Problems))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<CreateBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    let request = ops::CreateRequest {
        id: body.id,
        memory: size("memory", &body.memory)?,
        connections: body.connections,
        ops_per_second: body.ops_per_second,
        password_file: None,
    };
    let created = ops::create(&state.home, &renderer(&state), &name, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// The tenants of a deployment.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/tenants", tag = "tenants",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Vec<Object>), Problems))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<ops::TenantInfo>>> {
    caller.admin()?;
    record(&state, &name)?;
    Ok(axum::Json(ops::list(&state.home, &name)?))
}

/// One tenant: prefix, user and its state on each node, quotas, where its password is.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/tenants/{id}", tag = "tenants",
    params(("name" = String, Path, description = "The deployment"), ("id" = String, Path, description = "The tenant")),
    responses((status = 200, body = Object), Problems))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ops::Shown>> {
    caller.tenant(&name, &id)?;
    record(&state, &name)?;
    Ok(axum::Json(ops::show(&state.home, &name, &id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateBody {
    /// A new memory quota, e.g. `512mb`.
    pub memory: Option<String>,
    pub connections: Option<u32>,
    pub ops_per_second: Option<u32>,
    /// Give the tenant a new generated password.
    #[serde(default)]
    pub rotate_password: bool,
}

/// Change a tenant's quotas or rotate its password.
#[utoipa::path(patch, path = "/api/v1/deployments/{name}/tenants/{id}", tag = "tenants", request_body = UpdateBody,
    params(("name" = String, Path, description = "The deployment"), ("id" = String, Path, description = "The tenant")),
    responses((status = 200, body = Object), Problems))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Json(body): Json<UpdateBody>,
) -> ApiResult<axum::Json<ops::Updated>> {
    caller.admin()?;
    record(&state, &name)?;
    let request = ops::UpdateRequest {
        id,
        memory: size("memory", &body.memory)?,
        connections: body.connections,
        ops_per_second: body.ops_per_second,
        rotate_password: body.rotate_password,
    };
    Ok(axum::Json(ops::update(&state.home, &name, &request).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RemoveQuery {
    /// Count the keys and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Remove the user and the tenant but keep its keys.
    #[serde(default)]
    pub keep_data: bool,
}

/// Remove a tenant: its user off, its keys deleted in paced batches, then the user: a job.
#[utoipa::path(delete, path = "/api/v1/deployments/{name}/tenants/{id}", tag = "tenants",
    params(("name" = String, Path, description = "The deployment"), ("id" = String, Path, description = "The tenant"),
           RemoveQuery),
    responses((status = 202, body = super::jobs::Operation), Problems))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    // Checked now, so a wrong id is a 404, not a failed job.
    ops::show(&state.home, &name, &id).await?;
    let home = state.home.clone();
    let job_name = name.clone();
    super::audit(&state, caller.id(), "tenant-remove", &format!("{name}/{id}"))?;
    let op = state.jobs.start("tenant-remove", Some(&name), caller.id(), move |job| {
        let request = ops::RemoveRequest { id, dry_run: q.dry_run, keep_data: q.keep_data };
        let rt = crate::client::runtime().map_err(|e| {
            crate::exit::Failure::could_not_run(redplate_config::Diagnostic::error(
                "serve.runtime",
                "",
                format!("cannot start a runtime: {e}"),
            ))
        })?;
        let removed = rt.block_on(ops::remove(&home, &job_name, &request, job, &job.cancel))?;
        serde_json::to_value(removed).map_err(|e| {
            crate::exit::Failure::could_not_run(redplate_config::Diagnostic::error("serve.json", "", e.to_string()))
        })
    })?;
    Ok(accepted(op))
}

/// A tenant's keys, memory and connections beside its quotas.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/tenants/{id}/stats", tag = "tenants",
    params(("name" = String, Path, description = "The deployment"), ("id" = String, Path, description = "The tenant")),
    responses((status = 200, body = Object), Problems))]
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ops::TenantStats>> {
    caller.tenant(&name, &id)?;
    record(&state, &name)?;
    Ok(axum::Json(ops::stats(&state.home, &name, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TenantExecuteBody {
    /// The command and its arguments: `["GET", "tenant:acme:user:1"]`.
    pub command: Vec<String>,
    /// How long it may take (default 10,000, at most 60,000).
    pub timeout_ms: Option<u64>,
}

/// Run one command as the tenant's own user (Redis enforces its ACL).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/tenants/{id}/execute", tag = "tenants",
    request_body = TenantExecuteBody,
    params(("name" = String, Path, description = "The deployment"), ("id" = String, Path, description = "The tenant")),
    responses((status = 200, body = Object), Problems))]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Json(body): Json<TenantExecuteBody>,
) -> ApiResult<axum::Json<ops::TenantReply>> {
    caller.tenant(&name, &id)?;
    record(&state, &name)?;
    if body.command.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "exec.empty", "`command` is empty"));
    }
    let request = ops::TenantExec {
        id,
        args: body.command,
        timeout: Duration::from_millis(body.timeout_ms.unwrap_or(10_000).clamp(1, 60_000)),
    };
    Ok(axum::Json(ops::exec(&state.home, &name, &request).await?))
}
