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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct AnalyzeBody {
    /// Only this tenant's keys.
    pub tenant: Option<String>,
    /// Keys read per master (default 10,000); ignored with `full`.
    pub sample: Option<u64>,
    /// Read every key.
    #[serde(default)]
    pub full: bool,
    /// The characters that cut key names into segments (default `:/|.-_#`).
    pub separators: Option<String>,
}

/// Key patterns (memory, count, TTLs, encodings), the top keys and advice (`redplate analyze`): a job.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/analyze", tag = "operations", request_body = AnalyzeBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 202, body = Operation), Problems))]
pub async fn analyze(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<AnalyzeBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    let defaults = ops::analyze::AnalyzeRequest::default();
    let request = ops::analyze::AnalyzeRequest {
        tenant: body.tenant,
        sample: if body.full { None } else { body.sample.or(defaults.sample) },
        separators: body.separators.unwrap_or_else(|| defaults.separators.clone()),
        ..defaults
    };
    let home = state.home.clone();
    let job_name = name.clone();
    let op = state.jobs.start("analyze", Some(&name), caller.id(), move |_| {
        to_json(&block_on(ops::analyze::analyze(&home, &job_name, &request))?)
    })?;
    Ok(accepted(op))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OptimizeBody {
    /// Make the safe changes (`CONFIG SET` on every data node, written to the stored template).
    #[serde(default)]
    pub apply: bool,
}

/// Memory advice with the numbers behind it; `apply` makes the safe changes (`redplate optimize`).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/optimize", tag = "operations", request_body = OptimizeBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Object), Problems))]
pub async fn optimize(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<OptimizeBody>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    record(&state, &name)?;
    if body.apply {
        audit(&state, caller.id(), "optimize --apply", &name)?;
    }
    let request = ops::optimize::OptimizeRequest { apply: body.apply, ..ops::optimize::OptimizeRequest::default() };
    // Its key walk is not `Send`: it runs on a thread of its own.
    let home = state.home.clone();
    let done = super::templates::blocking(move || block_on(ops::optimize::optimize(&home, &name, &request))).await?;
    Ok(axum::Json(to_json(&done)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct WarmBody {
    /// A `.jsonl` or `.csv` file on the server's machine, or `redis://host:port[/db]`.
    pub from: String,
    /// Load into this tenant's prefix.
    pub tenant: Option<String>,
    /// At most this many keys per second.
    pub rate: Option<u64>,
    /// Ignore a checkpoint of an earlier run: start from the beginning.
    #[serde(default)]
    pub restart: bool,
}

/// The warm job's progress, on its operation.
struct WarmProgress<'a>(&'a super::jobs::JobHandle);

impl ops::warm::Progress for WarmProgress<'_> {
    fn at(&self, done: u64, written: u64) {
        crate::backend::Progress::step(self.0, &format!("{written} keys written ({done} read)"));
    }

    fn note(&self, message: &str) {
        crate::backend::Progress::step(self.0, message);
    }
}

/// Load keys with the cache strategy's TTLs, paced for the replicas, resumable (`redplate warm`): a job.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/warm-cache", tag = "operations", request_body = WarmBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 202, body = Operation), Problems))]
pub async fn warm(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<WarmBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    let request = ops::warm::WarmRequest {
        deployment: name.clone(),
        from: body.from,
        tenant: body.tenant,
        rate: body.rate,
        restart: body.restart,
        plugin_dirs: state.plugin_dirs.clone(),
    };
    let st = state.clone();
    let op = state.jobs.start("warm-cache", Some(&name), caller.id(), move |job| {
        let progress = WarmProgress(job);
        to_json(&block_on(ops::warm::warm(&st.home, &st.host, &request, &progress, &job.cancel))?)
    })?;
    Ok(accepted(op))
}
