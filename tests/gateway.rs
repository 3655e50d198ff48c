//! The tenant gateway, with real processes and real clients (the `redis`
//! crate, `redis-cli`, redis-py from the test virtualenv, `redis-benchmark`):
//! each quota holds (connections, ops/s over every 3 s window, memory with
//! reads and deletes still working), SCAN and KEYS list only the tenant's
//! keys, the cache rules' TTLs are applied on the wire, a Sentinel failover
//! moves a running client without it reconnecting, hostile clients are
//! answered or cut off without hurting others, and the cross-tenant
//! isolation suite finds no escape through the gateway.

mod support;

use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::isolation::{ATTACKS, own_work};
use support::{Deployed, Home, redis_present, report, root, text};

/// A template with tenancy and the gateway on; `tenants` is YAML list items.
fn template(home: &Home, name: &str, mode: &str, gateway: bool, tenants: &str) -> String {
    let yaml = format!(
        "extends: development\n\
         deployment: {{ name: {name}, mode: {mode} }}\n\
         security: {{ auth_enabled: true, password: {{ generate: true }} }}\n\
         tenancy:\n  enabled: true\n  gateway: {gateway}\n  allow_scripts: true\n  max_tenants: 8\n  \
         memory_per_tenant: 16mb\n  connections_per_tenant: 50\n  ops_per_second_per_tenant: 1000000\n  \
         tenants:\n{tenants}\
         cache:\n  strategy: cache-aside\n  default_ttl: 15m\n  jitter_percent: 10\n  patterns:\n    \
         - {{ pattern: \"tenant:*:cache:*\", ttl: 1h }}\n"
    );
    let path = home.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write template");
    path.display().to_string()
}

fn gateway_port(d: &Deployed) -> u16 {
    let base = d.record["base_port"].as_u64().expect("base port");
    assert!(d.record["gateway"].is_object(), "the record has a gateway: {}", d.record);
    u16::try_from(base + 9).expect("port")
}

fn password(d: &Deployed, user: &str) -> String {
    std::fs::read_to_string(d.state_dir().join(format!("secrets/{user}.password")))
        .expect("password file")
        .trim()
        .to_owned()
}

fn client(port: u16, user: &str, password: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://{user}:{password}@127.0.0.1:{port}/"))?;
    let con = client.get_connection()?;
    con.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(con)
}

fn tenant(d: &Deployed, port: u16, id: &str) -> redis::Connection {
    let user = format!("tenant-{id}");
    client(port, &user, &password(d, &user)).unwrap_or_else(|e| panic!("{user} through the gateway: {e}"))
}

/// redplate's admin user, directly on the node.
fn admin(d: &Deployed, port: u16) -> redis::Connection {
    let user = d.record["admin_user"].as_str().expect("admin user").to_owned();
    let file = d.record["admin_password_file"].as_str().expect("admin password file");
    let pw = std::fs::read_to_string(d.state_dir().join(file)).expect("admin password");
    client(port, &user, pw.trim()).expect("admin connection")
}

fn run(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn keys(con: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, batch): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(100).query(con).expect("SCAN");
        all.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    all.sort();
    all
}

fn pttl(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).expect("PTTL")
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn quotas_hold_scan_lists_own_keys_and_cache_rules_set_ttls_through_the_gateway() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let tenants = "    - id: acme\n      connections: 5\n    - id: beta\n    - id: full\n      memory: 2mb\n    \
                   - id: slow\n      ops_per_second: 2000\n";
    let t = template(&home, "gwq", "standalone", true, tenants);
    let d = home.deploy(t.as_str(), &["--set", "network.local_base_port=31100"]);
    let gw = gateway_port(&d);
    let node = d.data_nodes()[0].1;
    let mut root_con = admin(&d, node);
    let status = d.status();
    assert_eq!(status["gateway"]["up"], true, "status shows the gateway: {status}");

    // SCAN and KEYS: only the tenant's own keys, however it asks.
    let mut beta = tenant(&d, gw, "beta");
    for i in 0..30 {
        run(&mut beta, &["SET", &format!("tenant:beta:k{i}"), "v"]).expect("beta writes its own keys");
    }
    let mut acme = tenant(&d, gw, "acme");
    for i in 0..25 {
        run(&mut acme, &["SET", &format!("tenant:acme:k{i}"), "v"]).expect("acme writes its own keys");
    }
    let listed = keys(&mut acme, "*");
    assert_eq!(listed.len(), 25, "SCAN lists acme's 25 keys: {listed:?}");
    assert!(listed.iter().all(|k| k.starts_with("tenant:acme:")), "{listed:?}");
    assert!(keys(&mut acme, "tenant:beta:*").is_empty(), "another tenant's pattern finds nothing");
    assert_eq!(keys(&mut acme, "tenant:acme:k1*").len(), 11, "the tenant's own pattern filters");
    let mut all_keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut acme).expect("KEYS");
    all_keys.sort();
    assert_eq!(all_keys, listed, "KEYS lists the same keys");
    let direct: Vec<String> = redis::cmd("KEYS").arg("tenant:acme:*").query(&mut root_con).expect("admin KEYS");
    assert_eq!(direct.len(), 25);
    let cli = Command::new("redis-cli")
        .args(["-p", &gw.to_string(), "--user", "tenant-beta", "--no-auth-warning", "--scan"])
        .env("REDISCLI_AUTH", password(&d, "tenant-beta"))
        .output()
        .expect("redis-cli");
    assert_eq!(text(&cli.stdout).lines().count(), 30, "redis-cli --scan as beta: {}", text(&cli.stdout));

    // Cache rules on the wire: the rule's TTL with jitter, only where no expiry was given.
    let hour = 3_600_000i64;
    let mut ttls = std::collections::BTreeSet::new();
    for i in 0..20 {
        let key = format!("tenant:acme:cache:{i}");
        run(&mut acme, &["SET", &key, "v"]).expect("SET");
        let t = pttl(&mut acme, &key);
        assert!((hour * 9 / 10..=hour * 11 / 10).contains(&t), "{key}: PTTL {t} is 1 h ± 10 %");
        ttls.insert(t / 1000);
    }
    assert!(ttls.len() > 5, "jittered, not one TTL for all: {ttls:?}");
    run(&mut acme, &["SET", "tenant:acme:cache:own", "v", "EX", "100"]).expect("SET EX");
    assert!(pttl(&mut acme, "tenant:acme:cache:own") <= 100_000, "an explicit expiry is kept");
    // The first rule that matches decides: other keys get the catch-all's
    // `cache.default_ttl` (15 min).
    run(&mut acme, &["SET", "tenant:acme:plain", "v"]).expect("SET");
    let t = pttl(&mut acme, "tenant:acme:plain");
    assert!((810_000..=990_000).contains(&t), "the catch-all rule's 15 min ± 10 %: {t}");
    run(&mut acme, &["HSET", "tenant:acme:cache:h", "f", "v"]).expect("HSET");
    let t = pttl(&mut acme, "tenant:acme:cache:h");
    assert!((hour * 9 / 10..=hour * 11 / 10).contains(&t), "a hash under a rule gets the TTL too: {t}");
    run(&mut acme, &["EXPIRE", "tenant:acme:cache:h", "50"]).expect("EXPIRE");
    run(&mut acme, &["HSET", "tenant:acme:cache:h", "g", "w"]).expect("HSET");
    assert!(pttl(&mut acme, "tenant:acme:cache:h") <= 50_000, "a key's own expiry is not replaced");
    assert!(pttl(&mut root_con, "tenant:acme:cache:1") > 0, "the TTL is on the server, as the admin sees it");

    // Connections: the quota's next connection gets a clear error.
    let mut held: Vec<redis::Connection> = (0..4).map(|_| tenant(&d, gw, "acme")).collect();
    let acme_pw = password(&d, "tenant-acme");
    assert!(client(gw, "tenant-acme", &acme_pw).is_err(), "a 6th connection is refused");
    // What the client reads (the redis crate shows only "AuthenticationFailed").
    let mut raw = TcpStream::connect(("127.0.0.1", gw)).expect("connect");
    write!(raw, "*3\r\n$4\r\nAUTH\r\n$11\r\ntenant-acme\r\n${}\r\n{acme_pw}\r\n", acme_pw.len()).expect("AUTH");
    raw.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 512];
    let n = raw.read(&mut buf).expect("an answer");
    let msg = text(&buf[..n]);
    assert!(
        msg.starts_with("-ERR max number of clients") && msg.contains("'acme'") && msg.contains("5 connections"),
        "{msg}"
    );
    drop(raw);
    held.pop();
    wait_until("a slot frees when a connection closes", Duration::from_secs(5), || {
        client(gw, "tenant-acme", &acme_pw).is_ok_and(|mut c| run(&mut c, &["PING"]).is_ok())
    });
    drop(held);

    // Memory: writes past the quota are refused with OOM; reads and deletes work.
    let mut full = tenant(&d, gw, "full");
    let value = "x".repeat(1024);
    let mut written = 0;
    let oom = loop {
        match run(&mut full, &["SET", &format!("tenant:full:{written}"), &value]) {
            Ok(_) => written += 1,
            Err(e) => break e.to_string(),
        }
        assert!(written < 10_000, "2 MB of 1 KiB values must run out");
    };
    assert!(
        oom.contains("OOM") && oom.contains("full") && oom.contains("quota of 2mb") && oom.contains("MiB used"),
        "{oom}"
    );
    let sizes: Vec<i64> = (0..written)
        .map(|i| redis::cmd("MEMORY").arg("USAGE").arg(format!("tenant:full:{i}")).query(&mut root_con).expect("usage"))
        .collect();
    let used: i64 = sizes.iter().sum();
    report(&format!("memory quota 2 MiB: {written} writes of 1 KiB accepted, {used} bytes used (MEMORY USAGE)"));
    assert!(used <= 2 * 1024 * 1024 * 11 / 10, "within 10 % of the quota: {used}");
    assert!(used >= 2 * 1024 * 1024 * 8 / 10, "the quota is used, not refused early: {used}");
    let got: String = redis::cmd("GET").arg("tenant:full:3").query(&mut full).expect("reads still work");
    assert_eq!(got.len(), 1024);
    for i in 0..written / 2 {
        run(&mut full, &["DEL", &format!("tenant:full:{i}")]).expect("deletes still work");
    }
    wait_until("writes work again once keys were deleted", Duration::from_secs(5), || {
        run(&mut full, &["SET", "tenant:full:again", &value]).is_ok()
    });

    // ops/s: eight clients as fast as they can; every 3 s window of the
    // counter stays within 10 % of 2,000/s.
    let slow_pw = password(&d, "tenant-slow");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Four clients one command at a time, four with pipelines of 100 (whose
    // tail would wait longer than the 100 ms a command may be delayed).
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (pw, stop) = (slow_pw.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut con = client(gw, "tenant-slow", &pw).expect("slow connects");
                let (mut ok, mut busy) = (0u64, 0u64);
                let mut pipe = redis::pipe();
                for _ in 0..100 {
                    pipe.incr("tenant:slow:n", 1).ignore();
                }
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (done, result) = if i < 4 {
                        (1, run(&mut con, &["INCR", "tenant:slow:n"]).map(|_| ()))
                    } else {
                        (100, pipe.query::<()>(&mut con))
                    };
                    match result {
                        Ok(()) => ok += done,
                        Err(e) if e.to_string().contains("BUSY") && e.to_string().contains("2000 ops/s") => busy += 1,
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
                (ok, busy)
            })
        })
        .collect();
    let mut samples: Vec<(Instant, i64)> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(7500) {
        let n: Option<i64> = redis::cmd("GET").arg("tenant:slow:n").query(&mut root_con).expect("GET");
        samples.push((Instant::now(), n.unwrap_or(0)));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut busy) = (0, 0);
    for w in workers {
        let (o, b) = w.join().expect("worker");
        ok += o;
        busy += b;
    }
    let mut worst: f64 = 0.0;
    let mut least = f64::MAX;
    // Windows of 3 s after the first 0.5 s (the bucket starts full).
    for (i, (t0, v0)) in
        samples.iter().enumerate().filter(|(_, (t, _))| t.duration_since(started) > Duration::from_millis(500))
    {
        if let Some((t1, v1)) = samples[i..].iter().find(|(t, _)| t.duration_since(*t0) >= Duration::from_secs(3)) {
            let rate = (v1 - v0) as f64 / t1.duration_since(*t0).as_secs_f64();
            worst = worst.max(rate);
            least = least.min(rate);
        }
    }
    report(&format!(
        "ops/s quota 2000: 8 clients, {ok} commands done, {busy} refusals seen; 3 s windows {least:.0}..{worst:.0} ops/s"
    ));
    assert!(busy > 0, "the clients asked for more than the quota");
    assert!(worst <= 2200.0, "every 3 s window within 10 % of 2,000/s: {worst:.0}");
    assert!(least >= 1600.0, "the quota is delivered, not throttled below it: {least:.0}");

    // Metrics per tenant, through `redplate metrics`, read by the Prometheus parser.
    std::thread::sleep(Duration::from_millis(1500));
    let exposition = home.ok(&["metrics", "gwq"]);
    let sample = |name: &str, labels: &str| -> f64 {
        exposition
            .lines()
            .find(|l| {
                let head = if labels.is_empty() { format!("{name} ") } else { format!("{name}{{{labels}}} ") };
                l.starts_with(&head)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}{{{labels}}} in:\n{exposition}"))
    };
    assert_eq!(sample("redplate_gateway_up", ""), 1.0);
    assert!(sample("redplate_gateway_tenant_rejected_total", "tenant=\"acme\",reason=\"connections\"") >= 1.0);
    assert!(sample("redplate_gateway_tenant_rejected_total", "tenant=\"full\",reason=\"memory\"") >= 1.0);
    assert!(
        sample("redplate_gateway_tenant_rejected_total", "tenant=\"slow\",reason=\"ops_per_second\"") >= busy as f64
    );
    assert!(sample("redplate_gateway_tenant_commands_total", "tenant=\"slow\"") >= ok as f64);
    assert!(sample("redplate_gateway_tenant_bytes_in_total", "tenant=\"acme\"") > 0.0);
    assert!(sample("redplate_gateway_tenant_memory_bytes", "tenant=\"full\"") > 0.0);
    assert_eq!(sample("redplate_gateway_tenant_memory_quota_bytes", "tenant=\"full\""), 2.0 * 1024.0 * 1024.0);
    let parsed = Command::new(root().join(".venv/bin/python"))
        .args(["-c", "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(sum(1 for _ in p(sys.stdin.read())))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(exposition.as_bytes())?;
            c.wait_with_output()
        })
        .expect("the Prometheus parser");
    assert!(parsed.status.success(), "the exposition parses");
    let status = d.status();
    let slow = status["gateway"]["tenants"].as_array().into_iter().flatten().find(|t| t["tenant"] == "slow").cloned();
    assert!(slow.is_some_and(|s| s["commands"].as_u64() >= Some(ok)), "status shows the counters: {status}");
}

#[test]
fn redis_py_redis_cli_and_redis_benchmark_work_through_the_gateway() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(&home, "gwc", "standalone", true, "    - id: acme\n    - id: beta\n");
    let d = home.deploy(t.as_str(), &["--set", "network.local_base_port=31200"]);
    let gw = gateway_port(&d);
    let pw = password(&d, "tenant-acme");
    let python = root().join(".venv/bin/python");
    let script = r#"
import json, sys, redis
port, pw = int(sys.argv[1]), sys.argv[2]
out = {}
for proto in (2, 3):
    r = redis.Redis(port=port, username="tenant-acme", password=pw, protocol=proto, decode_responses=True)
    r.set(f"tenant:acme:py{proto}", "v")
    out[f"get{proto}"] = r.get(f"tenant:acme:py{proto}")
    p = r.pipeline(transaction=False)
    for _ in range(100):
        p.incr(f"tenant:acme:n{proto}")
    out[f"pipeline{proto}"] = p.execute()[-1]
    with r.pipeline(transaction=True) as t:
        t.set(f"tenant:acme:tx{proto}", "1")
        t.incr(f"tenant:acme:tx{proto}")
        out[f"transaction{proto}"] = t.execute()
    out[f"scan{proto}"] = sorted(r.scan_iter(match="*", count=50))
    out[f"ttl{proto}"] = (r.set(f"tenant:acme:cache:{proto}", "v"), r.pttl(f"tenant:acme:cache:{proto}"))[1]
    ps = r.pubsub()
    ps.subscribe("tenant:acme:news")
    first = ps.get_message(timeout=5)
    r.publish("tenant:acme:news", f"hello{proto}")
    msg = None
    for _ in range(50):
        m = ps.get_message(timeout=0.2)
        if m and m["type"] == "message":
            msg = m["data"]
            break
    out[f"pubsub{proto}"] = msg
    try:
        r.get("tenant:beta:x")
        out[f"other{proto}"] = "allowed"
    except redis.exceptions.ResponseError as e:
        out[f"other{proto}"] = str(e)
    ps.close()
    r.close()
print(json.dumps(out))
"#;
    let out = Command::new(&python).args(["-c", script, &gw.to_string(), &pw]).output().expect("redis-py");
    assert!(out.status.success(), "redis-py through the gateway:\n{}{}", text(&out.stdout), text(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("json");
    for proto in [2, 3] {
        assert_eq!(got[format!("get{proto}")], "v", "{got}");
        assert_eq!(got[format!("pipeline{proto}")], 100, "{got}");
        assert_eq!(got[format!("transaction{proto}")], serde_json::json!([true, 2]), "{got}");
        let scanned = got[format!("scan{proto}")].as_array().expect("scan");
        assert!(
            !scanned.is_empty() && scanned.iter().all(|k| k.as_str().is_some_and(|k| k.starts_with("tenant:acme:")))
        );
        let ttl = got[format!("ttl{proto}")].as_i64().expect("ttl");
        assert!((3_240_000..=3_960_000).contains(&ttl), "RESP{proto}: the rule's TTL: {ttl}");
        assert_eq!(got[format!("pubsub{proto}")], format!("hello{proto}"), "{got}");
        // redis-py drops the NOPERM code from the message of its NoPermissionError.
        assert!(got[format!("other{proto}")].as_str().is_some_and(|e| e.contains("no permissions")), "{got}");
    }

    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &gw.to_string(), "--user", "tenant-acme", "--no-auth-warning"])
            .args(args)
            .env("REDISCLI_AUTH", &pw)
            .output()
            .expect("redis-cli");
        text(&out.stdout).trim().to_owned()
    };
    assert_eq!(cli(&["SET", "tenant:acme:cli", "1"]), "OK");
    assert_eq!(cli(&["-3", "INCR", "tenant:acme:cli"]), "2");
    assert_eq!(cli(&["GET", "tenant:beta:x"]).split_whitespace().next(), Some("NOPERM"));

    let bench = Command::new("redis-benchmark")
        .args(["-p", &gw.to_string(), "--user", "tenant-acme", "-a", &pw, "-n", "20000", "-c", "10", "-P", "16"])
        .args(["-r", "1000", "-q", "SET", "tenant:acme:b:__rand_int__", "x"])
        .output()
        .expect("redis-benchmark");
    let said = text(&bench.stdout) + &text(&bench.stderr);
    assert!(bench.status.success() && said.contains("requests per second"), "redis-benchmark: {said}");
    report(&format!("redis-benchmark through the gateway: {}", said.trim().lines().last().unwrap_or_default()));
    let mut root_con = admin(&d, d.data_nodes()[0].1);
    let written: Vec<String> = redis::cmd("KEYS").arg("tenant:acme:b:*").query(&mut root_con).expect("KEYS");
    assert!(written.len() > 900, "the benchmark's keys are there: {}", written.len());

    // Tenants and quotas changed at run time reach the running gateway.
    home.ok(&["tenant", "create", "gwc", "gamma"]);
    let gamma_pw = password(&d, "tenant-gamma");
    wait_until("a tenant created at run time connects through the gateway", Duration::from_secs(10), || {
        client(gw, "tenant-gamma", &gamma_pw).is_ok_and(|mut c| run(&mut c, &["SET", "tenant:gamma:k", "v"]).is_ok())
    });
    home.ok(&["tenant", "update", "gwc", "gamma", "--connections", "1"]);
    let _first = tenant(&d, gw, "gamma");
    wait_until("a lowered connection quota holds", Duration::from_secs(10), || {
        client(gw, "tenant-gamma", &gamma_pw).is_err()
    });
}

/// A TLS connection as `user`, with the deployment's CA and client pair.
fn tls_client(d: &Deployed, port: u16, user: &str, password: &str) -> redis::RedisResult<redis::Connection> {
    let t = &d.record["tls"];
    let read = |k: &str| std::fs::read(t[k].as_str().expect("tls file")).expect("read tls file");
    let addr = redis::ConnectionAddr::TcpTls { host: "127.0.0.1".into(), port, insecure: false, tls_params: None };
    let info = redis::IntoConnectionInfo::into_connection_info(addr)?
        .set_redis_settings(redis::RedisConnectionInfo::default().set_username(user).set_password(password));
    let certs = redis::TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig { client_cert: read("cert_file"), client_key: read("key_file") }),
        root_cert: Some(read("ca_file")),
    };
    let con = redis::Client::build_with_tls(info, certs)?.get_connection()?;
    con.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(con)
}

/// Sentinel with TLS (the staging preset): the gateway serves TLS with the
/// deployment's certificates and follows the failover.
#[test]
fn a_sentinel_failover_moves_a_running_client_without_it_reconnecting() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let yaml = "extends: staging\ndeployment: { name: gws }\n\
                tenancy: { enabled: true, gateway: true, max_tenants: 3, tenants: [ { id: acme } ] }\n";
    let t = home.dir.path().join("gws.yaml");
    std::fs::write(&t, yaml).expect("write template");
    let d = home.deploy(
        &t,
        &[
            "--set",
            "network.local_base_port=31300",
            "--set",
            "sentinel.down_after=1s",
            "--set",
            "sentinel.failover_timeout=10s",
        ],
    );
    let gw = gateway_port(&d);
    assert!(
        client(gw, "tenant-acme", &password(&d, "tenant-acme")).is_err(),
        "the gateway of a TLS deployment speaks only TLS"
    );
    let mut con = tls_client(&d, gw, "tenant-acme", &password(&d, "tenant-acme")).expect("TLS through the gateway");
    let master = d.data_nodes().into_iter().find(|(n, _)| n.ends_with("-0")).expect("master");
    let (mut ok, mut failed) = (0u64, Vec::new());
    let mut last_ok = 0i64;
    let started = Instant::now();
    let mut killed_at = None;
    let mut back = None;
    let mut held_for = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(60) {
        if killed_at.is_none() && ok >= 50 {
            d.kill(&master.0);
            killed_at = Some(Instant::now());
        }
        let sent = Instant::now();
        match redis::cmd("INCR").arg("tenant:acme:n").query::<i64>(&mut con) {
            Ok(n) => {
                ok += 1;
                last_ok = n;
                // Back after the outage: past commands that failed, or this
                // one held by the gateway until the new master answered
                // (when no command was in flight as the master died).
                let held = sent.elapsed() > Duration::from_millis(500);
                if held {
                    held_for = held_for.max(sent.elapsed());
                }
                if let Some(k) = killed_at
                    && back.is_none()
                    && (!failed.is_empty() || held)
                {
                    back = Some(k.elapsed());
                }
                if back.is_some() && ok > 200 {
                    break;
                }
            }
            Err(e) => failed.push(e.to_string()),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let back = back.expect("the same connection works again after the failover");
    let noreplicas = failed.iter().filter(|e| e.contains("NOREPLICAS")).count();
    report(&format!(
        "sentinel failover through the gateway: the client's connection works again {:.2} s after SIGKILL; \
         meanwhile {} commands got TRYAGAIN from the gateway and {noreplicas} NOREPLICAS from the new master, \
         and the longest command the gateway held took {:.2} s",
        back.as_secs_f64(),
        failed.len() - noreplicas,
        held_for.as_secs_f64(),
    ));
    // The gateway's TRYAGAIN for commands in flight, and Redis's own
    // NOREPLICAS from the new master until a replica follows it (the staging
    // preset sets `min-replicas-to-write`).
    assert!(
        failed.iter().all(|e| e.to_lowercase().contains("tryagain") || e.contains("NOREPLICAS")),
        "failures say to try again: {failed:?}"
    );
    assert!(last_ok > 50, "the counter went on: {last_ok}");
    let status = d.status();
    let new_master = status["sentinel_views"][0]["master"].as_str().expect("a master").to_owned();
    assert_ne!(new_master, format!("127.0.0.1:{}", master.1), "a replica was promoted");
    let new_port: u16 = new_master.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let user = d.record["admin_user"].as_str().expect("admin user").to_owned();
    let admin_pw = std::fs::read_to_string(d.state_dir().join(d.record["admin_password_file"].as_str().expect("file")))
        .expect("admin password");
    let mut direct = tls_client(&d, new_port, &user, admin_pw.trim()).expect("admin on the new master");
    let n: i64 = redis::cmd("GET").arg("tenant:acme:n").query(&mut direct).expect("GET");
    assert_eq!(n, last_ok, "the writes went to the new master");
}

/// `redplate gateway` in the foreground, killed when the test ends.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads until the peer closes (or `limit`); what it sent.
fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

#[test]
fn hostile_clients_get_an_error_or_are_cut_off_and_others_keep_working() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(&home, "gwh", "standalone", false, "    - id: acme\n    - id: beta\n");
    let d = home.deploy(t.as_str(), &["--set", "network.local_base_port=31400"]);
    let gw = 31_490u16;
    let child = home
        .command(
            &[
                "gateway",
                "gwh",
                "--listen",
                &format!("127.0.0.1:{gw}"),
                "--auth-timeout-s",
                "2",
                "--write-timeout-s",
                "2",
                "--max-bulk-mib",
                "1",
            ],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redplate gateway");
    let fg = Foreground(child);
    let pid = fg.0.id();
    wait_until("the gateway listens", Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", gw)).is_ok());
    let mut beta = tenant(&d, gw, "beta");
    let ping_ms = |con: &mut redis::Connection| {
        let t = Instant::now();
        run(con, &["PING"]).expect("PING");
        t.elapsed().as_millis()
    };

    // Malformed RESP and oversized requests: an error, then the connection closes.
    for (what, bytes) in [
        ("a bad multibulk length", b"*x\r\n".to_vec()),
        ("a huge multibulk length", b"*99999999999\r\n".to_vec()),
        ("a bulk over --max-bulk-mib", b"*1\r\n$2000000\r\n".to_vec()),
        ("a bulk without its CRLF", b"*1\r\n$1\r\nabc\r\n".to_vec()),
        ("a missing $", b"*1\r\n+OK\r\n".to_vec()),
        ("an inline line over 64 KiB", vec![b'a'; 70_000]),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", gw)).expect("connect");
        s.write_all(&bytes).expect("send");
        let (got, closed) = read_to_close(&mut s, Duration::from_secs(5));
        let got = text(&got);
        assert!(got.starts_with("-ERR Protocol error"), "{what}: {got:?}");
        assert!(closed, "{what}: the connection is closed after the error");
    }
    // Commands with missing arguments get Redis's own error, not a hang.
    for c in [&["SET"][..], &["SET", "tenant:beta:x"], &["HELLO", "3", "AUTH"], &["SCAN"], &["KEYS"], &["AUTH"]] {
        let e = run(&mut beta, c).expect_err("an error");
        assert!(e.to_string().to_lowercase().contains("wrong number") || e.to_string().contains("yntax"), "{c:?}: {e}");
    }
    assert!(ping_ms(&mut beta) < 1000, "the connection still works");
    // Commands before AUTH are answered, not forwarded.
    let mut s = TcpStream::connect(("127.0.0.1", gw)).expect("connect");
    s.write_all(b"GET tenant:beta:x\r\n*2\r\n$4\r\nAUTH\r\n$5\r\nnopes\r\n").expect("send");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !text(&got).contains("WRONGPASS") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "answered: {}", text(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(text(&got).starts_with("-NOAUTH"), "{}", text(&got));

    // A client that never reads its replies: cut off after --write-timeout-s,
    // without the gateway holding its replies.
    let big = "x".repeat(512 * 1024);
    run(&mut beta, &["SET", "tenant:beta:big", &big]).expect("SET big");
    let mut greedy = TcpStream::connect(("127.0.0.1", gw)).expect("connect");
    let pw = password(&d, "tenant-beta");
    let mut auth = Vec::new();
    write!(auth, "*3\r\n$4\r\nAUTH\r\n$11\r\ntenant-beta\r\n${}\r\n{pw}\r\n", pw.len()).expect("auth");
    greedy.write_all(&auth).expect("auth");
    greedy.set_write_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let get = b"*2\r\n$3\r\nGET\r\n$14\r\ntenant:beta:big\r\n".repeat(2000);
    let _ = greedy.write_all(&get);
    let rss_before = rss_kib(pid);
    std::thread::sleep(Duration::from_secs(4));
    assert!(ping_ms(&mut beta) < 1000, "other clients are served meanwhile");
    let (got, closed) = read_to_close(&mut greedy, Duration::from_secs(20));
    assert!(closed, "the client that does not read is cut off");
    assert!(got.len() < 2000 * 512 * 1024 / 4, "it got only part of the replies: {} bytes", got.len());
    let rss_after = rss_kib(pid);
    report(&format!(
        "a client that never reads: cut off after {} KiB; gateway RSS {rss_before} -> {rss_after} KiB",
        got.len() / 1024
    ));
    assert!(rss_after < 256 * 1024, "the gateway did not hold the replies: {rss_after} KiB");

    // Thousands of idle connections: the others are served; each idle one
    // is told and closed after --auth-timeout-s.
    let idle: Vec<TcpStream> = (0..2000).map(|_| TcpStream::connect(("127.0.0.1", gw)).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = rss_kib(pid);
    let ms = ping_ms(&mut beta);
    report(&format!("2,000 idle connections: gateway RSS {rss_idle} KiB, a tenant's PING {ms} ms"));
    assert!(ms < 1000, "served with 2,000 idle connections open: {ms} ms");
    assert!(rss_idle < 256 * 1024, "{rss_idle} KiB");
    std::thread::sleep(Duration::from_secs(3));
    for mut s in idle.into_iter().step_by(20) {
        let (got, closed) = read_to_close(&mut s, Duration::from_secs(10));
        assert!(closed && text(&got).contains("no AUTH within 2 s"), "{}", text(&got));
    }
    assert!(ping_ms(&mut beta) < 1000);
    drop(fg);

    // `apply` turns the deployment's own gateway on and off.
    let t = template(&home, "gwh", "standalone", true, "    - id: acme\n    - id: beta\n");
    let applied = home.ok(&["apply", "gwh", &t]);
    assert!(applied.contains("started the tenant gateway on port 31409"), "{applied}");
    let mut acme = tenant(&d, 31_409, "acme");
    assert!(ping_ms(&mut acme) < 1000);
    assert_eq!(d.status()["gateway"]["up"], true);
    let t = template(&home, "gwh", "standalone", false, "    - id: acme\n    - id: beta\n");
    let applied = home.ok(&["apply", "gwh", &t]);
    assert!(applied.contains("stopped the tenant gateway"), "{applied}");
    assert!(TcpStream::connect(("127.0.0.1", 31_409)).is_err(), "nothing listens on the gateway port");
    assert!(d.status()["gateway"].is_null());
}

#[test]
fn the_isolation_suite_through_the_gateway_finds_no_escape_and_refuses_nothing_legitimate() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(&home, "gwi", "standalone", true, "    - id: acme\n    - id: beta\n");
    let d = home.deploy(t.as_str(), &["--set", "network.local_base_port=31500"]);
    let gw = gateway_port(&d);
    let mut beta = tenant(&d, gw, "beta");
    for c in [
        &["SET", "tenant:beta:s", "secret"][..],
        &["HSET", "tenant:beta:h", "f", "v"],
        &["RPUSH", "tenant:beta:l", "a"],
        &["SADD", "tenant:beta:set", "m"],
        &["ZADD", "tenant:beta:z", "1", "m"],
        &["XADD", "tenant:beta:x", "*", "f", "v"],
    ] {
        run(&mut beta, c).unwrap_or_else(|e| panic!("beta's own {c:?}: {e}"));
    }
    let mut acme = tenant(&d, gw, "acme");
    run(&mut acme, &["SET", "tenant:acme:s", "mine"]).expect("acme's own key");
    run(&mut acme, &["RPUSH", "tenant:acme:l", "x"]).expect("acme's own list");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('get','tenant:beta:s')")
        .query(&mut acme)
        .expect("SCRIPT LOAD");
    let evalsha: [&str; 3] = ["EVALSHA", &sha, "0"];
    let node = d.data_nodes()[0].1;
    let dbsize = |d: &Deployed| -> i64 { redis::cmd("DBSIZE").query(&mut admin(d, node)).expect("DBSIZE") };
    let before = dbsize(&d);

    let acme_pw = password(&d, "tenant-acme");
    let attacks: Vec<&[&str]> = ATTACKS.iter().copied().chain([&evalsha[..]]).collect();
    let mut escapes = Vec::new();
    for attack in &attacks {
        let mut con = client(gw, "tenant-acme", &acme_pw).expect("connect");
        if let Ok(reply) = run(&mut con, attack) {
            // Through the gateway, SCAN and KEYS answer with the tenant's own keys.
            let listing = matches!(attack[0], "KEYS" | "SCAN");
            let leaked = format!("{reply:?}").contains("beta");
            if !listing || leaked {
                escapes.push(format!("{attack:?} -> {reply:?}"));
            }
        }
    }
    report(&format!("through the gateway: cross-tenant attempts {}, escapes {}", attacks.len(), escapes.len()));
    assert!(attacks.len() >= 50);
    assert!(escapes.is_empty(), "escapes:\n{}", escapes.join("\n"));
    assert_eq!(run(&mut beta, &["GET", "tenant:beta:s"]).ok(), Some(redis::Value::BulkString(b"secret".to_vec())));
    assert_eq!(dbsize(&d), before, "no key was added or removed");

    let subscriber = client(gw, "tenant-acme", &acme_pw).expect("connect");
    let (legit, refused) = own_work(&mut acme, subscriber, &sha);
    report(&format!("through the gateway: legitimate operations {legit}, refused {}", refused.len()));
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}

/// `examples/multi-tenant.yaml` as it is (production preset: Sentinel, TLS,
/// ACL, refresh-ahead) deploys with its gateway, and its tenants work
/// through it with their quotas and the example's key rules.
#[test]
fn the_multi_tenant_example_deploys_with_its_gateway() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(root().join("examples/multi-tenant.yaml"), &["--set", "network.local_base_port=31600"]);
    let gw = gateway_port(&d);
    let status = d.status();
    let g = &status["gateway"];
    assert_eq!((g["up"].as_bool(), g["tls"].as_bool()), (Some(true), Some(true)), "{status}");
    let quotas: Vec<(String, u64, u64)> = g["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let q = |k: &str| t[k].as_u64().unwrap_or_default();
            (t["tenant"].as_str().unwrap_or_default().to_owned(), q("quota_connections"), q("quota_ops_per_second"))
        })
        .collect();
    assert_eq!(
        quotas,
        [("acme".to_owned(), 500, 5000), ("globex".to_owned(), 200, 5000), ("initech".to_owned(), 200, 2000)],
        "the example's quotas"
    );
    let mut acme = tls_client(&d, gw, "tenant-acme", &password(&d, "tenant-acme")).expect("acme through the gateway");
    run(&mut acme, &["SET", "tenant:acme:profile:1", "Ada"]).expect("SET");
    let t = pttl(&mut acme, "tenant:acme:profile:1");
    assert!((3_240_000..=3_960_000).contains(&t), "the example's profile rule: 1 h ± 10 %: {t}");
    run(&mut acme, &["SET", "tenant:acme:feed:1", "x"]).expect("SET");
    let t = pttl(&mut acme, "tenant:acme:feed:1");
    assert!((96_000..=144_000).contains(&t), "the feed rule: 2 min ± 20 %: {t}");
    let listed: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut acme).expect("KEYS");
    assert_eq!(listed.len(), 2, "{listed:?}");
}

/// A raw RESP connection through the gateway, authenticated as `user`.
fn raw(port: u16, user: &str, password: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&resp(&[&["AUTH", user, password]])).expect("AUTH");
    expect_reply(&mut s, b"+OK\r\n", "AUTH");
    s
}

/// Commands in RESP, one after another (a pipeline).
fn resp(commands: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in commands {
        out.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
        for a in *c {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    out
}

/// Reads exactly `want.len()` bytes and asserts they are `want`.
fn expect_reply(s: &mut TcpStream, want: &[u8], what: &str) {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).unwrap_or_else(|e| panic!("{what}: reading {} bytes of replies: {e}", want.len()));
    assert!(got == want, "{what}: replies differ\n got: {:.300}\nwant: {:.300}", text(&got), text(want));
}

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

/// The tenant's connections to the node, from redplate's admin connection.
fn upstream_connections(root_con: &mut redis::Connection, user: &str) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(root_con).expect("CLIENT LIST");
    list.lines().filter(|l| l.split(' ').any(|f| f == format!("user={user}"))).count()
}

#[test]
fn clients_sharing_upstream_connections_each_get_their_own_replies() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(&home, "gwm", "standalone", true, "    - id: acme\n      memory: 160mb\n    - id: beta\n");
    let d = home.deploy(t.as_str(), &["--set", "network.local_base_port=31700"]);
    let gw = gateway_port(&d);
    let pw = password(&d, "tenant-acme");
    let mut root_con = admin(&d, d.data_nodes()[0].1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // Twenty clients, each with its own keys and values, pipelines of 1 to
    // 50 commands (some values of 70 KB, so replies cross reads), errors
    // and missing keys among them: every reply is checked byte for byte.
    let clients: Vec<_> = (0..20)
        .map(|c| {
            let pw = pw.clone();
            let stop = std::sync::Arc::clone(&stop);
            let started = std::sync::Arc::clone(&started);
            std::thread::spawn(move || {
                let mut s = raw(gw, "tenant-acme", &pw);
                let mut rounds = 0u64;
                let mut counter = 0u64;
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64 + 1);
                while rounds < 40 || (rounds < 300 && !stop.load(std::sync::atomic::Ordering::Acquire)) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let n = 1 + (rng % 10) as usize;
                    let (mut cmds, mut want): (Vec<Vec<String>>, String) = (Vec::new(), String::new());
                    for i in 0..n {
                        let key = format!("tenant:acme:mux:{c}:{i}");
                        let size = if (rng >> (i % 32)) & 31 == 0 { 70_000 } else { 8 + i };
                        let value = format!("{c}-{rounds}-{i}-").repeat(size / 8 + 1);
                        counter += 1;
                        cmds.push(vec!["SET".into(), key.clone(), value.clone()]);
                        cmds.push(vec!["GET".into(), key.clone()]);
                        cmds.push(vec!["INCR".into(), format!("tenant:acme:mux:{c}:n")]);
                        cmds.push(vec!["HGET".into(), key.clone(), "f".into()]);
                        cmds.push(vec!["GET".into(), format!("tenant:acme:mux:{c}:missing")]);
                        want += &format!("+OK\r\n{}:{counter}\r\n", bulk(&value));
                        want += "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$-1\r\n";
                    }
                    let refs: Vec<Vec<&str>> = cmds.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
                    let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
                    s.write_all(&resp(&refs)).expect("send a pipeline");
                    expect_reply(&mut s, want.as_bytes(), &format!("client {c}, round {rounds}"));
                    rounds += 1;
                    if rounds == 1 {
                        started.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                rounds
            })
        })
        .collect();
    wait_until("every client has its first replies", Duration::from_secs(20), || {
        started.load(std::sync::atomic::Ordering::Acquire) == 20
    });
    // The connections that proved the clients' passwords at AUTH are closed.
    std::thread::sleep(Duration::from_millis(300));
    let shared = upstream_connections(&mut root_con, "tenant-acme");
    assert!(shared <= 2, "20 clients share the tenant's upstream connections, not one each: {shared} at the node");

    // A client that turns stateful after plain commands, in one write.
    let mut tx = raw(gw, "tenant-acme", &pw);
    let k = "tenant:acme:mux:tx";
    let pipeline =
        resp(&[&["SET", k, "1"], &["GET", k], &["MULTI"], &["INCR", k], &["GET", k], &["EXEC"], &["GET", k]]);
    tx.write_all(&pipeline).expect("send");
    let want = format!("+OK\r\n{}+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:2\r\n{}{}", bulk("1"), bulk("2"), bulk("2"));
    expect_reply(&mut tx, want.as_bytes(), "plain commands, then a transaction");
    tx.write_all(&resp(&[&["WATCH", k], &["GET", k]])).expect("send");
    expect_reply(&mut tx, format!("+OK\r\n{}", bulk("2")).as_bytes(), "WATCH on the session's own connection");
    assert_eq!(upstream_connections(&mut root_con, "tenant-acme"), shared + 1, "the stateful client has its own");

    // A blocking command waits on its own connection: the others go on.
    let blocked = std::thread::spawn({
        let pw = pw.clone();
        move || {
            let mut b = raw(gw, "tenant-acme", &pw);
            b.write_all(&resp(&[&["GET", "tenant:acme:mux:q0"], &["BLPOP", "tenant:acme:mux:q", "10"]])).expect("send");
            let started = Instant::now();
            expect_reply(
                &mut b,
                format!("$-1\r\n*2\r\n{}{}", bulk("tenant:acme:mux:q"), bulk("x")).as_bytes(),
                "BLPOP",
            );
            started.elapsed()
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut other = raw(gw, "tenant-acme", &pw);
    let started = Instant::now();
    for i in 0..50 {
        other.write_all(&resp(&[&["PING", &i.to_string()]])).expect("send");
        expect_reply(&mut other, bulk(&i.to_string()).as_bytes(), "PING while another client blocks");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "50 PINGs beside a BLPOP took {:?}", started.elapsed());
    other.write_all(&resp(&[&["RPUSH", "tenant:acme:mux:q", "x"]])).expect("send");
    expect_reply(&mut other, b":1\r\n", "RPUSH");
    let waited = blocked.join().expect("the blocked client");
    assert!(waited >= Duration::from_millis(400), "BLPOP waited for the push: {waited:?}");

    // Clients that leave with replies in flight (5 MB each, unread), and
    // one of another tenant: the others' replies stay whole and theirs.
    let big = "x".repeat(500_000);
    let mut seed = raw(gw, "tenant-acme", &pw);
    seed.write_all(&resp(&[&["SET", "tenant:acme:mux:big", &big]])).expect("send");
    expect_reply(&mut seed, b"+OK\r\n", "SET big");
    for _ in 0..5 {
        let mut gone = raw(gw, "tenant-acme", &pw);
        let gets: Vec<&[&str]> = (0..10).map(|_| &["GET", "tenant:acme:mux:big"][..]).collect();
        gone.write_all(&resp(&gets)).expect("send");
        drop(gone);
        std::thread::sleep(Duration::from_millis(100));
    }
    let beta_pw = password(&d, "tenant-beta");
    let mut beta = raw(gw, "tenant-beta", &beta_pw);
    beta.write_all(&resp(&[
        &["SET", "tenant:beta:k", "b"],
        &["GET", "tenant:acme:mux:0:0"],
        &["GET", "tenant:beta:k"],
    ]))
    .expect("send");
    let mut head = [0u8; 5];
    beta.read_exact(&mut head).expect("beta's SET");
    assert_eq!(&head, b"+OK\r\n");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        beta.read_exact(&mut byte).expect("beta's GET of acme's key");
        line.push(byte[0]);
    }
    assert!(line.starts_with(b"-NOPERM"), "another tenant's key is refused by Redis's ACL: {}", text(&line));
    expect_reply(&mut beta, bulk("b").as_bytes(), "beta's own key");

    stop.store(true, std::sync::atomic::Ordering::Release);
    let rounds: Vec<u64> = clients.into_iter().map(|c| c.join().expect("a client's replies were all right")).collect();
    report(&format!(
        "20 clients over {shared} shared upstream connection(s): {} pipelines, every reply right",
        rounds.iter().sum::<u64>()
    ));
}
