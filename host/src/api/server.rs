//! The server's own endpoints: liveness, readiness, its metrics, the
//! OpenAPI document, the jobs, and the answers for unknown routes, wrong
//! methods and panics (all in the problem shape).

use super::auth::Caller;
use super::extract::Path;
use super::jobs::Operation;
use super::problem::{ApiError, ApiResult, Problems};
use super::{ApiDoc, AppState};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use utoipa::OpenApi;

/// Every job, newest first.
#[utoipa::path(get, path = "/api/v1/operations", tag = "operations",
    responses((status = 200, body = Vec<Operation>), Problems))]
pub async fn operations(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<axum::Json<Vec<Operation>>> {
    caller.admin()?;
    Ok(axum::Json(state.jobs.list()))
}

fn unknown_job(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "operation.unknown", format!("no operation `{}`", crate::text::clean(id, 40)))
}

/// One job: state, progress, result or problem.
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The operation id")),
    responses((status = 200, body = Operation), Problems))]
pub async fn operation(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Operation>> {
    caller.admin()?;
    state.jobs.get(&id).map(axum::Json).ok_or_else(|| unknown_job(&id))
}

/// Cancel a job: it stops at its next safe point, leaving a state that running it again finishes.
#[utoipa::path(delete, path = "/api/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The operation id")),
    responses((status = 200, body = Operation), Problems))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Operation>> {
    caller.admin()?;
    state.jobs.cancel(&id).map(axum::Json).ok_or_else(|| unknown_job(&id))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "server", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: listening and not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "server", security(()),
    responses((status = 200, content_type = "text/plain", body = String),
              (status = 503, content_type = "text/plain", body = String)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

/// The server's own metrics (Prometheus text): requests by status class,
/// their total time, in flight, jobs by state, resident memory.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, content_type = "text/plain", body = String), Problems))]
pub async fn metrics(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    caller.admin()?;
    let c = &state.counters;
    let mut out = String::new();
    out.push_str("# HELP redplate_api_requests_total Requests answered, by status class.\n");
    out.push_str("# TYPE redplate_api_requests_total counter\n");
    for (i, n) in c.by_class.iter().enumerate() {
        let _ = writeln!(out, "redplate_api_requests_total{{code=\"{}xx\"}} {}", i + 1, n.load(Ordering::Relaxed));
    }
    out.push_str("# HELP redplate_api_request_duration_seconds Time spent answering requests.\n");
    out.push_str("# TYPE redplate_api_request_duration_seconds summary\n");
    let micros = c.duration_micros.load(Ordering::Relaxed);
    let _ = writeln!(out, "redplate_api_request_duration_seconds_sum {}", micros as f64 / 1e6);
    let _ = writeln!(out, "redplate_api_request_duration_seconds_count {}", c.requests.load(Ordering::Relaxed));
    out.push_str("# HELP redplate_api_requests_in_flight Requests being answered.\n");
    out.push_str("# TYPE redplate_api_requests_in_flight gauge\n");
    let _ = writeln!(out, "redplate_api_requests_in_flight {}", c.in_flight.load(Ordering::Relaxed));
    out.push_str("# HELP redplate_api_operations Jobs by state.\n# TYPE redplate_api_operations gauge\n");
    let counts = state.jobs.counts();
    for s in ["queued", "running", "succeeded", "failed", "cancelled"] {
        let _ = writeln!(out, "redplate_api_operations{{state=\"{s}\"}} {}", counts.get(s).copied().unwrap_or(0));
    }
    if let Some(rss) = resident_bytes() {
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}

/// Resident memory from `/proc/self/statm` (pages × 4 KiB).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "server",
    responses((status = 200, body = Object), Problems))]
pub async fn openapi(caller: Caller) -> ApiResult<axum::Json<utoipa::openapi::OpenApi>> {
    caller.admin()?;
    Ok(axum::Json(ApiDoc::openapi()))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "request.no-route", "no such endpoint; GET /openapi.json lists them")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "request.method", "this endpoint does not take that method")
}

/// A handler that panicked: a 500 problem, never a dropped connection.
pub fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %crate::text::clean(&what, 500), "a handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "serve.panic", "the server failed on this request (logged)")
        .into_response()
}
