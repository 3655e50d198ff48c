//! The state folder's files: the rendered tree written in place (each file
//! atomically, data folders untouched), redplate's own management user, and
//! reading directives back from the rendered configs.

use crate::artifact::{Artifact, ArtifactSet};
use crate::backend::BackendError;
use crate::registry::write_atomic;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The ACL user redplate manages a local deployment with (local use only).
pub const ADMIN_USER: &str = "redplate-admin";
/// Its password file, relative to the state folder.
pub const ADMIN_PASSWORD_FILE: &str = "secrets/redplate-admin.password";

/// Writes every artifact under `dir`, each file atomically; what else is in
/// `dir` (data, logs) stays. Secrets, ACL files and keys get mode 0600.
pub fn write_tree(set: &ArtifactSet, dir: &Path) -> Result<(), BackendError> {
    for a in set.iter() {
        write_artifact(a, dir)?;
    }
    Ok(())
}

/// Writes the artifacts that do not exist under `dir` yet (the files of
/// nodes a scale adds) and leaves every existing file as it is (Redis and
/// Sentinel rewrite their live configs). Returns the paths written.
pub fn write_missing(set: &ArtifactSet, dir: &Path) -> Result<Vec<PathBuf>, BackendError> {
    let mut written = Vec::new();
    for a in set.iter().filter(|a| !dir.join(&a.path).exists()) {
        written.push(write_artifact(a, dir)?);
    }
    Ok(written)
}

fn write_artifact(a: &Artifact, dir: &Path) -> Result<PathBuf, BackendError> {
    let secret = a.path.ends_with(".acl") || a.path.contains("secret") || a.path.ends_with(".key");
    let path = dir.join(&a.path);
    write_atomic(&path, &a.content, secret || a.path.ends_with(".conf"))?;
    #[cfg(unix)]
    if a.executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(BackendError::io("chmod", &path))?;
    }
    Ok(path)
}

/// The first value of `directive` in a redis.conf / sentinel.conf, unquoted.
pub fn conf_value(conf: &Path, directive: &str) -> Option<String> {
    let text = std::fs::read_to_string(conf).ok()?;
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next()? == directive).then(|| words.collect::<Vec<_>>().join(" ").trim_matches('"').to_owned())
    })
}

/// Adds redplate's management user to the rendered `redis/users.acl` (when
/// the template uses an ACL file): the production presets switch the
/// `default` user off and give no user the admin commands redplate needs
/// (CLUSTER, CONFIG, INFO, writes for checks). The password is created once
/// per state folder and kept in [`ADMIN_PASSWORD_FILE`] (mode 0600).
/// Returns whether the user was added.
pub fn add_admin_user(dir: &Path) -> Result<bool, BackendError> {
    let acl = dir.join("redis/users.acl");
    let Ok(text) = std::fs::read_to_string(&acl) else { return Ok(false) };
    let pw_file = dir.join(ADMIN_PASSWORD_FILE);
    let password = match std::fs::read_to_string(&pw_file) {
        Ok(p) if !p.trim().is_empty() => p.trim().to_owned(),
        _ => {
            let p = crate::secrets::random_password().map_err(|e| BackendError::Io {
                action: "draw a random password for",
                path: pw_file.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            write_atomic(&pw_file, p.as_bytes(), true)?;
            p
        }
    };
    let hash = hex::encode(Sha256::digest(password.as_bytes()));
    let mut out: String =
        text.lines().filter(|l| !l.starts_with(&format!("user {ADMIN_USER} "))).collect::<Vec<_>>().join("\n");
    out.push_str(&format!("\nuser {ADMIN_USER} on #{hash} ~* &* +@all\n"));
    write_atomic(&acl, out.as_bytes(), true)?;
    Ok(true)
}

/// The ACL user names a users.acl defines (for the connection info).
pub fn acl_users(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("redis/users.acl")) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let user = (w.next()? == "user").then(|| w.next()).flatten()?;
            // A user switched off (`default` in production) is no connection option.
            (!w.any(|r| r == "off")).then(|| user.to_owned())
        })
        .filter(|u| u != ADMIN_USER)
        .collect()
}

/// The last `lines` lines of a file (for error messages and `logs`).
pub fn tail(path: &Path, lines: usize) -> String {
    tail_text(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

/// The last `lines` lines of `text`.
pub fn tail_text(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_and_acl_users_are_read_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let conf = tmp.path().join("redis.conf");
        std::fs::write(&conf, "# port 1\nport 0\ntls-port 7001\nsave \"900 1\"\n").expect("write");
        assert_eq!(conf_value(&conf, "port").as_deref(), Some("0"));
        assert_eq!(conf_value(&conf, "tls-port").as_deref(), Some("7001"));
        assert_eq!(conf_value(&conf, "save").as_deref(), Some("900 1"));
        assert_eq!(conf_value(&conf, "bind"), None);
        std::fs::create_dir_all(tmp.path().join("redis")).expect("mkdir");
        std::fs::write(tmp.path().join("redis/users.acl"), "user default off\nuser app on #ab ~*\n").expect("write");
        assert!(add_admin_user(tmp.path()).expect("admin"));
        assert!(add_admin_user(tmp.path()).expect("admin again"));
        let acl = std::fs::read_to_string(tmp.path().join("redis/users.acl")).expect("read");
        assert_eq!(acl.matches(ADMIN_USER).count(), 1, "added once: {acl}");
        assert_eq!(acl_users(tmp.path()), ["app"]);
    }
}
