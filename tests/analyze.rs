//! `redplate analyze` and `redplate optimize` against real Redis: a known
//! key set gives exactly its patterns, counts, types and TTL buckets with
//! `--full` (standalone and on every master of a cluster), `--tenant` sees
//! only that tenant's keys, a sample says it is extrapolated, and optimize
//! recommends raising `hash-max-listpack-entries` for 200-field hashes —
//! changing `CONFIG GET` and the stored template only with `--apply`.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use support::{Deployed, Home, redis_present, text};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A UUID-shaped id made from `i` (no randomness: a failure repeats).
fn uuid(i: u32) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        0x1a2b_0000 + i,
        i,
        i % 4096,
        (i * 7) % 4096,
        0x00c0_ffee_0000 + u64::from(i)
    )
}

/// The commands writing the known key set, `prefix` before every key:
/// 300 `user:<n>:profile` hashes (no TTL), 200 `session:<uuid>` strings
/// (30 min TTL), 50 `cache:item:<hex>` strings (3 day TTL).
fn known_keys(prefix: &str, users: u32, sessions: u32, items: u32) -> String {
    let mut s = String::new();
    for i in 0..users {
        s += &format!("HSET {prefix}user:{i}:profile name n{i} age {i}\n");
    }
    for i in 0..sessions {
        s += &format!("SET {prefix}session:{} v EX 1800\n", uuid(i));
    }
    for i in 0..items {
        s += &format!("SET {prefix}cache:item:{:012x} v EX 259200\n", 0xabc0_0000_0000u64 + u64::from(i) * 7919);
    }
    s
}

/// Runs `script` (one command a line) through `redis-cli` on `port`; with
/// `cluster`, redis-cli follows `MOVED` to the master of each key.
fn load(d: &Deployed, port: u16, script: &str, cluster: bool) {
    if !cluster {
        d.cli_with(port, &[], Some(script));
        return;
    }
    let mut child = Command::new("redis-cli")
        .args(["-c", "-h", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write commands");
    assert!(child.wait().expect("redis-cli").success());
}

/// `pattern → (keys, types, encodings, ttl buckets)` of an analysis.
fn patterns(a: &Value) -> BTreeMap<String, Value> {
    a["patterns"]
        .as_array()
        .expect("patterns")
        .iter()
        .map(|p| (p["pattern"].as_str().expect("pattern").to_owned(), p.clone()))
        .collect()
}

fn ttl(no_ttl: u64, under_1m: u64, under_1h: u64, under_1d: u64, over_1d: u64) -> Value {
    serde_json::json!({"no_ttl": no_ttl, "under_1m": under_1m, "under_1h": under_1h, "under_1d": under_1d, "over_1d": over_1d})
}

/// The known key set's patterns as `analyze --full` must report them.
fn assert_known(found: &BTreeMap<String, Value>, prefix: &str, users: u64, sessions: u64, items: u64) {
    let user = &found[&format!("{prefix}user:*:profile")];
    assert_eq!(user["keys"], users);
    assert_eq!(user["types"], serde_json::json!({"hash": users}));
    assert_eq!(user["encodings"], serde_json::json!({"listpack": users}));
    assert_eq!(user["ttl"], ttl(users, 0, 0, 0, 0));
    assert_eq!(user["max_elements"], 2, "two fields each");
    let session = &found[&format!("{prefix}session:*")];
    assert_eq!(session["keys"], sessions);
    assert_eq!(session["types"], serde_json::json!({"string": sessions}));
    assert_eq!(session["ttl"], ttl(0, 0, sessions, 0, 0));
    if items > 0 {
        let item = &found[&format!("{prefix}cache:item:*")];
        assert_eq!(item["keys"], items);
        assert_eq!(item["ttl"], ttl(0, 0, 0, 0, items));
    }
    for (name, p) in found {
        assert!(p["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{name} has memory");
        assert_eq!(p["keys"], p["estimated_keys"], "{name}: a full walk is not extrapolated");
    }
}

/// A standalone deployment with auth and tenancy, and a declared tenant `beta`.
fn tenancy_template(home: &Home, name: &str) -> String {
    let yaml = format!(
        "extends: development\n\
         deployment: {{ name: {name} }}\n\
         security: {{ auth_enabled: true, password: {{ generate: true }} }}\n\
         tenancy:\n  enabled: true\n  max_tenants: 4\n  memory_per_tenant: 32mb\n  tenants:\n    - id: beta\n"
    );
    support::template(home.dir.path(), name, &yaml).display().to_string()
}

#[test]
fn a_full_analysis_gives_the_known_patterns_counts_and_ttls_and_a_tenant_sees_only_its_keys() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(tenancy_template(&home, "known"), &["--set", "network.local_base_port=26910"]);
    let port = d.data_nodes()[0].1;
    let mut script = known_keys("", 300, 200, 50);
    script += &known_keys("tenant:beta:", 40, 5, 0);
    script += &known_keys("tenant:gamma:", 30, 0, 0);
    load(&d, port, &script, false);
    assert_eq!(d.cli(port, &["DBSIZE"]), "625");

    let a = json(&home.ok(&["analyze", "known", "--full", "--format", "json"]));
    let found = patterns(&a);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        [
            "cache:item:*",
            "session:*",
            "tenant:beta:session:*",
            "tenant:beta:user:*:profile",
            "tenant:gamma:user:*:profile",
            "user:*:profile"
        ]
    );
    assert_known(&found, "", 300, 200, 50);
    assert_known(&found, "tenant:beta:", 40, 5, 0);
    assert_eq!(found["tenant:gamma:user:*:profile"]["keys"], 30);
    assert_eq!((a["keys_analyzed"].as_u64(), a["extrapolated"].as_bool()), (Some(625), Some(false)));
    let top: Vec<u64> =
        a["top_keys"].as_array().expect("top").iter().map(|k| k["bytes"].as_u64().expect("bytes")).collect();
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "biggest first: {top:?}");

    // The tenant's keys only, its prefix stripped.
    let t = json(&home.ok(&["analyze", "known", "--tenant", "beta", "--full", "--format", "json"]));
    let found = patterns(&t);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["session:*", "user:*:profile"]);
    assert_known(&found, "", 40, 5, 0);
    assert_eq!(t["prefix"], "tenant:beta:");
    assert!(
        t["top_keys"].as_array().expect("top").iter().all(|k| !k["key"].as_str().unwrap_or("").starts_with("tenant:"))
    );
    let o = home.run(&["analyze", "known", "--tenant", "nobody", "--full"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("tenant.unknown"), "{}", text(&o.stderr));

    // A sample stands for the whole keyspace and says so.
    let s = json(&home.ok(&["analyze", "known", "--sample", "100", "--format", "json"]));
    assert_eq!((s["keys_analyzed"].as_u64(), s["extrapolated"].as_bool()), (Some(100), Some(true)));
    let estimated = s["estimated_keys"].as_u64().expect("estimate");
    assert!(estimated.abs_diff(625) <= 6, "100 of 625 keys stand for about 625, not {estimated}");
    assert!(s["recommendations"].as_array().expect("list").iter().any(|r| r["code"] == "analyze.extrapolated"));
    let human = home.ok(&["analyze", "known", "--sample", "100"]);
    assert!(human.contains("extrapolated with DBSIZE"), "{human}");

    // Other separators: `:` alone still folds; with `|` only, each key is one segment.
    let bar = json(&home.ok(&["analyze", "known", "--full", "--separators", "|", "--format", "json"]));
    assert_eq!(patterns(&bar).len(), 1, "every key has digits, so each folds to `*`");
}

#[test]
fn a_cluster_analysis_reads_every_master() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "examples/standalone-development.yaml",
        &[
            "--name",
            "clan",
            "--set",
            "network.local_base_port=26930",
            "--set",
            "network.cluster_bus_port_offset=3000",
            "--set",
            "deployment.mode=cluster",
            "--set",
            "cluster.shards=3",
            "--set",
            "cluster.replicas_per_shard=0",
        ],
    );
    let port = d.data_nodes()[0].1;
    load(&d, port, &known_keys("", 300, 200, 50), true);
    let a = json(&home.ok(&["analyze", "clan", "--full", "--format", "json"]));
    let masters = a["masters"].as_array().expect("masters");
    assert_eq!(masters.len(), 3);
    assert!(
        masters.iter().all(|m| m["analyzed"].as_u64().is_some_and(|n| n > 0) && m["complete"] == true),
        "{masters:?}"
    );
    let found = patterns(&a);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["cache:item:*", "session:*", "user:*:profile"]);
    assert_known(&found, "", 300, 200, 50);
    assert_eq!(a["keys_analyzed"], 550);
}

/// `CONFIG GET hash-max-listpack-entries` on every data node.
fn hash_limits(d: &Deployed) -> Vec<String> {
    d.data_nodes().iter().map(|(_, port)| d.cli(*port, &["CONFIG", "GET", "hash-max-listpack-entries"])).collect()
}

fn stored_hash_limit(home: &Home, name: &str) -> Value {
    json(&home.ok(&["export", name]))["memory"]["hash_max_listpack_entries"].clone()
}

#[test]
fn optimize_raises_the_hash_listpack_limit_for_200_field_hashes_only_with_apply() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "examples/standalone-development.yaml",
        &[
            "--name",
            "opt",
            "--set",
            "network.local_base_port=26950",
            "--set",
            "deployment.mode=replication",
            "--set",
            "replication.replicas=1",
        ],
    );
    let port = d.data_nodes()[0].1;
    let fields: String = (0..200).map(|j| format!(" f{j} v{j}")).collect();
    let script: String = (0..30).map(|i| format!("HSET wide:{i}{fields}\n")).collect();
    load(&d, port, &script, false);
    let before = hash_limits(&d);
    assert_eq!(before.len(), 2, "a master and a replica");
    assert!(before.iter().all(|l| l.ends_with("\n128")), "{before:?}");

    let o = json(&home.ok(&["optimize", "opt", "--format", "json"]));
    let advice = o["advice"].as_array().expect("advice");
    let raise = advice
        .iter()
        .find(|a| a["code"] == "optimize.hash-max-listpack-entries")
        .unwrap_or_else(|| panic!("{advice:#?}"));
    assert_eq!(raise["setting"]["to"], "256");
    assert_eq!((raise["safe"].as_bool(), raise["applied"].as_bool()), (Some(true), Some(false)));
    assert_eq!(raise["numbers"]["over_limit"], 30.0);
    assert_eq!(raise["numbers"]["p90_elements"], 200.0);
    assert!(o["doctor"].as_array().is_some_and(|d| !d.is_empty()));
    assert_eq!(hash_limits(&d), before, "without --apply nothing changes");
    assert_eq!(stored_hash_limit(&home, "opt"), 128);

    let human = home.ok(&["optimize", "opt", "--apply"]);
    assert!(human.contains("changed hash-max-listpack-entries from 128 to 256"), "{human}");
    assert!(hash_limits(&d).iter().all(|l| l.ends_with("\n256")), "{:?}", hash_limits(&d));
    assert_eq!(stored_hash_limit(&home, "opt"), 256);
    // New hashes of 200 fields are listpacks now.
    d.cli(port, &["HSET", "fresh", "f", "v"]);
    let fill: Vec<String> = (0..200).flat_map(|j| [format!("g{j}"), format!("w{j}")]).collect();
    let mut args = vec!["HSET", "fresh"];
    args.extend(fill.iter().map(String::as_str));
    d.cli(port, &args);
    assert_eq!(d.cli(port, &["OBJECT", "ENCODING", "fresh"]), "listpack");
}
