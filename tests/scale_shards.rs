//! `redplate scale --shards` and `--memory` against real local deployments:
//! a production cluster (TLS, ACL users: slots move with `MIGRATE … AUTH2`
//! over TLS) goes 3 → 4 → 3 shards with 20,000 keys checked one by one
//! after each step while a client writes and reads back throughout
//! (following `MOVED`/`ASK`); an interrupted run is finished by the next;
//! slots left open by hand are closed; vertical scaling shows in `CONFIG
//! GET` and the stored template; a standalone deployment is refused shards.

mod support;

use redis::Value;
use redplate::client::{ClientError, Endpoint, Node};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Deployed, Home, port_refuses, processes_in, redis_present, report, root, template};

/// CRC16/XMODEM, the hash of Redis Cluster's key slots.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for b in data {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The slot of a key without a hash tag.
fn slot(key: &str) -> u16 {
    crc16(key.as_bytes()) % 16384
}

/// A minimal cluster client: sends each command where it last learned the
/// slot lives, follows `MOVED` (and remembers) and `ASK` (`ASKING` first,
/// on the same connection), and retries while the cluster settles.
struct Cluster {
    rt: tokio::runtime::Runtime,
    base: Endpoint,
    ports: Vec<u16>,
    conns: HashMap<u16, Node>,
    owner: HashMap<u16, u16>,
}

impl Cluster {
    fn new(home: &Home, name: &str) -> Cluster {
        Cluster::at(home.dir.path(), name)
    }

    fn at(home: &std::path::Path, name: &str) -> Cluster {
        let record = redplate::registry::Registry::new(home).load(name).expect("record");
        let data: Vec<_> = redplate::ops::connect::data_endpoints(&record).into_iter().map(|(_, e)| e).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Cluster {
            rt,
            base: data[0].clone(),
            ports: data.iter().map(|e| e.port).collect(),
            conns: HashMap::new(),
            owner: HashMap::new(),
        }
    }

    fn conn(&mut self, port: u16) -> Result<Node, String> {
        if let Some(n) = self.conns.get(&port) {
            return Ok(n.clone());
        }
        let ep = self.base.at(format!("port {port}"), "127.0.0.1".into(), port);
        let node = self.rt.block_on(Node::connect(&ep)).map_err(|e| e.to_string())?;
        self.conns.insert(port, node.clone());
        Ok(node)
    }

    fn call(&mut self, args: &[&str]) -> Result<Value, String> {
        let s = slot(args[1]);
        let mut port = self.owner.get(&s).copied().unwrap_or(self.ports[0]);
        let mut asking = false;
        let mut last = String::new();
        for attempt in 0..100 {
            let node = match self.conn(port) {
                Ok(n) => n,
                Err(e) => {
                    // A node that went (scale-in): ask another.
                    last = e;
                    self.owner.remove(&s);
                    port = self.ports[attempt % self.ports.len()];
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            let answer = self.rt.block_on(async {
                if asking {
                    node.call(&["ASKING"]).await?;
                }
                node.call(args).await
            });
            match answer {
                Ok(v) => {
                    if !asking {
                        self.owner.insert(s, port);
                    }
                    return Ok(v);
                }
                Err(ClientError::Reply { message, .. }) => {
                    let to = message.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                    last = message.clone();
                    match (message.split_whitespace().next(), to) {
                        (Some("MOVED"), Some(p)) => {
                            self.owner.insert(s, p);
                            (port, asking) = (p, false);
                        }
                        (Some("ASK"), Some(p)) => (port, asking) = (p, true),
                        (Some("TRYAGAIN" | "CLUSTERDOWN" | "LOADING"), _) => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => return Err(message),
                    }
                }
                Err(e) => {
                    last = e.to_string();
                    self.conns.remove(&port);
                    self.owner.remove(&s);
                    port = self.ports[attempt % self.ports.len()];
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(format!("gave up on {args:?}: {last}"))
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match self.call(&["SET", key, value])? {
            Value::Okay => Ok(()),
            other => Err(format!("SET {key}: {other:?}")),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.call(&["GET", key])? {
            Value::Nil => Ok(None),
            Value::BulkString(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            other => Err(format!("GET {key}: {other:?}")),
        }
    }
}

/// Every key `k:<i>` reads back as `v<i>`.
fn check_keys(c: &mut Cluster, count: usize, when: &str) {
    let started = Instant::now();
    for i in 0..count {
        let got = c.get(&format!("k:{i}")).unwrap_or_else(|e| panic!("{when}: GET k:{i}: {e}"));
        assert_eq!(got.as_deref(), Some(format!("v{i}").as_str()), "{when}: key k:{i}");
    }
    report(&format!("{when}: {count} keys read back one by one in {:.1} s", started.elapsed().as_secs_f64()));
}

/// A client writing `w:<n>` and reading it back as fast as it can until
/// stopped; returns (writes acknowledged, failures).
fn writer(
    home_dir: std::path::PathBuf,
    name: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let mut c = Cluster::at(&home_dir, &name);
        let (mut n, mut failures) = (0u64, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let (key, value) = (format!("w:{n}"), format!("x{n}"));
            if let Err(e) = c.set(&key, &value) {
                failures.push(format!("SET {key}: {e}"));
            } else {
                match c.get(&key) {
                    Ok(Some(v)) if v == value => {}
                    other => failures.push(format!("GET {key} right after SET: {other:?}")),
                }
            }
            n += 1;
        }
        (n, failures)
    })
}

/// Every data node's own view: no slot open, and each master's slot count.
fn slots_per_master(d: &Deployed) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (name, port) in d.data_nodes() {
        let nodes = d.cli(port, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains("->-") && !nodes.contains("-<-"), "{name} shows an open slot:\n{nodes}");
        let me = nodes.lines().find(|l| l.contains("myself")).expect("a myself line").to_owned();
        let f: Vec<&str> = me.split_whitespace().collect();
        if !f[2].contains("master") {
            continue;
        }
        let count = f[8..]
            .iter()
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().expect("slot") - a.parse::<usize>().expect("slot") + 1,
                None => 1,
            })
            .sum();
        out.insert(name, count);
    }
    out
}

fn even(slots: &BTreeMap<String, usize>, masters: usize, when: &str) {
    assert_eq!(slots.len(), masters, "{when}: masters {slots:?}");
    assert_eq!(slots.values().sum::<usize>(), 16384, "{when}: every slot served once {slots:?}");
    let (max, min) = (slots.values().max().copied().unwrap_or(0), slots.values().min().copied().unwrap_or(0));
    assert!(max - min <= 1, "{when}: slots even {slots:?}");
}

fn scale(home: &Home, name: &str, shards: &str) -> (Json, f64) {
    let started = Instant::now();
    let out = home.ok(&["scale", name, "--shards", shards, "--format", "json", "--quiet"]);
    (serde_json::from_str(&out).expect("scale json"), started.elapsed().as_secs_f64())
}

fn exported_shards(home: &Home, name: &str) -> u64 {
    let export: Json = serde_json::from_str(&home.ok(&["export", name])).expect("export json");
    export["cluster"]["shards"].as_u64().expect("cluster.shards")
}

#[test]
fn production_cluster_goes_3_4_3_shards_keeping_every_key_while_a_client_writes() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/cluster-production.yaml");
    let mut d = home
        .deploy(&example, &["--set", "network.local_base_port=28400", "--set", "network.cluster_bus_port_offset=1000"]);
    let mut c = Cluster::new(&home, "catalog");
    let keys = 20_000;
    let started = Instant::now();
    for i in 0..keys {
        c.set(&format!("k:{i}"), &format!("v{i}")).unwrap_or_else(|e| panic!("load k:{i}: {e}"));
    }
    report(&format!("loaded {keys} keys in {:.1} s", started.elapsed().as_secs_f64()));
    even(&slots_per_master(&d), 3, "deployed");

    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(home.dir.path().to_owned(), "catalog".into(), stop.clone());

    let (up, took) = scale(&home, "catalog", "4");
    report(&format!("3 -> 4 shards: {} slots, {} keys moved in {took:.1} s", up["slots_moved"], up["keys_moved"]));
    assert_eq!((up["from_shards"].as_u64(), up["to_shards"].as_u64()), (Some(3), Some(4)), "{up}");
    assert!(up["slots_moved"].as_u64().unwrap_or(0) >= 4095, "a quarter of the slots moved: {up}");
    d.refresh();
    assert_eq!(d.data_nodes().len(), 8, "4 masters and their replicas");
    assert_eq!(d.status()["cluster_state"], "ok");
    even(&slots_per_master(&d), 4, "after 3 -> 4");
    assert_eq!(exported_shards(&home, "catalog"), 4, "the stored template records 4 shards");
    check_keys(&mut c, keys, "after 3 -> 4");

    let (down, took) = scale(&home, "catalog", "3");
    report(&format!("4 -> 3 shards: {} slots, {} keys moved in {took:.1} s", down["slots_moved"], down["keys_moved"]));
    d.refresh();
    assert_eq!(d.data_nodes().len(), 6);
    assert_eq!(d.status()["cluster_state"], "ok");
    let slots = slots_per_master(&d);
    even(&slots, 3, "after 4 -> 3");
    assert!(!slots.contains_key("catalog-7"), "the fourth shard's nodes are gone: {slots:?}");
    assert_eq!(exported_shards(&home, "catalog"), 3);
    check_keys(&mut c, keys, "after 4 -> 3");

    stop.store(true, Ordering::Relaxed);
    let (written, failures) = w.join().expect("writer thread");
    assert!(
        failures.is_empty(),
        "{} of {written} writes failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(written > 100, "the client wrote throughout ({written} writes)");
    for n in 0..written {
        assert_eq!(c.get(&format!("w:{n}")).expect("GET"), Some(format!("x{n}")), "write w:{n} kept");
    }
    report(&format!("client wrote and read back {written} keys during both scales, 0 lost"));
}

#[test]
fn an_interrupted_run_and_slots_left_open_by_hand_are_finished_by_the_next_run() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "mig",
        "extends: development\ndeployment: { name: mig, mode: cluster }\n\
         cluster: { shards: 3, replicas_per_shard: 0 }\nnetwork: { local_base_port: 28600, cluster_bus_port_offset: 1000 }\n",
    );
    let mut d = home.deploy(&t, &[]);
    let mut c = Cluster::new(&home, "mig");
    let keys = 5_000;
    for i in 0..keys {
        c.set(&format!("k:{i}"), &format!("v{i}")).expect("load");
    }
    // A big key (a hash of 100,000 fields, about 4 MB) in a slot the new shard takes moves whole too.
    let big = (0..).map(|n| format!("big:{n}")).find(|k| (4300..5300).contains(&slot(k))).expect("a name");
    let fields: Vec<String> = (0..100_000).flat_map(|i| [format!("f{i}"), format!("value-{i:08}")]).collect();
    let mut hset: Vec<&str> = vec!["HSET", &big];
    hset.extend(fields.iter().map(String::as_str));
    assert_eq!(c.call(&hset).expect("HSET"), Value::Int(100_000));

    // Interrupted for real: killed while slots move (the journal says so).
    let journal = d.state_dir().join("scale-shards.json");
    let mut run = home.command(&["scale", "mig", "--shards", "4", "--quiet"], &[]).spawn().expect("scale");
    let started = Instant::now();
    loop {
        let phase = std::fs::read_to_string(&journal).unwrap_or_default();
        if phase.contains("\"slots\"") {
            std::thread::sleep(Duration::from_millis(300));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the run never reached the slot moves");
        assert!(run.try_wait().expect("wait").is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(10));
    }
    run.kill().expect("kill");
    let _ = run.wait();
    assert!(journal.exists(), "an interrupted run leaves its journal");
    assert_eq!(exported_shards(&home, "mig"), 3, "not recorded before it is done");

    // And by hand: one slot half moved (one key on the target), one only MIGRATING.
    d.refresh();
    let id = |port: u16| d.cli(port, &["CLUSTER", "MYID"]);
    let owner_of = |s: u16| -> u16 {
        d.data_nodes()
            .iter()
            .map(|(_, p)| *p)
            .find(|p| d.cli(*p, &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()]) != "0")
            .expect("an owner with keys")
    };
    let (k1, k2) = ("k:1", "k:2");
    let (s1, s2) = (slot(k1), slot(k2));
    let (a, b) = (owner_of(s1), owner_of(s2));
    let other = d.data_nodes().iter().map(|(_, p)| *p).find(|p| *p != a).expect("another master");
    let other_is_master = d.cli(other, &["ROLE"]).starts_with("master");
    assert!(other_is_master);
    assert_eq!(d.cli(other, &["CLUSTER", "SETSLOT", &s1.to_string(), "IMPORTING", &id(a)]), "OK");
    assert_eq!(d.cli(a, &["CLUSTER", "SETSLOT", &s1.to_string(), "MIGRATING", &id(other)]), "OK");
    assert_eq!(d.cli(a, &["MIGRATE", "127.0.0.1", &other.to_string(), k1, "0", "5000"]), "OK");
    if s2 != s1 {
        let target = d.data_nodes().iter().map(|(_, p)| *p).find(|p| *p != b).expect("another master");
        assert_eq!(d.cli(b, &["CLUSTER", "SETSLOT", &s2.to_string(), "MIGRATING", &id(target)]), "OK");
    }
    let open: usize = d.data_nodes().iter().map(|(_, p)| d.cli(*p, &["CLUSTER", "NODES"]).matches("->-").count()).sum();
    assert!(open >= 1, "slots are open before the rerun");

    let out = home.ok(&["scale", "mig", "--shards", "4"]);
    report(&format!("rerun after an interrupted run:\n{out}"));
    assert!(out.contains("finished an interrupted scale from 3 to 4 shards"), "{out}");
    assert!(out.contains(&format!("slot {s1}: finished its move")), "the half-moved slot is finished: {out}");
    assert!(!journal.exists(), "the journal goes once the run is done");
    d.refresh();
    even(&slots_per_master(&d), 4, "after the rerun");
    assert_eq!(exported_shards(&home, "mig"), 4);
    check_keys(&mut c, keys, "after the rerun");
    assert_eq!(d.cli(d.port("mig-3"), &["EXISTS", &big]), "1", "the big key moved to the new shard");
    assert_eq!(c.call(&["HLEN", &big]).expect("HLEN"), Value::Int(100_000), "the big key is whole");
    assert_eq!(c.call(&["HGET", &big, "f99999"]).expect("HGET"), Value::BulkString(b"value-00099999".to_vec()));
}

#[test]
fn a_run_killed_while_nodes_start_is_finished_by_the_next_run() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "kill",
        "extends: development\ndeployment: { name: kill, mode: cluster }\n\
         cluster: { shards: 3, replicas_per_shard: 1 }\nnetwork: { local_base_port: 28200, cluster_bus_port_offset: 1000 }\n",
    );
    let mut d = home.deploy(&t, &[]);
    let mut c = Cluster::new(&home, "kill");
    let keys = 3_000;
    for i in 0..keys {
        c.set(&format!("k:{i}"), &format!("v{i}")).expect("load");
    }
    // 4 shards give `kill-3` (shard 0's replica) the master role of shard
    // 3, and add `kill-6`/`kill-7`: killed once the new nodes' processes
    // listen and before the run records them (or, at the latest, as slots move).
    let journal = d.state_dir().join("scale-shards.json");
    let newest = 28270;
    let mut run = home.command(&["scale", "kill", "--shards", "4", "--quiet"], &[]).spawn().expect("scale");
    let started = Instant::now();
    while port_refuses(newest) && !std::fs::read_to_string(&journal).unwrap_or_default().contains("\"slots\"") {
        assert!(started.elapsed() < Duration::from_secs(60), "the run never started the new nodes");
        assert!(run.try_wait().expect("wait").is_none(), "the run ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.kill().expect("kill");
    let _ = run.wait();
    let phase = std::fs::read_to_string(&journal).unwrap_or_default();
    report(&format!("killed at: {phase}"));

    let out = home.ok(&["scale", "kill", "--shards", "4"]);
    report(&format!("rerun:\n{out}"));
    // Killed after the journal was written, the rerun finishes that scale;
    // killed before (a loaded machine can stretch the moment between the new
    // nodes listening and the journal), it scales afresh over what was
    // started. Either way the end state below must hold.
    if phase.is_empty() {
        assert!(out.contains("scaled `kill` from 3 to 4 shards"), "{out}");
    } else {
        assert!(out.contains("finished an interrupted scale from 3 to 4 shards"), "{out}");
    }
    d.refresh();
    assert_eq!(d.data_nodes().len(), 8, "{:?}", d.data_nodes());
    assert_eq!(processes_in(&d.state_dir()).len(), 8, "no process left over, none missing");
    assert_eq!(d.status()["cluster_state"], "ok");
    for (name, port) in d.data_nodes() {
        let info = d.cli(port, &["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_known_nodes:8"), "{name} knows exactly the 8 nodes: {info}");
    }
    even(&slots_per_master(&d), 4, "after the rerun");
    check_keys(&mut c, keys, "after the rerun");
}

#[test]
fn vertical_scale_shows_in_config_get_and_the_stored_template_and_standalone_has_no_shards() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "solo",
        "extends: development\ndeployment: { name: solo, mode: standalone }\nnetwork: { local_base_port: 28800 }\n",
    );
    let d = home.deploy(&t, &[]);
    let port = d.port("solo-0");
    let before = d.cli(port, &["CONFIG", "GET", "maxmemory"]);

    let out = home.ok(&["scale", "solo", "--memory", "512mb", "--format", "json"]);
    let resized: Json = serde_json::from_str(&out).expect("json");
    let limit = resized["maxmemory"].as_u64().expect("a limit");
    let export: Json = serde_json::from_str(&home.ok(&["export", "solo"])).expect("export");
    assert_eq!(export["resources"]["memory"], "512mb", "the stored template has the new size");
    let pct: u64 =
        export["memory"]["maxmemory"].as_str().and_then(|p| p.trim_end_matches('%').parse().ok()).expect("a %");
    assert_eq!(limit, (512u64 << 20) / 100 * pct, "maxmemory follows the template's percentage");
    assert_eq!(d.cli(port, &["CONFIG", "GET", "maxmemory"]), format!("maxmemory\n{limit}"), "was {before}");
    let pid = d.node("solo-0")["pid"].clone();
    assert!(d.cli(port, &["INFO", "server"]).contains(&format!("process_id:{pid}")), "no restart");

    // Below what the node uses now: refused, nothing changed.
    let low = home.run(&["scale", "solo", "--memory", "1kb"]);
    let err = support::text(&low.stderr);
    assert_eq!(low.status.code(), Some(1), "{err}");
    assert!(err.contains("scale.memory-below-use") && err.contains("used_memory"), "{err}");
    assert_eq!(d.cli(port, &["CONFIG", "GET", "maxmemory"]), format!("maxmemory\n{limit}"));

    let shards = home.run(&["scale", "solo", "--shards", "4"]);
    let err = support::text(&shards.stderr);
    assert_eq!(shards.status.code(), Some(1), "{err}");
    assert!(err.contains("only a cluster has shards"), "{err}");
}
