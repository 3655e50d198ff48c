//! `stats`, `metrics` and `health` against real deployments: the `redplate`
//! binary deploys real `redis-server` / `redis-sentinel` / Redis Cluster
//! processes, the test drives load and faults with `redis-cli` and
//! `kill -KILL` (the pid from `redplate status --format json`), and reads
//! the commands' output back — the metrics through the Prometheus text
//! parser (`prometheus_client` in the test virtualenv, which
//! `scripts/setup.sh` installs). Every deployment is destroyed by a guard,
//! on panic too.
//!
//! Without Redis or the parser the tests fail in CI (`CI` set) and are
//! skipped, visibly, elsewhere.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_redplate");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn skip(what: &str) -> bool {
    assert!(std::env::var_os("CI").is_none(), "{what} is needed in CI (scripts/setup.sh installs it)");
    eprintln!("SKIPPED: {what} is not installed (scripts/setup.sh installs it)");
    true
}

fn redis_missing() -> bool {
    let ok = ["redis-server", "redis-sentinel", "redis-cli"]
        .iter()
        .all(|t| Command::new(t).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok());
    !ok && skip("Redis (redis-server, redis-sentinel, redis-cli)")
}

fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

fn parser_missing() -> bool {
    let ok = Command::new(python()).args(["-c", "import prometheus_client"]).stderr(Stdio::null()).status();
    !ok.is_ok_and(|s| s.success()) && skip("`prometheus_client` in .venv")
}

/// One `REDPLATE_HOME` and the binary run against it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::Builder::new().prefix("redplate-observe-").tempdir().expect("tempdir") }
    }

    fn run(&self, args: &[&str]) -> Output {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-backend-plugin-cache");
        Command::new(BIN)
            .args(args)
            .env("REDPLATE_HOME", self.dir.path())
            .env("REDPLATE_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .current_dir(self.dir.path())
            .output()
            .expect("run redplate")
    }

    /// Runs and requires exit code `code`; returns stdout.
    fn code(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "redplate {args:?}:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let text = self.code(args, code);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}):\n{text}"))
    }

    /// Deploys a template and returns a guard that destroys it (`--purge`) when dropped.
    fn deploy(&self, name: &str, yaml: &str, extra: &[&str]) -> Deployed<'_> {
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).expect("write template");
        let p = path.display().to_string();
        let mut args = vec!["deploy", p.as_str(), "--format", "json", "--quiet"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let d = Deployed { home: self, name: name.to_owned(), record };
        assert!(out.status.success(), "deploy failed:\n{}", String::from_utf8_lossy(&out.stderr));
        d
    }
}

/// A running deployment; destroyed with `--purge` on drop.
struct Deployed<'a> {
    home: &'a Home,
    name: String,
    record: Value,
}

impl Drop for Deployed<'_> {
    fn drop(&mut self) {
        let _ = self.home.run(&["destroy", &self.name, "--purge", "--quiet"]);
    }
}

impl Deployed<'_> {
    fn port(&self, node: &str) -> String {
        let nodes = self.record["nodes"].as_array().expect("nodes");
        let n = nodes.iter().find(|n| n["name"] == node).unwrap_or_else(|| panic!("no node {node}"));
        n["port"].as_u64().expect("port").to_string()
    }

    /// `redis-cli` against a plain-TCP node as redplate's admin user.
    fn cli(&self, node: &str, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port(node), "--no-auth-warning"]);
        if let (Some(u), Some(f)) = (self.record["admin_user"].as_str(), self.record["admin_password_file"].as_str()) {
            let dir = PathBuf::from(self.record["state_dir"].as_str().expect("state dir"));
            let pw = std::fs::read_to_string(dir.join(f)).expect("admin password");
            cmd.args(["--user", u]).env("REDISCLI_AUTH", pw.trim());
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Kills a node with SIGKILL; its pid as `status` reports it.
    fn kill(&self, node: &str) {
        let status = self.home.json(&["status", &self.name, "--format", "json"], 0);
        let nodes = status["nodes"].as_array().expect("nodes");
        let pid = nodes.iter().find(|n| n["name"] == node).and_then(|n| n["pid"].as_u64()).expect("pid");
        assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill").success());
        // The port closes when the process is gone.
        let port: u16 = self.port(node).parse().expect("port");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{node} still listens after SIGKILL");
    }

    fn health(&self, code: i32) -> Value {
        self.home.json(&["health", &self.name, "--format", "json"], code)
    }
}

fn node<'v>(stats: &'v Value, name: &str) -> &'v Value {
    stats["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("{name}: {stats}"))
}

/// `(check, verdict, node)` of each reason.
fn reasons(health: &Value) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = health["reasons"].as_array().cloned().unwrap_or_default();
    list.iter().map(|r| (s(&r["check"]), s(&r["verdict"]), s(&r["node"]))).collect()
}

/// Each metric name's samples (labels, value) as the Prometheus text parser reads them.
type Parsed = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// Parses an exposition with `prometheus_client`.
fn parse_metrics(text: &str) -> Parsed {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       out.setdefault(s.name, []).append([s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    {
        use std::io::Write as _;
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write metrics");
    }
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser output")
}

/// redis_exporter's names that redplate exports (oliver006/redis_exporter,
/// `exporter/exporter.go`, `info.go`, `latency.go`, `slowlog.go`,
/// `sentinels.go`): every `redis_*` series must be one of them.
const REDIS_EXPORTER_NAMES: &[&str] = &[
    "redis_up",
    "redis_instance_info",
    "redis_start_time_seconds",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_memory_used_bytes",
    "redis_memory_used_rss_bytes",
    "redis_memory_used_peak_bytes",
    "redis_memory_used_lua_bytes",
    "redis_memory_used_dataset_bytes",
    "redis_memory_max_bytes",
    "redis_mem_fragmentation_ratio",
    "redis_loading_dump_file",
    "redis_rdb_changes_since_last_save",
    "redis_rdb_bgsave_in_progress",
    "redis_rdb_last_save_timestamp_seconds",
    "redis_rdb_last_bgsave_status",
    "redis_aof_enabled",
    "redis_aof_rewrite_in_progress",
    "redis_aof_last_bgrewrite_status",
    "redis_aof_last_write_status",
    "redis_pubsub_channels",
    "redis_pubsub_patterns",
    "redis_connected_slaves",
    "redis_master_repl_offset",
    "redis_replication_backlog_bytes",
    "redis_connections_received_total",
    "redis_commands_processed_total",
    "redis_rejected_connections_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_cpu_sys_seconds_total",
    "redis_cpu_user_seconds_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_connected_slave_offset_bytes",
    "redis_connected_slave_lag_seconds",
    "redis_master_link_up",
    "redis_slave_repl_offset",
    "redis_master_last_io_seconds_ago",
    "redis_slowlog_length",
    "redis_slowlog_last_id",
    "redis_last_slow_execution_duration_seconds",
    "redis_latency_spike_last",
    "redis_latency_spike_duration_seconds",
    "redis_cluster_state",
    "redis_cluster_slots_assigned",
    "redis_cluster_slots_ok",
    "redis_cluster_slots_pfail",
    "redis_cluster_slots_fail",
    "redis_cluster_known_nodes",
    "redis_cluster_size",
    "redis_sentinel_tilt",
    "redis_sentinel_master_status",
    "redis_sentinel_master_slaves",
    "redis_sentinel_master_sentinels",
    "redis_sentinel_master_ckquorum_status",
];

/// redplate's own series (health, replica lag in ms, tenants).
const REDPLATE_NAMES: &[&str] = &[
    "redplate_health_status",
    "redplate_health_check_ok",
    "redplate_health_down_reasons",
    "redplate_scrape_duration_seconds",
    "redplate_replica_lag_milliseconds",
    "redplate_tenant_keys",
    "redplate_tenant_memory_bytes",
    "redplate_tenant_connections",
    "redplate_tenants",
    "redplate_tenant_scan_complete",
    "redplate_tenant_scan_keys",
    "redplate_tenant_scan_duration_seconds",
];

/// Every `redis_*` name is redis_exporter's and every series of a node
/// carries `node`; every other name is one of redplate's own.
fn check_exporter_names(metrics: &Parsed) {
    for (name, samples) in metrics {
        if name.starts_with("redis_") {
            assert!(REDIS_EXPORTER_NAMES.contains(&name.as_str()), "`{name}` is not a redis_exporter name");
            assert!(samples.iter().all(|(labels, _)| labels.contains_key("node")), "{name} without a node label");
        } else {
            assert!(REDPLATE_NAMES.contains(&name.as_str()), "`{name}` is neither redis_exporter's nor listed");
        }
    }
}

/// The metric names a PromQL expression uses.
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if word.starts_with("redis_") || word.starts_with("redplate_") {
                names.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

#[test]
fn the_grafana_dashboard_queries_only_names_redplate_exports() {
    let path = root().join("plugins/kubernetes/src/templates/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).expect("JSON");
    let mut used = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for expr in
        panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str())
    {
        for name in names_in(expr) {
            assert!(
                REDIS_EXPORTER_NAMES.contains(&name.as_str()) || REDPLATE_NAMES.contains(&name.as_str()),
                "the dashboard queries `{name}`, which `redplate metrics` does not export: {expr}"
            );
            used.insert(name);
        }
    }
    for core in [
        "redis_up",
        "redis_commands_processed_total",
        "redis_memory_used_bytes",
        "redplate_health_status",
        "redplate_tenant_keys",
    ] {
        assert!(used.contains(core), "the dashboard shows no `{core}`");
    }
}

fn value(metrics: &Parsed, name: &str, label: (&str, &str)) -> f64 {
    let samples = metrics.get(name).unwrap_or_else(|| panic!("no {name}"));
    let found = samples.iter().find(|(l, _)| l.get(label.0).map(String::as_str) == Some(label.1));
    found.unwrap_or_else(|| panic!("no {name}{{{}=\"{}\"}} in {samples:?}", label.0, label.1)).1
}

const TENANTS: &str = "extends: development\ndeployment: { name: obs }\n\
    tenancy:\n  enabled: true\n  isolation: key_prefix\n  prefix_pattern: \"tenant:{tenantId}:\"\n  memory_per_tenant: 8mb\n\
    \x20 tenants: [ { id: acme }, { id: globex }, { id: initech } ]\n";

#[test]
fn stats_of_a_standalone_show_every_figure_and_escape_what_redis_says() {
    if redis_missing() {
        return;
    }
    let home = Home::new();
    let d = home.deploy("obs", TENANTS, &["--set", "network.local_base_port=25000"]);
    assert_eq!(d.cli("obs-0", &["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "OK");
    assert_eq!(d.cli("obs-0", &["CONFIG", "SET", "latency-monitor-threshold", "1"]), "OK");
    for i in 0..20 {
        d.cli("obs-0", &["SET", &format!("k{i}"), "v", "EX", "3600"]);
    }
    d.cli("obs-0", &["SET", "evil\x1b[2J\rkey", "v"]);
    d.cli("obs-0", &["GET", "k1"]);
    d.cli("obs-0", &["GET", "missing"]);
    // A command slow enough (> 1 ms) for the latency monitor.
    d.cli("obs-0", &["EVAL", "local i = 0 while i < 3000000 do i = i + 1 end return i", "0"]);

    let s = home.json(&["stats", "obs", "--format", "json"], 0);
    let n = node(&s, "obs-0");
    assert_eq!((n["up"].as_bool(), n["role"].as_str()), (Some(true), Some("master")), "{n}");
    assert_eq!(n["keys"], 21);
    assert_eq!(n["databases"]["db0"]["expires"], 20);
    assert!(n["keyspace_hits"].as_u64() >= Some(1) && n["keyspace_misses"].as_u64() >= Some(1), "{n}");
    assert!(n["hit_ratio"].as_f64().is_some_and(|r| r > 0.0 && r < 1.0), "a hit and a miss: {n}");
    assert!(n["commands_processed"].as_u64() > Some(20));
    assert!(n["ops_per_sec"].is_number());
    assert!(n["memory"]["used_bytes"].as_u64() > Some(0) && n["memory"]["peak_bytes"].as_u64() > Some(0));
    assert!(n["memory"]["max_bytes"].as_u64() > Some(0), "the preset sets maxmemory: {n}");
    assert!(n["memory"]["fragmentation_ratio"].as_f64() > Some(0.0));
    assert!(n["clients"]["connected"].as_u64() >= Some(1));
    for field in ["evicted_keys", "expired_keys"] {
        assert_eq!(n[field], 0, "{field}");
    }
    assert!(n["replication"]["offset"].is_u64() && n["persistence"]["rdb_last_bgsave_ok"] == true);
    assert!(n["persistence"]["aof_enabled"].is_boolean());
    let worst = n["slowlog"]["worst"].as_array().expect("slow log");
    assert!(!worst.is_empty() && worst.len() <= 5, "{worst:?}");
    assert!(worst[0]["command"].as_str().is_some_and(|c| c.starts_with("EVAL")), "the slowest first: {worst:?}");
    let latency = n["latency"].as_array().expect("latency");
    assert!(latency.iter().any(|e| e["event"] == "command" && e["max_ms"].as_u64() >= Some(1)), "{latency:?}");
    assert_eq!(s["total"]["keys"], 21);
    assert_eq!((s["total"]["nodes"].as_u64(), s["total"]["nodes_up"].as_u64()), (Some(1), Some(1)));

    // The slow log's worst entries shown: a key's escape sequence is shown, not obeyed.
    d.cli("obs-0", &["CONFIG", "SET", "slowlog-max-len", "0"]);
    d.cli("obs-0", &["CONFIG", "SET", "slowlog-max-len", "128"]);
    d.cli(
        "obs-0",
        &[
            "EVAL",
            "local i = 0 while i < 1000000 do i = i + 1 end return redis.call('GET', KEYS[1])",
            "1",
            "evil\x1b[2J\rkey",
        ],
    );
    let human = home.code(&["stats", "obs", "--slowlog", "1"], 0);
    assert!(human.contains("evil\\u{1b}[2J\\u{d}key") && !human.contains('\x1b') && !human.contains('\r'), "{human}");
    for word in ["OPS/S", "HIT", "USED", "PEAK", "FRAG", "MAXMEM", "CLIENTS", "KEYS", "EVICTED", "EXPIRED", "OFFSET"] {
        assert!(human.contains(word), "{word}: {human}");
    }
    assert!(human.contains("persistence") && human.contains("last save") && human.contains("latency (LATENCY LATEST)"));

    // An unknown deployment: named, and the exit code `status` gives it;
    // `health` cannot judge it, which is no `degraded` (1): 2.
    let out = home.run(&["stats", "nope"]);
    assert_eq!(out.status.code(), home.run(&["status", "nope"]).status.code());
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));
    assert_eq!(home.run(&["health", "nope"]).status.code(), Some(2));
}

#[test]
fn metrics_parse_as_prometheus_text_under_redis_exporter_names_with_capped_tenant_series() {
    if redis_missing() || parser_missing() {
        return;
    }
    let home = Home::new();
    let d = home.deploy("obs", TENANTS, &["--set", "network.local_base_port=25100"]);
    let script: String = (0..300)
        .map(|i| format!("SET tenant:acme:k{i} {i}\n"))
        .chain((0..120).map(|i| format!("SET tenant:globex:k{i} {}\n", "x".repeat(200))))
        .chain((0..50).map(|i| format!("SET other:{i} 1\n")))
        .collect();
    let mut cli = Command::new("redis-cli")
        .args(["-p", &d.port("obs-0")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    {
        use std::io::Write as _;
        cli.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write");
    }
    assert!(cli.wait().expect("redis-cli").success());

    let text = home.code(&["metrics", "obs"], 0);
    let m = parse_metrics(&text);
    check_exporter_names(&m);
    for name in [
        "redis_up",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_connected_clients",
        "redis_commands_processed_total",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_evicted_keys_total",
        "redis_expired_keys_total",
        "redis_connected_slaves",
        "redis_master_repl_offset",
        "redis_db_keys",
        "redplate_health_status",
        "redplate_health_check_ok",
    ] {
        assert!(m.contains_key(name), "{name} missing");
    }
    assert_eq!(value(&m, "redis_up", ("node", "obs-0")), 1.0);
    assert_eq!(value(&m, "redis_db_keys", ("db", "db0")), 470.0);
    assert_eq!(m["redplate_health_status"][0].1, 0.0, "healthy");
    assert_eq!(value(&m, "redplate_tenant_keys", ("tenant", "acme")), 300.0, "exact: the scan completed");
    assert_eq!(value(&m, "redplate_tenant_keys", ("tenant", "globex")), 120.0);
    assert_eq!(value(&m, "redplate_tenant_keys", ("tenant", "initech")), 0.0);
    assert_eq!(m["redplate_tenant_scan_complete"][0].1, 1.0);
    assert!(value(&m, "redplate_tenant_memory_bytes", ("tenant", "globex")) > 120.0 * 200.0, "sampled sizes × keys");
    assert!(text.contains("# HELP redplate_tenant_keys Keys per tenant. key_prefix tenants: counted by a paced SCAN"));
    assert!(text.contains("# HELP redplate_tenant_memory_bytes Estimated memory per tenant, by sampling"));

    // A tenant's own connection is counted under its ACL user.
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    let pw = std::fs::read_to_string(state.join("secrets/tenant-acme.password")).expect("tenant password");
    {
        use std::io::{BufRead as _, Write as _};
        let port: u16 = d.port("obs-0").parse().expect("port");
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(conn, "AUTH tenant-acme {}\r\n", pw.trim()).expect("auth");
        let mut line = String::new();
        std::io::BufReader::new(&conn).read_line(&mut line).expect("reply");
        assert_eq!(line.trim(), "+OK", "the tenant is connected");
        let m = parse_metrics(&home.code(&["metrics", "obs"], 0));
        assert_eq!(value(&m, "redplate_tenant_connections", ("tenant", "acme")), 1.0);
        assert_eq!(value(&m, "redplate_tenant_connections", ("tenant", "globex")), 0.0);
    }

    // The cap: one tenant named, the others summed as `overflow`.
    let m = parse_metrics(&home.code(&["metrics", "obs", "--max-tenants", "1"], 0));
    let tenants: BTreeSet<&str> =
        m["redplate_tenant_keys"].iter().filter_map(|(l, _)| l.get("tenant").map(String::as_str)).collect();
    assert_eq!(tenants, BTreeSet::from(["acme", "overflow"]));
    assert_eq!(value(&m, "redplate_tenant_keys", ("tenant", "overflow")), 120.0);
}

#[test]
fn health_of_a_sentinel_deployment_is_healthy_then_degraded_then_down_as_nodes_die() {
    if redis_missing() || parser_missing() {
        return;
    }
    let home = Home::new();
    // Staging: 1 master, 2 replicas, 3 sentinels, TLS only.
    let d = home.deploy(
        "stg",
        "deployment: { name: stg }\n",
        &["--preset", "staging", "--set", "network.local_base_port=25200"],
    );
    let s = home.json(&["stats", "stg", "--format", "json"], 0);
    let replica = node(&s, "stg-1");
    assert_eq!(replica["role"], "replica");
    assert_eq!(replica["replication"]["master_link_up"], true);
    assert!(replica["replication"]["lag_bytes"].is_u64() && replica["replication"]["lag_ms"].is_u64(), "{replica}");
    assert_eq!(node(&s, "stg-0")["replication"]["replicas"].as_array().map(Vec::len), Some(2));
    let sentinels = s["sentinels"].as_array().expect("sentinels");
    assert_eq!(sentinels.len(), 3);
    let master = format!("127.0.0.1:{}", d.port("stg-0"));
    assert!(sentinels.iter().all(|x| x["master"] == master.as_str() && x["quorum_ok"] == true), "{sentinels:?}");

    let h = d.health(0);
    assert_eq!(h["verdict"], "healthy", "{h}");
    assert!(h["checks"]["sentinel_quorum"] == true && h["checks"]["replica_lag"] == true, "{h}");
    let human = home.code(&["health", "stg"], 0);
    assert!(human.starts_with("`stg`: healthy"), "{human}");
    let m = parse_metrics(&home.code(&["metrics", "stg"], 0));
    check_exporter_names(&m);
    assert_eq!(value(&m, "redis_sentinel_master_ckquorum_status", ("node", "stg-sentinel-0")), 1.0);
    assert_eq!(value(&m, "redis_master_link_up", ("node", "stg-2")), 1.0);
    assert_eq!(value(&m, "redis_connected_slaves", ("node", "stg-0")), 2.0);

    d.kill("stg-1");
    let h = d.health(1);
    assert_eq!(h["verdict"], "degraded");
    assert_eq!(reasons(&h), [("nodes_up".into(), "degraded".into(), "stg-1".into())], "{h}");
    let human = home.code(&["health", "stg"], 1);
    assert!(human.contains("`stg-1` does not answer") && human.contains("hint: "), "{human}");
    let m = parse_metrics(&home.code(&["metrics", "stg"], 0));
    assert_eq!(m["redplate_health_status"][0].1, 1.0);
    assert_eq!(value(&m, "redis_up", ("node", "stg-1")), 0.0);
    assert_eq!(value(&m, "redplate_health_check_ok", ("check", "nodes_up")), 0.0);

    // The master too: no master, and most data nodes gone.
    d.kill("stg-0");
    let h = d.health(2);
    assert_eq!(h["verdict"], "down");
    let r = reasons(&h);
    assert!(r.contains(&("nodes_up".into(), "down".into(), String::new())), "most data nodes are gone: {h}");
    assert!(r.contains(&("nodes_up".into(), "degraded".into(), "stg-0".into())), "{h}");
}

#[test]
fn health_of_a_cluster_sees_open_slots_and_a_lost_master() {
    if redis_missing() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "clu",
        "extends: development\ndeployment: { name: clu, mode: cluster }\ncluster: { shards: 3, replicas_per_shard: 0 }\n",
        &["--set", "network.local_base_port=25300", "--set", "network.cluster_bus_port_offset=5000"],
    );
    let s = home.json(&["stats", "clu", "--format", "json"], 0);
    let c = &node(&s, "clu-0")["cluster"];
    assert_eq!((c["state"].as_str(), c["slots_assigned"].as_u64()), (Some("ok"), Some(16384)), "{c}");
    assert_eq!(d.health(0)["verdict"], "healthy");

    // A slot left migrating (as an interrupted reshard leaves it).
    let masters = ["clu-0", "clu-1", "clu-2"];
    let slot = d.cli("clu-0", &["CLUSTER", "KEYSLOT", "a"]);
    let mine = |n: &str| d.cli(n, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself") && owns(l, &slot));
    let owner = masters.into_iter().find(|n| mine(n)).expect("the slot's owner");
    let target = d.cli(masters.into_iter().find(|n| *n != owner).expect("another master"), &["CLUSTER", "MYID"]);
    assert_eq!(target.len(), 40, "{target}");
    assert_eq!(d.cli(owner, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target]), "OK");
    let h = d.health(1);
    assert_eq!(reasons(&h), [("cluster_open_slots".into(), "degraded".into(), owner.into())], "{h}");
    assert_eq!(d.cli(owner, &["CLUSTER", "SETSLOT", &slot, "STABLE"]), "OK");
    assert_eq!(d.health(0)["verdict"], "healthy");

    // A master without a replica dies: its slots have no master.
    d.kill("clu-2");
    let h = d.health(2);
    assert!(reasons(&h).contains(&("cluster_state".into(), "down".into(), "clu-2".into())), "{h}");
}

/// Whether a `CLUSTER NODES` line serves `slot`.
fn owns(line: &str, slot: &str) -> bool {
    let Ok(slot) = slot.parse::<u32>() else { return false };
    line.split_whitespace().skip(8).any(|r| match r.split_once('-') {
        Some((a, b)) => a.parse::<u32>().is_ok_and(|a| a <= slot) && b.parse::<u32>().is_ok_and(|b| slot <= b),
        None => r.parse::<u32>() == Ok(slot),
    })
}
