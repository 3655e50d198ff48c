//! The proof: every preset × mode is rendered by the plugin, booted as real
//! Redis 7.0 processes on free loopback ports, and checked from the outside
//! with `redis-cli`: `CONFIG GET` reports what was rendered and what the
//! config asked for, ACL users have exactly their intended permissions,
//! replicas sync, sentinels agree on the master and a cluster covers all
//! 16384 slots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use redplate_config::model::Environment;
use redplate_config::topology::Role;
use std::time::Duration;
use support::cli::Who;
use support::{Deployment, Spec, TIMEOUT, expect, random_hex, tools_present};

/// Users and tenants added to the auth presets, to exercise users.acl.
const USERS: &str = r#"
security:
  users:
    - { name: admin, role: admin, password: { generate: true } }
    - name: app
      role: app
      password: { generate: true }
      commands: ["+@read", "+@write", "+@connection"]
      keys: ["app:*"]
      channels: ["app:*"]
tenancy:
  enabled: true
  isolation: key_prefix
  prefix_pattern: "tenant:{tenantId}:"
  channel_pattern: "tenant:{tenantId}:*"
  tenants:
    - { id: acme, password: { generate: true } }
    - { id: globex, password: { generate: true } }
"#;

fn spec(preset: Environment, mode: &'static str) -> Spec {
    let mut sets = vec!["deployment.name=t".to_owned()];
    let yaml = if preset == Environment::Development { String::new() } else { USERS.to_owned() };
    if preset == Environment::Development && matches!(mode, "replication" | "sentinel") {
        sets.push("replication.replicas=1".into());
    }
    if preset == Environment::Production {
        // Debian's redis-server is built without the jemalloc that `activedefrag yes` needs
        // (the plugin warns about it on the local target); upstream images accept it.
        sets.push("memory.active_defrag=false".into());
    }
    Spec { preset, mode, yaml, sets, strategy: None }
}

/// Boots one preset × mode and runs every check that applies.
fn prove(preset: Environment, mode: &'static str) {
    prove_spec(&spec(preset, mode));
}

fn prove_spec(spec: &Spec) {
    let (preset, mode) = (spec.preset, spec.mode);
    let test = format!("{preset} × {mode}");
    if !tools_present(&test) {
        return;
    }
    let started = std::time::Instant::now();
    let d = Deployment::start(spec);
    let booted = started.elapsed();
    if mode == "cluster" {
        form_cluster(&d);
    }
    for n in d.data_nodes() {
        let bad = expect::check_node(&d, &n);
        assert!(bad.is_empty(), "{test}: `{}` differs from its config:\n  {}", n.name, bad.join("\n  "));
    }
    // Replicas first: with `min-replicas-to-write` the masters refuse writes until they are synced.
    if matches!(mode, "replication" | "sentinel" | "cluster") {
        check_replication(&d);
    }
    if d.auth() {
        check_acl(&d);
    }
    if mode == "sentinel" {
        check_sentinels(&d);
    }
    eprintln!("{test}: booted in {booted:?}, proven in {:?}", started.elapsed());
}

fn master(d: &Deployment) -> redplate_config::topology::Node {
    d.topology.nodes.iter().find(|n| n.role == Role::Master).cloned().expect("a master")
}

/// `-c` in cluster mode so keys follow MOVED.
fn data_opts(d: &Deployment) -> &'static [&'static str] {
    if d.topology.mode == redplate_config::model::Mode::Cluster { &["-c"] } else { &[] }
}

fn check_acl(d: &Deployment) {
    let m = master(d);
    let opts = data_opts(d);
    let run = |who: Who, args: &[&str]| d.cli_opts(&m, who, opts, args, None);
    // The probe may only PING.
    assert_eq!(run(Who::User("probe"), &["PING"]).stdout, "PONG");
    for args in [&["GET", "x"][..], &["INFO"], &["CONFIG", "GET", "maxmemory"], &["CLIENT", "LIST"]] {
        assert!(run(Who::User("probe"), args).denied(), "probe ran {args:?}");
    }
    // The exporter reads metrics, never keys, and changes nothing.
    assert!(run(Who::User("exporter"), &["INFO", "server"]).stdout.contains("redis_version:7."));
    assert!(run(Who::User("exporter"), &["CONFIG", "GET", "maxmemory"]).stdout.starts_with("maxmemory"));
    for args in [&["GET", "x"][..], &["SET", "x", "1"], &["CONFIG", "SET", "hz", "20"], &["KEYS", "*"]] {
        assert!(run(Who::User("exporter"), args).denied(), "exporter ran {args:?}");
    }
    // The replication user can sync and do nothing else; the sentinel user what Sentinel needs.
    for (user, cmd, ok) in [
        ("replication", "psync ? -1", true),
        ("replication", "replconf listening-port 1", true),
        ("replication", "get x", false),
        ("replication", "flushall", false),
        ("sentinel", "slaveof no one", true),
        ("sentinel", "config rewrite", true),
        ("sentinel", "get x", false),
        ("sentinel", "config set hz 20", false),
    ] {
        let mut args = vec!["ACL", "DRYRUN", user];
        args.extend(cmd.split(' '));
        let reply = run(d.admin(), &args);
        assert_eq!(reply.stdout == "OK", ok, "ACL DRYRUN {user} {cmd}: {}", reply.stdout);
    }
    // Tenants: full use of their own prefix and channels, nothing of the others'.
    let acme = Who::User("tenant-acme");
    let globex = Who::User("tenant-globex");
    assert_eq!(run(globex, &["SET", "tenant:globex:secret", "g"]).stdout, "OK");
    assert_eq!(run(acme, &["SET", "tenant:acme:k", "v"]).stdout, "OK");
    assert_eq!(run(acme, &["GET", "tenant:acme:k"]).stdout, "v");
    assert_eq!(run(acme, &["HSET", "tenant:acme:h", "f", "v"]).stdout, "1");
    assert_eq!(run(acme, &["RPUSH", "tenant:acme:l", "a", "b"]).stdout, "2");
    assert_eq!(run(acme, &["SADD", "tenant:acme:s", "a"]).stdout, "1");
    assert_eq!(run(acme, &["ZADD", "tenant:acme:z", "1", "a"]).stdout, "1");
    assert!(!run(acme, &["XADD", "tenant:acme:x", "*", "f", "v"]).denied());
    assert_eq!(run(acme, &["EXPIRE", "tenant:acme:k", "100"]).stdout, "1");
    assert_eq!(run(acme, &["PUBLISH", "tenant:acme:news", "hi"]).stdout, "0");
    if opts.is_empty() {
        let tx = d.cli_opts(&m, acme, &[], &[], Some("MULTI\nINCR tenant:acme:n\nINCR tenant:acme:n\nEXEC\n"));
        assert_eq!(tx.lines(), ["OK", "QUEUED", "QUEUED", "1", "2"], "a tenant transaction: {tx:?}");
    }
    let denied: &[&[&str]] = &[
        &["GET", "tenant:globex:secret"],
        &["SET", "tenant:globex:secret", "x"],
        &["GET", "tenant:acmex"],
        &["SET", "tenant:ac", "x"],
        &["PUBLISH", "tenant:globex:news", "x"],
        &["SUBSCRIBE", "tenant:globex:news"],
        &["SCAN", "0"],
        &["KEYS", "*"],
        &["RANDOMKEY"],
        &["DBSIZE"],
        &["INFO"],
        &["FLUSHALL"],
        &["FLUSHDB"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "hz", "20"],
        &["SLOWLOG", "GET"],
        &["CLIENT", "LIST"],
        &["ACL", "LIST"],
        &["MEMORY", "STATS"],
        &["MONITOR"],
        &["PUBSUB", "CHANNELS"],
        &["SELECT", "1"],
        &["SWAPDB", "0", "1"],
        &["FUNCTION", "FLUSH"],
        &["SCRIPT", "FLUSH"],
        &["EVAL", "return 1", "0"],
        &["SHUTDOWN"],
        &["BGSAVE"],
        &["REPLICAOF", "NO", "ONE"],
    ];
    for args in denied {
        let reply = run(acme, args);
        assert!(reply.denied(), "tenant-acme ran {args:?}: {reply:?}");
    }
    assert_eq!(run(globex, &["GET", "tenant:globex:secret"]).stdout, "g", "globex's key is intact");
    // The app user: its patterns only, and the disabled commands are gone.
    assert_eq!(run(Who::User("app"), &["SET", "app:1", "x"]).stdout, "OK");
    assert!(run(Who::User("app"), &["GET", "tenant:acme:k"]).denied());
    // (ACL DRYRUN, so that a permission bug could not shut the server down.)
    for cmd in &d.config.security.disabled_commands {
        let mut args = vec!["ACL", "DRYRUN", "app", cmd.as_str()];
        args.extend(match cmd.as_str() {
            "keys" => &["*"][..],
            "debug" => &["sleep", "0"],
            _ => &[],
        });
        let reply = run(d.admin(), &args);
        assert!(reply.stdout.contains("no permissions"), "app may run disabled `{cmd}`: {reply:?}");
    }
    // `default` is off when the config says so.
    if !d.config.security.default_user_enabled {
        let mut cmd = std::process::Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &d.port(&m).to_string(), "--no-auth-warning"]);
        d.tls_and_auth(&mut cmd, Who::Default);
        cmd.args(["GET", "x"]);
        let reply = support::cli::run(cmd, None, TIMEOUT);
        assert!(reply.stdout.contains("NOAUTH") || reply.stdout.contains("NOPERM"), "default user: {reply:?}");
    }
}

fn check_replication(d: &Deployment) {
    let replicas: Vec<_> = d.topology.nodes.iter().filter(|n| n.role == Role::Replica).cloned().collect();
    assert!(!replicas.is_empty(), "a replicated mode without replicas");
    for r in &replicas {
        d.wait(&format!("`{}` to sync from its master", r.name), TIMEOUT, || {
            let info = d.cli(r, d.admin(), &["INFO", "replication"]).stdout;
            Ok(info.contains("master_link_status:up"))
        });
    }
    let value = random_hex(8);
    let key = format!("replicated:{value}");
    let m = master(d);
    let opts = data_opts(d);
    // min-replicas-to-write may refuse writes until a replica has acknowledged.
    d.wait("a write on the master", TIMEOUT, || {
        let reply = d.cli_opts(&m, d.admin(), opts, &["SET", &key, &value], None);
        Ok(reply.stdout == "OK").and_then(|ok| if ok { Ok(true) } else { Err(reply.stdout) })
    });
    if opts.is_empty() {
        for r in &replicas {
            d.wait(&format!("the key on `{}`", r.name), TIMEOUT, || {
                Ok(d.cli(r, d.admin(), &["GET", &key]).stdout == value)
            });
        }
    } else {
        // Only the replica of the slot's master has the key; it serves it after READONLY.
        d.wait("the key on a replica", TIMEOUT, || {
            Ok(replicas.iter().any(|r| {
                let reply = d.cli_opts(r, d.admin(), &[], &[], Some(&format!("READONLY\nGET {key}\n")));
                reply.lines().last() == Some(&value.as_str())
            }))
        });
    }
}

fn check_sentinels(d: &Deployment) {
    let m = master(d);
    let port = d.port(&m).to_string();
    let name = d.topology.master_name.clone().expect("master name");
    let sentinels: Vec<_> = d.topology.nodes.iter().filter(|n| n.role == Role::Sentinel).cloned().collect();
    let replicas = d.topology.nodes.iter().filter(|n| n.role == Role::Replica).count();
    for s in &sentinels {
        d.wait(&format!("`{}` to agree on the master", s.name), Duration::from_secs(30), || {
            let addr = d.cli(s, Who::Sentinel, &["SENTINEL", "get-master-addr-by-name", &name]);
            if addr.lines() != ["127.0.0.1", port.as_str()] {
                return Err(format!("get-master-addr-by-name: {addr:?}"));
            }
            let info = d.cli(s, Who::Sentinel, &["SENTINEL", "master", &name]).stdout;
            let fields: Vec<&str> = info.lines().collect();
            let field =
                |k: &str| fields.iter().position(|f| *f == k).and_then(|i| fields.get(i + 1)).copied().unwrap_or("");
            let ok = field("flags") == "master"
                && field("num-slaves") == replicas.to_string()
                && field("num-other-sentinels") == (sentinels.len() - 1).to_string();
            if ok { Ok(true) } else { Err(format!("SENTINEL master: {}", fields.join(" "))) }
        });
        check_sentinel_settings(d, s, &name);
    }
}

/// What each sentinel reports equals what the config asked for.
fn check_sentinel_settings(d: &Deployment, s: &redplate_config::topology::Node, name: &str) {
    let c = &d.config.sentinel;
    let pairs = |args: &[&str]| -> Vec<(String, String)> {
        let reply = d.cli(s, Who::Sentinel, args).stdout;
        let mut lines: Vec<&str> = reply.split('\n').collect();
        if lines.len() % 2 == 1 {
            lines.push("");
        }
        lines.chunks(2).map(|p| (p[0].to_owned(), p[1].to_owned())).collect()
    };
    let master = pairs(&["SENTINEL", "master", name]);
    let config = pairs(&["SENTINEL", "CONFIG", "GET", "*"]);
    let yn = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let announce_ip =
        if c.announce_hostnames && d.config.network.announce_hostname { s.hostname.clone() } else { String::new() };
    let want = [
        (&master, "quorum", c.quorum.to_string()),
        (&master, "down-after-milliseconds", c.down_after.as_millis().to_string()),
        (&master, "failover-timeout", c.failover_timeout.as_millis().to_string()),
        (&master, "parallel-syncs", c.parallel_syncs.to_string()),
        (&config, "resolve-hostnames", yn(c.resolve_hostnames)),
        (&config, "announce-hostnames", yn(c.announce_hostnames)),
        (&config, "announce-ip", announce_ip),
    ];
    for (list, key, value) in want {
        let got = list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(got, Some(value.as_str()), "`{}` reports `{key}`", s.name);
    }
}

fn form_cluster(d: &Deployment) {
    let nodes = d.data_nodes();
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.arg("--no-auth-warning");
    d.tls_and_auth(&mut cmd, d.admin());
    cmd.args(["--cluster", "create"]);
    for n in &nodes {
        cmd.arg(format!("127.0.0.1:{}", d.port(n)));
    }
    let replicas = d.config.cluster.replicas_per_shard.to_string();
    cmd.args(["--cluster-replicas", &replicas, "--cluster-yes"]);
    let reply = support::cli::run(cmd, None, Duration::from_secs(60));
    assert!(reply.stdout.contains("All 16384 slots covered"), "cluster create: {reply:?}{}", d.logs());
    let known = nodes.len().to_string();
    for n in &nodes {
        d.wait(&format!("`{}` to see cluster_state:ok", n.name), TIMEOUT, || {
            let info = d.cli(n, d.admin(), &["CLUSTER", "INFO"]).stdout;
            let ok = info.contains("cluster_state:ok")
                && info.contains("cluster_slots_assigned:16384")
                && info.contains("cluster_slots_ok:16384")
                && info.contains(&format!("cluster_known_nodes:{known}"));
            if ok { Ok(true) } else { Err(info) }
        });
    }
}

/// A strategy's directives replace the config's own in real Redis: each is
/// written once and `CONFIG GET` reports the strategy's value.
#[test]
fn strategy_directives_win_in_real_redis() {
    let mut s = spec(Environment::Staging, "replication");
    s.strategy = Some(serde_json::json!({
        "name": "test-strategy",
        "directives": [
            {"name": "maxmemory-policy", "value": "allkeys-lfu", "reason": "hot keys"},
            {"name": "notify-keyspace-events", "value": "Ex", "reason": "expiry events"},
            {"name": "lazyfree-lazy-expire", "value": "no", "reason": "test"}
        ],
        "key_rules": []
    }));
    prove_spec(&s);
}

/// Sentinel fails over with the rendered users: the master is killed, the
/// sentinels (as the `sentinel` ACL user, over TLS) promote a replica, and the
/// other replica follows it with `masteruser`/`masterauth`.
#[test]
fn production_sentinel_fails_over() {
    let mut s = spec(Environment::Production, "sentinel");
    s.sets.extend(["sentinel.down_after=1s".into(), "sentinel.failover_timeout=10s".into()]);
    if !tools_present("production sentinel failover") {
        return;
    }
    let mut d = Deployment::start(&s);
    check_replication(&d);
    check_sentinels(&d);
    let old = master(&d);
    let name = d.topology.master_name.clone().expect("master name");
    let sentinels: Vec<_> = d.topology.nodes.iter().filter(|n| n.role == Role::Sentinel).cloned().collect();
    d.kill(&old.name);
    let old_port = d.port(&old).to_string();
    let mut promoted = String::new();
    d.wait("the sentinels to promote a replica", Duration::from_secs(40), || {
        let addrs: Vec<String> = sentinels
            .iter()
            .map(|s| d.cli(s, Who::Sentinel, &["SENTINEL", "get-master-addr-by-name", &name]).lines().join(":"))
            .collect();
        let agreed = addrs.iter().all(|a| *a == addrs[0]) && !addrs[0].ends_with(&format!(":{old_port}"));
        promoted = addrs[0].clone();
        if agreed { Ok(true) } else { Err(format!("sentinels answer {addrs:?}")) }
    });
    let replicas: Vec<_> = d.topology.nodes.iter().filter(|n| n.role == Role::Replica).cloned().collect();
    let new_master =
        replicas.iter().find(|r| promoted.ends_with(&format!(":{}", d.port(r)))).expect("a replica was promoted");
    d.wait("the promoted replica to be a master", TIMEOUT, || {
        Ok(d.cli(new_master, d.admin(), &["ROLE"]).lines().first() == Some(&"master"))
    });
    for r in replicas.iter().filter(|r| r.name != new_master.name) {
        d.wait(&format!("`{}` to follow the new master", r.name), Duration::from_secs(40), || {
            let info = d.cli(r, d.admin(), &["INFO", "replication"]).stdout;
            let follows = info.contains(&format!("master_port:{}", d.port(new_master)));
            Ok(follows && info.contains("master_link_status:up"))
        });
    }
}

/// The branches the presets leave out: TLS next to a plain port with client
/// certificates required, the `default` user on with a password, AOF only, an
/// absolute `maxmemory`, and non-default timers.
#[test]
fn staging_variant_boots() {
    let mut s = spec(Environment::Staging, "replication");
    s.sets.extend(
        [
            "security.default_user_enabled=true",
            "security.tls.disable_plain_port=false",
            "security.tls.client_auth=required",
            "persistence.mode=aof",
            "persistence.appendfsync=always",
            "memory.maxmemory=100mb",
            "memory.maxmemory_policy=volatile-lfu",
            "replication.diskless_load=on_empty_db",
            "replication.replicas=1",
            "performance.timeout=300s",
            "performance.hz=20",
            "performance.maxclients=500",
            "performance.io_threads=2",
        ]
        .map(String::from),
    );
    if !tools_present("staging variant") {
        return;
    }
    let d = Deployment::start(&s);
    check_replication(&d);
    for n in d.data_nodes() {
        let bad = expect::check_node(&d, &n);
        assert!(bad.is_empty(), "`{}` differs from its config:\n  {}", n.name, bad.join("\n  "));
        assert!(n.ports.client.is_some() && n.ports.tls.is_some(), "both ports");
    }
    let m = master(&d);
    assert_eq!(d.cli(&m, Who::User("default"), &["SET", "k", "v"]).stdout, "OK", "default user with its password");
    let reply = d.cli(&m, Who::User("default"), &["FLUSHALL"]);
    assert!(reply.denied(), "default keeps the disabled commands off: {reply:?}");
    // `tls-auth-clients yes`: a client without a certificate is turned away.
    let tls = d.tls.clone().expect("tls");
    let mut cmd = std::process::Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &d.port(&m).to_string(), "--tls", "--cacert", &tls.ca, "PING"]);
    let reply = support::cli::run(cmd, None, TIMEOUT);
    assert_ne!(reply.stdout, "PONG", "a client without a certificate was served");
    check_acl(&d);
}

macro_rules! matrix {
    ($($name:ident: $preset:ident, $mode:literal;)*) => {
        $(
            #[test]
            fn $name() {
                prove(Environment::$preset, $mode);
            }
        )*
    };
}

matrix! {
    development_standalone: Development, "standalone";
    development_replication: Development, "replication";
    development_sentinel: Development, "sentinel";
    development_cluster: Development, "cluster";
    staging_standalone: Staging, "standalone";
    staging_replication: Staging, "replication";
    staging_sentinel: Staging, "sentinel";
    staging_cluster: Staging, "cluster";
    production_standalone: Production, "standalone";
    production_replication: Production, "replication";
    production_sentinel: Production, "sentinel";
    production_cluster: Production, "cluster";
}
