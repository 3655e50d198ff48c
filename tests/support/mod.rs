//! Shared by the integration tests that run real deployments: a
//! `REDPLATE_HOME` of their own, the binary run against it, a guard that
//! destroys a deployment when the test ends (on panic too), and the test's
//! own view of the nodes — `redis-cli` as redplate's admin user, signals,
//! the processes working in a state folder. Include it with `mod support;`
//! — each test binary compiles its own copy.
#![allow(dead_code, reason = "each test binary uses a different part of the kit")]

pub mod isolation;

use serde_json::Value;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_redplate");

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// Prints past the test harness's capture, so measurements show in CI logs.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Whether Redis is installed; in CI (`CI` set) its absence fails the test.
/// (`redis-cli` is the tests' own way to look at the nodes; redplate does
/// not use it.)
pub fn redis_present() -> bool {
    let ok = ["redis-server", "redis-sentinel", "redis-cli"]
        .iter()
        .all(|t| Command::new(t).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "redis-server, redis-sentinel and redis-cli are needed in CI");
        report("SKIPPED: redis-server / redis-sentinel / redis-cli not installed");
    }
    ok
}

/// One `REDPLATE_HOME` and the binary run against it.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home { dir: tempfile::Builder::new().prefix("redplate-test-").tempdir().expect("tempdir") }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs with `env` added to (or replacing in) the environment.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run redplate")
    }

    /// The command `run_env` runs, for a test that must watch it run.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        // The compiled-plugin cache is shared by all tests (and kept between runs).
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-backend-plugin-cache");
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("REDPLATE_HOME", self.dir.path())
            .env("REDPLATE_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .current_dir(root());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "redplate {args:?} failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Deploys `template` (relative to the workspace root, or absolute) and
    /// returns a guard that destroys it with `--purge` when dropped.
    pub fn deploy(&self, template: impl AsRef<Path>, extra: &[&str]) -> Deployed<'_> {
        let t = template.as_ref().display().to_string();
        let mut args = vec!["deploy", t.as_str(), "--format", "json", "--quiet"];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let out = self.run(&args);
        let took = started.elapsed();
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        // Guard first, so a failed assertion below still cleans up.
        let d = Deployed { home: self, name: record["name"].as_str().unwrap_or_default().to_owned(), record };
        assert!(out.status.success(), "deploy {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        report(&format!("deployed `{}` ({}) in {:.2} s", d.name, d.record["mode"], took.as_secs_f64()));
        d
    }

    /// Every registry record (`redplate list --format json`).
    pub fn records(&self) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&self.ok(&["list", "--format", "json"])).expect("list json")
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `yaml` as the template `<dir>/<name>.yaml`.
pub fn template(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).expect("write template");
    p
}

/// A running deployment; destroyed with `--purge` on drop.
pub struct Deployed<'a> {
    pub home: &'a Home,
    pub name: String,
    pub record: Value,
}

impl Drop for Deployed<'_> {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let _ = self.home.run(&["destroy", &self.name, "--purge", "--quiet"]);
        // Belt and braces: nothing of ours may outlive the test. Pids are
        // reused quickly: only a process working inside our state folder is ours.
        let state = self.state_dir();
        for n in self.nodes() {
            if let Some(pid) = n["pid"].as_u64().filter(|p| ours(*p, &state)) {
                kill(pid);
            }
        }
    }
}

impl Deployed<'_> {
    /// Reads the record again from the registry.
    pub fn refresh(&mut self) {
        if let Some(r) = self.home.records().into_iter().find(|r| r["name"] == self.name.as_str()) {
            self.record = r;
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.record["state_dir"].as_str().unwrap_or("/nonexistent"))
    }

    pub fn nodes(&self) -> Vec<Value> {
        self.record["nodes"].as_array().cloned().unwrap_or_default()
    }

    /// Data nodes' (name, port).
    pub fn data_nodes(&self) -> Vec<(String, u16)> {
        self.nodes()
            .iter()
            .filter(|n| n["role"] != "sentinel")
            .map(|n| (n["name"].as_str().unwrap_or_default().to_owned(), n["port"].as_u64().unwrap_or(0) as u16))
            .collect()
    }

    pub fn node(&self, name: &str) -> Value {
        self.nodes().into_iter().find(|n| n["name"] == name).unwrap_or_else(|| panic!("no node {name}"))
    }

    pub fn port(&self, node: &str) -> u16 {
        self.node(node)["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port")
    }

    /// `redis-cli` against a node, as redplate's admin user (TLS when the node uses it).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        self.cli_with(port, args, None)
    }

    /// Writes `key` and waits (WAIT, on the same connection) until
    /// `replicas` replicas have it.
    pub fn write_replicated(&self, port: u16, key: &str, value: &str, replicas: usize) {
        let script = format!("SET {key} {value}\nWAIT {replicas} 10000\n");
        let out = self.cli_with(port, &[], Some(&script));
        assert_eq!(out, format!("OK\n{replicas}"), "write of {key} acknowledged by {replicas} replicas");
    }

    /// `redis-cli` with `args`, or reading commands from `stdin` (one connection).
    pub fn cli_with(&self, port: u16, args: &[&str], stdin: Option<&str>) -> String {
        let node = self.nodes().into_iter().find(|n| n["port"] == port).expect("a node on that port");
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--no-auth-warning"]);
        if node["tls"] == true {
            let t = &self.record["tls"];
            cmd.args(["--tls", "--cacert", t["ca_file"].as_str().expect("ca")]);
            cmd.args(["--cert", t["cert_file"].as_str().expect("cert"), "--key", t["key_file"].as_str().expect("key")]);
        }
        if node["role"] != "sentinel" {
            if let Some(u) = self.record["admin_user"].as_str() {
                cmd.args(["--user", u]);
            }
            if let Some(f) = self.record["admin_password_file"].as_str() {
                let pw = std::fs::read_to_string(self.state_dir().join(f)).expect("admin password");
                cmd.env("REDISCLI_AUTH", pw.trim());
            }
        }
        cmd.args(args);
        let out = match stdin {
            None => cmd.output().expect("redis-cli"),
            Some(text) => {
                let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("redis-cli");
                child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write commands");
                child.wait_with_output().expect("redis-cli")
            }
        };
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `redplate status --format json`.
    pub fn status(&self) -> Value {
        let out = self.home.ok(&["status", &self.name, "--format", "json"]);
        serde_json::from_str(&out).expect("status json")
    }

    /// SIGKILLs a node's process.
    pub fn kill(&self, node: &str) {
        let pid = self.node(node)["pid"].as_u64().expect("pid");
        assert!(kill(pid), "{node} ({pid}) was running");
    }

    /// One node's entry in a `status`.
    pub fn node_status(status: &Value, name: &str) -> Value {
        status["nodes"].as_array().into_iter().flatten().find(|n| n["name"] == name).cloned().unwrap_or(Value::Null)
    }
}

/// Polls `status` until `done` holds; returns how long it took.
pub fn wait_for(d: &Deployed, what: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let status = d.status();
        if done(&status) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}; last status {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILL to `pid`; whether it was delivered.
pub fn kill(pid: u64) -> bool {
    let pid = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw);
    pid.is_some_and(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok())
}

/// A live process (not a zombie).
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).is_some_and(|st| st != "Z"))
        .unwrap_or(false)
}

/// A live process of the deployment whose state folder is `state`.
pub fn ours(pid: u64, state: &Path) -> bool {
    alive(pid) && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(state))
}

/// The pids of the processes working inside the state folder `state`.
pub fn processes_in(state: &Path) -> Vec<u64> {
    let state = state.canonicalize().unwrap_or_else(|_| state.to_owned());
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| ours(*pid, &state))
        .collect()
}

/// Whether nothing accepts connections on `port`.
pub fn port_refuses(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Takes `port` the way another program would (until dropped).
pub fn squat(port: u16) -> std::net::TcpListener {
    std::net::TcpListener::bind(("0.0.0.0", port)).expect("take the port")
}

/// Every preset × mode, and every example.
pub fn render_cases() -> Vec<(String, Vec<String>)> {
    let mut cases = Vec::new();
    for env in ["development", "staging", "production"] {
        for mode in ["standalone", "replication", "sentinel", "cluster"] {
            let mut sets = vec![format!("deployment.mode={mode}")];
            // Each mode with the smallest shape that is valid for it.
            match mode {
                "replication" | "sentinel" => sets.push("replication.replicas=2".into()),
                "cluster" => sets.extend(["cluster.shards=3".into(), "cluster.replicas_per_shard=1".into()]),
                _ => {}
            }
            if mode == "sentinel" {
                sets.push("sentinel.sentinels=3".into());
            }
            cases.push((format!("presets/{env}.yaml"), sets));
        }
    }
    for e in std::fs::read_dir(root().join("examples")).expect("examples").filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            cases.push((format!("examples/{name}"), Vec::new()));
        }
    }
    cases
}
