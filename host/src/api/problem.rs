//! One error shape for every endpoint: RFC 9457 problem details
//! (`application/problem+json`) with redplate's diagnostics (codes, JSON
//! pointers, hints, file locations) attached. Every failure of an `ops`
//! function becomes one through [`ApiError`]'s `From<Failure>`; the HTTP
//! status follows from the first error's code and the exit status.

use crate::exit::{ExitStatus, Failure};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use redplate_config::Diagnostic;
use serde::{Deserialize, Serialize};

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:redplate:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// redplate's findings, each with its code, JSON pointer and hint.
    #[schema(value_type = Vec<Object>)]
    pub diagnostics: Vec<Diagnostic>,
}

/// Every problem an endpoint may answer, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "a description of the answers for utoipa; the answers are `ApiError`s")]
pub enum Problems {
    /// Malformed request: JSON, path or query.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No token, a malformed, wrong or revoked one.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token's scope does not cover this endpoint.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such deployment, tenant, node, operation or endpoint.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Already exists, or a job runs on the deployment.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// A wrong or expired confirmation token.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    /// Invalid input: a template, a refused command, an error reply.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// redplate failed.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// Redis could not be reached.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl ApiError {
    /// A problem with one diagnostic of `code`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        let detail = detail.into();
        let diagnostics = vec![Diagnostic::error(code, "", detail.clone())];
        ApiError(problem(status, code, detail, diagnostics))
    }

    pub fn unauthorized(detail: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "auth.unauthorized", detail)
    }

    pub fn forbidden(detail: String) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "auth.forbidden", detail)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn problem(status: StatusCode, code: &str, detail: String, diagnostics: Vec<Diagnostic>) -> Problem {
    Problem {
        kind: format!("urn:redplate:{code}"),
        title: status.canonical_reason().unwrap_or("error").to_owned(),
        status: status.as_u16(),
        detail,
        diagnostics,
    }
}

/// The HTTP status of a failure whose first error has `code`.
pub fn status_of(code: &str, exit: ExitStatus) -> StatusCode {
    let unknown = code.ends_with(".unknown") || code.ends_with(".unknown-node") || code == "token.unknown-tenant";
    if unknown {
        return StatusCode::NOT_FOUND;
    }
    match code {
        "deploy.exists" | "tenant.exists" | "deploy.leftover" | "deploy.locked" | "operation.conflict" => {
            StatusCode::CONFLICT
        }
        c if c.starts_with("confirm.") => StatusCode::PRECONDITION_FAILED,
        c if c.starts_with("redis.") || c == "deploy.redis" => StatusCode::BAD_GATEWAY,
        c if c.starts_with("tenant.not-running") => StatusCode::CONFLICT,
        _ => match exit {
            ExitStatus::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        let first = f.diagnostics.iter().find(|d| d.is_error()).or(f.diagnostics.first());
        let code = first.map_or("error", |d| d.code.as_str()).to_owned();
        let detail = first.map_or_else(|| "the operation failed".to_owned(), |d| crate::text::clean(&d.message, 2000));
        let status = status_of(&code, f.status);
        ApiError(problem(status, &code, detail, f.diagnostics))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// What every handler returns on failure.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        assert_eq!(status_of("deploy.unknown", ExitStatus::CouldNotRun), StatusCode::NOT_FOUND);
        assert_eq!(status_of("tenant.unknown", ExitStatus::CouldNotRun), StatusCode::NOT_FOUND);
        assert_eq!(status_of("deploy.exists", ExitStatus::Invalid), StatusCode::CONFLICT);
        assert_eq!(status_of("confirm.expired", ExitStatus::Invalid), StatusCode::PRECONDITION_FAILED);
        assert_eq!(status_of("template.unknown-key", ExitStatus::Invalid), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status_of("deploy.io", ExitStatus::CouldNotRun), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
