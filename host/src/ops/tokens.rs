//! API tokens: `redplate token create|list|revoke` and the REST API's
//! check. A token is `rpt_<id>_<secret>` (the id is public and names the
//! token in logs and audit lines; the secret is 32 random bytes). Only its
//! SHA-256 is kept, in `$REDPLATE_HOME/tokens.json` (mode 0600); a
//! presented token is found by its id and its hash compared in constant
//! time. An admin token reaches everything; a tenant token only that
//! tenant's endpoints of that deployment.

use crate::exit::Failure;
use redplate_config::Diagnostic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a token may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Every endpoint.
    Admin,
    /// Only the endpoints of tenant `tenant` of deployment `deployment`.
    Tenant { deployment: String, tenant: String },
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Tenant { deployment, tenant } => write!(f, "tenant `{tenant}` of `{deployment}`"),
        }
    }
}

/// A kept token: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenEntry {
    pub id: String,
    pub scope: Scope,
    /// Unix seconds.
    pub created_unix: u64,
    pub revoked: bool,
    /// SHA-256 of the token, hex.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub sha256: String,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub id: String,
    pub token: String,
    pub scope: Scope,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    tokens: Vec<TokenEntry>,
}

fn path(home: &Path) -> PathBuf {
    home.join("tokens.json")
}

fn unreadable(path: &Path, why: String) -> Failure {
    Failure::could_not_run(
        Diagnostic::error("token.store", "", format!("cannot read the token store `{}`: {why}", path.display()))
            .with_hint("fix or delete it (every token then has to be made again)"),
    )
}

fn read(home: &Path) -> Result<File, Failure> {
    let path = path(home);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| unreadable(&path, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(unreadable(&path, e.to_string())),
    }
}

fn write(home: &Path, file: &File) -> Result<(), Failure> {
    let text = serde_json::to_vec_pretty(file).unwrap_or_default();
    // Written through a temporary file (mode 0600) and renamed.
    crate::ops::config::write_file(&path(home), &text)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, Failure> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        Failure::could_not_run(Diagnostic::error("token.random", "", format!("the OS random generator failed: {e}")))
    })?;
    Ok(hex::encode(buf))
}

/// Makes a token for `scope`; the tenant scope's deployment and tenant
/// must exist.
pub fn create(home: &Path, scope: Scope) -> Result<Issued, Failure> {
    if let Scope::Tenant { deployment, tenant } = &scope {
        let known = crate::ops::tenant::list(home, deployment)?;
        if !known.iter().any(|t| &t.id == tenant) {
            return Err(Failure::invalid(vec![
                Diagnostic::error("token.unknown-tenant", "", format!("`{deployment}` has no tenant `{tenant}`"))
                    .with_hint(format!("`redplate tenant list {deployment}` shows its tenants")),
            ]));
        }
    }
    let mut file = read(home)?;
    let id = loop {
        let id = random_hex(4)?;
        if !file.tokens.iter().any(|t| t.id == id) {
            break id;
        }
    };
    let token = format!("rpt_{id}_{}", random_hex(32)?);
    file.tokens.push(TokenEntry {
        id: id.clone(),
        scope: scope.clone(),
        created_unix: crate::ops::audit::now(),
        revoked: false,
        sha256: hash(&token),
    });
    write(home, &file)?;
    Ok(Issued { id, token, scope })
}

/// Every kept token, without its hash.
pub fn list(home: &Path) -> Result<Vec<TokenEntry>, Failure> {
    Ok(read(home)?.tokens.into_iter().map(|t| TokenEntry { sha256: String::new(), ..t }).collect())
}

/// Revokes token `id`; revoking a revoked token is fine.
pub fn revoke(home: &Path, id: &str) -> Result<TokenEntry, Failure> {
    let mut file = read(home)?;
    let Some(entry) = file.tokens.iter_mut().find(|t| t.id == id) else {
        return Err(Failure::could_not_run(
            Diagnostic::error("token.unknown", "", format!("no token `{}`", crate::text::clean(id, 40)))
                .with_hint("`redplate token list` shows the tokens"),
        ));
    };
    entry.revoked = true;
    let shown = TokenEntry { sha256: String::new(), ..entry.clone() };
    write(home, &file)?;
    Ok(shown)
}

/// The live token `presented` is, if any: found by its id, its hash
/// compared in constant time, not revoked.
pub fn check(home: &Path, presented: &str) -> Result<Option<TokenEntry>, Failure> {
    let Some(id) = presented.strip_prefix("rpt_").and_then(|rest| rest.split('_').next()) else {
        return Ok(None);
    };
    let file = read(home)?;
    let Some(entry) = file.tokens.into_iter().find(|t| t.id == id) else {
        return Ok(None);
    };
    let ok = constant_time_eq(hash(presented).as_bytes(), entry.sha256.as_bytes());
    Ok((ok && !entry.revoked).then_some(entry))
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_hashed_checked_and_revoked() {
        let home = tempfile::tempdir().expect("home");
        let issued = create(home.path(), Scope::Admin).expect("create");
        let kept = std::fs::read_to_string(home.path().join("tokens.json")).expect("store");
        assert!(!kept.contains(&issued.token), "never kept in clear");
        assert_eq!(check(home.path(), &issued.token).expect("check").map(|t| t.id), Some(issued.id.clone()));
        let mut wrong = issued.token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(check(home.path(), &wrong).expect("check").is_none());
        assert!(check(home.path(), "rpt_").expect("check").is_none());
        assert!(check(home.path(), "Bearer nonsense").expect("check").is_none());
        revoke(home.path(), &issued.id).expect("revoke");
        assert!(check(home.path(), &issued.token).expect("check").is_none(), "revoked");
        assert!(list(home.path()).expect("list").iter().all(|t| t.sha256.is_empty()));
        assert!(constant_time_eq(b"ab", b"ab") && !constant_time_eq(b"ab", b"ac") && !constant_time_eq(b"a", b"ab"));
    }
}
