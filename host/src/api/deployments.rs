//! Deployments and the operations on one: deploy, list, status, apply,
//! destroy, stop, start, logs, stats, metrics, health, flush, execute and
//! scale, each a thin wrapper over the `ops` function the CLI calls.

use super::AppState;
use super::auth::Caller;
use super::data::to_json;
use super::extract::{Json, Path, Query};
use super::jobs::{JobHandle, Operation};
use super::problem::{ApiError, ApiResult, Problems};
use super::templates::{TemplateBody, blocking};
use crate::exit::Failure;
use crate::ops;
use crate::ops::deploy::Context;
use crate::registry::{Record, Registry};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `202 Accepted` with the job and its `Location`.
pub fn accepted(op: Operation) -> Response {
    let location = format!("/api/v1/operations/{}", op.id);
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(op)).into_response()
}

/// The deploy context a job runs with: its progress goes to the job.
pub fn context<'a>(state: &'a AppState, handle: &'a JobHandle) -> Context<'a> {
    Context { home: state.home.clone(), host: &state.host, plugin_dirs: &state.plugin_dirs, progress: handle }
}

/// The registry record of `name` (404 if there is none).
pub fn record(state: &AppState, name: &str) -> ApiResult<Record> {
    if !crate::registry::valid_name(name) {
        return Err(ops::deploy::failure(crate::backend::BackendError::Unknown(crate::text::clean(name, 64))).into());
    }
    Registry::new(&state.home).load(name).map_err(|e| ops::deploy::failure(e).into())
}

/// Writes a template sent in a body where a deployment can be made from it.
fn upload(state: &AppState, body: &TemplateBody) -> Result<std::path::PathBuf, Failure> {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    let path = state.home.join("uploads").join(format!("{}.{}", hex::encode(id), body.extension()));
    ops::config::write_file(&path, body.template.as_bytes())?;
    Ok(path)
}

/// A template to deploy, and the name to give the deployment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeployBody {
    #[serde(flatten)]
    pub template: TemplateBody,
    /// Overrides `deployment.name`.
    pub name: Option<String>,
}

/// Deploy a template on this machine (`redplate deploy`): a job.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = DeployBody,
    responses((status = 202, description = "The deploy job", body = Operation), Problems))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<DeployBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    let mut template = body.template;
    if let Some(n) = &body.name {
        template.set.push(format!("deployment.name={n}"));
    }
    let name = template.load()?.config.deployment.name;
    let path = upload(&state, &template)?;
    let sets = template.set.clone();
    let preset = template.preset;
    let st = state.clone();
    let op = state.jobs.start("deploy", Some(&name), caller.id(), move |job| {
        let request = ops::deploy::DeployRequest { template: path.clone(), name: None, preset, sets, backend: None };
        let result = ops::deploy::deploy(&context(&st, job), &request);
        let _ = std::fs::remove_file(&path);
        to_json(&result?)
    })?;
    Ok(accepted(op))
}

/// The deployments and what the registry could not read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentList {
    #[schema(value_type = Vec<Object>)]
    pub deployments: Vec<Record>,
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<redplate_config::Diagnostic>,
}

/// List the deployments (`redplate list`).
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    responses((status = 200, body = DeploymentList), Problems))]
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<axum::Json<DeploymentList>> {
    caller.admin()?;
    let (deployments, warnings) = blocking(move || Ok(ops::lifecycle::list(&state.home))).await?;
    Ok(axum::Json(DeploymentList { deployments, warnings }))
}

/// A deployment's record and live status (`redplate status`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Object), Problems))]
pub async fn status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    record(&state, &name)?;
    let (record, status) = blocking(move || ops::lifecycle::status(&state.home, &name)).await?;
    Ok(axum::Json(serde_json::json!({ "record": record, "status": status })))
}

/// Apply a changed template to a running deployment (`redplate apply`): a job.
#[utoipa::path(put, path = "/api/v1/deployments/{name}", tag = "deployments", request_body = TemplateBody,
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 202, body = Operation), Problems))]
pub async fn apply(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<TemplateBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    body.load()?;
    let path = upload(&state, &body)?;
    let st = state.clone();
    let job_name = name.clone();
    super::audit(&state, caller.id(), "apply", &name)?;
    let op = state.jobs.start("apply", Some(&name), caller.id(), move |job| {
        let result = ops::apply::apply(&context(&st, job), &job_name, &path, &body.set);
        let _ = std::fs::remove_file(&path);
        to_json(&result?)
    })?;
    Ok(accepted(op))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DestroyQuery {
    /// Also delete its data and kept passwords.
    #[serde(default)]
    pub purge: bool,
}

/// Stop a deployment and remove it (`redplate destroy`): a job.
#[utoipa::path(delete, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "The deployment"), DestroyQuery),
    responses((status = 202, body = Operation), Problems))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<DestroyQuery>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    let st = state.clone();
    let job_name = name.clone();
    super::audit(&state, caller.id(), "destroy", &name)?;
    let op = state.jobs.start("destroy", Some(&name), caller.id(), move |job| {
        ops::lifecycle::destroy(&st.home, &job_name, q.purge, job)?;
        Ok(serde_json::json!({ "destroyed": job_name, "purged": q.purge }))
    })?;
    Ok(accepted(op))
}

/// Stop every process of a deployment, keeping its data (`redplate stop`).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/stop", tag = "deployments",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Object), Problems))]
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    record(&state, &name)?;
    blocking(move || {
        let warnings = std::sync::Mutex::new(Vec::new());
        let warn = |d: &redplate_config::Diagnostic| warnings.lock().map(|mut w| w.push(d.clone())).unwrap_or(());
        let (record, lost) = ops::lifecycle::stop(&state.home, &name, &crate::backend::Silent, &warn)?;
        let warnings = warnings.into_inner().unwrap_or_default();
        Ok(axum::Json(serde_json::json!({ "record": record, "lost_data": lost, "warnings": warnings })))
    })
    .await
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct StartQuery {
    /// Start on other ports when its own are taken.
    #[serde(default)]
    pub new_ports: bool,
}

/// Start a stopped deployment (`redplate start`).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/start", tag = "deployments",
    params(("name" = String, Path, description = "The deployment"), StartQuery),
    responses((status = 200, body = Object), Problems))]
pub async fn start(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<StartQuery>,
) -> ApiResult<axum::Json<Record>> {
    caller.admin()?;
    record(&state, &name)?;
    let record =
        blocking(move || ops::lifecycle::start(&state.home, &name, q.new_ports, &crate::backend::Silent)).await?;
    Ok(axum::Json(record))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// One node's log only.
    pub node: Option<String>,
    /// The last this many lines of each log (default 100, at most 10,000).
    pub lines: Option<usize>,
}

/// One node's log lines.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeLog {
    pub node: String,
    pub text: String,
}

/// The last lines of each node's log (`redplate logs`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}/logs", tag = "deployments",
    params(("name" = String, Path, description = "The deployment"), LogsQuery),
    responses((status = 200, body = Vec<NodeLog>), Problems))]
pub async fn logs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<axum::Json<Vec<NodeLog>>> {
    caller.admin()?;
    record(&state, &name)?;
    let lines = q.lines.unwrap_or(100).min(10_000);
    let logs = blocking(move || ops::lifecycle::logs(&state.home, &name, q.node.as_deref(), lines)).await?;
    Ok(axum::Json(
        logs.into_iter().map(|(node, text)| NodeLog { node, text: crate::text::clean_lines(&text, 4 << 20) }).collect(),
    ))
}

/// Per node and in total: ops/s, hits, memory, clients, keys, replication, persistence (`redplate stats`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}/stats", tag = "operations",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, body = Object), Problems))]
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ops::stats::Stats>> {
    caller.admin()?;
    let record = record(&state, &name)?;
    Ok(axum::Json(ops::stats::stats(&record, &ops::stats::StatsOptions::default()).await))
}

/// Prometheus text exposition, redis_exporter's names (`redplate metrics`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}/metrics", tag = "operations",
    params(("name" = String, Path, description = "The deployment")),
    responses((status = 200, content_type = "text/plain", body = String), Problems))]
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller.admin()?;
    let record = record(&state, &name)?;
    let tenancy = ops::stored::load(&record).ok().map(|r| r.config.tenancy);
    let m = ops::metrics::metrics(&record, tenancy.as_ref(), &ops::metrics::MetricsOptions::default()).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render()).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HealthQuery {
    /// The most a replica may lag, in milliseconds (default 100).
    pub max_lag_ms: Option<u64>,
}

/// One verdict with its reasons: healthy, degraded or down (`redplate health`).
#[utoipa::path(get, path = "/api/v1/deployments/{name}/health", tag = "operations",
    params(("name" = String, Path, description = "The deployment"), HealthQuery),
    responses((status = 200, body = Object), Problems))]
pub async fn health(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<HealthQuery>,
) -> ApiResult<axum::Json<ops::health::Health>> {
    caller.admin()?;
    let record = record(&state, &name)?;
    let max_lag = Duration::from_millis(q.max_lag_ms.unwrap_or(100).min(3_600_000));
    Ok(axum::Json(ops::health::health(&record, &ops::health::HealthOptions { max_lag }).await))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct FlushBody {
    /// The token a first call returned; without it nothing changes.
    pub confirm: Option<String>,
    /// Flush only this tenant's keys (the tenant stays).
    pub tenant: Option<String>,
}

/// Delete every key (or one tenant's): the first call returns what would go and a token, the second acts.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/flush", tag = "operations",
    params(("name" = String, Path, description = "The deployment")), request_body = FlushBody,
    responses((status = 200, body = Object), Problems))]
pub async fn flush(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<FlushBody>,
) -> ApiResult<axum::Json<ops::flush::FlushReport>> {
    match &body.tenant {
        Some(t) => caller.tenant(&name, t)?,
        None => caller.admin()?,
    }
    let record = record(&state, &name)?;
    let actor = format!("api:{}", caller.id());
    let report = match &body.tenant {
        None => ops::flush::flush(&state.home, &record, body.confirm.as_deref(), &actor).await?,
        Some(t) => {
            let never = std::sync::atomic::AtomicBool::new(false);
            ops::tenant::flush(&state.home, &name, t, body.confirm.as_deref(), &actor, &ops::tenant::Silent, &never)
                .await?
        }
    };
    Ok(axum::Json(report))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExecuteBody {
    /// The command and its arguments: `["GET", "user:1"]`.
    pub command: Vec<String>,
    /// A node by name; default: the master (in a cluster, the one serving the key).
    pub node: Option<String>,
    /// Let destructive commands through (`FLUSHALL`, `CONFIG SET`, …).
    #[serde(default)]
    pub allow_dangerous: bool,
    /// How long the command may take (default 10,000, at most 60,000).
    pub timeout_ms: Option<u64>,
}

/// Run one Redis command, filtered and audited (`redplate exec`).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/execute", tag = "operations",
    params(("name" = String, Path, description = "The deployment")), request_body = ExecuteBody,
    responses((status = 200, body = Object), Problems))]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<ExecuteBody>,
) -> ApiResult<axum::Json<ops::exec::ExecResult>> {
    caller.admin()?;
    let record = record(&state, &name)?;
    if body.command.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "exec.empty", "`command` is empty"));
    }
    let request = ops::exec::ExecRequest {
        args: body.command,
        node: body.node,
        allow_dangerous: body.allow_dangerous,
        timeout: Duration::from_millis(body.timeout_ms.unwrap_or(10_000).clamp(1, 60_000)),
        actor: format!("api:{}", caller.id()),
    };
    Ok(axum::Json(ops::exec::exec(&record, &request).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ScaleBody {
    /// Replicas per master.
    pub replicas: Option<u8>,
    /// Memory per data node (`2gb`): `maxmemory` follows with `CONFIG SET`, no restart.
    pub memory: Option<String>,
    /// Cluster shards: new ones get an even share of the slots; leaving ones hand theirs to all that stay.
    pub shards: Option<u8>,
}

/// Scale a deployment: replicas per master, memory per node, or cluster shards (`redplate scale`): a job.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/scale", tag = "operations",
    params(("name" = String, Path, description = "The deployment")), request_body = ScaleBody,
    responses((status = 202, body = Operation), Problems))]
pub async fn scale(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<ScaleBody>,
) -> ApiResult<Response> {
    caller.admin()?;
    record(&state, &name)?;
    let asked =
        usize::from(body.replicas.is_some()) + usize::from(body.memory.is_some()) + usize::from(body.shards.is_some());
    if asked != 1 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "scale.one-change",
            "give exactly one of `replicas`, `memory` and `shards`",
        ));
    }
    let st = state.clone();
    let job_name = name.clone();
    super::audit(&state, caller.id(), "scale", &name)?;
    let op = state.jobs.start("scale", Some(&name), caller.id(), move |job| {
        let ctx = context(&st, job);
        match (body.replicas, body.memory, body.shards) {
            (Some(r), _, _) => to_json(&ops::scale::scale(&ctx, &job_name, r)?),
            (_, Some(m), _) => to_json(&ops::vertical::scale_memory(&ctx, &job_name, &m)?),
            (_, _, Some(n)) => to_json(&ops::shards::scale_shards(&ctx, &job_name, n, job)?),
            _ => Ok(serde_json::Value::Null),
        }
    })?;
    Ok(accepted(op))
}
