//! The shell snippets inside the compose file, run for real outside Docker:
//! the TLS-aware, ACL-authenticated health check against a TLS-only
//! `redis-server` (right password passes, wrong one fails), and the exporter
//! password-map script (its output must be the JSON `redis_exporter` reads).

mod common;

use common::{input_for, make_certs, missing_tool, workspace_root, write};
use plugin_compose::Plugin;
use redplate_config::Target;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{Generator, NativeHost};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn python() -> PathBuf {
    std::env::var_os("REDPLATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
        .join("bin/python3")
}

/// The production preset in sentinel mode (TLS only, ACL users), parsed.
fn production_compose(py: &Path) -> Value {
    let input = input_for("deployment:\n  name: hc\n", "hc.yaml", Some(Environment::Production), &[], Target::Compose);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("compose.yaml");
    write(&file, &String::from_utf8_lossy(&out.artifacts[0].content));
    let code = "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let out = Command::new(py).args(["-c", code]).arg(&file).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

struct Server {
    pidfile: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).output();
        }
    }
}

#[test]
fn the_health_check_authenticates_over_tls_without_a_password_on_the_command_line() {
    let py = python();
    if !py.is_file() {
        return missing_tool("python3", "the Python virtualenv, for PyYAML");
    }
    for tool in ["redis-server", "redis-cli", "openssl"] {
        if !has(tool) {
            return missing_tool(tool, "a real TLS health check");
        }
    }
    let doc = production_compose(&py);
    let test = &doc["services"]["hc-0"]["healthcheck"]["test"];
    assert_eq!(test[0], "CMD-SHELL");
    let check = test[1].as_str().unwrap_or_default().replace("$$", "$");
    assert!(!check.contains(" -a "), "{check}");

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let certs = tmp.path().join("tls");
    make_certs(&certs);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
    let pidfile = tmp.path().join("pid");
    let conf = tmp.path().join("redis.conf");
    write(
        &conf,
        &format!(
            "port 0\ntls-port {port}\nbind 127.0.0.1\ntls-cert-file {c}/tls.crt\ntls-key-file {c}/tls.key\ntls-ca-cert-file {c}/ca.crt\ntls-auth-clients optional\nsave \"\"\ndaemonize yes\npidfile {p}\nlogfile {d}/log\nuser default off\nuser probe on >probe-secret -@all +ping\n",
            c = certs.display(),
            p = pidfile.display(),
            d = tmp.path().display(),
        ),
    );
    let _server = Server { pidfile: pidfile.clone() };
    let out = Command::new("redis-server").arg(&conf).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());

    // The container paths, mapped onto this machine.
    let secret = tmp.path().join("probe-password");
    let local = check
        .replace("/run/secrets/probe-password", &secret.display().to_string())
        .replace("/etc/redis/tls/", &format!("{}/", certs.display()))
        .replace("-p 6380", &format!("-p {port}"));
    let probe = |password: &str| {
        write(&secret, password);
        Command::new("sh").args(["-c", &local]).status().is_ok_and(|s| s.success())
    };
    let t = Instant::now();
    while !probe("probe-secret\n") {
        assert!(t.elapsed() < Duration::from_secs(15), "the health check never passed: {local}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!probe("wrong-password\n"), "the health check passed with a wrong password: {local}");
}

#[test]
fn the_exporter_password_map_is_the_json_redis_exporter_reads() {
    let py = python();
    if !py.is_file() {
        return missing_tool("python3", "the Python virtualenv, for PyYAML");
    }
    let doc = production_compose(&py);
    let init = &doc["services"]["hc-exporter-auth"];
    let script = init["command"][2].as_str().unwrap_or_default().replace("$$", "$");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let secret = tmp.path().join("exporter-password");
    write(&secret, "p\"a\\ss\n");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    let local = script
        .replace("/run/secrets/exporter-password", &secret.display().to_string())
        .replace("/data/", &format!("{}/", data.display()));
    let status = Command::new("sh").args(["-c", &local]).status().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let map: Value = serde_json::from_str(&std::fs::read_to_string(data.join("passwords.json")).unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON: {e}"));
    let map = map.as_object().cloned().unwrap_or_default();
    assert_eq!(map.len(), 3, "{map:?}");
    for (uri, pw) in &map {
        assert!(uri.starts_with("rediss://hc-"), "{uri}");
        assert_eq!(pw, "p\"a\\ss");
        let exporter = doc["services"].as_object().and_then(|s| {
            s.values().find(|svc| svc["environment"]["REDIS_ADDR"].as_str() == Some(uri.as_str())).cloned()
        });
        assert!(exporter.is_some(), "no exporter scrapes {uri}");
    }
}
