//! `redplate backup`, `backups` and `restore` against real Redis: a backup
//! is read from the replica, encrypted and checksummed; a restore after a
//! flush gives back the same `DEBUG DIGEST` and key count on the master and
//! its replica, and only with the token the first call gave; a restore
//! `--to-time` gives the data as it was at that second.

mod support;

use serde_json::Value;
use support::{Deployed, Home, redis_present, text};

const TEMPLATE: &str = "\
deployment:
  name: NAME
  mode: replication
replication:
  replicas: 1
persistence:
  mode: mixed
  save: [{ seconds: 900, changes: 1 }]
  aof_timestamp_enabled: true
performance:
  enable_debug_command: local
backup:
  encryption:
    enabled: true
    key: { file: KEY }
";

fn deploy<'h>(home: &'h Home, name: &str) -> Deployed<'h> {
    let key = home.dir.path().join("backup.key");
    std::fs::write(&key, "a test key, not a secret\n").expect("key file");
    let yaml = TEMPLATE.replace("NAME", name).replace("KEY", &key.display().to_string());
    let t = support::template(home.dir.path(), name, &yaml);
    home.deploy(&t, &[])
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Writes `n` keys of several types named `<prefix>:<i>` and waits until the replica has them.
fn write_keys(d: &Deployed, port: u16, prefix: &str, n: usize) {
    let mut script = String::new();
    for i in 0..n {
        script.push_str(&match i % 4 {
            0 => format!("SET {prefix}:{i} v{i}\n"),
            1 => format!("HSET {prefix}:{i} f1 a f2 {i}\n"),
            2 => format!("RPUSH {prefix}:{i} x y {i}\n"),
            _ => format!("ZADD {prefix}:{i} 1 a {i} b\n"),
        });
    }
    script.push_str("WAIT 1 10000\n");
    let out = d.cli_with(port, &[], Some(&script));
    let acked: u64 = out.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!(acked >= 1, "a replica acknowledged the writes: {}", &out[out.len().saturating_sub(40)..]);
}

fn dbsize(d: &Deployed, port: u16) -> u64 {
    d.cli(port, &["DBSIZE"]).parse().expect("DBSIZE")
}

#[test]
fn backup_then_flush_then_restore_gives_the_same_digest_and_only_the_token_acts() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = deploy(&home, "bk-round");
    let (master, replica) = (d.port("bk-round-0"), d.port("bk-round-1"));
    write_keys(&d, master, "k", 2000);
    let digest = d.cli(master, &["DEBUG", "DIGEST"]);
    assert_eq!(dbsize(&d, master), 2000);

    let taken = json(&home.ok(&["backup", "bk-round", "--format", "json"]));
    let id = taken["backup"]["id"].as_str().expect("id").to_owned();
    let part = &taken["backup"]["parts"][0];
    assert_eq!(part["source"], "bk-round-1", "read from the replica, not the master");
    assert_eq!(part["keys"], 2000);
    let file = part["file"].as_str().expect("file");
    assert!(file.ends_with(".rdb.zst.enc"), "compressed and encrypted: {file}");
    assert!(part["aof_file"].as_str().is_some_and(|a| a.contains(".aof.tar")), "the AOF is kept too: {part}");
    let dir = std::path::PathBuf::from(taken["backup"]["dir"].as_str().expect("dir"));
    let sum = std::fs::read_to_string(dir.join(format!("{file}.sha256"))).expect("checksum file");
    assert!(sum.starts_with(part["sha256"].as_str().expect("sha256")), "{sum}");

    let listed = json(&home.ok(&["backups", "bk-round", "--format", "json"]));
    let ids: Vec<&str> = listed["backups"].as_array().expect("list").iter().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(ids, vec![id.as_str()]);

    // Lose the data, write something else.
    d.cli(master, &["FLUSHALL"]);
    d.cli(master, &["SET", "garbage", "1"]);

    // Without a token: nothing changes, and the preview counts both sides.
    let preview = home.run(&["restore", "bk-round", &id, "--format", "json"]);
    assert!(preview.status.success(), "{}", text(&preview.stderr));
    let preview = json(&text(&preview.stdout));
    assert_eq!(preview["restored"], false);
    assert_eq!(preview["replaced"][0]["keys_now"], 1);
    assert_eq!(preview["replaced"][0]["keys_in_backup"], 2000);
    let token = preview["token"].as_str().expect("token").to_owned();
    assert_eq!(d.cli(master, &["DBSIZE"]), "1", "nothing changed without a token");

    // A wrong token: refused, nothing changes.
    let wrong = home.run(&["restore", "bk-round", &id, "--confirm", "123-abc"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stderr));
    assert!(text(&wrong.stderr).contains("confirm.rejected"), "{}", text(&wrong.stderr));
    assert_eq!(d.cli(master, &["GET", "garbage"]), "1", "nothing changed with a wrong token");

    let done = json(&home.ok(&["restore", "bk-round", &id, "--confirm", &token, "--format", "json"]));
    assert_eq!(done["restored"], true);
    assert_eq!(done["checks"][0]["method"], "DEBUG DIGEST");
    assert_eq!(done["checks"][0]["ok"], true);
    assert_eq!(done["replicas_in_sync"], serde_json::json!(["bk-round-1"]));
    assert_eq!(d.cli(master, &["DEBUG", "DIGEST"]), digest, "the master holds what was backed up");
    assert_eq!(dbsize(&d, master), 2000);
    assert_eq!(d.cli(replica, &["DEBUG", "DIGEST"]), digest, "the replica resynchronised");
    assert_eq!(d.cli(master, &["EXISTS", "garbage"]), "0");
    assert!(!d.state_dir().join("restore.journal.json").exists(), "the journal is gone once checked");

    // A time before what the backup covers is refused before anything else.
    let again = home.run(&["restore", "bk-round", &id, "--to-time", "2000-01-01T00:00:00Z", "--confirm", &token]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("restore.out-of-range"), "{}", text(&again.stderr));
}

fn utc(unix: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{unix}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    text(&out.stdout).trim().to_owned()
}

fn server_time(d: &Deployed, port: u16) -> u64 {
    d.cli(port, &["TIME"]).lines().next().and_then(|s| s.parse().ok()).expect("TIME")
}

#[test]
fn restore_to_a_time_gives_the_data_as_it_was_at_that_second() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = deploy(&home, "bk-pitr");
    let master = d.port("bk-pitr-0");
    write_keys(&d, master, "a", 200);
    let noted = server_time(&d, master);
    // Cross a second boundary, so set B is annotated with a later second.
    while server_time(&d, master) <= noted {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    write_keys(&d, master, "b", 300);
    assert_eq!(dbsize(&d, master), 500);
    let id = home.ok(&["backup", "bk-pitr"]).trim().to_owned();

    // Outside what the backup covers: refused, naming the range.
    let future = utc(server_time(&d, master) + 3600);
    let out = home.run(&["restore", "bk-pitr", &id, "--to-time", &future]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("restore.out-of-range") && text(&out.stderr).contains("ends at"),
        "{}",
        text(&out.stderr)
    );
    let out = home.run(&["restore", "bk-pitr", &id, "--to-time", "2001-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(" covers "), "the range is named: {}", text(&out.stderr));
    let out = home.run(&["restore", "bk-pitr", &id, "--to-time", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("restore.bad-time"), "{}", text(&out.stderr));

    let at = utc(noted);
    let preview = json(&home.ok(&["restore", "bk-pitr", &id, "--to-time", &at, "--format", "json"]));
    assert_eq!(preview["replaced"][0]["keys_in_backup"], 200, "the AOF cut at {at} holds set A only");
    let token = preview["token"].as_str().expect("token");
    let done = json(&home.ok(&["restore", "bk-pitr", &id, "--to-time", &at, "--confirm", token, "--format", "json"]));
    assert_eq!(done["checks"][0]["ok"], true, "{done}");
    assert_eq!(dbsize(&d, master), 200);
    assert_eq!(d.cli(master, &["EXISTS", "a:0", "a:199", "a:101"]), "3", "set A is there");
    assert_eq!(d.cli(master, &["EXISTS", "b:0", "b:299"]), "0", "set B, written after {at}, is not");
    assert_eq!(d.cli(master, &["HGET", "a:1", "f2"]), "1");
}

#[test]
fn an_interrupted_restore_is_finished_by_running_it_again_and_blocks_other_restores() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = deploy(&home, "bk-resume");
    let (master, replica) = (d.port("bk-resume-0"), d.port("bk-resume-1"));
    write_keys(&d, master, "k", 1000);
    let older = home.ok(&["backup", "bk-resume"]).trim().to_owned();
    write_keys(&d, master, "m", 500);
    let digest = d.cli(master, &["DEBUG", "DIGEST"]);
    let id = home.ok(&["backup", "bk-resume"]).trim().to_owned();
    d.cli(master, &["FLUSHALL"]);

    let preview = json(&home.ok(&["restore", "bk-resume", &id, "--format", "json"]));
    let token = preview["token"].as_str().expect("token").to_owned();
    let journal = d.state_dir().join("restore.journal.json");
    let mut child = home
        .command(&["restore", "bk-resume", &id, "--confirm", &token], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("restore");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !journal.exists() {
        assert!(std::time::Instant::now() < deadline, "the restore never wrote its journal");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().expect("kill the restore half-way");
    let _ = child.wait();
    // Let whatever the killed run had started (a script) end.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(journal.exists(), "the killed run left its journal");

    let other = home.run(&["restore", "bk-resume", &older]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other.stderr));
    assert!(text(&other.stderr).contains("restore.interrupted"), "{}", text(&other.stderr));

    let preview = json(&home.ok(&["restore", "bk-resume", &id, "--format", "json"]));
    let token = preview["token"].as_str().expect("token").to_owned();
    let done = json(&home.ok(&["restore", "bk-resume", &id, "--confirm", &token, "--format", "json"]));
    assert_eq!(done["resumed"], true);
    assert_eq!(done["checks"][0]["ok"], true, "{done}");
    assert!(!journal.exists());
    assert_eq!(d.cli(master, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(dbsize(&d, master), 1500);
    assert_eq!(dbsize(&d, replica), 1500);
}

#[test]
fn a_cluster_is_backed_up_and_restored_shard_by_shard_under_one_id() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let yaml = "\
deployment:
  name: bk-cluster
  mode: cluster
cluster:
  shards: 3
  replicas_per_shard: 1
persistence:
  mode: aof
  aof_timestamp_enabled: true
performance:
  enable_debug_command: local
";
    let t = support::template(home.dir.path(), "bk-cluster", yaml);
    let d = home.deploy(&t, &[]);
    let masters: Vec<u16> = ["bk-cluster-0", "bk-cluster-1", "bk-cluster-2"].iter().map(|n| d.port(n)).collect();
    let script: String = (0..600).map(|i| format!("SET key:{i} value-{i}\n")).collect();
    d.cli_with(masters[0], &["-c"], Some(&script));
    let digests: Vec<String> = masters.iter().map(|p| d.cli(*p, &["DEBUG", "DIGEST"])).collect();
    let counts: Vec<u64> = masters.iter().map(|p| dbsize(&d, *p)).collect();
    assert_eq!(counts.iter().sum::<u64>(), 600);
    assert!(counts.iter().all(|c| *c > 0), "every shard holds keys: {counts:?}");

    let taken = json(&home.ok(&["backup", "bk-cluster", "--format", "json"]));
    let parts = taken["backup"]["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3, "one part per shard");
    for p in parts {
        let source = p["source"].as_str().expect("source");
        assert_ne!(source, p["master"].as_str().expect("master"), "shard {} read from its replica", p["shard"]);
    }
    let id = taken["backup"]["id"].as_str().expect("id").to_owned();
    for p in &masters {
        d.cli(*p, &["FLUSHALL"]);
    }
    let preview = json(&home.ok(&["restore", "bk-cluster", &id, "--format", "json"]));
    let token = preview["token"].as_str().expect("token").to_owned();
    let done = json(&home.ok(&["restore", "bk-cluster", &id, "--confirm", &token, "--format", "json"]));
    assert_eq!(done["checks"].as_array().map(Vec::len), Some(3));
    assert_eq!(done["replicas_in_sync"].as_array().map(Vec::len), Some(3));
    let after: Vec<String> = masters.iter().map(|p| d.cli(*p, &["DEBUG", "DIGEST"])).collect();
    assert_eq!(after, digests, "every shard holds what it held");
    assert_eq!(d.cli(masters[0], &["CLUSTER", "INFO"]).lines().next(), Some("cluster_state:ok"));
    assert_eq!(d.cli_with(masters[0], &["-c", "GET", "key:599"], None), "value-599");
}

#[test]
fn the_production_sentinel_example_is_backed_up_over_tls_encrypted_and_checked_by_dump() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy("examples/sentinel-production.yaml", &[]);
    // The preset's key file is a Kubernetes secret path: the scripts take another.
    let key = home.dir.path().join("backup.key");
    std::fs::write(&key, "another test key\n").expect("key file");
    let key = key.display().to_string();
    let env = [("BACKUP_KEY_FILE", key.as_str())];
    let master = d.port("orders-0");
    write_keys(&d, master, "s", 300);

    let out = home.run_env(&["backup", "orders", "--format", "json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let taken = json(&text(&out.stdout));
    let part = &taken["backup"]["parts"][0];
    assert_ne!(part["source"], "orders-0", "read from a replica");
    assert!(part["file"].as_str().is_some_and(|f| f.ends_with(".enc")), "{part}");
    assert_eq!(taken["destination"]["location"], "state folder", "the template's bucket is not reachable here");
    let id = taken["backup"]["id"].as_str().expect("id").to_owned();
    d.cli(master, &["FLUSHALL"]);

    let out = home.run_env(&["restore", "orders", &id, "--format", "json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = json(&text(&out.stdout))["token"].as_str().expect("token").to_owned();
    let out = home.run_env(&["restore", "orders", &id, "--confirm", &token, "--format", "json"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done = json(&text(&out.stdout));
    let method = done["checks"][0]["method"].as_str().unwrap_or_default();
    assert!(method.starts_with("DUMP of 300"), "the preset forbids DEBUG: {done}");
    assert_eq!(done["checks"][0]["ok"], true);
    assert_eq!(done["replicas_in_sync"].as_array().map(Vec::len), Some(2));
    assert_eq!(dbsize(&d, master), 300);
    assert_eq!(d.cli(master, &["HGET", "s:1", "f2"]), "1");
}
