//! The data-side operations over HTTP: backup, the list of backups and
//! restore (point in time included); each a thin wrapper over the `ops`
//! function the CLI calls. Backups and confirmed restores are jobs.

use super::auth::Caller;
use super::deployments::{accepted, record};
use super::extract::{Json, Path};
use super::jobs::Operation;
use super::problem::{ApiError, ApiResult, Problems};
use super::{AppState, audit};
use crate::exit::Failure;
use crate::ops;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use redplate_config::Diagnostic;
use serde::Deserialize;
use std::sync::Arc;

/// Runs async work to the end on a job's blocking thread.
pub fn block_on<T>(work: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    let rt = crate::client::runtime().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("serve.runtime", "", format!("cannot start a runtime: {e}")))
    })?;
    rt.block_on(work)
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(value)
        .map_err(|e| Failure::could_not_run(Diagnostic::error("serve.json", "", format!("cannot serialize: {e}"))))
}

/// Take a backup now, from a replica when there is one (`redplate backup`): a job.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/backup", tag = "operations",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 202, body = Operation), Problems))]
pub async fn backup(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller.admin()?;
    let record = record(&state, &name)?;
    let op = state
        .jobs
        .start("backup", Some(&name), caller.id(), move |_| to_json(&block_on(ops::backup::take(&record))?))?;
    Ok(accepted(op))
}

/// Where the backups are and which there are: id, time, size, checksum, source node (`redplate backups`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}/backups", tag = "operations",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Object), Problems))]
pub async fn backups(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    let record = record(&state, &name)?;
    let listing = super::templates::blocking(move || ops::backup::list(&record)).await?;
    Ok(axum::Json(to_json(&listing)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RestoreBody {
    /// The backup's id (`GET …/backups`).
    pub backup: String,
    /// Restore to this second (RFC 3339, UTC), from the backup's AOF copy.
    pub to_time: Option<String>,
    /// The token a first call returned; without it nothing changes.
    pub confirm: Option<String>,
}

/// Restore a backup (to a given second with `to_time`): the first call shows
/// what would be replaced and returns a token (200); with it, the restore runs as a job (202).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/restore", tag = "operations", request_body = RestoreBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, description = "What would be replaced, and the token", body = Object),
              (status = 202, description = "The restore job", body = Operation), Problems))]
pub async fn restore(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<RestoreBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    let record = record(&state, &name)?;
    let to_time = match &body.to_time {
        None => None,
        Some(t) => Some(ops::backup::pitr::parse_rfc3339(t).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "restore.bad-time", crate::text::clean(&e, 300))
        })?),
    };
    let actor = format!("api:{}", caller.id());
    let home = state.home.clone();
    let Some(token) = body.confirm else {
        let preview = ops::backup::restore(&home, &record, &body.backup, to_time, None, &actor).await?;
        return Ok((StatusCode::OK, axum::Json(to_json(&preview)?)).into_response());
    };
    audit(&state, caller.id(), "restore", &name)?;
    let op = state.jobs.start("restore", Some(&name), caller.id(), move |_| {
        to_json(&block_on(ops::backup::restore(&home, &record, &body.backup, to_time, Some(&token), &actor))?)
    })?;
    Ok(accepted(op))
}
