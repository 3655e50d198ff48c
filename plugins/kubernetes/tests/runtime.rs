//! The ConfigMaps' contents checked by the programs that run them:
//! shellcheck for every script, and a real `redis-server` booted from the
//! rendered `redis.conf` and the ACL file the rendered init script writes
//! from (test) Secret files — the same steps a pod takes, with the pod's
//! absolute paths mapped into a temporary folder.

mod common;

use common::{all_cases, config_map_data, input_for, render, system_tool, tempdir, tool};
use redplate_config::model::Environment;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
        .replace("cluster-config-file /data/", &format!("cluster-config-file {r}/data/"))
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

/// A port below 55536 whose cluster bus port (+10000) is free too.
fn free_bus_port() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let seed = u16::try_from(std::process::id() % 20000).unwrap_or(0);
    (0..20000u16).map(|i| 20000 + (seed + i) % 20000).find(|p| free(*p) && free(p + 10000)).expect("a free port pair")
}

fn cli(port: u16, user: Option<(&str, &str)>, args: &[&str]) -> String {
    cli_on("127.0.0.1", port, user, args)
}

fn cli_on(ip: &str, port: u16, user: Option<(&str, &str)>, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["--no-auth-warning", "-h", ip, "-p", &port.to_string()]);
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
}

/// One pod's folders under `root/<pod>`, with a `hostname` shim so the
/// scripts see the pod's name.
fn pod_root(root: &Path, pod: &str, conf: &BTreeMap<String, String>, scripts: &BTreeMap<String, String>) -> PathBuf {
    let r = root.join(pod);
    for d in ["templates", "scripts", "run", "secrets", "exporter", "data", "bin"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    for (name, text) in conf {
        std::fs::write(r.join("templates").join(name), relocate(text, &r)).expect("write");
    }
    for (name, text) in scripts {
        std::fs::write(r.join("scripts").join(name), relocate(text, &r)).expect("write");
    }
    for u in ["replication", "sentinel", "exporter", "probe"] {
        std::fs::write(r.join("secrets").join(u), common::fake_password(u)).expect("secret");
    }
    let shim = r.join("bin/hostname");
    std::fs::write(&shim, format!("#!/bin/sh\necho {pod}\n")).expect("shim");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    r
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("write");
}

fn run_script(r: &Path, script: &str) {
    let path = format!("{}:{}", r.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh").arg(r.join("scripts").join(script)).env("PATH", path).output().expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(program: &str, conf: &Path, port: u16) -> Server {
    let child = Command::new(program)
        .arg(conf)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    Server(child)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sentinel mode without TLS: a master and a replica booted from the
/// rendered files (the replica authenticates with `masteruser`/`masterauth`
/// written by init.sh), and a Sentinel from the rendered sentinel.conf that
/// logs in with the sentinel user and sees the master and its replica.
#[test]
fn a_master_replica_and_sentinel_boot_from_the_rendered_files() {
    let (Some(_), Some(_), Some(_), Some(python)) =
        (system_tool("redis-server"), system_tool("redis-sentinel"), system_tool("redis-cli"), tool("python"))
    else {
        return;
    };
    let sets = ["deployment.name=sbt", "security.tls.enabled=false", "memory.active_defrag=false"].map(String::from);
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "sbt-config");
    let scripts = config_map_data(&python, &out, "sbt-scripts");
    let root = tempdir();
    let master_fqdn = "sbt-0.sbt-headless.redis.svc.cluster.local";
    let (pm, pr, ps) = (free_port(), free_port(), free_port());

    // The master: its own name is the first pod's, so init.sh adds no `replicaof`.
    let m = pod_root(root.path(), "sbt-0", &conf, &scripts);
    run_script(&m, "init.sh");
    let mconf = std::fs::read_to_string(m.join("run/redis.conf")).expect("conf");
    assert!(!mconf.contains("\nreplicaof "), "{mconf}");
    assert!(mconf.contains("masterauth \""), "{mconf}");
    let _master = start("redis-server", &m.join("run/redis.conf"), pm);

    // The replica: the first pod's name resolves here to 127.0.0.1.
    let r = pod_root(root.path(), "sbt-1", &conf, &scripts);
    edit(&r.join("scripts/init.sh"), &format!("MASTER={master_fqdn}"), "MASTER=127.0.0.1");
    edit(&r.join("scripts/init.sh"), "\"$MASTER\" 6379", &format!("\"$MASTER\" {pm}"));
    run_script(&r, "init.sh");
    let _replica = start("redis-server", &r.join("run/redis.conf"), pr);

    let exporter = ("exporter", common::fake_password("exporter"));
    wait_for("the replica to sync", || {
        cli(pm, Some((exporter.0, &exporter.1)), &["info", "replication"]).contains("connected_slaves:1")
    });

    // The sentinel.
    let s = pod_root(root.path(), "sbt-sentinel-0", &conf, &scripts);
    edit(&s.join("scripts/sentinel-init.sh"), &format!("MASTER={master_fqdn}"), "MASTER=127.0.0.1");
    edit(&s.join("templates/sentinel.conf"), "@@MASTER_HOST@@ 6379", &format!("@@MASTER_HOST@@ {pm}"));
    run_script(&s, "sentinel-init.sh");
    let sconf = std::fs::read_to_string(s.join("run/sentinel.conf")).expect("sentinel.conf");
    assert!(sconf.contains("sentinel auth-user mymaster sentinel\n"), "{sconf}");
    let _sentinel = start("redis-sentinel", &s.join("run/sentinel.conf"), ps);
    wait_for("the sentinel to see the master and its replica", || {
        let info = cli(ps, None, &["sentinel", "master", "mymaster"]);
        let lines: Vec<&str> = info.lines().collect();
        let field = |k: &str| lines.iter().position(|l| *l == k).and_then(|i| lines.get(i + 1)).copied();
        field("flags") == Some("master") && field("num-slaves") == Some("1")
    });
    edit(&s.join("scripts/probe.sh"), "-p 26379", &format!("-p {ps}"));
    let st = Command::new("sh").arg(s.join("scripts/probe.sh")).args(["sentinel", "ready"]).status().expect("probe");
    assert!(st.success(), "probe.sh sentinel ready");
}

fn start_on(program: &str, conf: &Path, ip: &str, port: u16) -> Server {
    let child = Command::new(program)
        .arg(conf)
        // One machine stands for three pods: outgoing bus links must leave
        // from the node's own address for the others to tell them apart.
        .args(["--port", &port.to_string(), "--bind", ip, "--bind-source-addr", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    Server(child)
}

/// Cluster mode without TLS: three nodes (on 127.0.0.1–3, one port) booted
/// from the rendered files, joined by the rendered cluster-init script as the
/// replication user; a second run finds the cluster formed and succeeds.
#[test]
fn the_cluster_init_script_forms_the_cluster_once() {
    let (Some(_), Some(_), Some(python)) = (system_tool("redis-server"), system_tool("redis-cli"), tool("python"))
    else {
        return;
    };
    let sets = [
        "deployment.name=cbt",
        "deployment.mode=cluster",
        "cluster.replicas_per_shard=0",
        "security.tls.enabled=false",
        "memory.active_defrag=false",
    ]
    .map(String::from);
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "cbt-config");
    let scripts = config_map_data(&python, &out, "cbt-scripts");
    let root = tempdir();
    let port = free_bus_port();
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let mut servers = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let r = pod_root(root.path(), &format!("cbt-{i}"), &conf, &scripts);
        run_script(&r, "init.sh");
        let c = std::fs::read_to_string(r.join("run/redis.conf")).expect("conf");
        assert!(c.contains("\ncluster-enabled yes\n") && c.contains("\ncluster-announce-hostname cbt-"), "{c}");
        servers.push(start_on("redis-server", &r.join("run/redis.conf"), ip, port));
    }
    let probe = ("probe", common::fake_password("probe"));
    for (ip, server) in ips.iter().zip(servers.iter_mut()) {
        wait_for(&format!("the node on {ip}"), || {
            assert!(server.0.try_wait().ok().flatten().is_none(), "the node on {ip} exited");
            cli_on(ip, port, Some((probe.0, &probe.1)), &["ping"]) == "PONG"
        });
    }
    // The Job's pod: node names stand for the three addresses.
    let j = pod_root(root.path(), "cbt-cluster-init", &conf, &scripts);
    let script = j.join("scripts/cluster-init.sh");
    for (i, ip) in ips.iter().enumerate() {
        edit(&script, &format!("cbt-{i}.cbt-headless.redis.svc.cluster.local"), ip);
    }
    edit(&script, "-p 6379", &format!("-p {port}"));
    edit(&script, ":6379\"", &format!(":{port}\""));
    edit(&script, "ip=\"$(getent hosts \"$host\" | cut -d' ' -f1 | head -n 1)\"", "ip=\"$host\"");
    run_script(&j, "cluster-init.sh");
    let exporter = ("exporter", common::fake_password("exporter"));
    wait_for("the cluster to be ok", || {
        cli(port, Some((exporter.0, &exporter.1)), &["cluster", "info"]).contains("cluster_state:ok")
    });
    // Idempotent: a second run (a Job retry, a re-apply) changes nothing.
    run_script(&j, "cluster-init.sh");
    let info = cli(port, Some((exporter.0, &exporter.1)), &["cluster", "info"]);
    assert!(info.contains("cluster_slots_assigned:16384") && info.contains("cluster_known_nodes:3"), "{info}");
    drop(servers);
}
