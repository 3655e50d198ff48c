//! The directives of the ConfigMap's `redis.conf` and `sentinel.conf`.
//!
//! No password is ever part of them: `masteruser`/`masterauth`, `replicaof`,
//! announce names and `sentinel auth-pass` are appended at pod start by the
//! init script, which reads the passwords from the mounted Secret.

use crate::ctx::{Ctx, RUN_DIR, TLS_DIR};
use crate::input::{Get, Input, maxmemory};
use serde_json::Value;

fn yn(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

/// Pushes directives in order; a strategy directive replaces the same name.
pub struct Conf(Vec<(String, String)>);

impl Conf {
    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.0.push((k.to_owned(), v.into()));
    }
    /// The template data: `[{name, value}]`.
    pub fn json(&self) -> Value {
        json!(self.0.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>())
    }

    /// The `{{#each directives}}` part of the config templates, natively:
    /// `name value` per line.
    pub fn write_lines(&self, out: &mut String) {
        for (k, v) in &self.0 {
            out.push_str(k);
            out.push(' ');
            out.push_str(v);
            out.push('\n');
        }
    }
}

fn tls_files(c: &mut Conf, tls: &Value) {
    c.set("tls-cert-file", format!("{TLS_DIR}/tls.crt"));
    c.set("tls-key-file", format!("{TLS_DIR}/tls.key"));
    c.set("tls-ca-cert-file", format!("{TLS_DIR}/ca.crt"));
    let auth_clients = match tls.s("client_auth", "none").as_str() {
        "required" => "yes",
        "optional" => "optional",
        _ => "no",
    };
    c.set("tls-auth-clients", auth_clients);
    let protocols = tls.list("protocols");
    c.set(
        "tls-protocols",
        format!("\"{}\"", if protocols.is_empty() { "TLSv1.2 TLSv1.3".into() } else { protocols.join(" ") }),
    );
    let suites = tls.s("ciphersuites", "");
    if !suites.is_empty() {
        c.set("tls-ciphersuites", suites);
    }
    c.set("tls-prefer-server-ciphers", yn(tls.b("prefer_server_ciphers", true)));
    c.set("tls-session-caching", yn(tls.b("session_caching", true)));
}

/// `redis.conf` for every data node of the deployment.
pub fn redis_directives(input: &Input, ctx: &Ctx) -> Conf {
    let cfg = &input.config;
    let (net, per, rep, mem, perf, clu, sec) =
        (&cfg.network, &cfg.persistence, &cfg.replication, &cfg.memory, &cfg.performance, &cfg.cluster, &cfg.security);
    let tls = &sec.tls;
    let mut c = Conf(Vec::new());
    // Pods are reached through their Service and NetworkPolicy: listen on all
    // interfaces of the pod network namespace, whatever `bind` says locally.
    c.set("bind", if net.b("ipv6", false) { "* -::*" } else { "0.0.0.0" });
    // With no password on the `default` user, protected mode would refuse
    // every client outside the pod (the other nodes, Sentinel, the exporter,
    // applications): the NetworkPolicy is what guards such a deployment.
    let no_password = !sec.auth_enabled && sec.default_user_enabled;
    c.set("protected-mode", yn(sec.protected_mode && !no_password));
    c.set("port", if ctx.plain { ctx.port.to_string() } else { "0".into() });
    if ctx.tls {
        c.set("tls-port", ctx.tls_port.to_string());
        tls_files(&mut c, tls);
        c.set("tls-replication", yn(tls.b("replication", true)));
        if ctx.mode == "cluster" {
            c.set("tls-cluster", yn(tls.b("cluster", true)));
        }
    }
    c.set("daemonize", "no");
    c.set("loglevel", "notice");
    c.set("logfile", "\"\"");
    c.set("dir", per.s("data_dir", "/data"));
    c.set("tcp-backlog", perf.n("tcp_backlog", 511).to_string());
    c.set("timeout", (perf.millis("timeout", 0) / 1000).to_string());
    c.set("tcp-keepalive", (perf.millis("tcp_keepalive", 300_000) / 1000).to_string());
    c.set("maxclients", perf.n("maxclients", 10000).to_string());
    c.set("databases", if ctx.mode == "cluster" { "1".into() } else { perf.n("databases", 16).to_string() });
    c.set("hz", perf.n("hz", 10).to_string());
    let threads = perf.n("io_threads", 1);
    if threads > 1 {
        c.set("io-threads", threads.to_string());
    }
    c.set("slowlog-log-slower-than", (perf.millis("slowlog_log_slower_than", 10) * 1000).to_string());
    c.set("slowlog-max-len", perf.n("slowlog_max_len", 128).to_string());
    c.set("latency-monitor-threshold", perf.millis("latency_monitor_threshold", 0).to_string());
    // Memory: tied to the container limit so the kernel never OOM-kills Redis.
    let limit = cfg.resources.bytes("memory", 1 << 30);
    c.set("maxmemory", maxmemory(mem, limit).to_string());
    c.set("maxmemory-policy", mem.s("maxmemory_policy", "noeviction"));
    c.set("maxmemory-samples", mem.n("maxmemory_samples", 5).to_string());
    for (k, d) in [
        ("lazyfree-lazy-eviction", "lazyfree_lazy_eviction"),
        ("lazyfree-lazy-expire", "lazyfree_lazy_expire"),
        ("lazyfree-lazy-server-del", "lazyfree_lazy_server_del"),
        ("lazyfree-lazy-user-del", "lazyfree_lazy_user_del"),
        ("replica-lazy-flush", "replica_lazy_flush"),
    ] {
        c.set(k, yn(mem.b(d, true)));
    }
    c.set("activedefrag", yn(mem.b("active_defrag", false)));
    // Persistence.
    let pmode = per.s("mode", "none");
    let rdb = pmode == "rdb" || pmode == "mixed";
    let aof = pmode == "aof" || pmode == "mixed";
    let save: Vec<String> = match per.get("save") {
        Some(Value::Array(points)) if rdb => {
            points.iter().map(|p| format!("{} {}", p.n("seconds", 3600), p.n("changes", 1))).collect()
        }
        _ => Vec::new(),
    };
    c.set("save", if save.is_empty() { "\"\"".into() } else { save.join(" ") });
    c.set("dbfilename", per.s("rdb_filename", "dump.rdb"));
    c.set("rdbcompression", yn(per.b("rdb_compression", true)));
    c.set("rdbchecksum", yn(per.b("rdb_checksum", true)));
    c.set("stop-writes-on-bgsave-error", yn(per.b("stop_writes_on_bgsave_error", true)));
    c.set("appendonly", yn(aof));
    if aof {
        if ctx.major >= 7 {
            c.set("appenddirname", per.s("aof_dirname", "appendonlydir"));
        }
        c.set("appendfsync", per.s("appendfsync", "everysec"));
        c.set("aof-use-rdb-preamble", yn(per.b("aof_use_rdb_preamble", true)));
        c.set("auto-aof-rewrite-percentage", per.n("auto_aof_rewrite_percentage", 100).to_string());
        c.set("auto-aof-rewrite-min-size", per.bytes("auto_aof_rewrite_min_size", 64 << 20).to_string());
        c.set("no-appendfsync-on-rewrite", yn(per.b("no_appendfsync_on_rewrite", false)));
        c.set("aof-load-truncated", yn(per.b("aof_load_truncated", true)));
        if ctx.major >= 7 {
            // `#TS:` annotations: what a point-in-time restore cuts the AOF at.
            c.set("aof-timestamp-enabled", yn(per.b("aof_timestamp_enabled", false)));
        }
    }
    // Replication.
    if ctx.mode != "standalone" {
        c.set("repl-backlog-size", rep.bytes("backlog_size", 1 << 20).to_string());
        c.set("repl-diskless-sync", yn(rep.b("diskless_sync", true)));
        c.set("repl-timeout", (rep.millis("timeout", 60_000) / 1000).to_string());
        c.set("replica-read-only", yn(rep.b("replica_read_only", true)));
        c.set("replica-serve-stale-data", yn(rep.b("replica_serve_stale_data", true)));
        c.set("replica-priority", rep.n("replica_priority", 100).to_string());
        let min = rep.n("min_replicas_to_write", 0);
        if min > 0 && ctx.mode != "cluster" {
            c.set("min-replicas-to-write", min.to_string());
            c.set("min-replicas-max-lag", (rep.millis("min_replicas_max_lag", 10_000) / 1000).to_string());
        }
    }
    if ctx.mode == "cluster" {
        c.set("cluster-enabled", "yes");
        c.set("cluster-config-file", format!("{}/{}", per.s("data_dir", "/data"), clu.s("config_file", "nodes.conf")));
        c.set("cluster-node-timeout", clu.millis("node_timeout", 15_000).to_string());
        c.set("cluster-require-full-coverage", yn(clu.b("require_full_coverage", false)));
        c.set("cluster-migration-barrier", clu.n("migration_barrier", 1).to_string());
        c.set("cluster-allow-reads-when-down", yn(clu.b("allow_reads_when_down", false)));
        c.set("cluster-replica-validity-factor", clu.n("replica_validity_factor", 10).to_string());
        if ctx.major >= 7 && clu.b("announce_hostnames", true) {
            c.set("cluster-preferred-endpoint-type", "hostname");
        }
    }
    // Security: users come from the ACL file the init script writes.
    if ctx.auth {
        c.set("aclfile", format!("{RUN_DIR}/users.acl"));
        c.set("acllog-max-len", sec.acllog_max_len.unwrap_or(128).to_string());
    }
    if !sec.acl_pubsub_default.is_empty() {
        c.set("acl-pubsub-default", sec.acl_pubsub_default.clone());
    }
    // A strategy directive replaces the generator's own value (INPUT.md).
    if let Some(strategy) = &input.strategy {
        for d in &strategy.directives {
            if let Some(slot) = c.0.iter_mut().find(|(k, _)| *k == d.name) {
                slot.1 = d.value.clone();
            } else {
                c.set(&d.name, d.value.clone());
            }
        }
    }
    c
}

/// `sentinel.conf` up to (and including) the `sentinel monitor` line, whose
/// master address `@@MASTER_HOST@@` the init script fills in.
pub fn sentinel_directives(input: &Input, ctx: &Ctx) -> Conf {
    let s = &input.config.sentinel;
    let tls = &input.config.security.tls;
    let mut c = Conf(Vec::new());
    if ctx.tls_sentinel {
        c.set("port", "0");
        c.set("tls-port", ctx.sentinel_port.to_string());
        tls_files(&mut c, tls);
        c.set("tls-replication", "yes");
    } else {
        c.set("port", ctx.sentinel_port.to_string());
    }
    c.set("daemonize", "no");
    c.set("dir", RUN_DIR);
    c.set("sentinel resolve-hostnames", yn(s.b("resolve_hostnames", true)));
    c.set("sentinel announce-hostnames", yn(s.b("announce_hostnames", true)));
    if s.b("deny_scripts_reconfig", true) {
        c.set("sentinel deny-scripts-reconfig", "yes");
    }
    let master = sentinel_master_name(input);
    c.set(
        "sentinel monitor",
        format!("{master} @@MASTER_HOST@@ {} {}", ctx.redis_port(), s.n("quorum", ctx.sentinels / 2 + 1)),
    );
    c.set("sentinel down-after-milliseconds", format!("{master} {}", s.millis("down_after", 10_000)));
    c.set("sentinel failover-timeout", format!("{master} {}", s.millis("failover_timeout", 180_000)));
    c.set("sentinel parallel-syncs", format!("{master} {}", s.n("parallel_syncs", 1)));
    c
}

pub fn sentinel_master_name(input: &Input) -> String {
    input.topology.master_name.clone().unwrap_or_else(|| input.config.sentinel.s("master_name", "mymaster"))
}

/// The ACL file template: one line per user, the password's sha256 left as a
/// `@@pwN@@` placeholder the init script replaces from the mounted Secret.
pub fn acl_users(ctx: &Ctx) -> Vec<AclLine> {
    ctx.users
        .iter()
        .enumerate()
        .map(|(i, u)| AclLine {
            name: u.name.clone(),
            state: if u.enabled { "on" } else { "off" },
            password: if u.secret.is_some() { format!("#@@pw{i}@@") } else { "resetpass".into() },
            rules: u.rules.join(" "),
        })
        .collect()
}

/// One `user` line of the ACL file template.
#[derive(serde::Serialize)]
pub struct AclLine {
    pub name: String,
    pub state: &'static str,
    pub password: String,
    pub rules: String,
}

impl AclLine {
    /// The line as `users.acl.hbs` writes it.
    pub fn write_line(&self, out: &mut String) {
        out.push_str("user ");
        out.push_str(&self.name);
        out.push(' ');
        out.push_str(self.state);
        out.push(' ');
        out.push_str(&self.password);
        if !self.rules.is_empty() {
            out.push(' ');
            out.push_str(&self.rules);
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> Input {
        serde_json::from_value(v).expect("input")
    }

    #[test]
    fn a_strategy_directive_replaces_the_generators_value_once() {
        let i = input(json!({
            "name": "t",
            "config": { "memory": { "maxmemory_policy": "noeviction" } },
            "topology": { "mode": "standalone", "shards": 1, "nodes": [{ "name": "t-0", "role": "master" }] },
            "strategy": { "name": "cache-aside", "directives": [
                { "name": "maxmemory-policy", "value": "allkeys-lru" },
                { "name": "notify-keyspace-events", "value": "Ex" },
            ] },
        }));
        let ctx = Ctx::new(&i);
        let d = redis_directives(&i, &ctx).json();
        let names: Vec<&str> = d.as_array().into_iter().flatten().filter_map(|x| x["name"].as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == "maxmemory-policy").count(), 1);
        let policy = d.as_array().into_iter().flatten().find(|x| x["name"] == "maxmemory-policy");
        assert_eq!(policy.map(|p| p["value"].clone()), Some(json!("allkeys-lru")));
        assert!(names.contains(&"notify-keyspace-events"));
    }

    #[test]
    fn acl_lines_hold_placeholders_not_passwords() {
        let i = input(json!({
            "name": "t",
            "config": { "security": { "auth_enabled": true, "default_user_enabled": false, "users": [
                { "name": "app", "role": "app", "password": { "secret": { "name": "app-s", "key": "pw" } },
                  "keys": ["app:*"], "commands": ["+@read"] },
                { "name": "nopw", "role": "app" },
            ], "disabled_categories": ["dangerous"] } },
            "topology": { "mode": "standalone", "shards": 1, "nodes": [{ "name": "t-0", "role": "master" }] },
            "secrets": { "users": { "app": { "secret_name": "app-s", "secret_key": "pw", "password": "hunter2" } } },
        }));
        let ctx = Ctx::new(&i);
        let lines = serde_json::to_value(acl_users(&ctx)).expect("serializes");
        let text = lines.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(lines[0]["name"], "default");
        assert_eq!(lines[0]["state"], "off");
        assert_eq!(lines[1]["password"], "#@@pw1@@");
        assert_eq!(lines[1]["rules"], "~app:* +@read -@dangerous");
        assert_eq!(lines[2]["password"], "resetpass");
        let app = ctx.users.iter().find(|u| u.name == "app").and_then(|u| u.secret.clone());
        assert_eq!(app.map(|s| (s.secret_name, s.secret_key)), Some(("app-s".into(), "pw".into())));
    }
}
