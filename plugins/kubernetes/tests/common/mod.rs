//! Shared helpers for the kubernetes generator's integration tests: real
//! inputs built from the presets and examples with `redplate-config`, native
//! rendering through the SDK's `NativeHost`, and the external tools
//! (kubernetes-validate, checkov) from the project's Python virtualenv.

#![allow(dead_code)]

pub mod sandbox;

use plugin_kubernetes::Plugin;
use redplate_config::model::{Environment, SecretSource};
use redplate_config::{Format, Target, Topology};
use redplate_plugin_sdk::{Generator, NativeHost, Output};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const MODES: [&str; 4] = ["standalone", "replication", "sentinel", "cluster"];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A clear-text password the test puts in the input; it must never reach a manifest.
pub fn fake_password(user: &str) -> String {
    format!("pw-{user}-Zq8xT4vLr2")
}

/// The input document the host sends (wit/INPUT.md), built from a config.
/// With `with_passwords`, the secrets carry clear-text passwords and hashes
/// as they would for the local target, to prove the generator ignores them.
pub fn input_for(config: &redplate_config::Config, with_passwords: bool) -> String {
    let topology = Topology::derive(config, Target::Kubernetes);
    let name = &config.deployment.name;
    let mut users = serde_json::Map::new();
    let sec = &config.security;
    let mut add = |user: &str, source: Option<&SecretSource>| {
        let (secret_name, secret_key) = match source {
            Some(SecretSource::Secret(r)) => (r.name.clone(), r.key.clone()),
            _ => (format!("{name}-auth"), user.to_owned()),
        };
        let mut entry = json!({ "secret_name": secret_name, "secret_key": secret_key });
        if with_passwords {
            entry["password"] = json!(fake_password(user));
            entry["sha256"] = json!("0".repeat(64));
        }
        users.insert(user.to_owned(), entry);
    };
    if sec.auth_enabled {
        if let Some(p) = &sec.password {
            add("default", Some(p));
        }
        for u in &sec.users {
            if let Some(p) = &u.password {
                add(&u.name, Some(p));
            }
        }
        if sec.system_users {
            for role in ["replication", "sentinel", "exporter", "probe"] {
                if !sec.users.iter().any(|u| u.name == role) {
                    add(role, None);
                }
            }
        }
    }
    let config_json: Value = serde_json::from_str(&redplate_config::export(config)).expect("export is JSON");
    json!({
        "contract": "0.1.0",
        "name": name,
        "target": "kubernetes",
        "config": config_json,
        "topology": topology,
        "strategy": null,
        "secrets": { "users": users },
    })
    .to_string()
}

pub fn preset_config(env: Environment, mode: &str) -> redplate_config::Config {
    let sets = vec![format!("deployment.mode={mode}"), format!("deployment.name={}-{mode}", env.as_str())];
    redplate_config::load_str("", Format::Yaml, "<test>", Some(env), &sets).expect("preset loads").config
}

pub fn example_configs() -> Vec<(String, redplate_config::Config)> {
    let dir = workspace_root().join("examples");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("examples dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let req = redplate_config::LoadRequest { path: Some(path.clone()), preset: None, sets: vec![] };
        let resolved = redplate_config::load(&req).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("example").to_owned();
        out.push((stem, resolved.config));
    }
    out
}

pub fn render(input: &str) -> Output {
    Plugin::generate(input, &NativeHost::default()).unwrap_or_else(|ds| panic!("render failed: {ds:#?}"))
}

/// Writes the artifacts under `dir` (paths as given, `kubernetes/...`).
pub fn write(out: &Output, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for a in &out.artifacts {
        let p = dir.join(&a.path);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&p, &a.content).expect("write");
        files.push(p);
    }
    files
}

/// A tool from the virtualenv (`REDPLATE_VENV`, default `<workspace>/.venv`),
/// or from `REDPLATE_<NAME>` (e.g. `REDPLATE_KUBERNETES_VALIDATE`) when a tool
/// lives in its own environment. Missing: `None` with a visible message
/// locally; a panic with `CI=true`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let var = format!("REDPLATE_{}", name.to_ascii_uppercase().replace('-', "_"));
    let path = match std::env::var_os(&var) {
        Some(p) => PathBuf::from(p),
        None => {
            let venv =
                std::env::var_os("REDPLATE_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"));
            venv.join("bin").join(name)
        }
    };
    if path.is_file() {
        return Some(path);
    }
    unavailable(&format!(
        "`{name}` not found at {}: install it in the virtualenv, or set REDPLATE_VENV or {var}",
        path.display()
    ));
    None
}

/// Reports a tool that cannot run: a panic with `CI=true`, else a visible skip.
pub fn unavailable(msg: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    // Written to the stderr handle directly so the test harness does not
    // capture it: a skip must be visible in a normal `cargo test` run.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
}

/// Parses YAML files with PyYAML (next to `tool_path`, in the same
/// virtualenv) and returns them as JSON values, in order.
pub fn parse_yaml(tool_path: &Path, files: &[PathBuf]) -> Option<Vec<Value>> {
    let python = tool_path.parent()?.join("python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg("import json, sys, yaml\nprint(json.dumps([yaml.safe_load(open(f)) for f in sys.argv[1:]]))")
        .args(files)
        .output()
        .ok()?;
    if !out.status.success() {
        panic!("PyYAML could not read the manifests: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Every (case name, config) the tests cover: presets × modes, then examples.
pub fn all_cases() -> Vec<(String, redplate_config::Config)> {
    let mut cases = Vec::new();
    for env in Environment::ALL {
        for mode in MODES {
            cases.push((format!("{env}-{mode}"), preset_config(env, mode)));
        }
    }
    cases.extend(example_configs());
    cases
}

/// A temporary folder whose name does not start with `.` (checkov skips
/// hidden folders, and `tempfile`'s default names are hidden).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("redplate-k8s-").tempdir().expect("tempdir")
}

/// A program from `PATH` (shellcheck, redis-server...), with the same
/// missing-tool rule as [`tool`].
pub fn system_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        unavailable(&format!("`{name}` is not on PATH"));
    }
    found
}

/// The `data` of a rendered ConfigMap, parsed with PyYAML.
pub fn config_map_data(python_tool: &Path, out: &Output, name: &str) -> std::collections::BTreeMap<String, String> {
    let tmp = tempdir();
    let files = write(out, tmp.path());
    let file = files
        .into_iter()
        .find(|f| f.file_name().and_then(|n| n.to_str()) == Some(&format!("configmap-{name}.yaml")))
        .unwrap_or_else(|| panic!("no ConfigMap `{name}`"));
    let docs = parse_yaml(python_tool, &[file]).expect("PyYAML");
    serde_json::from_value(docs[0]["data"].clone()).expect("string data")
}
