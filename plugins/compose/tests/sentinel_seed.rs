//! The Sentinel service's start script, run for real outside Docker:
//! Sentinel needs a writable config (it rewrites it), so the read-only
//! rendered file seeds a copy on the data volume — copied on first start,
//! kept across restarts (learned state survives), re-seeded when the
//! rendered file changes.

mod common;

use common::{input_for, missing_tool, workspace_root, write};
use plugin_compose::Plugin;
use redplate_config::Target;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{Generator, NativeHost};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ping(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "PING"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
}

fn wait_ping(port: u16) {
    let t = Instant::now();
    while !ping(port) {
        assert!(t.elapsed() < Duration::from_secs(15), "port {port} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_script(py: &Path) -> String {
    let sets = ["deployment.mode=sentinel".to_owned()];
    let input =
        input_for("deployment:\n  name: ss\n", "ss.yaml", Some(Environment::Development), &sets, Target::Compose);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("compose.yaml");
    write(&file, &String::from_utf8_lossy(&out.artifacts[0].content));
    let code = "import sys,yaml; c=yaml.safe_load(open(sys.argv[1]))['services']['ss-sentinel-0']['command']; assert c[:2]==['sh','-c']; print(c[2])";
    let out = Command::new(py).args(["-c", code]).arg(&file).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().replace("$$", "$")
}

#[test]
fn sentinel_config_is_seeded_once_and_reseeded_when_the_rendered_file_changes() {
    let py = std::env::var_os("REDPLATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
        .join("bin/python3");
    if !py.is_file() {
        return missing_tool("python3", "the Python virtualenv, for PyYAML");
    }
    for tool in ["redis-server", "redis-sentinel", "redis-cli", "cmp"] {
        if !has(tool) {
            return missing_tool(tool, "a real sentinel");
        }
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (seed, data) = (tmp.path().join("etc/sentinel.conf"), tmp.path().join("data"));
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    let script = start_script(&py)
        .replace("/usr/local/etc/redis/sentinel.conf", &seed.display().to_string())
        .replace("/data/", &format!("{}/", data.display()));

    let master_port = free_port();
    let master_dir = tmp.path().join("master");
    std::fs::create_dir_all(&master_dir).unwrap_or_else(|e| panic!("{e}"));
    let _master = Proc(
        Command::new("redis-server")
            .args(["--port", &master_port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(&master_dir)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    wait_ping(master_port);
    let port = free_port();
    let rendered = |quorum: u8| {
        format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\nsentinel down-after-milliseconds mymaster 5000\n"
        )
    };
    write(&seed, &rendered(1));
    let run = || Proc(Command::new("sh").args(["-c", &script]).spawn().unwrap_or_else(|e| panic!("{e}")));
    let live = data.join("sentinel.conf");

    // First start: seeded, and Sentinel rewrites its (writable) copy.
    let sentinel = run();
    wait_ping(port);
    let t = Instant::now();
    while !std::fs::read_to_string(&live).unwrap_or_default().contains("sentinel myid") {
        assert!(t.elapsed() < Duration::from_secs(15), "sentinel never rewrote its config");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(sentinel);

    // Restart with the same rendered file: the learned state is kept.
    let before = std::fs::read_to_string(&live).unwrap_or_default();
    let sentinel = run();
    wait_ping(port);
    let after = std::fs::read_to_string(&live).unwrap_or_default();
    let myid = |t: &str| t.lines().find(|l| l.starts_with("sentinel myid")).map(str::to_owned);
    assert_eq!(myid(&after), myid(&before), "the sentinel's identity changed across a restart");
    drop(sentinel);

    // A changed rendered file re-seeds the copy.
    write(&seed, &rendered(2));
    let sentinel = run();
    wait_ping(port);
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SENTINEL", "MASTER", "mymaster"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    let quorum = reply.lines().skip_while(|l| *l != "quorum").nth(1);
    assert_eq!(quorum, Some("2"), "the changed rendered file was not applied:\n{reply}");
    drop(sentinel);
}
