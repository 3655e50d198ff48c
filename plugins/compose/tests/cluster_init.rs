//! The cluster-forming one-shot service's script, run for real: six
//! cluster-enabled `redis-server`s on loopback ports stand in for the six
//! Compose services (host names and ports substituted, since no Docker engine
//! runs here); the script must form a cluster of 3 masters + 3 replicas with
//! every slot covered, and do nothing on a second run.

mod common;

use common::{input_for, missing_tool, workspace_root};
use plugin_compose::Plugin;
use redplate_config::Target;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{Generator, NativeHost};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// A port whose cluster bus port (+10000) is free too.
fn free_pair(taken: &[u16]) -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else { continue };
        let Ok(p) = l.local_addr().map(|a| a.port()) else { continue };
        if p < 55000 && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair found");
}

/// Cluster nodes, killed on drop (even when the test panics).
struct Nodes {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.ports.len() {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(format!("n{i}/pid"))) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).output();
            }
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

fn init_script(python: &Path) -> String {
    let sets = ["deployment.mode=cluster".to_owned()];
    let input =
        input_for("deployment:\n  name: cl\n", "cl.yaml", Some(Environment::Development), &sets, Target::Compose);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("compose.yaml");
    common::write(&file, &String::from_utf8_lossy(&out.artifacts[0].content));
    let py = "import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))['services']['cl-cluster-init']['command'][2])";
    let out = Command::new(python).args(["-c", py]).arg(&file).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cluster_init_script_forms_a_real_cluster() {
    let python = std::env::var_os("REDPLATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
        .join("bin/python3");
    if !python.is_file() {
        return missing_tool("python3", "the Python virtualenv, for PyYAML");
    }
    if !has("redis-server") || !has("redis-cli") {
        return missing_tool("redis-server", "a real cluster");
    }
    // Compose escapes `$` as `$$`; the service names become loopback ports.
    let mut script = init_script(&python).replace("$$", "$");
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut nodes = Nodes { dir: tmp.path().to_owned(), ports: Vec::new() };
    for i in 0..6 {
        let p = free_pair(&nodes.ports);
        nodes.ports.push(p);
        script = script
            .replace(&format!("\"$(ip cl-{i})\" 6379 16379"), &format!("127.0.0.1 {p} {}", p + 10000))
            .replace(&format!("cl-{i} 6379"), &format!("127.0.0.1 {p}"));
        let d = tmp.path().join(format!("n{i}"));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("redis-server")
            .args(["--port", &p.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--save", ""])
            .args(["--daemonize", "yes", "--dir"])
            .arg(&d)
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("--logfile")
            .arg(d.join("log"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success());
    }
    assert!(!script.contains(" 6379") && !script.contains("$(ip "), "unsubstituted host names:\n{script}");
    let t = Instant::now();
    while nodes.ports.iter().any(|p| cli(*p, &["PING"]).trim() != "PONG") {
        assert!(t.elapsed() < Duration::from_secs(15), "cluster nodes did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = || Command::new("timeout").args(["150", "sh", "-c", &script]).output().unwrap_or_else(|e| panic!("{e}"));
    let out = run();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("cluster-init: formed"), "{text}\n--- script ---\n{script}");
    let t = Instant::now();
    loop {
        let roles: Vec<String> =
            nodes.ports.iter().map(|p| cli(*p, &["ROLE"]).lines().next().unwrap_or("").to_owned()).collect();
        let masters = roles.iter().filter(|r| *r == "master").count();
        if masters == 3 && roles.iter().filter(|r| *r == "slave").count() == 3 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "roles: {roles:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let info = cli(nodes.ports[0], &["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_slots_assigned:16384"), "{info}");
    let again = run();
    assert!(String::from_utf8_lossy(&again.stdout).contains("already formed"), "a second run must do nothing");
}
