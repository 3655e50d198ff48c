//! Built-in generator: `backup/backup.sh` and `backup/restore.sh`, bash
//! scripts for one Redis node, their defaults rendered from the config's
//! `backup`, `persistence` and `security` sections (every default can be
//! overridden by an environment variable at run time).
//!
//! Templates (`backup.sh`, `restore.sh`) go through the host's `render`, so a
//! user's template of the same name wins; every value is shell-quoted here
//! before it reaches a template.

mod input;

use input::{Input, Node};
use redplate_plugin_sdk::{Artifact, Diagnostic, Generator, Host, Output, PluginInfo, parse_input};
use serde_json::{Value, json};

const NAME: &str = "backup";
/// The artifacts, per wit/INPUT.md.
pub const BACKUP: &str = "backup/backup.sh";
pub const RESTORE: &str = "backup/restore.sh";

/// The local backend's management user.
const LOCAL_ADMIN: &str = "redplate-admin";

const COMMON: &str = include_str!("templates/common.sh.hbs");
const BACKUP_SH: &str = include_str!("templates/backup.sh.hbs");
const RESTORE_SH: &str = include_str!("templates/restore.sh.hbs");

pub struct Plugin;

impl Generator for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::generator(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "backup.sh and restore.sh: checksummed, compressed, encrypted RDB backups",
            &[BACKUP, RESTORE],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        match parse_input::<Input>(NAME, input_json) {
            Err(ds) => ds,
            Ok(input) => match settings(&input) {
                Ok((_, mut notes)) => {
                    notes.retain(|d| d.severity == redplate_plugin_sdk::Severity::Error);
                    notes
                }
                Err(ds) => ds,
            },
        }
    }

    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        let (mut data, diagnostics) = settings(&input)?;
        let render = |name: &str, template: &str, data: &Value| {
            input.template_overrides.render_value(host, name, template, data).map_err(|e| {
                vec![
                    Diagnostic::error("backup.render", "", e)
                        .with_hint(format!("check the `{name}` template override")),
                ]
            })
        };
        // The shared settings block is rendered first, then inlined.
        data["common"] = Value::String(render("backup-common.sh", COMMON, &data)?);
        let backup = render("backup.sh", BACKUP_SH, &data)?;
        // restore.sh defaults to the master: a replica would resync over a
        // restore. Its host, port and data folder all name that one node.
        if let Some(master) = master_node(&input) {
            let (host, port, _) = endpoint(master);
            data["host"] = Value::String(host);
            data["port"] = Value::String(port);
            data["data_dir"] = Value::String(path_word(&data_dir(&input, master)));
            let mut plain = data.clone();
            plain["common"] = Value::Null;
            data["common"] = Value::String(render("backup-common.sh", COMMON, &plain)?);
        }
        let restore = render("restore.sh", RESTORE_SH, &data)?;
        Ok(Output {
            artifacts: vec![
                Artifact::new(BACKUP, backup, "text/x-shellscript").executable(),
                Artifact::new(RESTORE, restore, "text/x-shellscript").executable(),
            ],
            diagnostics,
        })
    }
}

/// Quotes a value for a POSIX shell (single quotes, `'` spelled `'\''`).
pub fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A path as a shell word: relative paths (the host's own CA in `tls/`, the
/// local target's `data/<node>`, `./backups`) are taken from the rendered
/// tree, the folder above `backup/`, whatever the working directory.
fn path_word(p: &str) -> String {
    let tree_safe = p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if p.is_empty() || p.starts_with('/') || !tree_safe {
        sq(p)
    } else {
        format!("\"$SCRIPT_DIR/../{}\"", p.trim_start_matches("./"))
    }
}

fn safe_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Seconds in a config duration (`10s`, `1h`, `500ms`, or a number of milliseconds).
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().map(|ms| ms / 1000),
        Value::String(s) => {
            let t = s.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let n: u64 = num.parse().ok()?;
            let ms: u64 = match unit {
                "" | "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return None,
            };
            n.checked_mul(ms).map(|v| v / 1000)
        }
        _ => None,
    }
}

/// The node backed up by default: a replica of the first shard when
/// `from_replica` is set and one exists, else the first master.
fn master_node(input: &Input) -> Option<&Node> {
    input.topology.nodes.iter().find(|n| n.role == "master" && n.shard.unwrap_or(0) == 0)
}

/// Host, port and TLS flag (all shell-quoted) to reach `node`.
fn endpoint(node: &Node) -> (String, String, bool) {
    let (port, tls) = match (node.ports.client, node.ports.tls) {
        (Some(p), _) => (p, false),
        (None, Some(p)) => (p, true),
        (None, None) => (6379, false),
    };
    let host = if node.hostname.is_empty() { "127.0.0.1" } else { node.hostname.as_str() };
    (sq(host), sq(&port.to_string()), tls)
}

/// The data folder of `node`: its own, else the template's.
fn data_dir(input: &Input, node: &Node) -> String {
    if node.data_dir.is_empty() { input.config.persistence.data_dir.clone() } else { node.data_dir.clone() }
}

fn source_node(input: &Input) -> Option<&Node> {
    let nodes = &input.topology.nodes;
    let first_shard = |n: &&Node| n.shard.unwrap_or(0) == 0;
    let replica = nodes.iter().filter(first_shard).find(|n| n.role == "replica");
    let master = nodes.iter().filter(first_shard).find(|n| n.role == "master");
    if input.config.backup.from_replica { replica.or(master) } else { master }
}

/// The template data: every value already shell-quoted.
fn settings(input: &Input) -> Result<(Value, Vec<Diagnostic>), Vec<Diagnostic>> {
    let c = &input.config;
    let b = &c.backup;
    let mut notes = Vec::new();
    let Some(node) = source_node(input) else {
        return Err(vec![
            Diagnostic::error(
                "backup.no-data-nodes",
                "/topology/nodes",
                "the topology has no master or replica to back up",
            )
            .with_hint("set `deployment.mode` to a mode with at least one Redis node"),
        ]);
    };
    let (host, port, tls) = endpoint(node);
    let from_secrets = input.secrets.tls.as_ref();
    let tls_file = |s: Option<&String>, conf: &str| -> String {
        match s.filter(|v| !v.is_empty()) {
            Some(v) => v.clone(),
            None => conf.to_owned(),
        }
    };
    let (cacert, cert, key) = if tls {
        let cert = tls_file(from_secrets.map(|t| &t.cert_file), &c.security.tls.cert_file);
        let key = tls_file(from_secrets.map(|t| &t.key_file), &c.security.tls.key_file);
        let client = c.security.tls.client_auth == "required";
        (
            tls_file(from_secrets.map(|t| &t.ca_file), &c.security.tls.ca_file),
            if client { cert } else { String::new() },
            if client { key } else { String::new() },
        )
    } else {
        Default::default()
    };

    // The user: the `backup` role's (exactly the commands these scripts
    // send, plugins/redis-conf/src/rules.rs), else an admin (BGSAVE, CONFIG
    // GET, SYNC and SHUTDOWN are admin commands), else `default` when it has a
    // password, else no auth.
    let known = &input.secrets.users;
    let with_role = |role: &str| {
        c.security
            .users
            .iter()
            .find(|u| u.role == role && u.enabled && known.contains_key(&u.name))
            .map(|u| u.name.clone())
    };
    let chosen = with_role("backup")
        .or_else(|| c.security.users.iter().find(|u| u.role == "admin").map(|u| u.name.clone()))
        .or_else(|| known.contains_key("default").then(|| "default".to_owned()));
    // The local backend adds its own management user to `users.acl`, with its
    // password in the rendered tree (host/src/backend/local/files.rs).
    let local_admin = (input.target == "local" && c.security.auth_enabled).then(|| LOCAL_ADMIN.to_owned());
    let user = chosen.clone().or(local_admin);
    let (user, password_file) = match user {
        Some(u) if safe_name(&u) => {
            let file = format!("\"$SCRIPT_DIR/../secrets/{u}.password\"");
            (sq(&u), file)
        }
        Some(u) => {
            return Err(vec![
                Diagnostic::error(
                    "backup.bad-user-name",
                    "/config/security/users",
                    format!("user name `{u}` cannot name a password file"),
                )
                .with_hint("use letters, digits, `_`, `-` and `.` in user names"),
            ]);
        }
        None => (sq(""), sq("")),
    };
    if c.security.auth_enabled && chosen.is_none() && input.target != "local" {
        notes.push(
            Diagnostic::warning("backup.no-backup-user", "/config/security/users", "auth is on but no user may run backups: backup.sh and restore.sh need BGSAVE, CONFIG GET, SYNC and SHUTDOWN")
                .with_hint("add `{ name: backup, role: backup, password: { generate: true } }` to `security.users`, or set REDIS_USER and REDIS_PASSWORD_FILE when running the scripts"),
        );
    }

    // Destination.
    let dest = &b.destination;
    let (backup_dir, s3) = if let Some(d) = dest.get("directory").and_then(Value::as_str) {
        (d.to_owned(), String::new())
    } else if let Some(url) = dest.get("s3").and_then(Value::as_str) {
        ("./backups".to_owned(), url.to_owned())
    } else if dest.get("pvc").is_some() {
        // The PVC is mounted at /backups by the job that runs the script.
        ("/backups".to_owned(), String::new())
    } else {
        ("./backups".to_owned(), String::new())
    };

    // Encryption key: a file, or an environment variable; never a value.
    let mut key_file = sq("");
    let mut key_env = sq("");
    if b.encryption.enabled {
        let k = b.encryption.key.as_ref();
        if let Some(f) = k.and_then(|k| k.get("file")).and_then(Value::as_str) {
            key_file = sq(f);
        } else if let Some(e) = k.and_then(|k| k.get("env")).and_then(Value::as_str) {
            key_env = sq(e);
        } else if let Some(s) = k.and_then(|k| k.get("secret")) {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("backup");
            let item = s.get("key").and_then(Value::as_str).unwrap_or("key");
            key_file = sq(&format!("/run/secrets/{name}/{item}"));
        } else if k.and_then(|k| k.get("generate")).is_some() {
            key_file = "\"$SCRIPT_DIR/../secrets/backup.key\"".to_owned();
        } else {
            notes.push(
                Diagnostic::warning("backup.no-key-file", "/config/backup/encryption/key", "encryption is on but the key is not in a file or variable: the scripts will ask for BACKUP_KEY_FILE")
                    .with_hint("write `key: { file: /run/secrets/redis/backup.key }`"),
            );
        }
    }

    let compression = match b.compression.as_str() {
        "gzip" => "gzip",
        "none" => "none",
        _ => "zstd",
    };
    let aof = matches!(c.persistence.mode.as_str(), "aof" | "mixed");
    let major: u32 = c.deployment.redis_version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(7);
    let dir = data_dir(input, node);
    let name = if input.name.is_empty() { c.deployment.name.clone() } else { input.name.clone() };
    if !safe_name(&name) {
        return Err(vec![
            Diagnostic::error("backup.bad-name", "/name", format!("`{name}` cannot be a file name prefix"))
                .with_hint("use a `deployment.name` made of lowercase letters, digits and `-`"),
        ]);
    }
    let data = json!({
        "name": name,
        "host": host,
        "port": port,
        "tls": sq(if tls { "1" } else { "0" }),
        "cacert": path_word(&cacert),
        "cert": path_word(&cert),
        "key": path_word(&key),
        "user": user,
        "password_file": password_file,
        "data_dir": path_word(&dir),
        "rdb_filename": sq(&c.persistence.rdb_filename),
        "backup_dir": path_word(&backup_dir),
        "s3_url": sq(&s3),
        // Named after the shard, not the node: backups taken from a replica
        // are restored onto the master, and both scripts look for the same names.
        "prefix": sq(&if input.topology.mode == "cluster" { format!("{name}-shard0") } else { name.clone() }),
        "compression": sq(compression),
        "compression_level": sq(&b.compression_level.max(1).to_string()),
        "encrypt": sq(if b.encryption.enabled { "1" } else { "0" }),
        "key_file": key_file,
        "key_env": key_env,
        "timeout": sq(&seconds(&b.timeout).unwrap_or(3600).max(1).to_string()),
        "retention_count": sq(&b.retention_count.max(1).to_string()),
        "retention_age": sq(&seconds(&b.retention_age).unwrap_or(0).to_string()),
        "verify": sq(if b.verify { "1" } else { "0" }),
        "aof": sq(if aof { "yes" } else { "no" }),
        "aof_dirname": sq(&c.persistence.aof_dirname),
        "major": major,
    });
    Ok((data, notes))
}

redplate_plugin_sdk::export_generator!(Plugin);
redplate_plugin_sdk::bump_allocator!();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sq("it's"), r"'it'\''s'");
        assert_eq!(sq(""), "''");
    }

    #[test]
    fn relative_tls_files_come_from_the_rendered_tree() {
        assert_eq!(path_word("tls/ca.crt"), "\"$SCRIPT_DIR/../tls/ca.crt\"");
        assert_eq!(path_word("/etc/redis/tls/ca.crt"), "'/etc/redis/tls/ca.crt'");
        assert_eq!(path_word(""), "''");
    }

    #[test]
    fn durations_in_seconds() {
        assert_eq!(seconds(&json!("1h")), Some(3600));
        assert_eq!(seconds(&json!("0s")), Some(0));
        assert_eq!(seconds(&json!("2d")), Some(172_800));
        assert_eq!(seconds(&json!(1500)), Some(1));
        assert_eq!(seconds(&json!("1y")), None);
    }

    #[test]
    fn no_data_node_is_a_pointed_error() {
        let ds = Plugin::validate(r#"{"topology": {"nodes": [{"name": "s", "role": "sentinel"}]}}"#);
        assert_eq!(ds[0].code, "backup.no-data-nodes");
        assert_eq!(ds[0].path, "/topology/nodes");
    }
}
