//! Confirmation tokens for destructive operations (`flush`, later
//! `restore`): the first call changes nothing and hands out a token bound to
//! the deployment and to what would be destroyed, valid for a few minutes;
//! only the second call, with that token, acts. A token is
//! `<expiry>-<mac>`, the MAC a keyed BLAKE3 of (deployment, scope, expiry)
//! under a key created once in `$REDPLATE_HOME/confirm.key` (mode 0600), so
//! tokens cannot be made up, moved to another deployment or scope, or kept.

use crate::exit::Failure;
use redplate_config::Diagnostic;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token stays valid.
pub const VALID_FOR: Duration = Duration::from_secs(300);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn key(home: &Path) -> Result<[u8; 32], Failure> {
    let path = home.join("confirm.key");
    let fail = |e: std::io::Error| {
        Failure::could_not_run(Diagnostic::error(
            "confirm.key",
            "",
            format!("cannot read or create the token key `{}`: {e}", path.display()),
        ))
    };
    match std::fs::read(&path) {
        Ok(bytes) => bytes.try_into().map_err(|_| {
            fail(std::io::Error::other(
                "it is not 32 bytes long; delete it to make a new one (old tokens stop working)",
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
            crate::ops::config::write_file(&path, &key)?;
            // Another process may have made one first: use whichever won.
            let bytes = std::fs::read(&path).map_err(fail)?;
            bytes.try_into().map_err(|_| fail(std::io::Error::other("it changed while being made")))
        }
        Err(e) => Err(fail(e)),
    }
}

fn mac(key: &[u8; 32], deployment: &str, scope: &str, expiry: u64) -> String {
    let message = format!("{deployment}\n{scope}\n{expiry}");
    hex::encode(&blake3::keyed_hash(key, message.as_bytes()).as_bytes()[..16])
}

/// A token for `scope` (e.g. `flush:all`) of `deployment`.
pub fn issue(home: &Path, deployment: &str, scope: &str) -> Result<String, Failure> {
    let expiry = now() + VALID_FOR.as_secs();
    Ok(format!("{expiry}-{}", mac(&key(home)?, deployment, scope, expiry)))
}

/// Checks `token` for `scope` of `deployment`: a wrong or expired token is
/// an error (exit 1) that says how to get a fresh one.
pub fn check(home: &Path, deployment: &str, scope: &str, token: &str, again: &str) -> Result<(), Failure> {
    let wrong = |why: &str| {
        Failure::invalid(vec![
            Diagnostic::error("confirm.rejected", "", format!("the confirmation token {why}; nothing was changed"))
                .with_hint(format!("run `{again}` without `--confirm` to see what it would do and get a new token")),
        ])
    };
    let Some((expiry, given)) = token.trim().split_once('-') else { return Err(wrong("is malformed")) };
    let Ok(expiry) = expiry.parse::<u64>() else { return Err(wrong("is malformed")) };
    let expected = mac(&key(home)?, deployment, scope, expiry);
    // Constant time: compare every byte whatever the first difference.
    let same = expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(wrong("does not match this deployment and operation"));
    }
    if expiry < now() {
        return Err(wrong("has expired"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_deployment_scope_and_time() {
        let home = tempfile::tempdir().expect("tmp");
        let token = issue(home.path(), "orders", "flush:all").expect("issue");
        assert!(check(home.path(), "orders", "flush:all", &token, "x").is_ok());
        assert!(check(home.path(), "payments", "flush:all", &token, "x").is_err(), "another deployment");
        assert!(check(home.path(), "orders", "flush:tenant:a", &token, "x").is_err(), "another scope");
        assert!(check(home.path(), "orders", "flush:all", "123-abc", "x").is_err(), "made up");
        let key = key(home.path()).expect("key");
        let old = now() - 1;
        let expired = format!("{old}-{}", mac(&key, "orders", "flush:all", old));
        let e = check(home.path(), "orders", "flush:all", &expired, "x").expect_err("expired");
        assert!(e.diagnostics[0].message.contains("expired"));
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(home.path().join("confirm.key")).expect("key file").permissions().mode()
        };
        assert_eq!(mode & 0o077, 0, "the key is private");
    }
}
