//! Builds real input documents (wit/INPUT.md) from presets and examples with
//! `redplate-config`, and lays out a rendered tree on disk.

#![allow(dead_code)]

use redplate_config::model::Environment;
use redplate_config::{Format, Target, Topology, export, load_str};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A named case: a template and the target it renders for.
pub struct Case {
    pub name: String,
    pub input: Value,
}

/// Every preset × mode, then every example.
pub fn all_cases(target: Target) -> Vec<Case> {
    let mut cases = Vec::new();
    for env in Environment::ALL {
        for mode in ["standalone", "replication", "sentinel", "cluster"] {
            let name = format!("{env}-{mode}");
            let sets = vec![format!("deployment.mode={mode}"), format!("deployment.name=rp-{mode}")];
            cases.push(Case { input: input_for("", &name, Some(env), &sets, target), name });
        }
    }
    let dir = workspace_root().join("examples");
    let mut examples: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "no examples in {}", dir.display());
    for path in examples {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        cases.push(Case { input: input_for(&text, &path.display().to_string(), None, &[], target), name });
    }
    cases
}

/// Loads a template the way the host does and builds the input document.
pub fn input_for(text: &str, file: &str, preset: Option<Environment>, sets: &[String], target: Target) -> Value {
    let resolved = load_str(text, Format::Yaml, file, preset, sets).unwrap_or_else(|e| panic!("{file}: {e}"));
    let config = resolved.config;
    let config_json: Value = serde_json::from_str(&export(&config)).unwrap_or_else(|e| panic!("{file}: export: {e}"));
    let topology = serde_json::to_value(Topology::derive(&config, target)).unwrap_or_else(|e| panic!("{e}"));
    let target_name = match target {
        Target::Local => "local",
        Target::Compose => "compose",
        Target::Kubernetes => "kubernetes",
    };
    let mut users = Map::new();
    let sec = &config.security;
    let mut add = |name: &str| {
        users.insert(
            name.to_owned(),
            json!({
                "password": format!("pw-{name}-Zq9"),
                "sha256": "0".repeat(64),
                "secret_name": format!("{}-auth", config.deployment.name),
                "secret_key": name,
            }),
        );
    };
    for u in &sec.users {
        if u.password.is_some() {
            add(&u.name);
        }
    }
    if sec.system_users {
        for name in ["replication", "sentinel", "exporter", "probe"] {
            add(name);
        }
    }
    if sec.password.is_some() {
        add("default");
    }
    let mut secrets = json!({ "users": users });
    if sec.tls.enabled {
        let or = |s: &str, d: &str| if s.is_empty() { d.to_owned() } else { s.to_owned() };
        // As the host does (host/src/secrets.rs): the configured files, else its own CA's in `tls/`.
        secrets["tls"] = json!({
            "cert_file": or(&sec.tls.cert_file, "tls/tls.crt"),
            "key_file": or(&sec.tls.key_file, "tls/tls.key"),
            "ca_file": or(&sec.tls.ca_file, "tls/ca.crt"),
        });
    }
    json!({
        "contract": "0.1.0",
        "name": config.deployment.name,
        "target": target_name,
        "config": config_json,
        "topology": topology,
        "strategy": null,
        "secrets": secrets,
    })
}

/// Writes placeholder files for everything a rendered tree holds next to
/// the plugin's own artifact, so every relative path resolves.
pub fn write_placeholders(root: &Path, input: &Value) {
    let nodes = input["topology"]["nodes"].as_array().cloned().unwrap_or_default();
    for n in &nodes {
        let name = n["name"].as_str().unwrap_or_default();
        let (dir, file) = match n["role"].as_str() {
            Some("sentinel") => ("sentinel", "sentinel.conf"),
            _ => ("redis", "redis.conf"),
        };
        write(&root.join(dir).join(name).join(file), "# placeholder\n");
    }
    write(&root.join("redis/users.acl"), "# placeholder\n");
    if let Some(users) = input["secrets"]["users"].as_object() {
        for (name, u) in users {
            write(&root.join("secrets").join(format!("{name}.password")), u["password"].as_str().unwrap_or_default());
        }
    }
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        write(&root.join("tls").join(f), "placeholder\n");
    }
    if let Some(tls) = input["secrets"]["tls"].as_object() {
        for v in tls.values() {
            if let Some(base) = v.as_str().and_then(|p| p.rsplit('/').next()) {
                write(&root.join("tls").join(base), "placeholder\n");
            }
        }
    }
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Whether tests must fail (CI) rather than skip when a tool is missing:
/// `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips (locally) or fails (CI) because `tool` is missing.
pub fn missing_tool(tool: &str, why: &str) {
    if in_ci() {
        panic!("`{tool}` is required in CI ({why}) but was not found");
    }
    eprintln!("SKIPPED: `{tool}` not found ({why}); install it or set CI=true to make this a failure");
}

/// A throwaway CA and a server certificate for `localhost`/127.0.0.1 in
/// `dir` (`ca.crt`, `tls.crt`, `tls.key`), made with openssl.
pub fn make_certs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    let ext = dir.join("san.ext");
    write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=redplate-test-ca",
        ],
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost"],
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Compares `text` with the reviewed snapshot `tests/snapshots/<name>`
/// (of the crate running the test). `REDPLATE_UPDATE_SNAPSHOTS=1` rewrites
/// it; a missing snapshot is written locally (review it) and fails in CI.
pub fn assert_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    let update = std::env::var("REDPLATE_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    match std::fs::read_to_string(&path) {
        Ok(old) if !update => {
            if old != text {
                let line = old.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
                let show = |t: &str| t.lines().skip(line.saturating_sub(2)).take(6).collect::<Vec<_>>().join("\n");
                panic!(
                    "{name} differs from its snapshot at line {}:\n--- snapshot\n{}\n+++ rendered\n{}\n(review, then rerun with REDPLATE_UPDATE_SNAPSHOTS=1)",
                    line + 1,
                    show(&old),
                    show(text)
                );
            }
        }
        _ => {
            assert!(!in_ci() || update, "missing snapshot {}: render it locally and commit it", path.display());
            write(&path, text);
            eprintln!("wrote snapshot {} — review it", path.display());
        }
    }
}
