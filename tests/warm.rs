//! Cache warming with real processes: `redplate warm` loads JSONL and CSV
//! files (malformed lines reported with their line numbers, the rest
//! loaded) and another Redis into a deployment with a replica and a
//! cache-aside strategy; every type arrives with its values, keys without a
//! TTL get the matching key rule's TTL with the strategy's jitter, explicit
//! TTLs are kept, `--tenant` writes under the tenant's prefix, and a load
//! killed half-way is finished by a second run without writing a key twice,
//! a load stops before it pushes a master past 90 % of `maxmemory`, and in
//! a cluster each key reaches the master serving its slot.

mod support;

use serde_json::Value;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Deployed, Home, redis_present, text};

const SESSION_TTL: i64 = 30 * 60 * 1000;
const DEFAULT_TTL: i64 = 10 * 60 * 1000;

/// A master, one replica, cache-aside with key rules (±10 % jitter),
/// and tenancy with one tenant `beta`.
fn deploy<'a>(home: &'a Home, name: &str) -> Deployed<'a> {
    let yaml = format!(
        "extends: development\n\
         deployment: {{ name: {name}, mode: replication }}\n\
         replication: {{ replicas: 1 }}\n\
         tenancy:\n  enabled: true\n  max_tenants: 4\n  memory_per_tenant: 32mb\n  tenants:\n    - id: beta\n\
         cache:\n  strategy: cache-aside\n  default_ttl: 10m\n  jitter_percent: 10\n  patterns:\n    \
         - {{ pattern: \"session:*\", ttl: 30m }}\n    - {{ pattern: \"tenant:*:session:*\", ttl: 30m }}\n    \
         - {{ pattern: \"perm:*\", ttl: 0s }}\n"
    );
    let path = support::template(home.dir.path(), name, &yaml);
    home.deploy(&path, &[])
}

fn file(home: &Home, name: &str, content: &str) -> String {
    let p = home.dir.path().join(name);
    std::fs::write(&p, content).expect("write input");
    p.display().to_string()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// `redplate warm …` with the exit code it must end with; its JSON summary.
fn warm(home: &Home, args: &[&str], code: i32) -> (Value, String) {
    let mut all = vec!["warm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = home.run(&all);
    assert_eq!(out.status.code(), Some(code), "warm {args:?}:\n{}{}", text(&out.stdout), text(&out.stderr));
    (json(&text(&out.stdout)), text(&out.stderr))
}

fn pttl(d: &Deployed, port: u16, key: &str) -> i64 {
    d.cli(port, &["PTTL", key]).parse().unwrap_or_else(|_| panic!("PTTL {key}"))
}

fn assert_ttl_within(d: &Deployed, port: u16, key: &str, base: i64) {
    let t = pttl(d, port, key);
    // Jitter ±10 %, and up to a minute spent since the write.
    assert!(t > base * 9 / 10 - 60_000 && t <= base * 11 / 10, "{key}: PTTL {t} not within {base} ± 10 %");
}

const JSONL: &str = r#"{"key":"session:1","value":"s1"}
{"key":"session:2","value":"s2"}
{"key":"session:3","value":"s3"}
{"key":"s:str","type":"string","value":"v","ttl_ms":120000}
{"key":"s:hash","value":{"a":"1","b":2}}
not json at all
{"key":"s:set","type":"set","value":["x","y","z"]}
{"key":"s:list","type":"list","value":["b","a","b"]}

{"key":"s:zset","type":"zset","value":[["m",1.5],["n",2]]}
{"key":"s:zobj","type":"zset","value":{"p":3}}
{"key":"s:bad","type":"set","value":[]}
{"key":"perm:1","value":"forever"}
{"value":"no key"}
"#;

#[test]
fn jsonl_and_csv_load_every_type_with_the_strategys_ttls_and_report_bad_lines() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = deploy(&home, "warmfiles");
    let master = d.port("warmfiles-0");
    let replica = d.port("warmfiles-1");
    let syncs_before = d.cli(master, &["INFO", "stats"]);

    let input = file(&home, "keys.jsonl", JSONL);
    let (summary, _) = warm(&home, &["warmfiles", "--from", &input], 1);
    assert_eq!(summary["written"], 10, "{summary:#}");
    assert_eq!(summary["failed"], 3);
    let failures: Vec<(u64, String)> = summary["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| (f["line"].as_u64().expect("line"), f["reason"].as_str().expect("reason").to_owned()))
        .collect();
    assert_eq!(failures.iter().map(|f| f.0).collect::<Vec<_>>(), [6, 12, 14], "{failures:?}");
    assert!(failures[0].1.starts_with("not JSON"), "{failures:?}");
    assert!(failures[1].1.contains("empty set"), "{failures:?}");
    assert!(failures[2].1.contains("no `key`"), "{failures:?}");
    assert_eq!((summary["ttl_from_source"].as_u64(), summary["no_ttl"].as_u64()), (Some(1), Some(1)));
    assert_eq!(summary["ttl_from_strategy"], 8);
    assert_eq!(summary["full_resyncs"], 0);
    assert_eq!(summary["complete"], true);

    // Every type, with its values.
    assert_eq!(d.cli(master, &["GET", "session:1"]), "s1");
    assert_eq!(d.cli(master, &["HGETALL", "s:hash"]), "a\n1\nb\n2");
    assert_eq!(d.cli(master, &["SORT", "s:set", "ALPHA"]), "x\ny\nz");
    assert_eq!(d.cli(master, &["LRANGE", "s:list", "0", "-1"]), "b\na\nb");
    assert_eq!(d.cli(master, &["ZRANGE", "s:zset", "0", "-1", "WITHSCORES"]), "m\n1.5\nn\n2");
    assert_eq!(d.cli(master, &["ZSCORE", "s:zobj", "p"]), "3");
    assert_eq!(d.cli(master, &["EXISTS", "s:bad"]), "0");
    // TTLs: the rule's with jitter, the source's kept, none where the rule has none.
    for k in ["session:1", "session:2", "session:3"] {
        assert_ttl_within(&d, master, k, SESSION_TTL);
    }
    let sessions: Vec<i64> = ["session:1", "session:2", "session:3"].iter().map(|k| pttl(&d, master, k)).collect();
    let spread = sessions.iter().max().unwrap_or(&0) - sessions.iter().min().unwrap_or(&0);
    assert!(spread > 1_000, "the jitter spreads the TTLs: {sessions:?}");
    for k in ["s:hash", "s:set", "s:list", "s:zset", "s:zobj"] {
        assert_ttl_within(&d, master, k, DEFAULT_TTL);
    }
    let explicit = pttl(&d, master, "s:str");
    assert!(explicit > 60_000 && explicit <= 120_000, "explicit TTL kept: {explicit}");
    assert_eq!(pttl(&d, master, "perm:1"), -1);
    // The replica has them, and was never fully resynced.
    assert_eq!(d.cli(master, &["WAIT", "1", "5000"]), "1");
    assert_eq!(d.cli(replica, &["HGET", "s:hash", "b"]), "2");
    let full = |info: &str| info.lines().find(|l| l.starts_with("sync_full:")).map(str::to_owned);
    assert_eq!(full(&d.cli(master, &["INFO", "stats"])), full(&syncs_before));

    // CSV: header, RFC 4180 quoting across lines, malformed records; human output names the lines.
    let csv = "key,value,ttl_ms\ncsv:1,plain,\n\"csv:2\",\"a, \"\"quoted\"\"\nvalue\",90000\ncsv:3\n\
               csv:4,x,soon\ncsv:5,a\"b\nsession:csv,s,\n";
    let input = file(&home, "keys.csv", csv);
    let out = home.run(&["warm", "warmfiles", "--from", &input]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    for expected in ["line 5: 1 fields", "line 6 `csv:4`: ttl_ms `soon`", "line 7: a quote inside"] {
        assert!(stderr.contains(expected), "`{expected}` in:\n{stderr}");
    }
    assert!(text(&out.stdout).contains("3 keys written, 3 failed"), "{}", text(&out.stdout));
    assert_eq!(d.cli(master, &["GET", "csv:2"]), "a, \"quoted\"\nvalue");
    let t = pttl(&d, master, "csv:2");
    assert!(t > 30_000 && t <= 90_000, "explicit CSV TTL: {t}");
    assert_ttl_within(&d, master, "csv:1", DEFAULT_TTL);
    assert_ttl_within(&d, master, "session:csv", SESSION_TTL);

    // --tenant: under the tenant's prefix (rules match the stored key); an unknown tenant is refused.
    let input =
        file(&home, "tenant.jsonl", "{\"key\":\"session:9\",\"value\":\"t\"}\n{\"key\":\"k\",\"value\":\"u\"}\n");
    let (summary, _) = warm(&home, &["warmfiles", "--from", &input, "--tenant", "beta"], 0);
    assert_eq!((summary["written"].as_u64(), summary["prefix"].as_str()), (Some(2), Some("tenant:beta:")));
    assert_eq!(d.cli(master, &["GET", "tenant:beta:session:9"]), "t");
    assert_eq!(d.cli(master, &["EXISTS", "session:9", "k"]), "0");
    assert_ttl_within(&d, master, "tenant:beta:session:9", SESSION_TTL);
    assert_ttl_within(&d, master, "tenant:beta:k", DEFAULT_TTL);
    let out = home.run(&["warm", "warmfiles", "--from", &input, "--tenant", "gamma"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has no tenant `gamma`"), "{}", text(&out.stderr));
}

/// Polls the checkpoint until it records at least `lines` lines done.
fn wait_for_checkpoint(d: &Deployed, child: &mut Child, lines: u64) {
    let path = d.state_dir().join("warm-checkpoint.json");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(c) = serde_json::from_str::<Value>(&text)
            && c["line"].as_u64().unwrap_or(0) >= lines
        {
            return;
        }
        assert!(child.try_wait().ok().flatten().is_none(), "warm ended before it was interrupted");
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set_calls(d: &Deployed, port: u16) -> u64 {
    d.cli(port, &["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_killed_load_is_finished_by_a_second_run_without_writing_a_key_twice() {
    if !redis_present() {
        return;
    }
    const KEYS: u64 = 3000;
    let home = Home::new();
    let d = deploy(&home, "warmresume");
    let master = d.port("warmresume-0");
    let mut csv = String::from("key,value\n");
    for i in 0..KEYS {
        csv.push_str(&format!("bulk:{i},value-{i}\n"));
    }
    let input = file(&home, "bulk.csv", &csv);
    let calls_before = set_calls(&d, master);

    // 1000 keys/s: the first run is killed (SIGKILL, no chance to tidy up) about a third of the way in.
    let mut child = home
        .command(&["warm", "warmresume", "--from", &input, "--rate", "1000"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warm");
    wait_for_checkpoint(&d, &mut child, 800);
    child.kill().expect("kill warm");
    let _ = child.wait();
    let partial: u64 = d.cli(master, &["DBSIZE"]).parse().expect("dbsize");
    assert!(partial > 0 && partial < KEYS, "interrupted part-way: {partial} keys");

    let (summary, _) = warm(&home, &["warmresume", "--from", &input], 0);
    let resumed = summary["resumed_after"].as_u64().expect("resumed after a checkpoint");
    let written = summary["written"].as_u64().expect("written");
    assert!(resumed > 800, "{summary:#}");
    assert_eq!(summary["written_total"].as_u64(), Some(KEYS), "{summary:#}");
    assert!(written < KEYS && written + resumed == KEYS + 1, "header line + keys: {summary:#}");
    assert_eq!(d.cli(master, &["DBSIZE"]), KEYS.to_string());
    assert_eq!(d.cli(master, &["GET", "bulk:2999"]), "value-2999");
    // Redis saw each key written once — but for the batches in flight when
    // the first run was killed (at most two of a tenth of a second at 1000/s).
    let calls = set_calls(&d, master) - calls_before;
    assert!((KEYS..=KEYS + 200).contains(&calls), "SET calls: {calls}");
    assert!(!d.state_dir().join("warm-checkpoint.json").exists(), "a finished load leaves no checkpoint");

    // The same source again starts over (nothing to resume); `--restart` too.
    let (again, _) = warm(&home, &["warmresume", "--from", &input, "--restart"], 0);
    assert_eq!((again["written"].as_u64(), again["resumed_after"].as_u64()), (Some(KEYS), None));
}

/// A `redis-server` of the test's own on a free port, stopped on drop.
struct Source {
    child: Child,
    port: u16,
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn source() -> Source {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let s = Source { child, port };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the source redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

#[test]
fn another_redis_is_copied_type_by_type_and_a_nearly_full_master_stops_the_load() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = deploy(&home, "warmremote");
    let master = d.port("warmremote-0");
    let src = source();
    let mut cli = Command::new("redis-cli")
        .args(["-p", &src.port.to_string(), "-n", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    let mut script = String::from("SET r:str hello\nSET r:ttl x PX 100000\nHSET r:h f1 v1 f2 v2\nSADD r:s a b\n");
    script.push_str("RPUSH session:list 1 2 3\nZADD r:z 1 one 2 two\nSET perm:r kept\n");
    for i in 0..2500 {
        script.push_str(&format!("SET many:{i} {i}\n"));
    }
    cli.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write");
    assert!(cli.wait().expect("redis-cli").success());

    let url = format!("redis://127.0.0.1:{}/3", src.port);
    let (summary, _) = warm(&home, &["warmremote", "--from", &url], 0);
    assert_eq!(summary["written"], 2507, "{summary:#}");
    assert_eq!((summary["ttl_from_source"].as_u64(), summary["no_ttl"].as_u64()), (Some(1), Some(1)));
    assert_eq!(d.cli(master, &["GET", "r:str"]), "hello");
    assert_eq!(d.cli(master, &["HGET", "r:h", "f2"]), "v2");
    assert_eq!(d.cli(master, &["SCARD", "r:s"]), "2");
    assert_eq!(d.cli(master, &["LRANGE", "session:list", "0", "-1"]), "1\n2\n3");
    assert_eq!(d.cli(master, &["ZSCORE", "r:z", "two"]), "2");
    assert_eq!(d.cli(master, &["GET", "many:2499"]), "2499");
    let t = pttl(&d, master, "r:ttl");
    assert!(t > 40_000 && t <= 100_000, "the source's TTL kept: {t}");
    assert_ttl_within(&d, master, "session:list", SESSION_TTL);
    assert_ttl_within(&d, master, "r:str", DEFAULT_TTL);
    assert_eq!(pttl(&d, master, "perm:r"), -1);

    // Memory at 90 % of `maxmemory`: the load stops before writing, says why, keeps its place.
    let used: u64 = d
        .cli(master, &["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    d.cli(master, &["CONFIG", "SET", "maxmemory", &(used * 21 / 20).to_string()]);
    let input = file(
        &home,
        "more.csv",
        "more:1,x
",
    );
    let (stopped, stderr) = warm(&home, &["warmremote", "--from", &input], 2);
    assert_eq!((stopped["written"].as_u64(), stopped["complete"].as_bool()), (Some(0), Some(false)));
    assert!(stopped["stopped"].as_str().is_some_and(|r| r.contains("maxmemory")), "{stopped:#}");
    assert!(stderr.contains("warm.stopped"), "{stderr}");
    assert_eq!(d.cli(master, &["EXISTS", "more:1"]), "0");

    // A source that is not there: exit 2, naming it.
    let out = home.run(&["warm", "warmremote", "--from", "redis://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("warm.source-unreachable"), "{}", text(&out.stderr));
}

#[test]
fn a_cluster_load_sends_each_key_to_the_master_of_its_slot() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "examples/standalone-development.yaml",
        &[
            "--set",
            "deployment.mode=cluster",
            "--set",
            "cluster.shards=3",
            "--set",
            "cluster.replicas_per_shard=1",
            "--set",
            "deployment.name=warmcluster",
        ],
    );
    let mut lines = String::new();
    for i in 0..600 {
        lines.push_str(&format!("{{\"key\":\"product:{i}\",\"value\":\"p{i}\"}}\n"));
    }
    // A hash-tagged key goes to the slot of its tag, as Redis computes it.
    lines.push_str("{\"key\":\"{user:1}:profile\",\"value\":{\"name\":\"ada\"}}\n");
    let input = file(&home, "cluster.jsonl", &lines);
    let (summary, _) = warm(&home, &["warmcluster", "--from", &input], 0);
    assert_eq!((summary["written"].as_u64(), summary["failed"].as_u64()), (Some(601), Some(0)), "{summary:#}");
    assert_eq!(summary["masters"].as_array().map(Vec::len), Some(3));
    assert_eq!(summary["full_resyncs"], 0);
    // Every master holds its share, and no key sits on a master that does not serve its slot.
    let masters: Vec<u16> = d
        .nodes()
        .iter()
        .filter(|n| n["role"] == "master")
        .map(|n| n["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port"))
        .collect();
    let mut total = 0;
    for port in &masters {
        let n: u64 = d.cli(*port, &["DBSIZE"]).parse().expect("dbsize");
        assert!(n > 100, "master {port} holds {n} of 601 keys");
        total += n;
        // A node answers MOVED for a key of a slot it does not serve, even one it holds.
        let keys = d.cli(*port, &["KEYS", "*"]);
        for key in keys.lines().take(50) {
            let kind = d.cli(*port, &["TYPE", key]);
            assert!(kind == "string" || kind == "hash", "{key} on {port}: {kind}");
        }
    }
    assert_eq!(total, 601);
    let ttl: i64 = d.cli(masters[0], &["-c", "PTTL", "product:7"]).parse().expect("PTTL, following MOVED");
    assert!(ttl > 0, "a cluster key gets the strategy's TTL: {ttl}");
    assert_eq!(d.cli(masters[0], &["-c", "HGET", "{user:1}:profile", "name"]), "ada");
}
