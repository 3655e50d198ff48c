//! The deployment registry: `$REDPLATE_HOME/deployments/<name>/deployment.json`,
//! one file per deployment, written atomically (temp file + fsync + rename) so
//! a crash of redplate leaves either the old or the new record. Every command
//! that changes a deployment holds that deployment's lock
//! (`deployments/.locks/<name>.lock`, `flock`) for its whole run, so two
//! invocations never interleave their changes; readers need no lock.
//!
//! Shared by `ops`, the backends and (later) the API, it sits beside them
//! and imports none of them; the Redis client below never imports it.

use redplate_config::Role;
use redplate_config::model::{Environment, Mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry holds no deployment of that name.
    #[error("no deployment named `{0}`")]
    Unknown(String),
    /// The registry entry cannot be read.
    #[error("the registry entry `{path}` is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A file or folder of the registry could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RegistryError::Io { action, path, source }
    }
}

/// The registry file's format version.
pub const RECORD_VERSION: u32 = 1;

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployState {
    /// `deploy` is running (or crashed while running: `destroy` cleans it up).
    Deploying,
    /// Started and ready.
    Running,
    /// Stopped by `redplate stop` (data kept where the nodes persist it), or
    /// after a `start` that failed and stopped what it had started.
    Stopped,
}

impl std::fmt::Display for DeployState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeployState::Deploying => "deploying",
            DeployState::Running => "running",
            DeployState::Stopped => "stopped",
        })
    }
}

/// One process of a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    /// The role it was deployed with (failovers change the live role; `status` asks the node).
    pub role: Role,
    /// The port clients use: the TLS port when the plain port is off.
    pub port: u16,
    /// Whether `port` speaks TLS.
    pub tls: bool,
    /// Every port the node listens on (client, TLS, cluster bus, sentinel).
    pub ports: Vec<u16>,
    /// Its config file, relative to the state folder.
    pub conf: String,
    /// The process id while it runs.
    pub pid: Option<u32>,
    /// The node it replicates at deploy time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replica_of: Option<String>,
}

/// TLS files the management connections use (absolute paths).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// A registered deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub name: String,
    pub backend: String,
    pub state: DeployState,
    pub mode: Mode,
    /// The template it was deployed from (absolute), its preset and `--set`s.
    pub template: PathBuf,
    pub preset: Option<Environment>,
    pub sets: Vec<String>,
    /// `network.local_base_port` chosen at deploy time and kept for restarts
    /// (every node port is this plus a fixed offset); `start --new-ports` moves it.
    pub base_port: u16,
    /// Set while `start --new-ports` rewrites the node files from this base
    /// port to `base_port`: the next `start` finishes the rewrite.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ports_moved_from: Option<u16>,
    /// The state folder: rendered tree, data, logs (absolute).
    pub state_dir: PathBuf,
    /// Sentinel's master name (sentinel mode).
    pub master_name: Option<String>,
    /// Cluster mode: replicas per master.
    pub cluster_replicas: u8,
    /// The ACL user redplate manages the nodes with, and its password file
    /// (relative to the state folder); `None` when the default user needs no password.
    pub admin_user: Option<String>,
    pub admin_password_file: Option<String>,
    pub tls: Option<TlsFiles>,
    /// The template's ACL users (for the connection info).
    pub users: Vec<String>,
    /// Settings the local backend changed so the template runs here, with why.
    #[serde(default)]
    pub adjustments: Vec<String>,
    pub created_unix: u64,
    pub nodes: Vec<NodeRecord>,
    /// The tenant gateway (`tenancy.gateway`), started with the nodes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gateway: Option<GatewayRecord>,
}

/// The tenant gateway's process. Its port is the ninth of the base port's
/// block (no node uses it), so it moves with the deployment's ports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// The process id while it runs.
    pub pid: Option<u32>,
}

/// Where the gateway's port sits in the deployment's block of ports.
pub const GATEWAY_PORT_OFFSET: u16 = 9;

impl Record {
    /// The tenant gateway's port, when the deployment has one.
    pub fn gateway_port(&self) -> Option<u16> {
        self.gateway.as_ref().map(|_| self.base_port.saturating_add(GATEWAY_PORT_OFFSET))
    }

    /// A path inside the state folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.state_dir.join(relative)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Redis data nodes (masters and replicas), in topology order.
    pub fn data_nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|n| n.role != Role::Sentinel)
    }

    /// Sentinels.
    pub fn sentinels(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|n| n.role == Role::Sentinel)
    }

    /// The node's log file.
    pub fn log_file(&self, node: &str) -> PathBuf {
        self.state_dir.join("logs").join(format!("{node}.log"))
    }
}

/// Holds a deployment's lock until dropped.
pub struct Lock {
    _file: File,
}

/// The registry under `$REDPLATE_HOME/deployments`.
pub struct Registry {
    root: PathBuf,
}

/// Whether `name` can be a folder name: `[a-z0-9][a-z0-9._-]*`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

impl Registry {
    /// The registry of `home` (usually [`crate::secrets::redplate_home`]).
    pub fn new(home: &Path) -> Self {
        Registry { root: home.join("deployments") }
    }

    /// The deployment's state folder.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir(name).join("deployment.json")
    }

    /// Takes the deployment's lock, waiting for another invocation to finish.
    pub fn lock(&self, name: &str) -> Result<Lock, RegistryError> {
        self.lock_file(&format!("{name}.lock"))
    }

    /// The lock serialising port allocation within this home.
    pub fn ports_lock(&self) -> Result<Lock, RegistryError> {
        self.lock_file("ports.lock")
    }

    fn lock_file(&self, file: &str) -> Result<Lock, RegistryError> {
        let dir = self.root.join(".locks");
        std::fs::create_dir_all(&dir).map_err(RegistryError::io("create", &dir))?;
        let path = dir.join(file);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(RegistryError::io("open", &path))?;
        f.lock().map_err(RegistryError::io("lock", &path))?;
        Ok(Lock { _file: f })
    }

    /// Whether a record exists.
    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// Reads a record.
    pub fn load(&self, name: &str) -> Result<Record, RegistryError> {
        let path = self.file(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RegistryError::Unknown(name.into())),
            Err(e) => return Err(RegistryError::Io { action: "read", path, source: e }),
        };
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt { path, message: e.to_string() })
    }

    /// Writes a record atomically.
    pub fn save(&self, record: &Record) -> Result<(), RegistryError> {
        let dir = self.dir(&record.name);
        std::fs::create_dir_all(&dir).map_err(RegistryError::io("create", &dir))?;
        let path = self.file(&record.name);
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| RegistryError::Corrupt { path: path.clone(), message: e.to_string() })?;
        write_atomic(&path, &bytes, false)
    }

    /// Forgets a record (the state folder stays).
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RegistryError::Io { action: "remove", path, source: e }),
        }
    }

    /// The ports recorded for every deployment but `except`, each with its
    /// deployment: they stay reserved, running or stopped, until it is
    /// destroyed, so no other deployment takes them.
    pub fn reserved_ports(&self, except: &str) -> BTreeMap<u16, String> {
        let (records, _) = self.list();
        records
            .iter()
            .filter(|r| r.name != except)
            .flat_map(|r| {
                let nodes = r.nodes.iter().flat_map(|n| n.ports.iter().copied());
                nodes.chain(r.gateway_port()).map(|p| (p, r.name.clone())).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every readable record, sorted by name; unreadable ones are reported beside.
    pub fn list(&self) -> (Vec<Record>, Vec<RegistryError>) {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else { return (records, problems) };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| valid_name(n))
            .collect();
        names.sort();
        for name in names {
            if !self.exists(&name) {
                continue;
            }
            match self.load(&name) {
                Ok(r) => records.push(r),
                Err(e) => problems.push(e),
            }
        }
        (records, problems)
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder, synced,
/// then renamed over it; `secret` files get mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(RegistryError::io("create", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(RegistryError::io("write", path))?;
    tmp.write_all(bytes).map_err(RegistryError::io("write", path))?;
    tmp.as_file().sync_all().map_err(RegistryError::io("sync", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(RegistryError::io("chmod", path))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    tmp.persist(path).map_err(|e| RegistryError::Io {
        action: "rename into",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_folder_names() {
        for good in ["orders", "dev-cache", "a.b_c1"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "x\0"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_lock_excludes_a_second_holder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let reg = Registry::new(tmp.path());
        let held = reg.lock("x").expect("lock");
        let path = tmp.path().join("deployments/.locks/x.lock");
        let other = File::options().write(true).open(&path).expect("open");
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(held);
        other.try_lock().expect("free after drop");
    }
}
