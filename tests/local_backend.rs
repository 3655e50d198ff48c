//! The local backend with real processes: the `redplate` binary deploys
//! real `redis-server` / `redis-sentinel` / Redis Cluster processes, the test
//! writes and reads through `redis-cli`, kills nodes with SIGKILL and watches
//! failovers, and every deployment is destroyed by a guard, on panic too.
//!
//! Each test has its own `REDPLATE_HOME` and starts its port search in its
//! own range, so the tests run side by side. Without Redis installed the
//! tests fail in CI (`CI=true`) and are skipped, visibly, elsewhere.

mod support;

use serde_json::Value;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{
    Deployed, Home, kill, ours, port_refuses, processes_in, redis_present, report, root, squat, template, wait_for,
};

#[test]
fn development_standalone_deploy_write_read_logs_stop_start_destroy() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/standalone-development.yaml");
    let mut d = home.deploy(&example, &["--set", "network.local_base_port=21000"]);
    let port = d.port("dev-cache-0");
    assert_eq!(d.cli(port, &["SET", "greeting", "hello"]), "OK");
    assert_eq!(d.cli(port, &["GET", "greeting"]), "hello");
    let status = d.status();
    assert_eq!(status["state"], "running");
    assert_eq!(Deployed::node_status(&status, "dev-cache-0")["role"], "master");
    let logs = home.ok(&["logs", "dev-cache", "--node", "dev-cache-0"]);
    assert!(logs.contains("Ready to accept connections"), "{logs}");
    // A log holds what clients and peers sent: `logs` prints it escaped.
    let log = d.state_dir().join("logs/dev-cache-0.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).expect("the node's log");
    file.write_all(b"client sent \x1b]0;pwned\x07\n").expect("append to the log");
    let logs = home.ok(&["logs", "dev-cache", "-n", "5"]);
    assert!(logs.contains("client sent \\u{1b}]0;pwned\\u{7}") && !logs.contains('\x1b'), "{logs}");
    let human = home.ok(&["list"]);
    assert!(human.contains("dev-cache") && human.contains("running"), "{human}");
    // A standalone deployment has no replicas to scale: the user's to fix (exit 1), nothing changed.
    let out = home.run(&["scale", "dev-cache", "--replicas", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("standalone") && err.contains("deployment.mode"), "{err}");
    d.refresh();
    assert_eq!(d.nodes().len(), 1);
    assert_eq!(d.status()["state"], "running");

    // Without persistence (the development preset) stop says, before it
    // stops, that the data goes, and does not claim it is kept.
    let out = home.run(&["stop", "dev-cache"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warned = err.find("warning[stop.data-lost]").unwrap_or_else(|| panic!("no warning: {err}"));
    let stopped = err.find("stopped `dev-cache`").unwrap_or_else(|| panic!("no final line: {err}"));
    assert!(warned < stopped, "the warning comes first: {err}");
    assert!(err.contains("persistence.mode") && err.contains("(data not kept: no persistence)"), "{err}");
    assert!(!err.contains("(data kept)"), "{err}");
    assert!(port_refuses(port), "stopped: the port is closed");
    assert_eq!(d.status()["state"], "stopped");
    home.ok(&["start", "dev-cache", "--quiet"]);
    d.refresh();
    assert_eq!(d.port("dev-cache-0"), port, "restarts reuse the kept ports");
    assert_eq!(d.cli(port, &["PING"]), "PONG");
    assert_eq!(d.cli(port, &["EXISTS", "greeting"]), "0", "the data is gone, as stop said");

    let pid = d.node("dev-cache-0")["pid"].as_u64().expect("pid");
    let state_dir = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    assert!(ours(pid, &state_dir));
    home.ok(&["destroy", "dev-cache", "--quiet"]);
    assert!(!ours(pid, &state_dir) && port_refuses(port), "destroy: process gone, port free");
    assert!(home.records().is_empty(), "destroy forgets the deployment");
    let state = home.dir.path().join("deployments/dev-cache");
    assert!(state.join("redis/dev-cache-0/redis.conf").exists(), "without --purge the state folder stays");
    let again = home.run(&["deploy", example.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1), "leftover data is not silently reused");
    home.ok(&["destroy", "dev-cache", "--purge", "--quiet"]);
    assert!(!state.exists(), "--purge removes the data");
}

#[test]
fn replication_mode_replicas_follow_the_master() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "repl",
        "extends: development\ndeployment: { name: repl, mode: replication }\nreplication: { replicas: 2 }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=21100"]);
    let master = d.port("repl-0");
    d.write_replicated(master, "k", "v", 2);
    for replica in ["repl-1", "repl-2"] {
        let got = d.cli(d.port(replica), &["GET", "k"]);
        if got != "v" {
            let info = d.cli(d.port(replica), &["INFO", "replication"]);
            let logs = home.ok(&["logs", "repl", "-n", "40"]);
            let master_info = d.cli(master, &["INFO", "replication"]);
            let status = d.status();
            panic!("{replica} answered {got:?}\n{info}\nmaster:\n{master_info}\n{status}\n{logs}");
        }
    }
    let status = d.status();
    let r1 = Deployed::node_status(&status, "repl-1");
    assert_eq!(r1["role"], "replica");
    assert_eq!(r1["lag_bytes"], 0, "{status}");

    // A restart-only change without Sentinel: the FAILOVER command moves the
    // master, the other replica is repointed, and a stop/start keeps that tree.
    let out = home.ok(&["apply", "repl", t.to_str().expect("utf-8"), "--set", "performance.databases=4", "--quiet"]);
    assert!(out.contains("repl-0: failed over, restarted as a replica"), "{out}");
    home.ok(&["stop", "repl", "--quiet"]);
    home.ok(&["start", "repl", "--quiet"]);
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    let masters: Vec<&str> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["role"] == "master")
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(masters.len(), 1, "one master after the failover and the restart: {status}");
    assert_ne!(masters[0], "repl-0");
    assert_eq!(d.cli(d.port("repl-2"), &["CONFIG", "GET", "databases"]), "databases\n4");
}

#[test]
fn staging_sentinel_replica_killed_shows_down_and_comes_back() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(home.dir.path(), "stg", "deployment: { name: stg }\n");
    let mut d = home.deploy(&t, &["--preset", "staging", "--set", "network.local_base_port=21200"]);
    assert_eq!(d.nodes().len(), 6, "1 master, 2 replicas, 3 sentinels");
    assert!(d.nodes().iter().all(|n| n["tls"] == true), "staging speaks TLS only (self-signed, made locally)");
    let master = d.port("stg-0");
    d.write_replicated(master, "order:1", "paid", 2);
    assert_eq!(d.cli(d.port("stg-2"), &["GET", "order:1"]), "paid");
    let status = d.status();
    let views: Vec<&Value> = status["sentinel_views"].as_array().expect("views").iter().collect();
    assert_eq!(views.len(), 3);
    assert!(views.iter().all(|v| v["master"] == format!("127.0.0.1:{master}")), "{status}");

    d.kill("stg-1");
    std::thread::sleep(Duration::from_millis(200));
    let status = d.status();
    assert_eq!(Deployed::node_status(&status, "stg-1")["up"], false, "{status}");
    assert_eq!(status["state"], "degraded");
    let started = Instant::now();
    home.ok(&["start", "stg", "--quiet"]);
    report(&format!("staging sentinel: killed replica back and in sync in {:.2} s", started.elapsed().as_secs_f64()));
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(d.cli(d.port("stg-1"), &["GET", "order:1"]), "paid");

    // apply: a setting Redis changes at runtime goes through CONFIG SET + REWRITE…
    let tp = t.to_str().expect("utf-8");
    let out = home.ok(&["apply", "stg", tp, "--set", "memory.maxmemory_policy=allkeys-lfu", "--quiet"]);
    assert!(out.contains("CONFIG SET maxmemory-policy allkeys-lfu") && !out.contains("restart"), "{out}");
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    for n in ["stg-0", "stg-1", "stg-2"] {
        assert_eq!(d.cli(d.port(n), &["CONFIG", "GET", "maxmemory-policy"]), "maxmemory-policy\nallkeys-lfu");
        let conf = std::fs::read_to_string(state.join(format!("redis/{n}/redis.conf"))).expect("conf");
        assert!(conf.contains("maxmemory-policy allkeys-lfu"), "CONFIG REWRITE kept it in {n}'s config");
    }
    // …one it cannot change needs a rolling restart: replicas, failover, old master.
    let started = Instant::now();
    let out = home.ok(&[
        "apply",
        "stg",
        tp,
        "--set",
        "memory.maxmemory_policy=allkeys-lfu",
        "--set",
        "performance.databases=8",
        "--quiet",
    ]);
    report(&format!("staging sentinel: rolling restart by apply in {:.2} s", started.elapsed().as_secs_f64()));
    assert!(out.contains("stg-0: failed over, restarted as a replica"), "{out}");
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(Deployed::node_status(&status, "stg-0")["role"], "replica", "{status}");
    for n in ["stg-0", "stg-1", "stg-2"] {
        assert_eq!(d.cli(d.port(n), &["CONFIG", "GET", "databases"]), "databases\n8", "{n}");
        assert_eq!(d.cli(d.port(n), &["GET", "order:1"]), "paid", "{n} kept the data");
    }
}

#[test]
fn production_sentinel_with_tls_fails_over_when_the_master_is_killed() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/sentinel-production.yaml");
    let mut d = home.deploy(
        &example,
        &[
            "--set",
            "network.local_base_port=21300",
            "--set",
            "sentinel.down_after=1s",
            "--set",
            "sentinel.failover_timeout=10s",
        ],
    );
    let old = d.port("orders-0");
    d.write_replicated(old, "order:42", "shipped", 2);
    assert!(d.cli(old, &["CONFIG", "GET", "tls-port"]).contains(&old.to_string()));

    d.kill("orders-0");
    let took = wait_for(&d, "a replica promoted", Duration::from_secs(60), |s| {
        let views = s["sentinel_views"].as_array().cloned().unwrap_or_default();
        let Some(first) = views.first().and_then(|v| v["master"].as_str()).map(str::to_owned) else { return false };
        let agreed = views.iter().all(|v| v["master"].as_str() == Some(first.as_str()));
        let promoted = s["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["role"] == "master" && n["up"] == true && format!("127.0.0.1:{}", n["port"]) == first);
        agreed && promoted && first != format!("127.0.0.1:{old}")
    });
    report(&format!("sentinel failover (down_after 1s): new master in {:.2} s after SIGKILL", took.as_secs_f64()));
    let status = d.status();
    assert_eq!(Deployed::node_status(&status, "orders-0")["up"], false);
    let new_master = status["sentinel_views"][0]["master"].as_str().expect("master").to_owned();
    let new_port: u16 = new_master.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    assert_eq!(d.cli(new_port, &["GET", "order:42"]), "shipped", "acknowledged and replicated writes survive");

    let started = Instant::now();
    home.ok(&["start", "orders", "--quiet"]);
    report(&format!("sentinel: old master back in {:.2} s", started.elapsed().as_secs_f64()));
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    // One master, the one every sentinel names. (With `down_after 1s` on a
    // busy machine the sentinels may fail over once more, even back to orders-0.)
    let masters: Vec<String> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["role"] == "master")
        .map(|n| format!("127.0.0.1:{}", n["port"]))
        .collect();
    assert_eq!(masters.len(), 1, "{status}");
    let views = status["sentinel_views"].as_array().expect("views");
    assert!(views.iter().all(|v| v["master"] == masters[0].as_str()), "{status}");
    assert_eq!(Deployed::node_status(&status, "orders-0")["up"], true);
}

#[test]
fn production_cluster_3x1_forms_serves_and_promotes_a_replica() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/cluster-production.yaml");
    let mut d = home.deploy(&example, &["--set", "network.local_base_port=21400", "--set", "cluster.node_timeout=1s"]);
    let port = d.port("catalog-0");
    let info = d.cli(port, &["CLUSTER", "INFO"]);
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_slots_assigned:16384"), "{info}");
    for i in 0..30 {
        assert_eq!(d.cli(port, &["-c", "SET", &format!("catalog:item:{i}"), &i.to_string()]), "OK");
    }
    assert_eq!(d.cli(d.port("catalog-2"), &["-c", "GET", "catalog:item:7"]), "7");
    let status = d.status();
    let masters: Vec<Value> =
        status["nodes"].as_array().expect("nodes").iter().filter(|n| n["role"] == "master").cloned().collect();
    assert_eq!(masters.len(), 3, "{status}");
    let slots: Vec<&str> = masters.iter().filter_map(|m| m["slots"].as_str()).collect();
    assert_eq!(slots, ["0-5460", "5461-10922", "10923-16383"], "slots assigned evenly");
    // Replication is asynchronous: let the replicas catch up before a master dies.
    wait_for(&d, "replicas in sync", Duration::from_secs(30), |s| {
        s["nodes"].as_array().into_iter().flatten().filter(|n| n["role"] == "replica").all(|n| n["lag_bytes"] == 0)
    });

    d.kill("catalog-0");
    let took =
        wait_for(&d, "the replica of catalog-0 promoted", Duration::from_secs(60), |s| {
            s["cluster_state"] == "ok"
                && s["nodes"].as_array().into_iter().flatten().any(|n| {
                    n["name"] != "catalog-0" && n["role"] == "master" && n["up"] == true && n["slots"] == "0-5460"
                })
        });
    report(&format!(
        "cluster failover (node_timeout 1s): replica promoted in {:.2} s after SIGKILL",
        took.as_secs_f64()
    ));
    let other = d.port("catalog-1");
    for i in 0..30 {
        assert_eq!(d.cli(other, &["-c", "GET", &format!("catalog:item:{i}")]), i.to_string());
    }
    let started = Instant::now();
    home.ok(&["start", "catalog", "--quiet"]);
    report(&format!("cluster: old master back as a replica in {:.2} s", started.elapsed().as_secs_f64()));
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(Deployed::node_status(&status, "catalog-0")["role"], "replica", "{status}");

    // apply with a restart-only setting: replicas, CLUSTER FAILOVER, old masters.
    let started = Instant::now();
    let out = home.ok(&[
        "apply",
        "catalog",
        example.to_str().expect("utf-8"),
        "--set",
        "performance.io_threads=2",
        "--quiet",
    ]);
    report(&format!("cluster: rolling restart by apply in {:.2} s", started.elapsed().as_secs_f64()));
    assert!(out.contains("restarted (replica)"), "{out}");
    d.refresh();
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["cluster_state"], "ok", "{status}");
    let port = d.port("catalog-1");
    assert_eq!(d.cli(port, &["CONFIG", "GET", "io-threads"]), "io-threads\n2");
    for i in 0..30 {
        assert_eq!(d.cli(port, &["-c", "GET", &format!("catalog:item:{i}")]), i.to_string());
    }
}

/// `SENTINEL MASTER <name>` on a sentinel, as a map.
fn sentinel_master(d: &Deployed, sentinel: &str, name: &str) -> std::collections::HashMap<String, String> {
    let text = d.cli(d.port(sentinel), &["SENTINEL", "MASTER", name]);
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].to_owned(), c[1].to_owned())).collect()
}

/// Whether every sentinel names the master on `port` and lists `replicas` replicas.
fn sentinels_see(d: &Deployed, port: u16, replicas: usize) -> Result<(), String> {
    for s in ["grow-sentinel-0", "grow-sentinel-1", "grow-sentinel-2"] {
        let m = sentinel_master(d, s, "mymaster");
        let seen = (m.get("port").cloned(), m.get("num-slaves").cloned(), m.get("flags").cloned());
        if seen != (Some(port.to_string()), Some(replicas.to_string()), Some("master".into())) {
            return Err(format!("{s} sees {seen:?}"));
        }
    }
    Ok(())
}

#[test]
fn sentinel_scales_one_replica_to_two_and_back_keeping_the_data() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "grow",
        "extends: development\ndeployment: { name: grow, mode: sentinel }\nreplication: { replicas: 1 }\n\
         persistence: { mode: aof }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=22100"]);
    let before: Vec<(String, u64)> = d
        .nodes()
        .iter()
        .map(|n| (n["name"].as_str().unwrap_or_default().to_owned(), n["port"].as_u64().unwrap_or(0)))
        .collect();
    let master = d.port("grow-0");
    for i in 0..100 {
        assert_eq!(d.cli(master, &["SET", &format!("order:{i}"), &i.to_string()]), "OK");
    }
    d.write_replicated(master, "order:last", "paid", 1);

    let started = Instant::now();
    home.ok(&["scale", "grow", "--replicas", "2", "--quiet"]);
    report(&format!(
        "sentinel scale 1 -> 2 replicas: in sync and listed by every sentinel in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    d.refresh();
    let names: Vec<&str> =
        d.record["nodes"].as_array().into_iter().flatten().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["grow-0", "grow-1", "grow-2", "grow-sentinel-0", "grow-sentinel-1", "grow-sentinel-2"]);
    for (name, port) in &before {
        assert_eq!(d.node(name)["port"].as_u64(), Some(*port), "{name} kept its port");
    }
    let new = d.port("grow-2");
    assert_eq!(d.cli(new, &["GET", "order:last"]), "paid", "writes made before the scale are on the new replica");
    assert_eq!(d.cli(new, &["DBSIZE"]), "101");
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    let g2 = Deployed::node_status(&status, "grow-2");
    assert_eq!((g2["role"].as_str(), g2["up"].as_bool()), (Some("replica"), Some(true)), "{status}");
    assert_eq!(g2["master"], format!("127.0.0.1:{master} (link up)"), "{status}");
    let views = status["sentinel_views"].as_array().expect("views");
    assert!(views.iter().all(|v| v["master"] == format!("127.0.0.1:{master}")), "{status}");
    sentinels_see(&d, master, 2).expect("every sentinel lists both replicas");
    d.write_replicated(master, "order:after", "both", 2);

    // The new node set survives a stop and a start.
    home.ok(&["stop", "grow", "--quiet"]);
    home.ok(&["start", "grow", "--quiet"]);
    d.refresh();
    assert_eq!(d.status()["state"], "running");
    assert_eq!(d.cli(d.port("grow-2"), &["GET", "order:after"]), "both");

    // The replica to remove is the master now: scale down hands the role over first.
    // (grow-1 out of the running: once every sentinel has seen that, the failover picks grow-2.)
    assert_eq!(d.cli(d.port("grow-1"), &["CONFIG", "SET", "replica-priority", "0"]), "OK");
    wait_for(&d, "the sentinels to see grow-1's priority", Duration::from_secs(30), |_| {
        ["grow-sentinel-0", "grow-sentinel-1", "grow-sentinel-2"].iter().all(|s| {
            let text = d.cli(d.port(s), &["SENTINEL", "REPLICAS", "mymaster"]);
            let lines: Vec<&str> = text.lines().collect();
            lines.split(|l| *l == "name").any(|r| {
                let at = |k: &str| r.iter().position(|l| *l == k).and_then(|i| r.get(i + 1)).copied();
                at("port") == Some(&*d.port("grow-1").to_string()) && at("slave-priority") == Some("0")
            })
        })
    });
    assert_eq!(d.cli(d.port("grow-sentinel-0"), &["SENTINEL", "FAILOVER", "mymaster"]), "OK");
    wait_for(&d, "grow-2 promoted", Duration::from_secs(60), |s| {
        let views = s["sentinel_views"].as_array().cloned().unwrap_or_default();
        views.iter().all(|v| v["master"] == format!("127.0.0.1:{new}"))
            && Deployed::node_status(s, "grow-2")["role"] == "master"
    });
    assert_eq!(d.cli(d.port("grow-1"), &["CONFIG", "SET", "replica-priority", "100"]), "OK");
    let started = Instant::now();
    home.ok(&["scale", "grow", "--replicas", "1", "--quiet"]);
    report(&format!(
        "sentinel scale 2 -> 1 replica (removing the master, after handing its role over) in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    d.refresh();
    assert_eq!(d.nodes().len(), 5);
    assert!(port_refuses(new), "grow-2 is stopped");
    assert!(
        !state.join("data/grow-2").exists() && !state.join("redis/grow-2").exists(),
        "its data and config are gone"
    );
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    let master: Vec<u16> = ["grow-0", "grow-1"]
        .iter()
        .filter(|n| Deployed::node_status(&status, n)["role"] == "master")
        .map(|n| d.port(n))
        .collect();
    assert_eq!(master.len(), 1, "{status}");
    wait_for(&d, "the sentinels to list one replica", Duration::from_secs(30), |_| {
        sentinels_see(&d, master[0], 1).is_ok()
    });
    for n in ["grow-0", "grow-1"] {
        assert_eq!(d.cli(d.port(n), &["GET", "order:last"]), "paid", "{n}");
        assert_eq!(d.cli(d.port(n), &["GET", "order:after"]), "both", "{n}");
    }
    d.write_replicated(master[0], "order:end", "ok", 1);
}

/// Each master's replicas in `status` (by the master's port), with their links up.
fn replicas_per_master(status: &Value) -> std::collections::BTreeMap<String, usize> {
    let nodes = status["nodes"].as_array().cloned().unwrap_or_default();
    let mut out: std::collections::BTreeMap<String, usize> = nodes
        .iter()
        .filter(|n| n["role"] == "master")
        .map(|n| (format!("127.0.0.1:{} (link up)", n["port"]), 0))
        .collect();
    for n in nodes.iter().filter(|n| n["role"] == "replica") {
        *out.entry(n["master"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    out
}

#[test]
fn production_cluster_scales_3x1_to_3x2_and_back_keeping_the_data() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/cluster-production.yaml");
    let mut d = home.deploy(&example, &["--set", "network.local_base_port=22200"]);
    let port = d.port("catalog-0");
    for i in 0..60 {
        assert_eq!(d.cli(port, &["-c", "SET", &format!("catalog:item:{i}"), &i.to_string()]), "OK");
    }
    let one_each = |s: &Value| {
        let per = replicas_per_master(s);
        per.len() == 3 && per.values().all(|n| *n == 1)
    };
    wait_for(&d, "one replica per master", Duration::from_secs(30), one_each);

    let started = Instant::now();
    home.ok(&["scale", "catalog", "--replicas", "2", "--quiet"]);
    report(&format!(
        "cluster scale 3x1 -> 3x2: joined, in sync, cluster_state:ok in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    d.refresh();
    assert_eq!(d.nodes().len(), 9);
    let status = d.status();
    assert_eq!(status["cluster_state"], "ok", "{status}");
    assert_eq!(status["state"], "running", "{status}");
    let per = replicas_per_master(&status);
    assert!(per.len() == 3 && per.values().all(|n| *n == 2), "every shard has 2 replicas: {per:?}\n{status}");
    // Each new replica serves the shard the topology gives it, with its data.
    for (replica, shard) in [("catalog-6", "catalog-0"), ("catalog-7", "catalog-1"), ("catalog-8", "catalog-2")] {
        let r = Deployed::node_status(&status, replica);
        assert_eq!(r["master"], format!("127.0.0.1:{} (link up)", d.port(shard)), "{replica}: {status}");
        assert_eq!(
            d.cli(d.port(replica), &["DBSIZE"]),
            d.cli(d.port(shard), &["DBSIZE"]),
            "{replica} has its shard's keys"
        );
        let info = d.cli(d.port(replica), &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:9"), "{info}");
    }
    let new = d.port("catalog-7");
    for i in 0..60 {
        assert_eq!(d.cli(new, &["-c", "GET", &format!("catalog:item:{i}")]), i.to_string());
    }

    let started = Instant::now();
    home.ok(&["scale", "catalog", "--replicas", "1", "--quiet"]);
    report(&format!("cluster scale 3x2 -> 3x1: removed and forgotten in {:.2} s", started.elapsed().as_secs_f64()));
    d.refresh();
    assert_eq!(d.nodes().len(), 6);
    assert!(port_refuses(new), "catalog-7 is stopped");
    let status = d.status();
    assert_eq!(status["cluster_state"], "ok", "{status}");
    assert!(one_each(&status), "every shard has 1 replica: {status}");
    for n in ["catalog-0", "catalog-3", "catalog-5"] {
        let info = d.cli(d.port(n), &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_known_nodes:6"), "{n} forgot the removed nodes: {info}");
    }
    for i in 0..60 {
        assert_eq!(d.cli(d.port("catalog-4"), &["-c", "GET", &format!("catalog:item:{i}")]), i.to_string());
    }
}

/// Sends `INCR counter` as fast as acknowledgements come; returns the last
/// acknowledged value and the rate, until `stop` says so or the link breaks.
fn incr_until(port: u16, stop: impl Fn(u64) -> bool) -> (u64, f64) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut acked = 0;
    loop {
        if stop(acked) || writer.write_all(b"INCR counter\r\n").is_err() {
            break;
        }
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => acked = line.trim().trim_start_matches(':').parse().unwrap_or(acked),
            _ => break,
        }
    }
    (acked, acked as f64 / started.elapsed().as_secs_f64().max(0.001))
}

#[test]
fn aof_everysec_loses_at_most_about_a_second_on_sigkill_and_nothing_on_stop() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "aof",
        "extends: development\ndeployment: { name: aof }\n\
         persistence: { mode: aof, appendfsync: everysec }\nmemory: { maxmemory_policy: noeviction }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=21600"]);
    let port = d.port("aof-0");
    assert_eq!(d.cli(port, &["CONFIG", "GET", "appendfsync"]), "appendfsync\neverysec");

    // Stop/start: every acknowledged write is kept.
    let (acked, _) = incr_until(port, |n| n >= 2000);
    let out = home.run(&["stop", "aof"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("(data kept)") && !err.contains("warning"), "{err}");
    home.ok(&["start", "aof", "--quiet"]);
    d.refresh();
    assert_eq!(d.cli(port, &["GET", "counter"]), acked.to_string(), "stop/start loses nothing");

    // SIGKILL while writing: at most about one second of writes is lost.
    let pid = d.node("aof-0")["pid"].as_u64().expect("pid");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        kill(pid);
    });
    let (acked, rate) = incr_until(port, |_| false);
    killer.join().expect("killer");
    let status = d.status();
    assert_eq!(Deployed::node_status(&status, "aof-0")["up"], false, "a SIGKILLed node shows as down");
    home.ok(&["start", "aof", "--quiet"]);
    d.refresh();
    let kept: u64 = d.cli(port, &["GET", "counter"]).parse().expect("a number");
    let lost = acked.saturating_sub(kept);
    let lost_secs = lost as f64 / rate;
    report(&format!(
        "aof everysec: SIGKILL lost {lost} of {acked} acknowledged writes = {lost_secs:.2} s at {rate:.0} writes/s"
    ));
    assert!(kept <= acked + 1, "no invented writes");
    assert!(lost_secs <= 2.0, "lost {lost_secs:.2} s of writes (everysec promises about one)");
}

#[test]
fn two_deployments_side_by_side_do_not_collide() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/standalone-development.yaml");
    let base = ["--set", "network.local_base_port=21700"];
    // Both at once, from the same start port: the registry's locks keep
    // their port choices and records apart.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| home.deploy(&example, &[&["--name", "side-a"][..], &base[..]].concat()));
        let b = s.spawn(|| home.deploy(&example, &[&["--name", "side-b"][..], &base[..]].concat()));
        (a.join().expect("deploy a"), b.join().expect("deploy b"))
    });
    let (pa, pb) = (a.port("side-a-0"), b.port("side-b-0"));
    assert_ne!(pa, pb, "the second deployment found other free ports");
    assert_eq!(a.cli(pa, &["SET", "who", "a"]), "OK");
    assert_eq!(b.cli(pb, &["SET", "who", "b"]), "OK");
    assert_eq!(a.cli(pa, &["GET", "who"]), "a");
    assert_eq!(b.cli(pb, &["GET", "who"]), "b");
    let names: Vec<String> = home.records().iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(names, ["side-a", "side-b"]);
    let dup = home.run(&["deploy", example.to_str().expect("utf-8"), "--name", "side-a"]);
    assert_eq!(dup.status.code(), Some(1), "a taken name is refused");
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    // A registry entry damaged by hand hides nothing else, and can still be destroyed.
    let state_b = PathBuf::from(b.record["state_dir"].as_str().expect("state dir"));
    std::fs::write(state_b.join("deployment.json"), "{broken").expect("damage the entry");
    let out = home.run(&["list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("side-a"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreadable"));
    home.ok(&["destroy", "side-b", "--purge", "--quiet"]);
    assert!(port_refuses(pb) && !state_b.exists(), "side-b's processes found by their folder and stopped");
    assert_eq!(a.cli(pa, &["GET", "who"]), "a", "side-a untouched");
}

#[test]
fn failed_deploys_say_why_and_leave_nothing_behind() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let nothing_left = |home: &Home| {
        assert!(home.records().is_empty(), "nothing registered");
        let dirs: Vec<_> = std::fs::read_dir(home.dir.path().join("deployments"))
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).filter(|n| n != ".locks").collect())
            .unwrap_or_default();
        assert!(dirs.is_empty(), "no state folder left: {dirs:?}");
    };
    // An invalid template: exit 1, pointed at the key.
    let bad = template(home.dir.path(), "bad", "deployment: { name: bad, mode: clusterr }\n");
    let out = home.run(&["deploy", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode"), "{}", String::from_utf8_lossy(&out.stderr));
    nothing_left(&home);

    // redis-server missing: exit 2, named, nothing running or registered.
    let example = root().join("examples/standalone-development.yaml");
    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().display().to_string();
    let out = home.run_env(&["deploy", example.to_str().expect("utf-8")], &[("PATH", &path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("redis-server") && err.contains("not installed"), "{err}");
    nothing_left(&home);

    // The template's ports are taken: the deploy moves to the next free block.
    let listener = std::net::TcpListener::bind(("0.0.0.0", 21800)).expect("occupy 21800");
    let d = home.deploy(&example, &["--set", "network.local_base_port=21800"]);
    let port = d.port("dev-cache-0");
    assert_ne!(port, 21800, "a taken port is skipped");
    assert_eq!(d.cli(port, &["PING"]), "PONG");
    drop(listener);

    // A node that cannot start: the deploy says why and stops the others.
    let t = template(
        home.dir.path(),
        "broken",
        "extends: development\ndeployment: { name: broken, mode: replication }\nreplication: { replicas: 1 }\n",
    );
    let conf_dir = home.dir.path().join("not-a-dir");
    std::fs::write(&conf_dir, "x").expect("write");
    let out = home.run(&[
        "deploy",
        t.to_str().expect("utf-8"),
        "--set",
        "network.local_base_port=21900",
        "--set",
        &format!("network.unix_socket={}/redis.sock", conf_dir.display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exited while starting"), "{err}");
    let names: Vec<String> = home.records().iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(names, ["dev-cache"], "the failed deploy is not registered");
    assert!(port_refuses(21900) && port_refuses(21910), "nothing of it runs");
}

#[test]
fn a_crash_of_redplate_mid_deploy_is_recorded_and_destroy_cleans_up() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "crash",
        "extends: development\ndeployment: { name: crash, mode: sentinel }\nreplication: { replicas: 2 }\n",
    );
    let mut child = home
        .command(&["deploy", t.to_str().expect("utf-8"), "--quiet", "--set", "network.local_base_port=22000"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redplate");
    let state = home.dir.path().join("deployments/crash");
    let running = |state: &Path| {
        let state = state.canonicalize().unwrap_or_else(|_| state.to_owned());
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|pid| ours(*pid, &state))
            .count()
    };
    let started = Instant::now();
    // Crash redplate once the record exists and Redis processes run.
    while !(state.join("deployment.json").exists() && running(&state) > 0) {
        assert!(started.elapsed() < Duration::from_secs(60), "the deploy never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let records = home.records();
    assert_eq!(records.len(), 1, "the crashed deploy is in the registry");
    assert_eq!(records[0]["state"], "deploying");
    let state = state.canonicalize().expect("state folder");
    assert!(running(&state) > 0, "the crash left processes behind");
    home.ok(&["destroy", "crash", "--purge", "--quiet"]);
    assert_eq!(running(&state), 0, "destroy stopped what the crashed deploy had started");
    assert!(!state.exists() && home.records().is_empty());
}

#[test]
fn a_stopped_deployment_keeps_its_ports_and_start_new_ports_moves_it_off_a_taken_one() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "keep",
        "extends: development\ndeployment: { name: keep }\npersistence: { mode: aof }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=22400"]);
    let port = d.port("keep-0");
    assert_eq!(d.cli(port, &["SET", "k", "kept"]), "OK");
    home.ok(&["stop", "keep", "--quiet"]);

    // A new deployment does not take the ports a stopped one keeps…
    let example = root().join("examples/standalone-development.yaml");
    let other = home.deploy(&example, &["--name", "other", "--set", "network.local_base_port=22400"]);
    assert_ne!(other.port("other-0"), port, "the stopped deployment's port stays reserved for it");
    home.ok(&["start", "keep", "--quiet"]);
    assert_eq!(d.cli(port, &["GET", "k"]), "kept");

    // …but another program may take one: start says so and how to move, and leaves nothing running.
    home.ok(&["stop", "keep", "--quiet"]);
    let squatter = squat(port);
    let out = home.run(&["start", "keep"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("deploy.port-taken") && err.contains("`redplate start keep --new-ports`"), "{err}");
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    assert!(processes_in(&state).is_empty(), "nothing of `keep` runs");
    d.refresh();
    assert_eq!(d.record["state"], "stopped");

    home.ok(&["start", "keep", "--new-ports", "--quiet"]);
    d.refresh();
    let moved = d.port("keep-0");
    assert_ne!(moved, port, "moved off the taken port");
    assert_ne!(moved, other.port("other-0"), "and not onto another deployment's");
    assert_eq!(d.cli(moved, &["GET", "k"]), "kept", "the data moved with it");
    assert_eq!(d.status()["state"], "running");
    let conf = std::fs::read_to_string(state.join("redis/keep-0/redis.conf")).expect("conf");
    assert!(conf.lines().any(|l| l == format!("port {moved}")), "{conf}");
    let backup = std::fs::read_to_string(state.join("backup/backup.sh")).expect("backup script");
    assert!(backup.contains(&format!("DEFAULT_REDIS_PORT='{moved}'")), "the scripts name the new port");
    // A new render (with the recorded base port) agrees with the moved files.
    let out = home.ok(&["apply", "keep", t.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(out.trim(), "no change");
    drop(squatter);
}

#[test]
fn start_new_ports_moves_a_sentinel_deployment_and_its_replicas_and_sentinels_follow() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "mv",
        "extends: development\ndeployment: { name: mv, mode: sentinel }\nreplication: { replicas: 1 }\n\
         persistence: { mode: aof }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=22500"]);
    let old: Vec<u16> = d.nodes().iter().map(|n| n["name"].as_str().map(|n| d.port(n)).expect("name")).collect();
    d.write_replicated(d.port("mv-0"), "k", "v", 1);
    home.ok(&["stop", "mv", "--quiet"]);
    let squatter = squat(d.port("mv-sentinel-1"));
    let out = home.run(&["start", "mv"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mv-sentinel-1") && err.contains("--new-ports"), "{err}");

    home.ok(&["start", "mv", "--new-ports", "--quiet"]);
    d.refresh();
    let master = d.port("mv-0");
    assert!(d.nodes().iter().all(|n| !old.contains(&(n["port"].as_u64().unwrap_or(0) as u16))), "every node moved");
    let status = d.status();
    assert_eq!(status["state"], "running", "{status}");
    let views = status["sentinel_views"].as_array().expect("views");
    assert!(views.len() == 3 && views.iter().all(|v| v["master"] == format!("127.0.0.1:{master}")), "{status}");
    assert_eq!(Deployed::node_status(&status, "mv-1")["master"], format!("127.0.0.1:{master} (link up)"), "{status}");
    assert_eq!(d.cli(d.port("mv-1"), &["GET", "k"]), "v");
    d.write_replicated(master, "k2", "v2", 1);
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    for s in ["mv-sentinel-0", "mv-sentinel-1", "mv-sentinel-2"] {
        let conf = std::fs::read_to_string(state.join(format!("sentinel/{s}/sentinel.conf"))).expect("conf");
        assert!(old.iter().all(|p| !conf.contains(&format!("127.0.0.1 {p}"))), "{s} names no old port:\n{conf}");
    }
    let out = home.ok(&["apply", "mv", t.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(out.trim(), "no change");
    drop(squatter);
}

#[test]
fn start_new_ports_moves_a_cluster_whose_nodes_find_each_other_again() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "cmv",
        "extends: development\ndeployment: { name: cmv, mode: cluster }\n\
         cluster: { shards: 3, replicas_per_shard: 1 }\npersistence: { mode: aof }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=22600"]);
    let old: Vec<u16> = d.nodes().iter().map(|n| n["port"].as_u64().unwrap_or(0) as u16).collect();
    for i in 0..30 {
        assert_eq!(d.cli(d.port("cmv-0"), &["-c", "SET", &format!("item:{i}"), &i.to_string()]), "OK");
    }
    home.ok(&["stop", "cmv", "--quiet"]);
    let squatter = squat(d.port("cmv-4"));
    assert_eq!(home.run(&["start", "cmv"]).status.code(), Some(2), "the taken port stops the start");

    home.ok(&["start", "cmv", "--new-ports", "--quiet"]);
    d.refresh();
    let status = d.status();
    assert_eq!((&status["state"], &status["cluster_state"]), (&"running".into(), &"ok".into()), "{status}");
    for n in d.nodes() {
        let port = n["port"].as_u64().expect("port") as u16;
        assert!(!old.contains(&port), "{n}");
        let info = d.cli(port, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6"), "{info}");
        let nodes = d.cli(port, &["CLUSTER", "NODES"]);
        assert!(old.iter().all(|p| !nodes.contains(&format!(":{p}@"))), "no peer at an old address:\n{nodes}");
    }
    for i in 0..30 {
        assert_eq!(d.cli(d.port("cmv-5"), &["-c", "GET", &format!("item:{i}")]), i.to_string());
    }
    drop(squatter);
}

#[test]
fn a_scale_does_not_take_the_ports_a_stopped_deployment_keeps() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "grow",
        "extends: development\ndeployment: { name: grow, mode: replication }\nreplication: { replicas: 1 }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=23000"]);
    // (Where `grow` landed: another program on this machine may hold 23000.)
    let base = d.port("grow-0");
    let example = root().join("examples/standalone-development.yaml");
    let next = home.deploy(&example, &["--name", "next", "--set", &format!("network.local_base_port={base}")]);
    let kept = next.port("next-0");
    assert_eq!(kept, base + 20, "the first block after `grow`'s two nodes");
    home.ok(&["stop", "next", "--quiet"]);
    // `grow-2` would use `next`'s port.
    let out = home.run(&["scale", "grow", "--replicas", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("port {kept}")) && err.contains("`next`"), "{err}");
    d.refresh();
    assert_eq!(d.nodes().len(), 2, "nothing added");
    home.ok(&["start", "next", "--quiet"]);
}

#[test]
fn a_start_that_fails_stops_what_it_started_and_the_registry_says_stopped() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "half",
        "extends: development\ndeployment: { name: half, mode: replication }\nreplication: { replicas: 1 }\n",
    );
    let mut d = home.deploy(&t, &["--set", "network.local_base_port=22700"]);
    home.ok(&["stop", "half", "--quiet"]);
    let state = PathBuf::from(d.record["state_dir"].as_str().expect("state dir"));
    let conf = state.join("redis/half-1/redis.conf");
    let good = std::fs::read_to_string(&conf).expect("conf");
    std::fs::write(&conf, format!("{good}not-a-directive yes\n")).expect("break half-1's config");

    let out = home.run(&["start", "half"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`half-1` exited while starting") && err.contains("not-a-directive"), "{err}");
    assert!(processes_in(&state).is_empty(), "`half-0` was started, then stopped again");
    assert!(port_refuses(d.port("half-0")));
    d.refresh();
    assert_eq!(d.record["state"], "stopped");
    assert!(d.nodes().iter().all(|n| n["pid"].is_null()), "no pid of a process that is gone: {}", d.record);
    assert_eq!(d.status()["state"], "stopped");

    std::fs::write(&conf, good).expect("mend it");
    home.ok(&["start", "half", "--quiet"]);
    d.refresh();
    assert_eq!(d.status()["state"], "running");
}

#[test]
fn deploy_fails_at_once_when_a_node_dies_after_answering_and_leaves_no_secrets_file() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let yaml = |name: &str| {
        format!(
            "extends: development\ndeployment: {{ name: {name}, mode: sentinel }}\nreplication: {{ replicas: 1 }}\n\
             security: {{ password: {{ generate: true }} }}\n"
        )
    };
    // An earlier render made the passwords: a failed deploy keeps them.
    let t = template(home.dir.path(), "dies", &yaml("dies"));
    let rendered = home.dir.path().join("rendered");
    home.ok(&["render", t.to_str().expect("utf-8"), "--target", "local", "--out", rendered.to_str().expect("utf-8")]);
    let secrets = home.dir.path().join("secrets/dies.json");
    let passwords = std::fs::read_to_string(&secrets).expect("render keeps the generated passwords");

    // Destroys what a deploy that unexpectedly succeeded left running.
    let _guard = Deployed { home: &home, name: "dies".into(), record: Value::Null };
    let child = home
        .command(&["deploy", t.to_str().expect("utf-8"), "--set", "network.local_base_port=22800"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redplate");
    // Once every sentinel listens (so every data node has answered), the replica dies.
    let state = home.dir.path().join("deployments/dies");
    let started = Instant::now();
    let victim = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "the deploy never got to its sentinels");
        std::thread::sleep(Duration::from_millis(5));
        let record: Value = std::fs::read(state.join("deployment.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let nodes = record["nodes"].as_array().cloned().unwrap_or_default();
        let listening = nodes
            .iter()
            .filter(|n| n["role"] == "sentinel")
            .all(|n| n["port"].as_u64().is_some_and(|p| !port_refuses(p as u16)));
        let replica = state.join("data/dies-1");
        let pid = processes_in(&state).into_iter().find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| Some(cwd) == replica.canonicalize().ok())
        });
        if let (true, false, Some(pid)) = (listening, nodes.is_empty(), pid) {
            break pid;
        }
    };
    assert!(kill(victim), "the replica was running");
    let out = child.wait_with_output().expect("deploy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("node `dies-1` exited") && err.contains("it had answered"), "{err}");
    // The tail quotes Redis's own log lines (`<pid>:S <date> * …`); how far
    // the replica got before the kill decides which ones.
    assert!(err.contains("its log ends with") && err.contains(":S "), "{err}");
    assert!(!err.contains("not ready after"), "noticed at once, not at the deadline: {err}");
    assert!(!state.exists() && home.records().is_empty(), "nothing of the failed deploy is left");
    assert_eq!(
        std::fs::read_to_string(&secrets).ok().as_deref(),
        Some(passwords.as_str()),
        "the render's passwords stay"
    );

    // A deploy that fails without an earlier render removes the passwords it generated.
    let t = template(home.dir.path(), "gone", &yaml("gone"));
    let not_a_dir = home.dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, "x").expect("write");
    let out = home.run(&[
        "deploy",
        t.to_str().expect("utf-8"),
        "--set",
        "network.local_base_port=22900",
        "--set",
        &format!("network.unix_socket={}/redis.sock", not_a_dir.display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!home.dir.path().join("secrets/gone.json").exists(), "no secrets file left behind");
    assert!(home.records().is_empty());
}

/// A folder holding only `redis-server` and `redis-sentinel` (links to the
/// installed ones), to run redplate with as its whole `PATH`.
fn redis_only_path() -> tempfile::TempDir {
    let bin = tempfile::Builder::new().prefix("redplate-bin-").tempdir().expect("tempdir");
    for program in ["redis-server", "redis-sentinel"] {
        let found = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{program}` on PATH"));
        std::os::unix::fs::symlink(&found, bin.path().join(program)).expect("link");
    }
    for absent in ["redis-cli", "openssl", "kill"] {
        assert!(!bin.path().join(absent).exists());
    }
    bin
}

#[test]
fn deploy_status_scale_apply_and_destroy_spawn_no_redis_cli_openssl_or_kill() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let bin = redis_only_path();
    let path = bin.path().display().to_string();
    let env = [("PATH", path.as_str())];
    let run = |args: &[&str]| {
        let out = home.run_env(args, &env);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "redplate {args:?} without redis-cli, openssl and kill: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status =
        |name: &str| -> Value { serde_json::from_str(&run(&["status", name, "--format", "json"])).expect("json") };
    let guard = |name: &str, record: &str| Deployed {
        home: &home,
        name: name.into(),
        record: serde_json::from_str(record).expect("record"),
    };

    // Standalone: deploy, apply (CONFIG SET), status, stop, start.
    let example = root().join("examples/standalone-development.yaml");
    let e = example.to_str().expect("utf-8");
    let d = guard("dev-cache", &run(&["deploy", e, "--format", "json", "--set", "network.local_base_port=23100"]));
    let out = run(&["apply", "dev-cache", e, "--set", "memory.maxmemory_policy=allkeys-lfu", "--quiet"]);
    assert!(out.contains("CONFIG SET maxmemory-policy allkeys-lfu"), "{out}");
    assert_eq!(d.cli(d.port("dev-cache-0"), &["CONFIG", "GET", "maxmemory-policy"]), "maxmemory-policy\nallkeys-lfu");
    run(&["stop", "dev-cache", "--quiet"]);
    run(&["start", "dev-cache", "--quiet"]);
    assert_eq!(status("dev-cache")["state"], "running");

    // Sentinel with TLS (staging): certificates from the local CA, failover-ready, scaled up.
    let t =
        template(home.dir.path(), "tls", "deployment: { name: tls, mode: sentinel }\nreplication: { replicas: 1 }\n");
    let s = guard(
        "tls",
        &run(&[
            "deploy",
            t.to_str().expect("utf-8"),
            "--preset",
            "staging",
            "--format",
            "json",
            "--set",
            "network.local_base_port=23200",
        ]),
    );
    assert!(s.nodes().iter().all(|n| n["tls"] == true), "every node speaks TLS");
    let ca = std::fs::read_to_string(s.state_dir().join("tls/ca.crt")).expect("the local CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    s.write_replicated(s.port("tls-0"), "k", "v", 1);
    run(&["scale", "tls", "--replicas", "2", "--quiet"]);
    let st = status("tls");
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["nodes"].as_array().map(Vec::len), Some(6), "3 data nodes and 3 sentinels: {st}");
    let views = st["sentinel_views"].as_array().expect("views");
    assert!(views.iter().all(|v| v["master"] == format!("127.0.0.1:{}", s.port("tls-0"))), "{st}");

    // Cluster: formed with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE, then scaled.
    let t = template(
        home.dir.path(),
        "cl",
        "extends: development\ndeployment: { name: cl, mode: cluster }\ncluster: { shards: 3, replicas_per_shard: 1 }\n",
    );
    // Below 22,768: the cluster bus ports (+10,000) stay out of Linux's
    // ephemeral range, where another process's outgoing connection took one.
    let c = guard(
        "cl",
        &run(&["deploy", t.to_str().expect("utf-8"), "--format", "json", "--set", "network.local_base_port=20300"]),
    );
    let st = status("cl");
    assert_eq!((&st["state"], &st["cluster_state"]), (&"running".into(), &"ok".into()), "{st}");
    let slots: Vec<&str> = st["nodes"].as_array().into_iter().flatten().filter_map(|n| n["slots"].as_str()).collect();
    assert_eq!(slots, ["0-5460", "5461-10922", "10923-16383", "-", "-", "-"], "{st}");
    assert_eq!(c.cli(c.port("cl-1"), &["-c", "SET", "k", "v"]), "OK");
    run(&["scale", "cl", "--replicas", "2", "--quiet"]);
    let st = status("cl");
    assert_eq!((st["cluster_state"].as_str(), st["nodes"].as_array().map(Vec::len)), (Some("ok"), Some(9)), "{st}");

    // Destroy stops every process (signals through system calls, not `kill`).
    for dep in [&d, &s, &c] {
        let state = dep.state_dir();
        run(&["destroy", &dep.name, "--purge", "--quiet"]);
        assert!(processes_in(&state).is_empty() && !state.exists(), "{} is gone", dep.name);
    }
    assert!(home.records().is_empty());
}

#[test]
fn exit_codes_follow_one_rule() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let code = |args: &[&str]| {
        let out = home.run(args);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // 2: redplate could not do what was asked — command-line mistakes included.
    for args in [
        &["status", "nosuch"][..],
        &["logs", "nosuch"],
        &["stop", "nosuch"],
        &["start", "nosuch"],
        &["destroy", "nosuch"],
        &["scale", "nosuch", "--replicas", "1"],
        &["export", "nosuch"],
        &["status"],
        &["plugins", "inspect", "nosuch"],
    ] {
        let (got, err) = code(args);
        assert_eq!(got, Some(2), "{args:?}: {err}");
    }
    let (_, err) = code(&["status", "nosuch"]);
    assert!(err.contains("no deployment named `nosuch`") && err.contains("redplate list"), "{err}");

    let example = root().join("examples/standalone-development.yaml");
    let _d = home.deploy(&example, &["--set", "network.local_base_port=23400"]);
    let (got, err) = code(&["logs", "dev-cache", "--node", "nosuch"]);
    assert_eq!(got, Some(2), "an unknown node is a command-line mistake: {err}");
    assert!(err.contains("has no node `nosuch`"), "{err}");
    // 1: the deployment's input cannot work.
    let (got, err) = code(&["scale", "dev-cache", "--replicas", "1"]);
    assert_eq!(got, Some(1), "{err}");
    let bad =
        template(home.dir.path(), "bad", "extends: development\ndeployment: { name: dev-cache, mode: clusterr }\n");
    let (got, err) = code(&["apply", "dev-cache", bad.to_str().expect("utf-8")]);
    assert_eq!(got, Some(1), "{err}");
    let (got, err) = code(&["deploy", example.to_str().expect("utf-8")]);
    assert_eq!(got, Some(1), "a taken name: {err}");
    // 0.
    assert_eq!(code(&["status", "dev-cache"]).0, Some(0));
}

#[test]
fn scale_renders_from_the_stored_template_not_the_users_file() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let yaml = "extends: development\ndeployment: { name: keeper, mode: replication }\nreplication: { replicas: 1 }\n";
    let t = template(home.dir.path(), "keeper", yaml);
    let mut d =
        home.deploy(&t, &["--set", "network.local_base_port=23500", "--set", "memory.maxmemory_policy=allkeys-lfu"]);
    let stored_file = d.state_dir().join("template.json");
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&stored_file).expect("deploy stores the template"))
            .expect("json");
    assert_eq!(stored["memory"]["maxmemory_policy"], "allkeys-lfu", "the resolved config, --sets included");
    assert_eq!(stored["network"]["local_base_port"], d.port("keeper-0"), "and the base port it deployed on");
    let exported: Value = serde_json::from_str(&home.ok(&["export", "keeper"])).expect("export json");
    assert_eq!(exported, stored, "`export <deployment>` prints the stored copy");

    // The user's file moved away, then changed where it was: scale renders from the stored copy.
    std::fs::rename(&t, home.dir.path().join("moved.yaml")).expect("move the template away");
    home.ok(&["scale", "keeper", "--replicas", "2", "--quiet"]);
    std::fs::write(&t, yaml.replace("replication }", "cluster }")).expect("a changed file at the old place");
    home.ok(&["scale", "keeper", "--replicas", "3", "--quiet"]);
    d.refresh();
    assert_eq!(d.data_nodes().len(), 4);
    assert_eq!(d.cli(d.port("keeper-3"), &["CONFIG", "GET", "maxmemory-policy"]), "maxmemory-policy\nallkeys-lfu");
    let exported: Value = serde_json::from_str(&home.ok(&["export", "keeper"])).expect("export json");
    assert_eq!(exported["replication"]["replicas"], 3, "the scale is written to the stored copy");
    assert_eq!(exported["deployment"]["mode"], "replication");
}

#[test]
fn apply_makes_the_file_the_stored_template_and_keeps_tenants_made_at_run_time() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let yaml = "extends: development\ndeployment: { name: shared }\n\
                security: { auth_enabled: true, password: { generate: true } }\n\
                tenancy: { enabled: true, max_tenants: 4, memory_per_tenant: 16mb, tenants: [ { id: beta } ] }\n";
    let t = template(home.dir.path(), "shared", yaml);
    let d = home.deploy(&t, &["--set", "network.local_base_port=23600"]);
    let stored_file = d.state_dir().join("template.json");
    // A tenant made at run time lives in the stored copy only (as `tenant create` writes it).
    let mut stored: Value = serde_json::from_str(&home.ok(&["export", "shared"])).expect("export json");
    stored["tenancy"]["tenants"].as_array_mut().expect("tenants").push(serde_json::json!({ "id": "acme" }));
    std::fs::write(&stored_file, serde_json::to_string_pretty(&stored).expect("json")).expect("write");

    // The template, written before it and changed since, does not remove it.
    let changed = template(home.dir.path(), "changed", &yaml.replace("16mb", "24mb"));
    let out = home.ok(&["apply", "shared", changed.to_str().expect("utf-8")]);
    assert!(out.contains("kept 1 tenant made at run time that the template does not list: acme"), "{out}");
    let users = d.cli(d.port("shared-0"), &["ACL", "USERS"]);
    assert!(users.lines().any(|u| u == "tenant-acme") && users.lines().any(|u| u == "tenant-beta"), "{users}");
    let stored: Value = serde_json::from_str(&home.ok(&["export", "shared"])).expect("export json");
    let ids: Vec<&str> =
        stored["tenancy"]["tenants"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["beta", "acme"], "the new stored copy keeps both");
    assert_eq!(stored["tenancy"]["memory_per_tenant"], "24mb", "and is the new file");

    // A file that turns tenancy off while tenants remain is refused, and changes nothing.
    let off = template(
        home.dir.path(),
        "off",
        "extends: development\ndeployment: { name: shared }\n\
                security: { auth_enabled: true, password: { generate: true } }\n",
    );
    let refused = home.run(&["apply", "shared", off.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("apply.tenants") && err.contains("tenant remove"), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&home.ok(&["export", "shared"])).expect("json"), stored);
}
