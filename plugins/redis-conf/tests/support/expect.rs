//! What `CONFIG GET` must report: (1) every directive the rendered file sets,
//! read back literally (so Redis accepted exactly what was written), and (2) a
//! list derived independently from the typed config (so what was written is
//! what the template asked for).

use super::Deployment;
use redplate_config::model::{Appendfsync, ClientAuth, Mode, PersistenceMode};
use redplate_config::topology::{Node, Role};
use std::collections::BTreeMap;

fn yn(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Directive → value `CONFIG GET` must report, from the typed config alone.
pub fn from_config(d: &Deployment, n: &Node) -> Vec<(String, String)> {
    let c = &d.config;
    let tls = d.tls.as_ref();
    let mut e: Vec<(&'static str, String)> = vec![
        ("port", n.ports.client.unwrap_or(0).to_string()),
        ("bind", c.network.bind.join(" ")),
        ("protected-mode", yn(c.security.protected_mode)),
        ("maxmemory", c.memory.maxmemory.resolve(c.resources.memory).unwrap_or(0).to_string()),
        ("maxmemory-policy", c.memory.maxmemory_policy.as_str().to_owned()),
        ("maxmemory-samples", c.memory.maxmemory_samples.to_string()),
        ("lazyfree-lazy-eviction", yn(c.memory.lazyfree_lazy_eviction)),
        ("lazyfree-lazy-expire", yn(c.memory.lazyfree_lazy_expire)),
        ("lazyfree-lazy-server-del", yn(c.memory.lazyfree_lazy_server_del)),
        ("lazyfree-lazy-user-del", yn(c.memory.lazyfree_lazy_user_del)),
        ("activedefrag", yn(c.memory.active_defrag)),
        ("appendonly", yn(matches!(c.persistence.mode, PersistenceMode::Aof | PersistenceMode::Mixed))),
        (
            "appendfsync",
            match c.persistence.appendfsync {
                Appendfsync::Always => "always",
                Appendfsync::Everysec => "everysec",
                Appendfsync::No => "no",
            }
            .to_owned(),
        ),
        ("aof-use-rdb-preamble", yn(c.persistence.aof_use_rdb_preamble)),
        ("auto-aof-rewrite-percentage", c.persistence.auto_aof_rewrite_percentage.to_string()),
        ("auto-aof-rewrite-min-size", c.persistence.auto_aof_rewrite_min_size.bytes().to_string()),
        ("io-threads", c.performance.io_threads.to_string()),
        ("tcp-backlog", c.performance.tcp_backlog.to_string()),
        ("timeout", c.performance.timeout.as_secs().to_string()),
        ("tcp-keepalive", c.performance.tcp_keepalive.as_secs().to_string()),
        ("hz", c.performance.hz.to_string()),
        ("maxclients", c.performance.maxclients.to_string()),
        ("slowlog-log-slower-than", (c.performance.slowlog_log_slower_than.as_millis() * 1000).to_string()),
        ("slowlog-max-len", c.performance.slowlog_max_len.to_string()),
        ("latency-monitor-threshold", c.performance.latency_monitor_threshold.as_millis().to_string()),
        ("min-replicas-max-lag", c.replication.min_replicas_max_lag.as_secs().to_string()),
        ("repl-backlog-size", c.replication.backlog_size.bytes().to_string()),
        ("repl-diskless-sync", yn(c.replication.diskless_sync)),
        ("repl-timeout", c.replication.timeout.as_secs().to_string()),
        ("replica-read-only", yn(c.replication.replica_read_only)),
    ];
    let save = match c.persistence.mode {
        PersistenceMode::Rdb | PersistenceMode::Mixed => {
            c.persistence.save.iter().map(|p| format!("{} {}", p.seconds, p.changes)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    };
    e.push(("save", save));
    let b = &c.performance.output_buffer_limits;
    let class = |name: &str, l: &redplate_config::model::BufferLimit| {
        format!("{name} {} {} {}", l.hard.bytes(), l.soft.bytes(), l.soft_seconds.as_secs())
    };
    e.push((
        "client-output-buffer-limit",
        format!("{} {} {}", class("normal", &b.normal), class("slave", &b.replica), class("pubsub", &b.pubsub)),
    ));
    let shard_master = n.replica_of.clone().unwrap_or_else(|| n.name.clone());
    let replicas = d.topology.nodes.iter().filter(|m| m.replica_of.as_deref() == Some(shard_master.as_str())).count();
    e.push(("min-replicas-to-write", usize::from(c.replication.min_replicas_to_write).min(replicas).to_string()));
    let dir = d.root().join(&n.data_dir).canonicalize().expect("data dir exists");
    e.push(("dir", dir.to_string_lossy().into_owned()));
    if d.auth() {
        e.push(("aclfile", "../../redis/users.acl".to_owned()));
        if d.topology.nodes.iter().any(|m| m.role == Role::Replica) {
            e.push(("masteruser", "replication".to_owned()));
            e.push(("masterauth", d.passwords["replication"].clone()));
        }
    }
    if let Some(t) = tls {
        e.push(("tls-port", n.ports.tls.unwrap_or(0).to_string()));
        e.push(("tls-cert-file", t.cert.clone()));
        e.push(("tls-key-file", t.key.clone()));
        e.push(("tls-ca-cert-file", t.ca.clone()));
        let auth = match c.security.tls.client_auth {
            ClientAuth::Required => "yes",
            ClientAuth::Optional => "optional",
            ClientAuth::None => "no",
        };
        e.push(("tls-auth-clients", auth.to_owned()));
        e.push(("tls-replication", yn(c.security.tls.replication)));
        if c.deployment.mode == Mode::Cluster {
            e.push(("tls-cluster", yn(c.security.tls.cluster)));
        }
    }
    if c.deployment.mode == Mode::Cluster {
        e.push(("cluster-enabled", "yes".to_owned()));
        e.push(("cluster-config-file", c.cluster.config_file.clone()));
        e.push(("cluster-node-timeout", c.cluster.node_timeout.as_millis().to_string()));
        e.push(("cluster-require-full-coverage", yn(c.cluster.require_full_coverage)));
        e.push(("cluster-migration-barrier", c.cluster.migration_barrier.to_string()));
        e.push(("cluster-port", n.ports.cluster_bus.unwrap_or(0).to_string()));
        if c.cluster.announce_hostnames {
            e.push(("cluster-announce-hostname", n.hostname.clone()));
            e.push(("cluster-preferred-endpoint-type", "hostname".to_owned()));
        }
    } else if let Some(master) = &n.replica_of {
        let m = d.node(master);
        let port = if tls.is_some() && c.security.tls.replication { m.ports.tls } else { m.ports.client };
        e.push(("replicaof", format!("{} {}", m.hostname, port.unwrap_or(0))));
    }
    // The strategy's directives replace the config's own.
    let mut e: Vec<(String, String)> = e.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    let directives = d.input["strategy"]["directives"].as_array().cloned().unwrap_or_default();
    for sd in directives {
        let (Some(name), Some(value)) = (sd["name"].as_str(), sd["value"].as_str()) else { continue };
        e.retain(|(n, _)| *n != name);
        e.push((name.to_owned(), value.to_owned()));
    }
    e
}

/// Redis reports `notify-keyspace-events` flags in its own order.
fn normalize(name: &str, value: &str) -> String {
    if name == "notify-keyspace-events" {
        let mut flags: Vec<char> = value.chars().collect();
        flags.sort_unstable();
        return flags.into_iter().collect();
    }
    value.to_owned()
}

/// `CONFIG GET *` on a node, as a map.
pub fn config_get_all(d: &Deployment, n: &Node) -> BTreeMap<String, String> {
    let reply = d.cli(n, d.admin(), &["CONFIG", "GET", "*"]);
    let mut lines: Vec<&str> = reply.stdout.split('\n').collect();
    // The reply is trimmed: a trailing empty value (`save ""` when it comes last) is restored.
    if lines.len() % 2 == 1 {
        lines.push("");
    }
    assert!(lines.len() > 100, "CONFIG GET * on `{}` answered: {} {}", n.name, reply.stdout, reply.stderr);
    lines.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0].to_owned(), p[1].to_owned())).collect()
}

/// Splits a config line like Redis's `sdssplitargs` (double quotes with
/// `\"`, `\\`, `\n`, `\xHH` escapes).
pub fn split_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { return args };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => arg.push('\n'),
                        Some('r') => arg.push('\r'),
                        Some('t') => arg.push('\t'),
                        Some('x') => {
                            let h: String = chars.by_ref().take(2).collect();
                            arg.push(u8::from_str_radix(&h, 16).map(char::from).unwrap_or('?'));
                        }
                        Some(o) => arg.push(o),
                        None => {}
                    },
                    c => arg.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
}

/// The directives a rendered config file sets (comments and blanks skipped).
pub fn rendered_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut args = split_args(l);
            let name = args.remove(0);
            (name, args.join(" "))
        })
        .collect()
}

/// Compares a node's rendered file and the config-derived list with
/// `CONFIG GET *`; returns the mismatches.
pub fn check_node(d: &Deployment, n: &Node) -> Vec<String> {
    let got = config_get_all(d, n);
    let mut bad = Vec::new();
    let text = d.artifact(&format!("redis/{}/redis.conf", n.name));
    let rendered = rendered_directives(&text);
    for (name, value) in &rendered {
        let want = match name.as_str() {
            "dir" => d.root().join(value).canonicalize().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
            "client-output-buffer-limit" => value.replace("replica ", "slave "),
            _ => value.clone(),
        };
        match got.get(name) {
            Some(v) if normalize(name, v) == normalize(name, &want) => {}
            Some(v) => bad.push(format!("rendered `{name} {want}` but CONFIG GET says `{v}`")),
            None => bad.push(format!("rendered `{name}` but CONFIG GET does not know it")),
        }
    }
    for (name, want) in from_config(d, n) {
        let name = name.as_str();
        if !rendered.iter().any(|(r, _)| r == name) {
            bad.push(format!("the config sets `{name}` but the file does not render it"));
        }
        match got.get(name) {
            Some(v) if normalize(name, v) == normalize(name, &want) => {}
            other => bad.push(format!("config wants `{name} {want}`, CONFIG GET says {other:?}")),
        }
    }
    bad
}
