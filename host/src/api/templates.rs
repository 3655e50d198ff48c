//! Templates, presets, the schema and plugins: what `validate`, `render`,
//! `presets`, `schema` and `plugins list` do, over HTTP.

use super::AppState;
use super::auth::Caller;
use super::extract::{Json, Path};
use super::problem::{ApiError, ApiResult, Problems};
use crate::exit::Failure;
use crate::ops;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use redplate_config::model::Environment;
use redplate_config::{Diagnostic, Resolved, Target};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The language of a template sent in a body.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateFormat {
    #[default]
    Yaml,
    Json,
    Toml,
}

/// A template sent in a request body, with its layers.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct TemplateBody {
    /// The template's text.
    pub template: String,
    #[serde(default)]
    pub format: TemplateFormat,
    /// The preset to layer under it (`development`, `staging`, `production`); default: its `extends`.
    #[schema(value_type = Option<String>)]
    pub preset: Option<Environment>,
    /// `path=value` settings layered on top, like `--set`.
    #[serde(default)]
    pub set: Vec<String>,
}

impl TemplateBody {
    /// The template loaded and layered; its errors name `request body` and the line.
    pub fn load(&self) -> Result<Resolved, Failure> {
        let format = match self.format {
            TemplateFormat::Yaml => redplate_config::Format::Yaml,
            TemplateFormat::Json => redplate_config::Format::Json,
            TemplateFormat::Toml => redplate_config::Format::Toml,
        };
        redplate_config::load_str(&self.template, format, "request body", self.preset, &self.set)
            .map_err(ops::config::load_failure)
    }

    /// The file extension of its language.
    pub fn extension(&self) -> &'static str {
        match self.format {
            TemplateFormat::Yaml => "yaml",
            TemplateFormat::Json => "json",
            TemplateFormat::Toml => "toml",
        }
    }
}

/// Runs blocking work (plugins, the local backend) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Failure> + Send + 'static) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "serve.worker", format!("the worker failed: {e}")))
        }
    }
}

/// The result of `validate`: whether the template is valid, and every finding.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationBody {
    pub valid: bool,
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

/// Check a template: host rules and every plugin's `validate` (`redplate validate`).
#[utoipa::path(post, path = "/api/v1/templates/validate", tag = "templates", request_body = TemplateBody,
    responses((status = 200, description = "The verdict, valid or not, with every finding", body = ValidationBody), Problems))]
pub async fn validate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<TemplateBody>,
) -> ApiResult<axum::Json<ValidationBody>> {
    caller.admin()?;
    let resolved = match body.load() {
        Ok(r) => r,
        // A template that does not load is a verdict, not a failed request.
        Err(f) if f.status == crate::exit::ExitStatus::Invalid => {
            return Ok(axum::Json(ValidationBody { valid: false, diagnostics: f.diagnostics }));
        }
        Err(f) => return Err(f.into()),
    };
    let v =
        blocking(move || ops::config::validate_with_plugins(&state.host, &resolved, None, &state.plugin_dirs)).await?;
    Ok(axum::Json(ValidationBody { valid: v.valid, diagnostics: v.diagnostics }))
}

/// What `render` sends: the template and the targets.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RenderBody {
    #[serde(flatten)]
    pub template: TemplateBody,
    /// `local`, `compose`, `kubernetes`; default: all three.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub targets: Vec<Target>,
}

/// One rendered file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RenderedFile {
    pub path: String,
    pub media_type: String,
    pub executable: bool,
    /// Holds a password: written mode 0600 by the CLI.
    pub secret: bool,
    /// The plugin that wrote it.
    pub plugin: String,
    /// The file's text (UTF-8; a binary file is base16 in `content_hex`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hex: Option<String>,
}

/// What `render` returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RenderResult {
    pub files: Vec<RenderedFile>,
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

/// Render the artifacts of a template for some or all targets (`redplate render`).
#[utoipa::path(post, path = "/api/v1/templates/render", tag = "templates", request_body = RenderBody,
    responses((status = 200, description = "Every artifact, with its content", body = RenderResult), Problems))]
pub async fn render(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<RenderBody>,
) -> ApiResult<axum::Json<RenderResult>> {
    caller.admin()?;
    let resolved = body.template.load()?;
    let targets =
        if body.targets.is_empty() { vec![Target::Local, Target::Compose, Target::Kubernetes] } else { body.targets };
    let rendered = blocking(move || {
        let store = crate::secrets::SecretStore::new(&state.home);
        let strategy = Some(resolved.config.cache.strategy.as_str());
        let extra = ops::render::template_plugins(&resolved.config, None);
        let set = ops::render::PluginSet::load(&state.host, &targets, strategy, &extra, &state.plugin_dirs)?;
        ops::render::render(&state.host, &set, &resolved, &targets, &store, true)
    })
    .await?;
    let files = rendered
        .artifacts
        .iter()
        .map(|a| {
            let (content, content_hex) = match std::str::from_utf8(&a.content) {
                Ok(text) => (Some(text.to_owned()), None),
                Err(_) => (None, Some(hex::encode(&a.content))),
            };
            RenderedFile {
                path: a.path.clone(),
                media_type: a.media_type.clone(),
                executable: a.executable,
                secret: a.secret,
                plugin: a.plugin.clone(),
                content,
                content_hex,
            }
        })
        .collect();
    Ok(axum::Json(RenderResult { files, diagnostics: rendered.diagnostics }))
}

/// A preset's name and summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PresetSummary {
    pub environment: String,
    pub summary: String,
}

/// List the environment presets.
#[utoipa::path(get, path = "/api/v1/presets", tag = "templates",
    responses((status = 200, body = Vec<PresetSummary>), Problems))]
pub async fn presets(caller: Caller) -> ApiResult<axum::Json<Vec<PresetSummary>>> {
    caller.admin()?;
    Ok(axum::Json(
        redplate_config::presets::list()
            .into_iter()
            .map(|p| PresetSummary { environment: p.environment.to_string(), summary: p.summary })
            .collect(),
    ))
}

/// A preset's YAML, comments included.
#[utoipa::path(get, path = "/api/v1/presets/{environment}", tag = "templates",
    params(("environment" = String, Path, description = "development, staging or production")),
    responses((status = 200, content_type = "application/yaml", body = Object), Problems))]
pub async fn preset(caller: Caller, Path(environment): Path<String>) -> ApiResult<impl IntoResponse> {
    caller.admin()?;
    let Ok(env) = serde_json::from_value::<Environment>(serde_json::Value::String(environment.clone())) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "preset.unknown",
            format!(
                "no preset `{}`: the presets are development, staging and production",
                crate::text::clean(&environment, 40)
            ),
        ));
    };
    Ok(([(header::CONTENT_TYPE, "application/yaml")], redplate_config::presets::show(env)))
}

/// The JSON Schema of templates.
#[utoipa::path(get, path = "/api/v1/schema", tag = "templates",
    responses((status = 200, body = Object), Problems))]
pub async fn schema(caller: Caller) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    Ok(axum::Json(serde_json::to_value(redplate_config::schema()).unwrap_or_default()))
}

/// The plugins: built in and from the server's plugin folders.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "templates",
    responses((status = 200, body = Object), Problems))]
pub async fn plugins(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<axum::Json<serde_json::Value>> {
    caller.admin()?;
    let (rows, problems) = blocking(move || Ok(ops::plugins::list(&state.host, &state.plugin_dirs))).await?;
    Ok(axum::Json(serde_json::json!({ "plugins": rows, "diagnostics": problems })))
}
