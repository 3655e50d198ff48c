//! The directives of one data node's `redis.conf`, grouped in sections, from
//! the config, the node's place in the topology and the accounts. Every
//! directive is one Redis 7.0 accepts; sizes are bytes and times are in the
//! unit Redis reports, so `CONFIG GET` gives back exactly what is written.

use crate::acl::Accounts;
use crate::cfg::Cfg;
use crate::conf::{Directive, Section, yes_no};
use crate::input::{Input, Node};
use redplate_plugin_sdk::Diagnostic;

/// Where `users.acl` is, as seen by this node's Redis. `dir` makes Redis
/// change directory while reading its config, so on the `local` target (where
/// paths are relative to the deployment folder) the path climbs back up from
/// the data dir; containers mount it at a fixed place.
pub fn aclfile_path(input: &Input, node: &Node) -> Option<String> {
    if input.target != "local" {
        return Some("/etc/redis/users.acl".into());
    }
    let dir = node.data_dir.trim_end_matches('/');
    if dir.starts_with('/') {
        return None;
    }
    let depth = dir.split('/').filter(|c| !c.is_empty() && *c != ".").count();
    Some(format!("{}redis/users.acl", "../".repeat(depth)))
}

/// The port a node is reached on by replicas and sentinels.
pub fn service_port(cfg: &Cfg, node: &Node, tls_for_peers: bool) -> Option<u16> {
    let tls = cfg.bool("/security/tls/enabled").unwrap_or(false);
    if tls && tls_for_peers { node.ports.tls.or(node.ports.client) } else { node.ports.client.or(node.ports.tls) }
}

/// The sections every data node has in common, decided once per render.
pub struct Shared {
    general: Section,
    tls: Option<Section>,
    memory: Section,
    performance: Section,
    events: Section,
    /// The node-independent parts of the other sections, in file order.
    persistence_tail: Vec<Directive>,
    replication_tail: Vec<Directive>,
    cluster_head: Vec<Directive>,
    cluster_tail: Vec<Directive>,
    security_tail: Vec<Directive>,
}

impl Shared {
    pub fn new(input: &Input, cfg: &Cfg) -> Self {
        let mut events = Section::new("keyspace notifications");
        events.opt("notify-keyspace-events", cfg.str("/cache/keyspace_events").filter(|e| !e.is_empty()));
        Shared {
            general: general(cfg),
            tls: cfg.bool("/security/tls/enabled").unwrap_or(false).then(|| tls(input, cfg)),
            memory: memory(cfg),
            performance: performance(cfg),
            events,
            persistence_tail: persistence_tail(cfg).directives,
            replication_tail: replication_tail(cfg).directives,
            cluster_head: cluster_head(cfg).directives,
            cluster_tail: cluster_tail(cfg).directives,
            security_tail: security_tail(cfg).directives,
        }
    }
}

pub fn sections(
    input: &Input,
    cfg: &Cfg,
    node: &Node,
    acc: &Accounts,
    shared: &Shared,
    out: &mut Vec<Diagnostic>,
) -> Vec<Section> {
    let mut s = Vec::with_capacity(10);
    s.push(network(input, cfg, node));
    s.push(shared.general.clone());
    s.extend(shared.tls.clone());
    s.push(persistence(node, shared));
    s.push(replication(input, cfg, node, acc, shared, out));
    if input.topology.is_cluster() {
        s.push(cluster(cfg, node, shared));
    }
    s.push(security(input, node, acc, shared, out));
    s.push(shared.memory.clone());
    s.push(shared.performance.clone());
    s.push(shared.events.clone());
    s
}

/// Where a node (Redis or Sentinel) listens, and `protected-mode`, per target.
///
/// Processes of the local target share this machine's network: they listen
/// on their loopback host only, protected mode as the template says. A
/// container has a network namespace of its own, reached only through its
/// project network and the ports it publishes (on `compose.publish_address`):
/// it listens on every interface there (as the Kubernetes generator does;
/// `network.bind` is for plugins that run Redis on a shared network), and
/// protected mode is off when the `default` user has no password — Redis
/// would otherwise refuse every client outside its own container: the other
/// nodes, Sentinel, the exporter and the published port.
pub fn listen<'a>(input: &Input, cfg: &Cfg, node: &'a Node) -> (Vec<&'a str>, Option<bool>) {
    if input.target == "local" {
        return (vec![node.hostname.as_str()], cfg.bool("/security/protected_mode"));
    }
    let bind = if cfg.bool("/network/ipv6") == Some(true) { vec!["*", "-::*"] } else { vec!["0.0.0.0"] };
    let no_password =
        cfg.bool("/security/auth_enabled") != Some(true) && cfg.bool("/security/default_user_enabled") != Some(false);
    (bind, if no_password { Some(false) } else { cfg.bool("/security/protected_mode") })
}

fn network(input: &Input, cfg: &Cfg, node: &Node) -> Section {
    let mut s = Section::new("network");
    let (bind, protected) = listen(input, cfg, node);
    s.args("bind", bind);
    s.flag("protected-mode", protected);
    s.set("port", node.ports.client.unwrap_or(0));
    s.opt("tls-port", node.ports.tls);
    if let Some(sock) = cfg.str("/network/unix_socket").filter(|p| !p.is_empty()) {
        s.set("unixsocket", sock);
        s.opt("unixsocketperm", cfg.uint("/network/unix_socket_perm"));
    }
    s.opt("tcp-backlog", cfg.uint("/performance/tcp_backlog"));
    s.opt("timeout", cfg.secs("/performance/timeout"));
    s.opt("tcp-keepalive", cfg.secs("/performance/tcp_keepalive"));
    s
}

fn general(cfg: &Cfg) -> Section {
    let mut s = Section::new("general");
    s.set("daemonize", "no");
    s.opt("databases", cfg.uint("/performance/databases"));
    s
}

fn tls(input: &Input, cfg: &Cfg) -> Section {
    let mut s = Section::new("tls");
    if let Some(files) = &input.secrets.tls {
        s.set("tls-cert-file", &files.cert_file)
            .set("tls-key-file", &files.key_file)
            .set("tls-ca-cert-file", &files.ca_file);
    }
    let auth = cfg.str("/security/tls/client_auth").map(|a| match a {
        "required" => "yes",
        "optional" => "optional",
        _ => "no",
    });
    s.opt("tls-auth-clients", auth);
    s.flag("tls-replication", cfg.bool("/security/tls/replication"));
    if input.topology.is_cluster() {
        s.flag("tls-cluster", cfg.bool("/security/tls/cluster"));
    }
    let protocols = cfg.strings("/security/tls/protocols");
    if !protocols.is_empty() {
        s.set("tls-protocols", protocols.join(" "));
    }
    s.opt("tls-ciphersuites", cfg.str("/security/tls/ciphersuites").filter(|c| !c.is_empty()));
    s.flag("tls-prefer-server-ciphers", cfg.bool("/security/tls/prefer_server_ciphers"));
    s.flag("tls-session-caching", cfg.bool("/security/tls/session_caching"));
    s
}

fn persistence(node: &Node, shared: &Shared) -> Section {
    let mut s = Section::new("persistence");
    s.set("dir", &node.data_dir);
    s.directives.extend_from_slice(&shared.persistence_tail);
    s
}

fn persistence_tail(cfg: &Cfg) -> Section {
    let mut s = Section::new("persistence");
    let mode = cfg.str("/persistence/mode").unwrap_or("none");
    s.opt("dbfilename", cfg.str("/persistence/rdb_filename"));
    let points: Vec<String> = match (mode, cfg.get("/persistence/save").and_then(|v| v.as_array())) {
        ("rdb" | "mixed", Some(list)) => (0..list.len())
            .filter_map(|i| {
                let p = format!("/persistence/save/{i}");
                Some(format!("{} {}", cfg.uint(&format!("{p}/seconds"))?, cfg.uint(&format!("{p}/changes"))?))
            })
            .collect(),
        _ => Vec::new(),
    };
    s.set("save", points.join(" "));
    s.set("appendonly", yes_no(matches!(mode, "aof" | "mixed")));
    s.opt("appenddirname", cfg.str("/persistence/aof_dirname"));
    s.opt("appendfsync", cfg.str("/persistence/appendfsync"));
    s.flag("aof-use-rdb-preamble", cfg.bool("/persistence/aof_use_rdb_preamble"));
    s.opt("auto-aof-rewrite-percentage", cfg.uint("/persistence/auto_aof_rewrite_percentage"));
    s.opt("auto-aof-rewrite-min-size", cfg.bytes("/persistence/auto_aof_rewrite_min_size"));
    s.flag("no-appendfsync-on-rewrite", cfg.bool("/persistence/no_appendfsync_on_rewrite"));
    s.flag("aof-load-truncated", cfg.bool("/persistence/aof_load_truncated"));
    s.flag("aof-timestamp-enabled", cfg.bool("/persistence/aof_timestamp_enabled"));
    s.flag("rdbcompression", cfg.bool("/persistence/rdb_compression"));
    s.flag("rdbchecksum", cfg.bool("/persistence/rdb_checksum"));
    s.flag("stop-writes-on-bgsave-error", cfg.bool("/persistence/stop_writes_on_bgsave_error"));
    s.flag("rdb-del-sync-files", cfg.bool("/persistence/rdb_del_sync_files"));
    s
}

fn replication(
    input: &Input,
    cfg: &Cfg,
    node: &Node,
    acc: &Accounts,
    shared: &Shared,
    out: &mut Vec<Diagnostic>,
) -> Section {
    let mut s = Section::new("replication");
    let topo = &input.topology;
    let tls_repl = cfg.bool("/security/tls/replication").unwrap_or(true);
    if let (false, Some(master)) = (topo.is_cluster(), node.replica_of.as_deref()) {
        match topo.node(master).and_then(|m| service_port(cfg, m, tls_repl).map(|p| (m, p))) {
            Some((m, port)) => {
                s.args("replicaof", [m.hostname.clone(), port.to_string()]);
            }
            None => out.push(
                Diagnostic::error(
                    "redis-conf.unknown-master",
                    "/topology/nodes",
                    format!("replica `{}` follows `{master}`, which is not a data node with a port", node.name),
                )
                .with_hint("this is a host bug: the topology should list the master"),
            ),
        }
    }
    let replicated = topo.nodes.iter().any(|n| n.role == "replica");
    if let (true, Some((user, password))) =
        (replicated && cfg.bool("/security/auth_enabled").unwrap_or(false), &acc.replication)
    {
        s.set("masteruser", user);
        if let Some(p) = password {
            s.set("masterauth", p);
        }
    }
    if !topo.is_cluster() && cfg.bool("/network/announce_hostname").unwrap_or(false) && !node.hostname.is_empty() {
        s.set("replica-announce-ip", &node.hostname);
    }
    if let Some(wanted) = cfg.uint("/replication/min_replicas_to_write") {
        // A master with fewer replicas than this would refuse every write.
        let shard_master = node.replica_of.as_deref().unwrap_or(&node.name);
        let available = topo.replicas_of(shard_master) as u64;
        let n = wanted.min(available);
        if n < wanted && node.role == "master" {
            out.push(
                Diagnostic::warning(
                    "redis-conf.min-replicas-capped",
                    "/config/replication/min_replicas_to_write",
                    format!(
                        "`min_replicas_to_write: {wanted}` but `{}` has {available} replicas: rendered as {n}",
                        node.name
                    ),
                )
                .with_hint("lower `replication.min_replicas_to_write` or add replicas"),
            );
        }
        s.set("min-replicas-to-write", n);
    }
    s.directives.extend_from_slice(&shared.replication_tail);
    s
}

fn replication_tail(cfg: &Cfg) -> Section {
    let mut s = Section::new("replication");
    s.opt("min-replicas-max-lag", cfg.secs("/replication/min_replicas_max_lag"));
    s.opt("repl-backlog-size", cfg.bytes("/replication/backlog_size"));
    s.opt("repl-backlog-ttl", cfg.secs("/replication/backlog_ttl"));
    s.flag("repl-diskless-sync", cfg.bool("/replication/diskless_sync"));
    s.opt("repl-diskless-sync-delay", cfg.secs("/replication/diskless_sync_delay"));
    s.opt("repl-diskless-load", cfg.str("/replication/diskless_load").map(|v| v.replace('_', "-")));
    s.opt("repl-timeout", cfg.secs("/replication/timeout"));
    s.flag("replica-read-only", cfg.bool("/replication/replica_read_only"));
    s.flag("replica-serve-stale-data", cfg.bool("/replication/replica_serve_stale_data"));
    s.opt("replica-priority", cfg.uint("/replication/replica_priority"));
    s.flag("repl-disable-tcp-nodelay", cfg.bool("/replication/disable_tcp_nodelay"));
    s
}

fn cluster(cfg: &Cfg, node: &Node, shared: &Shared) -> Section {
    let mut s = Section::new("cluster");
    s.directives.extend_from_slice(&shared.cluster_head);
    s.opt("cluster-port", node.ports.cluster_bus);
    s.directives.extend_from_slice(&shared.cluster_tail);
    if cfg.bool("/cluster/announce_hostnames").unwrap_or(false) && !node.hostname.is_empty() {
        s.set("cluster-announce-hostname", &node.hostname);
        s.set("cluster-preferred-endpoint-type", "hostname");
    }
    s
}

fn cluster_head(cfg: &Cfg) -> Section {
    let mut s = Section::new("cluster");
    s.set("cluster-enabled", "yes");
    s.opt("cluster-config-file", cfg.str("/cluster/config_file"));
    s.opt("cluster-node-timeout", cfg.millis("/cluster/node_timeout"));
    s
}

fn cluster_tail(cfg: &Cfg) -> Section {
    let mut s = Section::new("cluster");
    s.flag("cluster-require-full-coverage", cfg.bool("/cluster/require_full_coverage"));
    s.opt("cluster-migration-barrier", cfg.uint("/cluster/migration_barrier"));
    s.flag("cluster-allow-replica-migration", cfg.bool("/cluster/allow_replica_migration"));
    s.flag("cluster-allow-reads-when-down", cfg.bool("/cluster/allow_reads_when_down"));
    s.opt("cluster-replica-validity-factor", cfg.uint("/cluster/replica_validity_factor"));
    s.flag("cluster-replica-no-failover", cfg.bool("/cluster/replica_no_failover"));
    s
}

fn security(input: &Input, node: &Node, acc: &Accounts, shared: &Shared, out: &mut Vec<Diagnostic>) -> Section {
    let mut s = Section::new("security");
    if acc.enabled {
        match aclfile_path(input, node) {
            Some(p) => {
                s.set("aclfile", p);
            }
            None => out.push(
                Diagnostic::error(
                    "redis-conf.absolute-local-data-dir",
                    "/topology/nodes",
                    format!(
                        "node `{}` has an absolute data dir on the local target: `aclfile` cannot be located",
                        node.name
                    ),
                )
                .with_hint("local data dirs are relative to the deployment folder (`data/<node>`)"),
            ),
        }
    }
    s.directives.extend_from_slice(&shared.security_tail);
    s
}

fn security_tail(cfg: &Cfg) -> Section {
    let mut s = Section::new("security");
    s.opt("acllog-max-len", cfg.uint("/security/acllog_max_len"));
    s.opt("acl-pubsub-default", cfg.str("/security/acl_pubsub_default"));
    s.opt("enable-debug-command", cfg.str("/performance/enable_debug_command"));
    s.opt("enable-module-command", cfg.str("/performance/enable_module_command"));
    s
}

fn memory(cfg: &Cfg) -> Section {
    let mut s = Section::new("memory");
    s.opt("maxmemory", cfg.maxmemory());
    s.opt("maxmemory-policy", cfg.str("/memory/maxmemory_policy"));
    s.opt("maxmemory-samples", cfg.uint("/memory/maxmemory_samples"));
    s.opt("maxmemory-eviction-tenacity", cfg.uint("/memory/maxmemory_eviction_tenacity"));
    s.opt("maxmemory-clients", cfg.bytes("/memory/maxmemory_clients"));
    s.opt("lfu-log-factor", cfg.uint("/memory/lfu_log_factor"));
    s.opt("lfu-decay-time", cfg.uint("/memory/lfu_decay_time"));
    for f in ["eviction", "expire", "server_del", "user_del", "user_flush"] {
        s.flag(format!("lazyfree-lazy-{}", f.replace('_', "-")), cfg.bool(&format!("/memory/lazyfree_lazy_{f}")));
    }
    s.flag("replica-lazy-flush", cfg.bool("/memory/replica_lazy_flush"));
    s.flag("activedefrag", cfg.bool("/memory/active_defrag"));
    s.opt("active-defrag-ignore-bytes", cfg.bytes("/memory/active_defrag_ignore_bytes"));
    s.opt("active-defrag-threshold-lower", cfg.uint("/memory/active_defrag_threshold_lower"));
    s.opt("active-defrag-threshold-upper", cfg.uint("/memory/active_defrag_threshold_upper"));
    s.opt("active-defrag-cycle-min", cfg.uint("/memory/active_defrag_cycle_min"));
    s.opt("active-defrag-cycle-max", cfg.uint("/memory/active_defrag_cycle_max"));
    s.opt("active-expire-effort", cfg.uint("/memory/active_expire_effort"));
    s.opt("hash-max-listpack-entries", cfg.uint("/memory/hash_max_listpack_entries"));
    s.opt("hash-max-listpack-value", cfg.uint("/memory/hash_max_listpack_value"));
    s.opt("set-max-intset-entries", cfg.uint("/memory/set_max_intset_entries"));
    s.opt("zset-max-listpack-entries", cfg.uint("/memory/zset_max_listpack_entries"));
    s.opt("list-max-listpack-size", cfg.int("/memory/list_max_listpack_size"));
    s
}

fn performance(cfg: &Cfg) -> Section {
    let mut s = Section::new("performance");
    s.opt("io-threads", cfg.uint("/performance/io_threads"));
    s.flag("io-threads-do-reads", cfg.bool("/performance/io_threads_do_reads"));
    s.opt("hz", cfg.uint("/performance/hz"));
    s.flag("dynamic-hz", cfg.bool("/performance/dynamic_hz"));
    s.opt("maxclients", cfg.uint("/performance/maxclients"));
    let mut limits = Vec::new();
    for (class, redis) in [("normal", "normal"), ("replica", "replica"), ("pubsub", "pubsub")] {
        let p = format!("/performance/output_buffer_limits/{class}");
        let (Some(hard), Some(soft), Some(secs)) =
            (cfg.bytes(&format!("{p}/hard")), cfg.bytes(&format!("{p}/soft")), cfg.secs(&format!("{p}/soft_seconds")))
        else {
            continue;
        };
        limits.extend([redis.to_owned(), hard.to_string(), soft.to_string(), secs.to_string()]);
    }
    if !limits.is_empty() {
        s.args("client-output-buffer-limit", limits);
    }
    s.opt("client-query-buffer-limit", cfg.bytes("/performance/client_query_buffer_limit"));
    s.opt("proto-max-bulk-len", cfg.bytes("/performance/proto_max_bulk_len"));
    s.opt("slowlog-log-slower-than", cfg.millis("/performance/slowlog_log_slower_than").map(|ms| ms * 1000));
    s.opt("slowlog-max-len", cfg.uint("/performance/slowlog_max_len"));
    s.opt("latency-monitor-threshold", cfg.millis("/performance/latency_monitor_threshold"));
    s.flag("latency-tracking", cfg.bool("/performance/latency_tracking"));
    s.opt("busy-reply-threshold", cfg.millis("/performance/busy_reply_threshold"));
    s.flag("jemalloc-bg-thread", cfg.bool("/performance/jemalloc_bg_thread"));
    s.flag("activerehashing", cfg.bool("/performance/active_rehashing"));
    s.flag("disable-thp", cfg.bool("/performance/disable_thp"));
    s.flag("oom-score-adj", cfg.bool("/performance/oom_score_adj"));
    s
}
