//! Tenants at runtime, with real processes: `redplate tenant …` creates,
//! runs commands as, measures and removes tenants of running standalone,
//! Sentinel (TLS) and Cluster (TLS) deployments. A tenant created at runtime
//! is attacked through its own ACL user (the `redis` crate as the test
//! client) and must not reach another tenant; its ordinary work on its own
//! keys must all pass. A create that fails half-way leaves no user on any
//! node, and a removal interrupted with Ctrl-C is finished by a second run.

mod support;

use serde_json::Value;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::isolation::{ATTACKS, own_work};
use support::{Deployed, Home, redis_present, text};

/// A standalone deployment with auth and tenancy, and one declared tenant `beta`.
fn standalone(home: &Home, name: &str) -> String {
    let yaml = format!(
        "extends: development\n\
         deployment: {{ name: {name} }}\n\
         security: {{ auth_enabled: true, password: {{ generate: true }} }}\n\
         tenancy:\n  enabled: true\n  allow_scripts: true\n  max_tenants: 4\n  memory_per_tenant: 32mb\n  \
         tenants:\n    - id: beta\n"
    );
    let path = home.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write template");
    path.display().to_string()
}

fn tenant(home: &Home, args: &[&str]) -> Output {
    let mut all = vec!["tenant"];
    all.extend_from_slice(args);
    home.run(&all)
}

/// `redplate tenant …` that must succeed; its stdout.
fn tenant_ok(home: &Home, args: &[&str]) -> String {
    let out = tenant(home, args);
    assert!(
        out.status.success(),
        "tenant {args:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// `redis-cli` on `port` as redplate's admin user (TLS when the node uses it).
fn admin(d: &Deployed, port: u16, args: &[&str]) -> String {
    let out = admin_cmd(d, port).args(args).output().expect("redis-cli");
    text(&out.stdout).trim().to_owned()
}

fn admin_cmd(d: &Deployed, port: u16) -> Command {
    let r = &d.record;
    let node = r["nodes"].as_array().into_iter().flatten().find(|n| n["port"] == port).expect("a node on that port");
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--no-auth-warning"]);
    if node["tls"] == true {
        let t = &r["tls"];
        let f = |k: &str| t[k].as_str().expect("tls file").to_owned();
        cmd.args(["--tls", "--cacert", &f("ca_file"), "--cert", &f("cert_file"), "--key", &f("key_file")]);
    }
    if let Some(u) = r["admin_user"].as_str() {
        cmd.args(["--user", u]);
    }
    if let Some(f) = r["admin_password_file"].as_str() {
        let pw = std::fs::read_to_string(d.state_dir().join(f)).expect("admin password");
        cmd.env("REDISCLI_AUTH", pw.trim());
    }
    cmd
}

/// The ACL users of the node on `port`.
fn users(d: &Deployed, port: u16) -> Vec<String> {
    admin(d, port, &["ACL", "USERS"]).lines().map(str::to_owned).collect()
}

/// The keys matching `pattern` on the node on `port` (a full SCAN).
fn count(d: &Deployed, port: u16, pattern: &str) -> usize {
    admin(d, port, &["--scan", "--pattern", pattern]).lines().filter(|l| !l.is_empty()).count()
}

/// The tenant's password, from where `tenant show` says it is.
fn password(home: &Home, deployment: &str, id: &str) -> String {
    let shown = json(&tenant_ok(home, &["show", deployment, id, "--format", "json"]));
    let file = shown["tenant"]["password"]["file"].as_str().expect("password file");
    std::fs::read_to_string(file).expect("read the tenant's password").trim().to_owned()
}

/// A plain connection as `user` (the standalone tests run without TLS).
fn connect(port: u16, user: &str, password: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{user}:{password}@127.0.0.1:{port}/")).expect("client");
    let con = client.get_connection().expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    con
}

fn run(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

/// Writes `n` keys `<prefix><i>` through `redis-cli --pipe` as the admin.
fn load_keys(d: &Deployed, port: u16, prefix: &str, n: usize) {
    let mut resp = Vec::with_capacity(n * 48);
    for i in 0..n {
        let key = format!("{prefix}{i}");
        write!(resp, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len()).expect("buffer");
    }
    let mut child = admin_cmd(d, port)
        .arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli --pipe");
    child.stdin.take().expect("stdin").write_all(&resp).expect("write keys");
    let out = child.wait_with_output().expect("redis-cli --pipe");
    assert!(text(&out.stdout).contains("errors: 0"), "loading keys: {}", text(&out.stdout));
}

#[test]
fn a_standalone_tenant_is_created_used_measured_and_removed_leaving_the_other_tenant_intact() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(standalone(&home, "life").as_str(), &["--set", "network.local_base_port=24000"]);
    let port = d.data_nodes()[0].1;

    let created = json(&tenant_ok(&home, &["create", "life", "acme", "--memory", "16mb", "--format", "json"]));
    assert_eq!(created["tenant"]["user"], "tenant-acme");
    assert_eq!(created["tenant"]["prefix"], "tenant:acme:");
    assert_eq!(created["tenant"]["quotas"]["memory"], "16mb");
    assert_eq!(created["persisted"].as_array().map(Vec::len), Some(1), "ACL SAVE: {created}");
    let acl = std::fs::read_to_string(d.state_dir().join("redis/users.acl")).expect("users.acl");
    assert!(acl.contains("user tenant-acme "), "persisted in users.acl:\n{acl}");
    let listed = json(&tenant_ok(&home, &["list", "life", "--format", "json"]));
    let ids: Vec<&str> = listed.as_array().into_iter().flatten().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["beta", "acme"]);
    let stored = std::fs::read_to_string(d.state_dir().join("template.json")).expect("stored template");
    assert!(stored.contains("\"acme\""), "the stored template keeps the tenant");

    // exec runs as the tenant: Redis enforces its ACL.
    assert_eq!(tenant_ok(&home, &["exec", "life", "acme", "--", "SET", "tenant:acme:greeting", "hello"]), "\"OK\"\n");
    assert_eq!(tenant_ok(&home, &["exec", "life", "acme", "--", "GET", "tenant:acme:greeting"]), "\"hello\"\n");
    let denied = tenant(&home, &["exec", "life", "acme", "--", "SET", "tenant:beta:x", "1"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(text(&denied.stderr).contains("NOPERM"), "{}", text(&denied.stderr));
    for refused in [&["MONITOR"][..], &["SUBSCRIBE", "tenant:acme:c"], &["BLPOP", "tenant:acme:q", "0"]] {
        let mut args = vec!["exec", "life", "acme", "--"];
        args.extend_from_slice(refused);
        let out = tenant(&home, &args);
        assert_eq!(out.status.code(), Some(1), "{refused:?} is refused: {}", text(&out.stderr));
    }
    let control = tenant_ok(&home, &["exec", "life", "acme", "--", "SET", "tenant:acme:esc", "\x1b[2J"]);
    assert_eq!(control, "\"OK\"\n");
    let shown = tenant_ok(&home, &["exec", "life", "acme", "--", "GET", "tenant:acme:esc"]);
    assert!(!shown.contains('\x1b') && shown.contains("\\u{1b}"), "control characters are escaped: {shown:?}");

    // Stats: its keys, its connections.
    let acme_pw = password(&home, "life", "acme");
    let mut held = connect(port, "tenant-acme", &acme_pw);
    let stats = json(&tenant_ok(&home, &["stats", "life", "acme", "--format", "json"]));
    assert_eq!(stats["keys"], 2);
    assert_eq!(stats["connections"], 1);
    assert!(stats["memory_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");

    // Both tenants have keys; removing acme leaves beta's.
    let beta_pw = password(&home, "life", "beta");
    let mut beta = connect(port, "tenant-beta", &beta_pw);
    for i in 0..300 {
        run(&mut beta, &["SET", &format!("tenant:beta:{i}"), "b"]).expect("beta writes its keys");
        run(&mut held, &["SET", &format!("tenant:acme:{i}"), "a"]).expect("acme writes its keys");
    }
    let dry = json(&tenant_ok(&home, &["remove", "life", "acme", "--dry-run", "--format", "json"]));
    assert_eq!(dry["total_keys"], 302);
    assert_eq!(count(&d, port, "tenant:acme:*"), 302, "a dry run deletes nothing");
    let removed = json(&tenant_ok(&home, &["remove", "life", "acme", "--format", "json"]));
    assert_eq!(removed["deleted"], 302);
    assert_eq!(count(&d, port, "tenant:acme:*"), 0);
    assert_eq!(count(&d, port, "tenant:beta:*"), 300, "the other tenant's keys stay");
    assert!(run(&mut held, &["PING"]).is_err(), "the tenant's clients were disconnected");
    assert!(!users(&d, port).contains(&"tenant-acme".to_owned()));
    let acl = std::fs::read_to_string(d.state_dir().join("redis/users.acl")).expect("users.acl");
    assert!(!acl.contains("tenant-acme") && acl.contains("tenant-beta"), "saved without it:\n{acl}");
    let listed = json(&tenant_ok(&home, &["list", "life", "--format", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let gone = tenant(&home, &["show", "life", "acme"]);
    assert_eq!(gone.status.code(), Some(2), "an unknown name, like an unknown deployment");
    assert!(text(&gone.stderr).contains("tenant.unknown"));

    // --keep-data removes the user and the tenant, not the keys.
    tenant_ok(&home, &["create", "life", "kept"]);
    let kept_pw = password(&home, "life", "kept");
    run(&mut connect(port, "tenant-kept", &kept_pw), &["SET", "tenant:kept:k", "v"]).expect("write");
    tenant_ok(&home, &["remove", "life", "kept", "--keep-data"]);
    assert_eq!(count(&d, port, "tenant:kept:*"), 1);
    assert!(!users(&d, port).contains(&"tenant-kept".to_owned()));
}

#[test]
fn a_runtime_tenant_reaches_no_other_tenant_and_does_all_its_own_work() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(standalone(&home, "iso").as_str(), &["--set", "network.local_base_port=24100"]);
    let port = d.data_nodes()[0].1;
    tenant_ok(&home, &["create", "iso", "acme"]);
    let (acme_pw, beta_pw) = (password(&home, "iso", "acme"), password(&home, "iso", "beta"));

    // beta's data, written by beta: the targets exist, so a refusal means something.
    let mut beta = connect(port, "tenant-beta", &beta_pw);
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
    let mut acme = connect(port, "tenant-acme", &acme_pw);
    run(&mut acme, &["SET", "tenant:acme:s", "mine"]).expect("acme's own key");
    run(&mut acme, &["RPUSH", "tenant:acme:l", "x"]).expect("acme's own list");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('get','tenant:beta:s')")
        .query(&mut acme)
        .expect("SCRIPT LOAD is allowed");
    let evalsha: [&str; 3] = ["EVALSHA", &sha, "0"];
    let keys_before = admin(&d, port, &["DBSIZE"]);

    let mut escapes = Vec::new();
    let attacks: Vec<&[&str]> = ATTACKS.iter().copied().chain([&evalsha[..]]).collect();
    for attack in &attacks {
        // A fresh connection each: a command that got through must not
        // change how the next one is answered.
        let mut con = connect(port, "tenant-acme", &acme_pw);
        if let Ok(reply) = run(&mut con, attack) {
            escapes.push(format!("{attack:?} -> {reply:?}"));
        }
    }
    eprintln!("cross-tenant attempts: {}, escapes: {}", attacks.len(), escapes.len());
    assert!(attacks.len() >= 50);
    assert!(escapes.is_empty(), "escapes:\n{}", escapes.join("\n"));
    assert_eq!(run(&mut beta, &["GET", "tenant:beta:s"]).ok(), Some(redis::Value::BulkString(b"secret".to_vec())));
    assert_eq!(admin(&d, port, &["DBSIZE"]), keys_before, "no key was added or removed");

    // Everything an application does with its own keys.
    let (legit, refused) = own_work(&mut acme, connect(port, "tenant-acme", &acme_pw), &sha);
    eprintln!("legitimate operations: {legit}, refused: {}", refused.len());
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}

/// A Sentinel deployment (the staging preset: TLS, system users) with tenancy.
fn sentinel(home: &Home, name: &str) -> String {
    let yaml = format!(
        "extends: staging\ndeployment: {{ name: {name} }}\n\
         tenancy: {{ enabled: true, allow_scripts: true, max_tenants: 3 }}\n"
    );
    let path = home.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write template");
    path.display().to_string()
}

#[test]
fn a_sentinel_tenant_lives_on_every_data_node_and_goes_from_every_one() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(sentinel(&home, "sen").as_str(), &["--set", "network.local_base_port=24200"]);
    let data = d.data_nodes();
    assert_eq!(data.len(), 3, "a master and two replicas");
    tenant_ok(&home, &["create", "sen", "acme"]);
    for (name, port) in &data {
        assert!(users(&d, *port).contains(&"tenant-acme".to_owned()), "user on {name}");
    }
    assert_eq!(tenant_ok(&home, &["exec", "sen", "acme", "--", "SET", "tenant:acme:k", "v"]), "\"OK\"\n");
    assert_eq!(tenant_ok(&home, &["exec", "sen", "acme", "--", "GET", "tenant:acme:k"]), "\"v\"\n");
    let stats = json(&tenant_ok(&home, &["stats", "sen", "acme", "--format", "json"]));
    assert_eq!(stats["keys"], 1);
    let removed = json(&tenant_ok(&home, &["remove", "sen", "acme", "--format", "json"]));
    assert_eq!(removed["deleted"], 1);
    for (name, port) in &data {
        assert!(!users(&d, *port).contains(&"tenant-acme".to_owned()), "user gone from {name}");
    }
}

#[test]
fn a_cluster_tenant_spans_every_master_and_its_removal_empties_each() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "examples/cluster-production.yaml",
        &[
            "--name",
            "clu",
            "--set",
            "network.local_base_port=24300",
            "--set",
            "network.cluster_bus_port_offset=6500",
            "--set",
            "tenancy.enabled=true",
            "--set",
            "tenancy.allow_scripts=true",
            "--set",
            "tenancy.max_tenants=3",
        ],
    );
    let data = d.data_nodes();
    tenant_ok(&home, &["create", "clu", "acme"]);
    for (name, port) in &data {
        assert!(users(&d, *port).contains(&"tenant-acme".to_owned()), "user on {name}");
    }
    // Keys in many slots: exec follows MOVED to the master serving each.
    let mut answered_by = std::collections::BTreeSet::new();
    for i in 0..20 {
        let key = format!("tenant:acme:k{i}");
        let out = json(&tenant_ok(&home, &["exec", "clu", "acme", "--format", "json", "--", "SET", &key, "v"]));
        answered_by.insert(out["node"].as_str().unwrap_or_default().to_owned());
    }
    assert!(answered_by.len() >= 2, "keys spread over masters: {answered_by:?}");
    let lua = ["exec", "clu", "acme", "--", "EVAL", "return redis.call('incr', KEYS[1])", "1", "tenant:acme:{n}c"];
    assert_eq!(tenant_ok(&home, &lua), "(integer) 1\n");
    let stats = json(&tenant_ok(&home, &["stats", "clu", "acme", "--format", "json"]));
    assert_eq!(stats["keys"], 21);
    let removed = json(&tenant_ok(&home, &["remove", "clu", "acme", "--format", "json"]));
    assert_eq!(removed["deleted"], 21);
    assert_eq!(removed["keys"].as_object().map(|m| m.len()), Some(3), "every master scanned: {removed}");
    for (name, port) in &data {
        assert_eq!(count(&d, *port, "tenant:acme:*"), 0, "no key left on {name}");
        assert!(!users(&d, *port).contains(&"tenant-acme".to_owned()), "user gone from {name}");
    }
}

#[test]
fn flushing_a_tenant_deletes_only_its_keys_with_the_token_and_keeps_the_tenant() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(standalone(&home, "fl").as_str(), &["--set", "network.local_base_port=24700"]);
    let port = d.data_nodes()[0].1;
    tenant_ok(&home, &["create", "fl", "acme"]);
    load_keys(&d, port, "tenant:acme:", 2_000);
    load_keys(&d, port, "tenant:beta:", 500);
    load_keys(&d, port, "other:", 100);

    let first = home.run(&["flush", "fl", "--tenant", "acme", "--format", "json"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let report = json(&text(&first.stdout));
    assert_eq!(report["tenant"], "acme");
    assert_eq!(report["total_keys"], 2_000);
    assert_eq!(report["flushed"], false);
    let token = report["token"].as_str().expect("a token").to_owned();
    assert_eq!(count(&d, port, "tenant:acme:*"), 2_000, "nothing deleted without the token");

    // A whole-deployment token does not flush a tenant, nor another tenant's token.
    let whole = json(&text(&home.run(&["flush", "fl", "--format", "json"]).stdout));
    let beta = json(&text(&home.run(&["flush", "fl", "--tenant", "beta", "--format", "json"]).stdout));
    for wrong in [whole["token"].as_str().expect("token"), beta["token"].as_str().expect("token"), "1-00"] {
        let o = home.run(&["flush", "fl", "--tenant", "acme", "--confirm", wrong]);
        assert_eq!(o.status.code(), Some(1), "refused: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("confirm."), "{}", text(&o.stderr));
    }
    assert_eq!(count(&d, port, "tenant:acme:*"), 2_000, "a wrong token deletes nothing");

    let done = home.run(&["flush", "fl", "--tenant", "acme", "--confirm", &token, "--format", "json"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let done = json(&text(&done.stdout));
    assert_eq!((done["flushed"].as_bool(), done["deleted"].as_u64()), (Some(true), Some(2_000)));
    assert_eq!(count(&d, port, "tenant:acme:*"), 0);
    assert_eq!(count(&d, port, "tenant:beta:*"), 500, "the other tenant's keys stay");
    assert_eq!(count(&d, port, "other:*"), 100, "keys of no tenant stay");
    // The tenant stays: its user works and it is still listed.
    let mut acme = connect(port, "tenant-acme", &password(&home, "fl", "acme"));
    run(&mut acme, &["SET", "tenant:acme:after", "1"]).expect("the tenant writes again after its flush");
    let listed = json(&tenant_ok(&home, &["list", "fl", "--format", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    let audit = std::fs::read_to_string(d.state_dir().join("audit.log")).expect("audit log");
    assert!(audit.lines().any(|l| l.contains("\"flush\"") && l.contains("ok: 2000 keys deleted")), "{audit}");
    let unknown = home.run(&["flush", "fl", "--tenant", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown.stderr));

    // `tenant update`: new quotas in the stored template, a new password on the node.
    let old_password = password(&home, "fl", "acme");
    let updated = json(&tenant_ok(
        &home,
        &["update", "fl", "acme", "--connections", "9", "--rotate-password", "--format", "json"],
    ));
    assert_eq!(
        (updated["tenant"]["quotas"]["connections"].as_u64(), updated["password_rotated"].as_bool()),
        (Some(9), Some(true))
    );
    let new_password = password(&home, "fl", "acme");
    assert_ne!(old_password, new_password);
    let client = redis::Client::open(format!("redis://tenant-acme:{old_password}@127.0.0.1:{port}/")).expect("client");
    assert!(client.get_connection().is_err(), "the old password no longer works");
    let mut acme = connect(port, "tenant-acme", &new_password);
    run(&mut acme, &["SET", "tenant:acme:rotated", "1"]).expect("the new password works");
    let export = home.ok(&["export", "fl"]);
    assert!(export.contains("\"connections\": 9"), "the stored template keeps the quota");
}

/// Whether `home` has a deployment named `name`.
fn deployed(home: &Home, name: &str) -> bool {
    home.records().iter().any(|r| r["name"] == name)
}

/// `isolation: instance`: each tenant is a redis-server of its own (a
/// standalone deployment `<parent>-<id>` holding that one tenant), made by
/// deploy for declared tenants and by `tenant create`, used, measured,
/// flushed and removed through the parent's name, on a standalone, a
/// Sentinel (TLS) and a Cluster (TLS) parent; destroying the parent
/// destroys its tenants' instances.
#[test]
fn instance_tenants_get_a_redis_server_of_their_own_under_every_mode() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let instance = ["--set", "tenancy.isolation=instance"];
    let standalone_template = standalone(&home, "ins");
    let parents = [
        ("ins", standalone_template.as_str(), 24900, "tenancy.memory_per_tenant=32mb"),
        ("inss", &*sentinel(&home, "inss"), 24920, "tenancy.memory_per_tenant=32mb"),
        ("insc", "examples/cluster-production.yaml", 24940, "tenancy.enabled=true"),
    ];
    for (name, template, port, extra) in parents {
        let base = format!("network.local_base_port={port}");
        let mut args = vec!["--name", name, "--set", &base, "--set", extra];
        args.extend_from_slice(&instance);
        if name == "insc" {
            // The cluster bus ports below the ephemeral range (32768-), where a client's connection can hold one.
            args.extend_from_slice(&["--set", "network.cluster_bus_port_offset=5500"]);
        }
        let d = home.deploy(template, &args);
        let parent_ports: Vec<u16> = d.data_nodes().iter().map(|(_, p)| *p).collect();
        if name == "ins" {
            assert!(deployed(&home, "ins-beta"), "deploy made the declared tenant's instance");
        }
        let own = format!("{name}-acme");
        if name == "ins" {
            // A create cut off after the instance was deployed (the parent
            // does not list the tenant yet) is finished by running it again.
            let stored = d.state_dir().join("template.json");
            let before = std::fs::read(&stored).expect("stored template");
            tenant_ok(&home, &["create", name, "acme", "--memory", "16mb"]);
            std::fs::write(&stored, before).expect("put the parent's template back");
            assert!(deployed(&home, &own), "the instance stays");
        }
        let created = json(&tenant_ok(&home, &["create", name, "acme", "--memory", "16mb", "--format", "json"]));
        assert_eq!(created["tenant"]["instance"], own.as_str(), "{created}");
        let record = home.records().into_iter().find(|r| r["name"] == own.as_str()).expect("its own deployment");
        assert_eq!(record["mode"], "standalone");
        let port_of = record["nodes"][0]["port"].as_u64().expect("port") as u16;
        assert!(!parent_ports.contains(&port_of), "a server of its own");
        let shown = json(&tenant_ok(&home, &["show", name, "acme", "--format", "json"]));
        assert_eq!(shown["nodes"][0][1], "on", "{shown}");
        let file = shown["tenant"]["password"]["file"].as_str().expect("password file");
        assert!(std::fs::metadata(file).is_ok(), "the password is where show says: {file}");

        let exec = |args: &[&str]| {
            let mut all = vec!["exec", name, "acme", "--"];
            all.extend_from_slice(args);
            tenant(&home, &all)
        };
        assert!(exec(&["SET", "tenant:acme:k", "v"]).status.success());
        assert_eq!(text(&exec(&["GET", "tenant:acme:k"]).stdout), "\"v\"\n");
        let out = exec(&["SET", "elsewhere", "v"]);
        assert!(text(&out.stderr).contains("NOPERM"), "bound to its prefix: {}", text(&out.stderr));
        let maxmemory = home.ok(&["exec", &own, "--", "CONFIG", "GET", "maxmemory"]);
        assert!(maxmemory.contains("16777216"), "maxmemory is its memory quota: {maxmemory}");
        for p in &parent_ports {
            let d_keys = home.ok(&["exec", name, "--node", &node_name(&d, *p), "--", "DBSIZE"]);
            assert_eq!(d_keys.trim(), "(integer) 0", "nothing of the tenant on the parent's nodes");
        }
        let stats = json(&tenant_ok(&home, &["stats", name, "acme", "--format", "json"]));
        assert_eq!(stats["keys"], 1);

        let first = json(&text(&home.run(&["flush", name, "--tenant", "acme", "--format", "json"]).stdout));
        assert_eq!(first["total_keys"], 1);
        let token = first["token"].as_str().expect("token");
        assert!(home.run(&["flush", name, "--tenant", "acme", "--confirm", token]).status.success());
        assert_eq!(json(&tenant_ok(&home, &["stats", name, "acme", "--format", "json"]))["keys"], 0);

        assert!(exec(&["SET", "tenant:acme:again", "v"]).status.success());
        let dry = json(&tenant_ok(&home, &["remove", name, "acme", "--dry-run", "--format", "json"]));
        assert_eq!((dry["total_keys"].as_u64(), deployed(&home, &own)), (Some(1), true));
        let removed = json(&tenant_ok(&home, &["remove", name, "acme", "--format", "json"]));
        assert_eq!(removed["deleted"], 1);
        assert!(!deployed(&home, &own), "its instance is destroyed");
        assert!(support::port_refuses(port_of), "and its server stopped");
        let ids = json(&tenant_ok(&home, &["list", name, "--format", "json"]));
        assert!(ids.as_array().into_iter().flatten().all(|t| t["id"] != "acme"), "{ids}");
        if name == "ins" {
            let beta = home.records().into_iter().find(|r| r["name"] == "ins-beta").expect("ins-beta");
            let beta_port = beta["nodes"][0]["port"].as_u64().expect("port") as u16;
            assert!(home.run(&["destroy", "ins", "--purge"]).status.success());
            assert!(!deployed(&home, "ins-beta"), "destroying the parent destroys its tenants' instances");
            assert!(support::port_refuses(beta_port));
        }
    }
}

/// The name of `d`'s node on `port`.
fn node_name(d: &Deployed, port: u16) -> String {
    d.data_nodes().into_iter().find(|(_, p)| *p == port).map(|(n, _)| n).expect("a node on that port")
}

#[test]
fn a_create_that_fails_half_way_leaves_no_user_on_any_node() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(sentinel(&home, "half").as_str(), &["--set", "network.local_base_port=24400"]);
    let data = d.data_nodes();
    let nowhere = |what: &str| {
        for (name, port) in &data[..] {
            let on = users(&d, *port);
            if !on.is_empty() {
                assert!(!on.contains(&"tenant-acme".to_owned()), "{what}: `tenant-acme` left on {name}");
            }
        }
        let listed = json(&tenant_ok(&home, &["list", "half", "--format", "json"]));
        assert_eq!(listed.as_array().map(Vec::len), Some(0), "{what}: the stored template is unchanged");
        let kept = std::fs::read_to_string(home.dir.path().join("secrets/half.json")).unwrap_or_default();
        assert!(!kept.contains("tenant-acme"), "{what}: no password kept for it");
    };

    // The last node refuses ACL SETUSER after the others took the user.
    let (_, last) = data[data.len() - 1];
    assert_eq!(admin(&d, last, &["ACL", "SETUSER", "redplate-admin", "-acl|setuser"]), "OK");
    let out = tenant(&home, &["create", "half", "acme"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("removed again"), "{}", text(&out.stderr));
    nowhere("after a refusal on the last node");

    // A node that is down (the same one: its admin cannot be given its
    // rights back): nothing is changed anywhere.
    let replica = d.record["nodes"].as_array().into_iter().flatten().find(|n| n["port"] == last).expect("node");
    let pid = replica["pid"].as_u64().expect("pid").to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().expect("kill").success());
    let out = tenant(&home, &["create", "half", "acme"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    nowhere("with a node down");
}

#[test]
fn an_interrupted_removal_leaves_the_tenant_off_and_a_second_run_finishes_it() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(standalone(&home, "cut").as_str(), &["--set", "network.local_base_port=24500"]);
    let port = d.data_nodes()[0].1;
    tenant_ok(&home, &["create", "cut", "acme"]);
    load_keys(&d, port, "tenant:acme:", 300_000);
    load_keys(&d, port, "tenant:beta:", 50_000);

    let mut child = Command::new(support::BIN)
        .args(["tenant", "remove", "cut", "acme"])
        .env("REDPLATE_HOME", home.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the removal");
    // Ctrl-C as soon as the first keys are gone: deletion is under way.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let keys: usize = admin(&d, port, &["DBSIZE"]).parse().unwrap_or(usize::MAX);
        if keys < 350_000 || child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("the removal ends");
    let left = count(&d, port, "tenant:acme:*");
    eprintln!("interrupted removal: exit {:?}, {left} of 300000 keys left", out.status.code());
    if out.status.code() == Some(2) {
        assert!(text(&out.stderr).contains("tenant.remove-interrupted"), "{}", text(&out.stderr));
        assert!(left < 300_000, "deletion had begun");
        let flags = admin(&d, port, &["ACL", "GETUSER", "tenant-acme"]);
        assert!(flags.lines().any(|l| l == "off"), "the user stays off:\n{flags}");
        let pw = password(&home, "cut", "acme");
        assert!(
            redis::Client::open(format!("redis://tenant-acme:{pw}@127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection())
                .is_err()
        );
        assert!(tenant_ok(&home, &["list", "cut"]).contains("acme"), "still listed until removed");
    } else {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(count(&d, port, "tenant:beta:*"), 50_000);

    if out.status.code() == Some(2) {
        let second = json(&tenant_ok(&home, &["remove", "cut", "acme", "--format", "json"]));
        assert_eq!(second["total_keys"].as_u64(), Some(left as u64), "the second run finds what is left");
    }
    assert_eq!(count(&d, port, "tenant:acme:*"), 0);
    assert_eq!(count(&d, port, "tenant:beta:*"), 50_000, "the other tenant's keys stay");
    assert!(!users(&d, port).contains(&"tenant-acme".to_owned()));
    let again = tenant(&home, &["remove", "cut", "acme"]);
    assert_eq!(again.status.code(), Some(2), "nothing left to remove");
    assert!(text(&again.stderr).contains("tenant.unknown"));
}

#[test]
fn create_refuses_what_cannot_work_and_says_what_to_change() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(standalone(&home, "no").as_str(), &["--set", "network.local_base_port=24600"]);
    let refused = |args: &[&str], code: &str| {
        let out = tenant(&home, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(code), "{args:?} says `{code}`: {}", text(&out.stderr));
        text(&out.stderr)
    };
    refused(&["create", "no", "beta"], "tenant.exists");
    refused(&["create", "no", "Bad!"], "tenant.bad-id");
    let big = refused(&["create", "no", "big", "--memory", "10gb"], "tenant.does-not-fit");
    assert!(big.contains("tenancy.declared-memory-exceeds") && big.contains("--memory"), "{big}");
    refused(&["create", "no", "many", "--connections", "999999"], "tenant.does-not-fit");
    refused(&["create", "no", "x", "--password-file", "/nonexistent/pw"], "tenant.password-file");
    let listed = json(&tenant_ok(&home, &["list", "no", "--format", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "nothing was added");
    assert_eq!(users(&d, d.data_nodes()[0].1).iter().filter(|u| u.starts_with("tenant-")).count(), 1);

    // Isolation by database cannot be enforced by Redis 7 ACLs: refused, with the alternatives.
    let db = home.dir.path().join("db.yaml");
    std::fs::write(
        &db,
        "extends: development\ndeployment: { name: db }\n\
         security: { auth_enabled: true, password: { generate: true } }\n\
         tenancy: { enabled: true, isolation: database, max_tenants: 4, memory_per_tenant: 32mb }\n",
    )
    .expect("write template");
    let _db = home.deploy(db.display().to_string().as_str(), &["--set", "network.local_base_port=24610"]);
    let why = refused(&["create", "db", "acme"], "tenant.database-isolation");
    assert!(why.contains("key_prefix") && why.contains("instance"), "names the alternatives: {why}");

    let _plain = home.deploy("examples/standalone-development.yaml", &["--set", "network.local_base_port=24620"]);
    refused(&["create", "dev-cache", "acme"], "tenant.tenancy-off");
}
