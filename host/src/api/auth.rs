//! Bearer tokens on every endpoint but `/healthz` and `/readyz`. The
//! [`Caller`] extractor answers `401` (missing, malformed, wrong or revoked
//! token) before a handler runs; a handler then asks for the scope it
//! needs and answers `403` when the token's does not cover it. Either way
//! nothing is done, and the answer is the one problem shape.

use super::AppState;
use super::problem::ApiError;
use crate::ops::tokens::{Scope, TokenEntry};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::sync::Arc;

/// Who is calling: the token that was presented.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenEntry);

impl Caller {
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Only an admin token.
    pub fn admin(&self) -> Result<(), ApiError> {
        match &self.0.scope {
            Scope::Admin => Ok(()),
            s => {
                Err(ApiError::forbidden(format!("token {} is for {s}: this endpoint needs an admin token", self.0.id)))
            }
        }
    }

    /// An admin token, or the token of tenant `tenant` of `deployment`.
    pub fn tenant(&self, deployment: &str, tenant: &str) -> Result<(), ApiError> {
        match &self.0.scope {
            Scope::Admin => Ok(()),
            Scope::Tenant { deployment: d, tenant: t } if d == deployment && t == tenant => Ok(()),
            s => Err(ApiError::forbidden(format!(
                "token {} is for {s}, not for tenant `{}` of `{}`",
                self.0.id,
                crate::text::clean(tenant, 64),
                crate::text::clean(deployment, 64)
            ))),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized("send `Authorization: Bearer <token>` (`redplate token create`)"));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header is not `Bearer <token>`"))?;
        let home = state.home.clone();
        let owned = presented.to_owned();
        let entry = tokio::task::spawn_blocking(move || crate::ops::tokens::check(&home, &owned))
            .await
            .map_err(|_| ApiError::unauthorized("the token could not be checked"))?
            .map_err(ApiError::from)?;
        match entry {
            Some(entry) => Ok(Caller(entry)),
            None => Err(ApiError::unauthorized("the token is wrong or revoked")),
        }
    }
}
