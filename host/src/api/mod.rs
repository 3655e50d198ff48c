//! `redplate serve`: the REST API. Every handler parses its request, checks
//! the caller's token, calls one `ops` function (the same the CLI calls)
//! and serializes its result — the same serde types the CLI's
//! `--format json` prints; no logic lives here. Long operations are jobs
//! ([`jobs`]); errors are RFC 9457 problems ([`problem`]); the OpenAPI 3.1
//! document is generated from the handlers ([`ApiDoc`]) and served at
//! `/openapi.json`.

mod auth;
mod data;
mod deployments;
mod extract;
pub mod jobs;
mod listener;
pub mod problem;
mod server;
mod templates;
mod tenants;

use crate::exit::Failure;
use crate::plugin::PluginHost;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use redplate_config::Diagnostic;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use utoipa::OpenApi;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `$REDPLATE_HOME`.
    pub home: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The longest a request may take (jobs run on after their `202`).
    pub request_timeout: Duration,
    /// Requests served at once; the others wait.
    pub concurrency: usize,
    /// Connections open at once; the next waits until one closes.
    pub max_connections: usize,
    /// A connection on which nothing moved for this long is closed.
    pub idle_timeout: Duration,
    /// How long running requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
}

/// What every handler shares.
pub struct AppState {
    pub home: PathBuf,
    pub host: Arc<PluginHost>,
    pub plugin_dirs: Vec<PathBuf>,
    pub jobs: Arc<jobs::Jobs>,
    pub counters: Counters,
    pub ready: std::sync::atomic::AtomicBool,
}

/// The server's own numbers, for its `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub by_class: [AtomicU64; 5],
    pub in_flight: AtomicU64,
    pub duration_micros: AtomicU64,
    pub requests: AtomicU64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "redplate",
        description = "Render, validate, deploy and operate Redis from one typed template. Every endpoint but \
                       /healthz and /readyz needs `Authorization: Bearer <token>` (`redplate token create`).",
        license(name = "Apache-2.0")
    ),
    paths(
        templates::validate,
        templates::render,
        templates::presets,
        templates::preset,
        templates::schema,
        templates::plugins,
        deployments::create,
        deployments::list,
        deployments::status,
        deployments::apply,
        deployments::destroy,
        deployments::stop,
        deployments::start,
        deployments::logs,
        deployments::stats,
        deployments::metrics,
        deployments::health,
        deployments::flush,
        deployments::execute,
        deployments::scale,
        data::backup,
        data::backups,
        data::restore,
        data::analyze,
        data::optimize,
        data::warm,
        tenants::create,
        tenants::list,
        tenants::show,
        tenants::update,
        tenants::remove,
        tenants::stats,
        tenants::execute,
        server::operations,
        server::operation,
        server::cancel,
        server::healthz,
        server::readyz,
        server::metrics,
        server::openapi,
    ),
    components(schemas(problem::Problem, jobs::Operation, jobs::JobState)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("rpt_…").build()),
        );
    }
}

/// The API's routes on `state`.
pub fn router(state: Arc<AppState>, opts: &ServeOptions) -> Router {
    use axum::routing::{get, post};
    let api = Router::new()
        .route("/templates/validate", post(templates::validate))
        .route("/templates/render", post(templates::render))
        .route("/presets", get(templates::presets))
        .route("/presets/{environment}", get(templates::preset))
        .route("/schema", get(templates::schema))
        .route("/plugins", get(templates::plugins))
        .route("/deployments", post(deployments::create).get(deployments::list))
        .route("/deployments/{name}", get(deployments::status).put(deployments::apply).delete(deployments::destroy))
        .route("/deployments/{name}/stop", post(deployments::stop))
        .route("/deployments/{name}/start", post(deployments::start))
        .route("/deployments/{name}/logs", get(deployments::logs))
        .route("/deployments/{name}/stats", get(deployments::stats))
        .route("/deployments/{name}/metrics", get(deployments::metrics))
        .route("/deployments/{name}/health", get(deployments::health))
        .route("/deployments/{name}/flush", post(deployments::flush))
        .route("/deployments/{name}/execute", post(deployments::execute))
        .route("/deployments/{name}/scale", post(deployments::scale))
        .route("/deployments/{name}/backup", post(data::backup))
        .route("/deployments/{name}/backups", get(data::backups))
        .route("/deployments/{name}/restore", post(data::restore))
        .route("/deployments/{name}/analyze", post(data::analyze))
        .route("/deployments/{name}/optimize", post(data::optimize))
        .route("/deployments/{name}/warm-cache", post(data::warm))
        .route("/deployments/{name}/tenants", post(tenants::create).get(tenants::list))
        .route("/deployments/{name}/tenants/{id}", get(tenants::show).patch(tenants::update).delete(tenants::remove))
        .route("/deployments/{name}/tenants/{id}/stats", get(tenants::stats))
        .route("/deployments/{name}/tenants/{id}/execute", post(tenants::execute))
        .route("/operations", get(server::operations))
        .route("/operations/{id}", get(server::operation).delete(server::cancel));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(server::healthz))
        .route("/readyz", get(server::readyz))
        .route("/metrics", get(server::metrics))
        .route("/openapi.json", get(server::openapi))
        .fallback(server::not_found)
        .method_not_allowed_fallback(server::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(server::panicked))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            opts.request_timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(opts.concurrency.max(1)))
        .layer(axum::extract::DefaultBodyLimit::max(opts.body_limit))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(opts.body_limit))
        .with_state(state)
}

/// One structured log line per request (never the token, only its id).
async fn log_request(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = crate::text::clean(req.uri().path(), 200);
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|t| t.strip_prefix("rpt_"))
        .and_then(|t| t.split('_').next())
        .map(|id| crate::text::clean(id, 16))
        .unwrap_or_else(|| "-".into());
    let c = &state.counters;
    c.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    c.in_flight.fetch_sub(1, Ordering::Relaxed);
    let took = started.elapsed();
    let status = response.status().as_u16();
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    c.by_class[class].fetch_add(1, Ordering::Relaxed);
    c.requests.fetch_add(1, Ordering::Relaxed);
    c.duration_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    tracing::info!(method = %method, path = %path, status, duration_ms = took.as_secs_f64() * 1000.0, token = %token, "request");
    response
}

/// Appends a line to `$REDPLATE_HOME/audit.log` for a destructive call
/// made through the API, naming the token by its id.
pub fn audit(state: &AppState, token_id: &str, operation: &str, target: &str) -> Result<(), problem::ApiError> {
    let entry = crate::ops::audit::Entry {
        time: crate::ops::audit::now(),
        actor: format!("api:{token_id}"),
        operation,
        target: target.to_owned(),
        command: operation.to_owned(),
        arguments: 0,
        outcome: "started".into(),
    };
    crate::ops::audit::append(&state.home, &entry).map_err(|e| {
        problem::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit.write",
            format!("cannot write the audit log: {e}; nothing was done"),
        )
    })
}

fn start_failure(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::could_not_run(Diagnostic::error("serve.start", "", format!("{what}: {e}")))
}

/// Runs the server until SIGTERM or SIGINT; then stops accepting, gives
/// running requests `shutdown_grace` to finish, and marks the jobs still
/// running as interrupted.
pub fn serve(opts: ServeOptions, host: PluginHost) -> Result<(), Failure> {
    let _ = tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_target(false).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| start_failure("cannot start the async runtime", e))?;
    let jobs = Arc::new(jobs::Jobs::open(&opts.home));
    let state = Arc::new(AppState {
        home: opts.home.clone(),
        host: Arc::new(host),
        plugin_dirs: opts.plugin_dirs.clone(),
        jobs: jobs.clone(),
        counters: Counters::default(),
        ready: std::sync::atomic::AtomicBool::new(false),
    });
    let app = router(state.clone(), &opts);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| start_failure(&format!("cannot listen on {}", opts.listen), e))?;
        let local = listener.local_addr().map_err(|e| start_failure("cannot read the listening address", e))?;
        let listener = listener::Guarded::new(listener, opts.max_connections, opts.idle_timeout);
        tracing::info!(listen = %local, "serving the redplate API");
        eprintln!("redplate API on http://{local} (OpenAPI at /openapi.json); Ctrl-C or SIGTERM stops it");
        state.ready.store(true, Ordering::Relaxed);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut stopped = stop_rx.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        let server = tokio::spawn(async move { server.await });
        shutdown_signal().await;
        state.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections; running requests get {:?}", opts.shutdown_grace);
        let _ = stop_tx.send(true);
        drop(stop_rx);
        if tokio::time::timeout(opts.shutdown_grace, server).await.is_err() {
            tracing::warn!("requests still running after the grace period were cut off");
        }
        jobs.interrupt_running();
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
