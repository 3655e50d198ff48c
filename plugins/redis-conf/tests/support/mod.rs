//! Boots what the plugin renders on this machine: a preset (× a mode) loaded
//! through `redplate-config`, the topology's ports moved to free loopback
//! ports, secrets and a throwaway CA generated here, the files written into a
//! temp folder laid out like the local backend's, and real `redis-server` /
//! `redis-sentinel` processes started from them (killed on drop, panics
//! included). Every wait is a bounded poll that fails with the nodes' logs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod expect;
pub mod tls;

use cli::Who;

use plugin_redis_conf::RedisConf;
use redplate_config::model::Environment;
use redplate_config::{Config, Format, Role, Target, Topology};
use redplate_plugin_sdk::{Artifact, Generator, NativeHost};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(50);

/// Whether the Redis tools and openssl are here; without them a test skips
/// loudly, or fails when `CI` is set.
pub fn tools_present(test: &str) -> bool {
    let missing: Vec<&str> = [
        ("redis-server", "--version"),
        ("redis-sentinel", "--version"),
        ("redis-cli", "--version"),
        ("openssl", "version"),
    ]
    .into_iter()
    .filter(|(tool, arg)| Command::new(tool).arg(arg).output().map(|o| !o.status.success()).unwrap_or(true))
    .map(|(tool, _)| tool)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "{test}: CI is set but {missing:?} is not installed");
    eprintln!("SKIPPED {test}: {missing:?} not installed (set CI=true to make this a failure)");
    false
}

/// What to deploy: a preset, a mode and extra template text / `--set`s.
pub struct Spec {
    pub preset: Environment,
    pub mode: &'static str,
    pub yaml: String,
    pub sets: Vec<String>,
    /// The cache strategy's plan (`strategy` in the input), if any.
    pub strategy: Option<Value>,
}

/// Processes killed (and reaped) when dropped.
#[derive(Default)]
pub struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
        }
        for (_, child) in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// A running deployment. Field order matters: processes die before the
/// folder is removed.
pub struct Deployment {
    pub procs: Procs,
    pub config: Config,
    pub topology: Topology,
    pub input: Value,
    pub artifacts: Vec<Artifact>,
    pub passwords: BTreeMap<String, String>,
    pub tls: Option<tls::Files>,
    pub root: tempfile::TempDir,
}

/// Random hex from the kernel.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    hex::encode(buf)
}

/// `n` distinct free loopback ports, below the kernel's ephemeral range (so
/// no outgoing connection takes one before Redis binds it), from a random
/// offset (so parallel tests rarely probe the same ones).
fn free_ports(n: usize) -> Vec<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()))
        .unwrap_or(32768)
        .clamp(12_000, 65_535);
    let floor = 10_000u32;
    let span = ephemeral_low - floor;
    let start = u32::from_str_radix(&random_hex(4), 16).unwrap_or(0) % span;
    let mut held = Vec::new();
    for i in 0..span {
        if held.len() == n {
            break;
        }
        let port = u16::try_from(floor + (start + i) % span).expect("port fits");
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "not enough free loopback ports");
    held.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}

impl Deployment {
    /// Loads the spec, renders it (twice, checking the bytes agree), writes
    /// the files and starts every node; returns once every node answers.
    pub fn start(spec: &Spec) -> Deployment {
        // A port taken between picking and binding (another test, another
        // build) is retried with fresh ports; any other failure is final.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut d = Self::prepare(spec);
            match d.boot() {
                Ok(()) => return d,
                Err(e) if e.contains("port taken") && attempt < 3 => eprintln!("retrying with other ports: {e}"),
                Err(e) => panic!("{e}{}", d.logs()),
            }
        }
    }

    fn prepare(spec: &Spec) -> Deployment {
        let mut sets = vec![format!("deployment.mode={}", spec.mode), "network.bind=[\"127.0.0.1\"]".to_owned()];
        sets.extend(spec.sets.iter().cloned());
        let resolved = redplate_config::load_str(&spec.yaml, Format::Yaml, "test.yaml", Some(spec.preset), &sets)
            .unwrap_or_else(|e| panic!("the template does not load: {e}"));
        let config = resolved.config;
        let mut topology = Topology::derive(&config, Target::Local);
        let slots: usize = topology
            .nodes
            .iter()
            .map(|n| [n.ports.client, n.ports.tls, n.ports.cluster_bus, n.ports.sentinel].iter().flatten().count())
            .sum();
        let mut ports = free_ports(slots).into_iter();
        for n in &mut topology.nodes {
            for p in [&mut n.ports.client, &mut n.ports.tls, &mut n.ports.cluster_bus, &mut n.ports.sentinel] {
                if p.is_some() {
                    *p = ports.next();
                }
            }
        }
        let root = tempfile::Builder::new().prefix("redplate-redis-conf-").tempdir().expect("temp dir");
        let tls = config.security.tls.enabled.then(|| tls::generate(&root.path().join("tls")));
        let passwords = passwords_for(&config);
        let mut input = build_input(&config, &topology, "local", &passwords, tls.as_ref());
        if let Some(plan) = &spec.strategy {
            input["strategy"] = plan.clone();
        }
        let artifacts = render(&input);
        assert_eq!(artifacts, render(&input), "rendering twice must give the same bytes");
        let d = Deployment { procs: Procs::default(), config, topology, input, artifacts, passwords, tls, root };
        d.write();
        d
    }

    fn write(&self) {
        for a in &self.artifacts {
            let path = self.root.path().join(&a.path);
            std::fs::create_dir_all(path.parent().expect("artifact has a folder")).expect("mkdir");
            std::fs::write(&path, &a.content).expect("write artifact");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
        }
        for n in &self.topology.nodes {
            std::fs::create_dir_all(self.root.path().join(&n.data_dir)).expect("mkdir data dir");
        }
        std::fs::create_dir_all(self.root.path().join("logs")).expect("mkdir logs");
    }

    fn boot(&mut self) -> Result<(), String> {
        for n in self.topology.nodes.clone() {
            let (bin, conf) = match n.role {
                Role::Sentinel => ("redis-sentinel", format!("sentinel/{}/sentinel.conf", n.name)),
                _ => ("redis-server", format!("redis/{}/redis.conf", n.name)),
            };
            let log = std::fs::File::create(self.log_path(&n.name)).expect("log file");
            let child = Command::new(bin)
                .arg(self.root.path().join(conf))
                .current_dir(self.root.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
            self.procs.0.push((n.name.clone(), child));
        }
        for n in self.topology.nodes.clone() {
            let who = if n.role == Role::Sentinel { Who::Sentinel } else { self.pinger() };
            let start = Instant::now();
            loop {
                self.exited()?;
                let reply = self.cli(&n, who, &["PING"]);
                if reply.stdout == "PONG" {
                    break;
                }
                if start.elapsed() > TIMEOUT {
                    return Err(format!("`{}` did not answer PING within {TIMEOUT:?}: {reply:?}", n.name));
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// Kills one node's process (a crash, as far as the others can tell).
    pub fn kill(&mut self, node: &str) {
        let (_, child) = self.procs.0.iter_mut().find(|(n, _)| n == node).expect("a running node");
        child.kill().expect("kill");
        child.wait().expect("reap");
    }

    fn log_path(&self, node: &str) -> PathBuf {
        self.root.path().join("logs").join(format!("{node}.log"))
    }

    /// An error naming a node that exited (a taken port is told apart, so
    /// that the start can be retried).
    fn exited(&mut self) -> Result<(), String> {
        let mut dead = None;
        for (name, child) in &mut self.procs.0 {
            if let Ok(Some(status)) = child.try_wait() {
                dead = Some((name.clone(), status));
                break;
            }
        }
        let Some((name, status)) = dead else { return Ok(()) };
        let log = std::fs::read_to_string(self.log_path(&name)).unwrap_or_default();
        if log.contains("Address already in use") {
            return Err(format!("port taken: `{name}` could not bind its port"));
        }
        Err(format!("`{name}` refused to start ({status})"))
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.topology.nodes {
            let log = std::fs::read_to_string(self.log_path(&n.name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            s.push_str(&format!(
                "\n--- {} (last lines) ---\n{}",
                n.name,
                lines[lines.len().saturating_sub(12)..].join("\n")
            ));
        }
        s
    }

    /// Polls `check` every 50 ms until it holds; panics after `timeout` with
    /// the last error and the logs.
    pub fn wait(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Result<bool, String>) {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            match check() {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if e.contains("refused to start") => panic!("waiting for {what}: {e}{}", self.logs()),
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what} (last: {last}){}", self.logs());
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn auth(&self) -> bool {
        self.config.security.auth_enabled
    }

    /// Who PINGs: the probe user when auth is on.
    fn pinger(&self) -> Who {
        if self.auth() { Who::User("probe") } else { Who::Default }
    }

    /// The admin: the `admin` user the tests declare, or `default` without auth.
    pub fn admin(&self) -> Who {
        if self.auth() { Who::User("admin") } else { Who::Default }
    }

    pub fn node(&self, name: &str) -> &redplate_config::topology::Node {
        self.topology.nodes.iter().find(|n| n.name == name).expect("node")
    }

    pub fn data_nodes(&self) -> Vec<redplate_config::topology::Node> {
        self.topology.nodes.iter().filter(|n| n.role != Role::Sentinel).cloned().collect()
    }

    /// The port clients use: TLS when on.
    pub fn port(&self, n: &redplate_config::topology::Node) -> u16 {
        match n.role {
            Role::Sentinel => n.ports.sentinel,
            _ if self.tls.is_some() => n.ports.tls,
            _ => n.ports.client,
        }
        .expect("node port")
    }

    /// A rendered file.
    pub fn artifact(&self, path: &str) -> String {
        let a = self.artifacts.iter().find(|a| a.path == path).unwrap_or_else(|| panic!("no artifact `{path}`"));
        String::from_utf8(a.content.clone()).expect("utf-8")
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// A random password for every user the config can produce: `default`, the
/// system users, the declared users and one per tenant.
pub fn passwords_for(config: &Config) -> BTreeMap<String, String> {
    let mut names: Vec<String> = ["default", "replication", "sentinel", "exporter", "probe"].map(String::from).to_vec();
    names.extend(config.security.users.iter().map(|u| u.name.clone()));
    names.extend(config.tenancy.tenants.iter().map(|t| plugin_redis_conf::tenants::user_name(&t.id)));
    names.into_iter().map(|n| (n, random_hex(16))).collect()
}

/// The input document of wit/INPUT.md for `target`, with every user's
/// clear-text password and its sha256 — for kubernetes too, where the host
/// sends references only, so that the tests prove the plugin writes neither
/// into a manifest even when it is given them.
pub fn build_input(
    config: &Config,
    topology: &Topology,
    target: &str,
    passwords: &BTreeMap<String, String>,
    tls: Option<&tls::Files>,
) -> Value {
    let users: serde_json::Map<String, Value> = passwords
        .iter()
        .map(|(n, p)| {
            let secret = json!({
                "secret_name": format!("{}-auth", config.deployment.name), "secret_key": n,
                "password": p, "sha256": hex::encode(Sha256::digest(p.as_bytes())),
            });
            (n.clone(), secret)
        })
        .collect();
    let mut secrets = json!({ "users": users });
    if let Some(t) = tls {
        secrets["tls"] = json!({"cert_file": t.cert, "key_file": t.key, "ca_file": t.ca});
    }
    let config_json: Value = serde_json::from_str(&redplate_config::export(config)).expect("export is JSON");
    json!({
        "contract": "0.1.0", "name": config.deployment.name, "target": target, "config": config_json,
        "topology": serde_json::to_value(topology).expect("topology is JSON"), "strategy": null, "secrets": secrets,
    })
}

/// Renders the input natively, as the host would through wasm.
pub fn render(input: &Value) -> Vec<Artifact> {
    match RedisConf::generate(&input.to_string(), &NativeHost::default()) {
        Ok(out) => {
            let errors: Vec<_> =
                out.diagnostics.iter().filter(|d| d.severity == redplate_plugin_sdk::Severity::Error).collect();
            assert!(errors.is_empty(), "{errors:?}");
            out.artifacts
        }
        Err(d) => panic!("the plugin refused the input: {d:#?}"),
    }
}
