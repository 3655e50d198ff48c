//! Passwords for a deployment's users, resolved on the host — plugins never
//! read files or the environment. `generate: true` passwords are created once
//! per deployment and kept in `$REDPLATE_HOME/secrets/<name>.json` (mode
//! 0600), so re-rendering never re-randomises them.

use redplate_config::model::SecretSource;
use redplate_config::{Config, Diagnostic, Target};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The folder for redplate's state: `$REDPLATE_HOME`, else the user's data
/// folder (`~/.local/share/redplate`).
pub fn redplate_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("REDPLATE_HOME") {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "redplate")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".redplate"))
}

/// A user that needs a password: its name, where the password comes from,
/// and the JSON pointer of that setting.
struct Wanted {
    user: String,
    source: SecretSource,
    pointer: String,
}

fn wanted(config: &Config) -> Vec<Wanted> {
    let mut out = Vec::new();
    if let Some(source) = &config.security.password {
        out.push(Wanted { user: "default".into(), source: source.clone(), pointer: "/security/password".into() });
    }
    for (i, u) in config.security.users.iter().enumerate() {
        if let Some(source) = &u.password {
            out.push(Wanted {
                user: u.name.clone(),
                source: source.clone(),
                pointer: format!("/security/users/{i}/password"),
            });
        }
    }
    if config.tenancy.enabled {
        for (i, t) in config.tenancy.tenants.iter().enumerate() {
            let source = t.password.clone().unwrap_or(SecretSource::Generate(true));
            out.push(Wanted {
                user: format!("tenant-{}", t.id),
                source,
                pointer: format!("/tenancy/tenants/{i}/password"),
            });
        }
    }
    out
}

/// The `secrets` part of the plugin input for one target. Clear-text
/// passwords are included for the local and compose targets only.
pub fn resolve(config: &Config, target: Target, store: &SecretStore) -> Result<Value, Vec<Diagnostic>> {
    let name = &config.deployment.name;
    let secret_name = format!("{name}-auth");
    let mut users = Map::new();
    let mut problems = Vec::new();
    let mut generated = store.load(name).map_err(|e| {
        vec![
            Diagnostic::error(
                "secrets.store",
                "",
                format!("cannot read the kept passwords in `{}`: {e}", store.file(name).display()),
            )
            .with_hint(
                "repair or restore that file (it holds the passwords running nodes use); redplate does not \
                 make new passwords over kept ones",
            ),
        ]
    })?;
    let mut changed = false;
    for w in wanted(config) {
        let mut entry = Map::new();
        let (k8s_name, k8s_key) = match &w.source {
            SecretSource::Secret(r) => (r.name.clone(), r.key.clone()),
            _ => (secret_name.clone(), w.user.clone()),
        };
        entry.insert("secret_name".into(), json!(k8s_name));
        entry.insert("secret_key".into(), json!(k8s_key));
        if target != Target::Kubernetes {
            let password = match &w.source {
                SecretSource::Value(v) => Ok(v.clone()),
                SecretSource::File(path) => read_secret_file(Path::new(path)).map_err(|e| {
                    Diagnostic::error(
                        "secrets.unreadable",
                        &w.pointer,
                        format!("cannot read the password of `{}` from `{path}`: {e}", w.user),
                    )
                    .with_hint("create the file (mode 0600) or choose `password: { generate: true }`")
                }),
                SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                    Diagnostic::error(
                        "secrets.env-missing",
                        &w.pointer,
                        format!("the environment variable `{var}` holding the password of `{}` is not set", w.user),
                    )
                    .with_hint(format!(
                        "export {var}=… before running redplate, or choose `password: {{ generate: true }}`"
                    ))
                }),
                // A Kubernetes secret cannot be read outside the cluster: local and
                // compose deployments get a generated password, kept like any other.
                SecretSource::Generate(_) | SecretSource::Secret(_) => Ok(match generated.get(&w.user) {
                    Some(p) => p.clone(),
                    None => {
                        let p = random_password().map_err(|e| {
                            vec![Diagnostic::error(
                                "secrets.no-randomness",
                                &w.pointer,
                                format!(
                                    "cannot generate a password for `{}`: the OS random source failed: {e}",
                                    w.user
                                ),
                            )]
                        })?;
                        generated.insert(w.user.clone(), p.clone());
                        changed = true;
                        p
                    }
                }),
            };
            match password {
                Ok(p) => {
                    entry.insert("sha256".into(), json!(hex::encode(Sha256::digest(p.as_bytes()))));
                    entry.insert("password".into(), json!(p));
                }
                Err(d) => problems.push(d),
            }
        }
        users.insert(w.user, Value::Object(entry));
    }
    if changed && let Err(e) = store.save(name, &generated) {
        problems.push(Diagnostic::error("secrets.store", "", format!("cannot keep the generated passwords: {e}")));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut secrets = Map::new();
    secrets.insert("users".into(), Value::Object(users));
    if let Some(tls) = tls_files(config) {
        secrets.insert("tls".into(), tls);
    }
    Ok(Value::Object(secrets))
}

/// Every clear-text password in a [`resolve`] result (for finding files
/// that hold one).
pub fn passwords(secrets: &Value) -> Vec<String> {
    let Some(users) = secrets.get("users").and_then(Value::as_object) else { return Vec::new() };
    users.values().filter_map(|u| u.get("password").and_then(Value::as_str)).map(str::to_owned).collect()
}

/// The same shape as [`resolve`] with placeholder passwords, for plugins'
/// `validate`: checks the structure without reading or creating a secret.
pub fn placeholders(config: &Config, target: Target) -> Value {
    let name = &config.deployment.name;
    let mut users = Map::new();
    for w in wanted(config) {
        let (secret_name, secret_key) = match &w.source {
            SecretSource::Secret(r) => (r.name.clone(), r.key.clone()),
            _ => (format!("{name}-auth"), w.user.clone()),
        };
        let mut entry = Map::new();
        entry.insert("secret_name".into(), json!(secret_name));
        entry.insert("secret_key".into(), json!(secret_key));
        if target != Target::Kubernetes {
            let placeholder = format!("validate-placeholder-{}", w.user);
            entry.insert("sha256".into(), json!(hex::encode(Sha256::digest(placeholder.as_bytes()))));
            entry.insert("password".into(), json!(placeholder));
        }
        users.insert(w.user, Value::Object(entry));
    }
    let mut secrets = Map::new();
    secrets.insert("users".into(), Value::Object(users));
    if let Some(tls) = tls_files(config) {
        secrets.insert("tls".into(), tls);
    }
    Value::Object(secrets)
}

/// Where the TLS files are: as configured, or — for self-signed
/// certificates that name no files — `tls/{tls.crt,tls.key,ca.crt}` in the
/// deployment's folder, where the local backend creates them.
fn tls_files(config: &Config) -> Option<Value> {
    let tls = &config.security.tls;
    if !tls.enabled {
        return None;
    }
    let or = |configured: &str, default: &str| {
        if configured.is_empty() { default.to_owned() } else { configured.to_owned() }
    };
    Some(json!({
        "cert_file": or(&tls.cert_file, "tls/tls.crt"),
        "key_file": or(&tls.key_file, "tls/tls.key"),
        "ca_file": or(&tls.ca_file, "tls/ca.crt"),
    }))
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?.take(4096).read_to_string(&mut text)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// 192 bits from the OS generator, hex-encoded. No fallback: a password
/// that could be guessed from the time and the pid is worse than none.
pub fn random_password() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Where generated passwords are kept.
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// The store under `home` (usually [`redplate_home`]).
    pub fn new(home: &Path) -> Self {
        SecretStore { dir: home.join("secrets") }
    }

    /// The file holding `deployment`'s generated passwords.
    pub fn file(&self, deployment: &str) -> PathBuf {
        self.dir.join(format!("{deployment}.json"))
    }

    /// The kept passwords; none when the file does not exist yet. A file
    /// that exists but cannot be read or parsed is an error, never "none":
    /// new passwords over kept ones would lock running nodes' users out.
    fn load(&self, deployment: &str) -> Result<BTreeMap<String, String>, String> {
        match std::fs::read(self.file(deployment)) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("it is not a JSON object of passwords ({e})"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Forgets the kept password of `user` (a removed tenant's), so a user
    /// made again under that name gets a new one. Returns whether one was kept.
    pub fn forget(&self, deployment: &str, user: &str) -> Result<bool, String> {
        let mut kept = self.load(deployment)?;
        if kept.remove(user).is_none() {
            return Ok(false);
        }
        self.save(deployment, &kept).map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Keeps `password` as `user`'s (a rotated tenant password).
    pub fn set(&self, deployment: &str, user: &str, password: &str) -> Result<(), String> {
        let mut kept = self.load(deployment)?;
        kept.insert(user.to_owned(), password.to_owned());
        self.save(deployment, &kept).map_err(|e| e.to_string())
    }

    fn save(&self, deployment: &str, passwords: &BTreeMap<String, String>) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(passwords).map_err(std::io::Error::other)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.file(deployment)).map_err(|e| e.error)?;
        Ok(())
    }
}
