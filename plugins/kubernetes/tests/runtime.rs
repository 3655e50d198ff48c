//! The ConfigMaps' contents checked by the programs that run them:
//! shellcheck for every script, and a real `redis-server` booted from the
//! rendered `redis.conf` and the ACL file the rendered init script writes
//! from (test) Secret files — the same steps a pod takes, with the pod's
//! absolute paths mapped into a temporary folder.

mod common;

use common::{MODES, all_cases, config_map_data, input_for, preset_config, render, system_tool, tempdir, tool};
use redplate_config::model::Environment;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn every_script_passes_shellcheck() {
    let (Some(shellcheck), Some(python)) = (system_tool("shellcheck"), tool("python")) else { return };
    let tmp = tempdir();
    let mut scripts = Vec::new();
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, false));
        for (name, text) in config_map_data(&python, &out, &format!("{}-scripts", config.deployment.name)) {
            let path = tmp.path().join(format!("{case}--{name}"));
            std::fs::write(&path, text).expect("write script");
            scripts.push(path);
        }
    }
    assert!(scripts.len() > 40, "{} scripts", scripts.len());
    let out = Command::new(&shellcheck).args(["-s", "sh", "-f", "gcc"]).args(&scripts).output().expect("shellcheck");
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}

/// Maps the pod's absolute paths into `root`.
fn relocate(text: &str, root: &Path) -> String {
    let r = root.display();
    text.replace("/opt/redplate/templates", &format!("{r}/templates"))
        .replace("/opt/redplate/scripts", &format!("{r}/scripts"))
        .replace("/var/run/redplate/conf", &format!("{r}/run"))
        .replace("/var/run/redplate/secrets", &format!("{r}/secrets"))
        .replace("/var/run/redplate/exporter", &format!("{r}/exporter"))
        .replace("dir /data\n", &format!("dir {r}/data\n"))
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn cli(port: u16, user: Option<(&str, &str)>, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["--no-auth-warning", "-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((u, pw)) = user {
        c.args(["--user", u]).env("REDISCLI_AUTH", pw);
    }
    let out = c.args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn redis_boots_from_the_rendered_config_and_acl() {
    let (Some(server), Some(_), Some(python)) = (system_tool("redis-server"), system_tool("redis-cli"), tool("python"))
    else {
        return;
    };
    // Production, standalone, without TLS (no certificates here) and without
    // active defrag (Debian's redis-server is built without the jemalloc
    // that supports it; the upstream `redis` image has it).
    let sets = [
        "deployment.mode=standalone",
        "deployment.name=boot",
        "security.tls.enabled=false",
        "memory.active_defrag=false",
    ]
    .map(String::from);
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "boot-config");
    let scripts = config_map_data(&python, &out, "boot-scripts");
    let root = tempdir();
    let r = root.path();
    for d in ["templates", "scripts", "run", "secrets", "exporter", "data"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    for (name, text) in &conf {
        std::fs::write(r.join("templates").join(name), relocate(text, r)).expect("write");
    }
    for (name, text) in &scripts {
        std::fs::write(r.join("scripts").join(name), relocate(text, r)).expect("write");
    }
    let users = ["replication", "sentinel", "exporter", "probe"];
    for u in users {
        std::fs::write(r.join("secrets").join(u), common::fake_password(u)).expect("secret");
    }
    let init = Command::new("sh").arg(r.join("scripts/init.sh")).output().expect("init.sh");
    assert!(init.status.success(), "init.sh: {}", String::from_utf8_lossy(&init.stderr));
    // Secrets only in 0600 files, and the ACL file holds hashes, not passwords.
    let acl = std::fs::read_to_string(r.join("run/users.acl")).expect("users.acl");
    for u in users {
        assert!(!acl.contains(&common::fake_password(u)), "{acl}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(r.join("run/users.acl")).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let port = free_port();
    let child = Command::new(server)
        .arg(r.join("run/redis.conf"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-server");
    let mut server = Server(child);
    let probe = ("probe", common::fake_password("probe"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli(port, Some((probe.0, &probe.1)), &["ping"]) != "PONG" {
        let exited = server.0.try_wait().ok().flatten().is_some();
        if exited || Instant::now() > deadline {
            let _ = server.0.kill();
            let mut log = String::new();
            use std::io::Read;
            if let Some(mut e) = server.0.stdout.take() {
                let _ = e.read_to_string(&mut log);
            }
            if let Some(mut e) = server.0.stderr.take() {
                let _ = e.read_to_string(&mut log);
            }
            panic!("redis-server did not answer the probe user:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The rendered probe script succeeds against it.
    let probe_sh = std::fs::read_to_string(r.join("scripts/probe.sh")).expect("probe.sh");
    std::fs::write(r.join("scripts/probe.sh"), probe_sh.replace("-p 6379", &format!("-p {port}"))).expect("write");
    for check in ["live", "ready"] {
        let st = Command::new("sh").arg(r.join("scripts/probe.sh")).args(["redis", check]).status().expect("probe");
        assert!(st.success(), "probe.sh redis {check}");
    }
    // The `default` user is off; the probe user may only PING.
    assert!(cli(port, None, &["ping"]).contains("NOAUTH"));
    assert!(cli(port, Some((probe.0, &probe.1)), &["get", "k"]).contains("NOPERM"));
    // The exporter reads the configured values: maxmemory is 80 % of 4gb.
    let exporter = ("exporter", common::fake_password("exporter"));
    let maxmemory = cli(port, Some((exporter.0, &exporter.1)), &["config", "get", "maxmemory"]);
    assert!(maxmemory.ends_with(&(4u64 * 1024 * 1024 * 1024 / 100 * 80).to_string()), "{maxmemory}");
    let policy = cli(port, Some((exporter.0, &exporter.1)), &["config", "get", "appendonly"]);
    assert!(policy.ends_with("yes"), "{policy}");
    // The exporter's password file is JSON keyed by the address it scrapes.
    let pw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("exporter/passwords.json")).expect("pw file"))
            .expect("JSON");
    let (addr, secret) = pw.as_object().and_then(|m| m.iter().next()).expect("one entry");
    assert!(addr.starts_with("redis://") && addr.ends_with(":6379"), "{addr}");
    assert_eq!(secret, &common::fake_password("exporter"));
    let _ = (MODES, preset_config);
}
