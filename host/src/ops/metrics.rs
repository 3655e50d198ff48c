//! `redplate metrics`: a deployment in the Prometheus text exposition
//! format, under redis_exporter's metric names and labels (so existing
//! dashboards and alerts work), one `node` label per node because one
//! exposition covers every node; plus per-tenant series
//! (`redplate_tenant_*{tenant=…}`, capped, see [`super::usage`]) and the
//! health verdict as gauges. Built from the same snapshot as `stats`.

use super::exposition::{Kind, Metrics};
use super::health::{Health, HealthOptions, Verdict};
use super::stats::{Live, NodeStats, SentinelStats, Stats, StatsOptions};
use super::usage::{TenantReport, UsageOptions};
use crate::registry::Record;
use redplate_config::model::Tenancy;
use std::time::{Duration, Instant};

/// What `metrics` reads.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    pub usage: UsageOptions,
    pub max_lag: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions { usage: UsageOptions::default(), max_lag: HealthOptions::default().max_lag }
    }
}

/// `INFO` fields redis_exporter exports as gauges, under its names (without `redis_`).
const INFO_GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("maxmemory", "memory_max_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("connected_slaves", "connected_slaves"),
    ("master_repl_offset", "master_repl_offset"),
    ("repl_backlog_size", "replication_backlog_bytes"),
];

/// `INFO` fields redis_exporter exports as counters.
const INFO_COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
];

/// Reads `record` (snapshot, health, tenant usage) and lays it out as metrics.
/// `tenancy` comes from the deployment's stored template.
pub async fn metrics(record: &Record, tenancy: Option<&Tenancy>, opts: &MetricsOptions) -> Metrics {
    let started = Instant::now();
    let stats_opts = StatsOptions { slowlog_entries: 1, lag_bound: Some(opts.max_lag) };
    let stats = super::stats::stats(record, &stats_opts).await;
    let health = super::health::judge(&stats, record.mode, &HealthOptions { max_lag: opts.max_lag });
    let usage = match tenancy {
        Some(t) if t.enabled => Some(super::usage::tenants(record, &stats, t, &opts.usage).await),
        _ => None,
    };
    let mut m = Metrics::default();
    m.nodes(&stats);
    m.sentinels(&stats.sentinels);
    m.health(&health);
    if let Some(u) = &usage {
        m.tenants(u, &opts.usage);
    }
    if record.gateway.is_some() {
        gateway(&mut m, crate::gateway::read_snapshot(record).as_ref());
    }
    m.gauge("redplate_scrape_duration_seconds", &[], started.elapsed().as_secs_f64());
    m
}

/// The tenant gateway's counters (from its snapshot of the last second),
/// one `tenant` label per tenant: what it enforced, and what it saw.
fn gateway(m: &mut Metrics, snapshot: Option<&crate::gateway::Snapshot>) {
    m.add(
        "redplate_gateway_up",
        "Whether the tenant gateway runs and reports (1) or not (0).",
        Kind::Gauge,
        &[],
        f64::from(u8::from(snapshot.is_some())),
    );
    let Some(s) = snapshot else { return };
    m.add(
        "redplate_gateway_connections",
        "Client connections open on the gateway.",
        Kind::Gauge,
        &[],
        s.connections as f64,
    );
    for t in &s.tenants {
        let l = [("tenant", t.tenant.clone())];
        let g = |m: &mut Metrics, name: &str, help: &str, v: f64| m.add(name, help, Kind::Gauge, &l, v);
        g(
            m,
            "redplate_gateway_tenant_connections",
            "The tenant's connections through the gateway.",
            f64::from(t.connections),
        );
        g(
            m,
            "redplate_gateway_tenant_connections_quota",
            "The tenant's connection quota.",
            f64::from(t.quota_connections),
        );
        g(
            m,
            "redplate_gateway_tenant_memory_bytes",
            "The gateway's memory account of the tenant (sampled, plus writes since).",
            t.memory_bytes as f64,
        );
        g(m, "redplate_gateway_tenant_memory_quota_bytes", "The tenant's memory quota.", t.quota_memory_bytes as f64);
        g(m, "redplate_gateway_tenant_keys", "The tenant's keys at the last sample.", t.keys as f64);
        g(
            m,
            "redplate_gateway_tenant_ops_per_second_quota",
            "The tenant's ops/s quota.",
            f64::from(t.quota_ops_per_second),
        );
        let c = |m: &mut Metrics, name: &str, help: &str, v: u64| m.add(name, help, Kind::Counter, &l, v as f64);
        c(m, "redplate_gateway_tenant_commands_total", "Commands the gateway passed on for the tenant.", t.commands);
        c(m, "redplate_gateway_tenant_bytes_in_total", "Bytes of commands the tenant sent.", t.bytes_in);
        c(m, "redplate_gateway_tenant_bytes_out_total", "Bytes of replies the tenant received.", t.bytes_out);
        for (reason, n) in &t.rejected {
            m.add(
                "redplate_gateway_tenant_rejected_total",
                "Commands and connections the gateway refused the tenant, by quota.",
                Kind::Counter,
                &[("tenant", t.tenant.clone()), ("reason", reason.clone())],
                *n as f64,
            );
        }
    }
}

fn node_label(n: &str) -> Vec<(&'static str, String)> {
    vec![("node", n.to_owned())]
}

/// Help text (redis_exporter's wording where it has one).
const HELP: &[(&str, &str)] = &[
    ("redis_up", "Whether the node answers (1) or not (0)."),
    ("redis_instance_info", "Information about the Redis instance."),
    ("redis_start_time_seconds", "Start time of the Redis instance since unix epoch in seconds."),
    ("redis_db_keys", "Total number of keys by DB."),
    ("redis_db_keys_expiring", "Total number of expiring keys by DB."),
    ("redis_connected_slave_offset_bytes", "Offset of connected slave."),
    ("redis_connected_slave_lag_seconds", "Lag of connected slave."),
    ("redis_master_link_up", "Master link status on Redis slave."),
    ("redis_slave_repl_offset", "Slave replication offset."),
    ("redis_master_last_io_seconds_ago", "Master last io seconds ago."),
    ("redis_slowlog_length", "Total slowlog."),
    ("redis_slowlog_last_id", "Last id of slowlog."),
    ("redis_last_slow_execution_duration_seconds", "The amount of time needed for last slow execution, in seconds."),
    ("redis_latency_spike_last", "When the latency spike last occurred."),
    ("redis_latency_spike_duration_seconds", "Length of the last latency spike in seconds."),
    ("redis_cluster_state", "cluster_state from CLUSTER INFO (1: ok)."),
    ("redis_sentinel_tilt", "Sentinel is in TILT mode."),
    ("redis_sentinel_master_status", "Master status on Sentinel."),
    ("redis_sentinel_master_slaves", "The number of slaves of the master."),
    ("redis_sentinel_master_sentinels", "The number of sentinels monitoring this master."),
    ("redis_sentinel_master_ckquorum_status", "Master ckquorum status."),
    (
        "redplate_replica_lag_milliseconds",
        "Milliseconds the replica took to reach its master's offset (measured; stops near the health bound).",
    ),
    ("redplate_health_status", "The health verdict: 0 healthy, 1 degraded, 2 down (as `redplate health` exits)."),
    ("redplate_health_check_ok", "Whether one health check passes (1) or not (0); `redplate health` says why."),
    ("redplate_health_down_reasons", "How many reasons make the deployment down (the rest make it degraded)."),
    ("redplate_tenants", "Tenants declared in the deployment's stored template."),
    (
        "redplate_tenant_scan_complete",
        "Whether the tenant key SCAN covered the whole keyspace (1) or was extrapolated (0).",
    ),
    ("redplate_tenant_scan_keys", "Keys the tenant SCAN looked at, over every master."),
    ("redplate_tenant_scan_duration_seconds", "How long the tenant SCAN took."),
    ("redplate_scrape_duration_seconds", "How long redplate took to read the deployment for this exposition."),
];

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

impl Metrics {
    /// A gauge sample, its help text from [`HELP`].
    fn gauge(&mut self, name: &str, labels: &[(&str, String)], value: f64) {
        let help = HELP
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| format!("{} metric.", &name[6..]), |(_, h)| (*h).to_owned());
        self.add(name, &help, Kind::Gauge, labels, value);
    }

    fn nodes(&mut self, stats: &Stats) {
        for n in &stats.nodes {
            self.gauge("redis_up", &node_label(&n.name), flag(n.up));
        }
        for n in &stats.nodes {
            if let Some(l) = &n.live {
                self.node(n, l);
            }
        }
    }

    fn node(&mut self, n: &NodeStats, l: &Live) {
        let node = node_label(&n.name);
        let with = |more: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            node.iter().cloned().chain(more.iter().cloned()).collect()
        };
        let info = &l.info;
        let field = |f: &str| crate::text::clean(info.get(f).unwrap_or(""), 128);
        let mut labels = with(&[("role", l.role.clone())]);
        for f in [
            "redis_version",
            "redis_build_id",
            "redis_mode",
            "os",
            "maxmemory_policy",
            "tcp_port",
            "run_id",
            "process_id",
        ] {
            labels.push((f, field(f)));
        }
        self.gauge("redis_instance_info", &labels, 1.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.gauge("redis_start_time_seconds", &node, (now - info.num("uptime_in_seconds")).floor());
        for (list, kind) in [(INFO_GAUGES, Kind::Gauge), (INFO_COUNTERS, Kind::Counter)] {
            for (field, name) in list {
                let value = match info.get(field) {
                    Some("ok" | "true") => 1.0,
                    Some("err" | "fail" | "false") => 0.0,
                    Some(v) => match v.parse::<f64>() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                self.add(&format!("redis_{name}"), &format!("{name} metric (INFO `{field}`)."), kind, &node, value);
            }
        }
        for (db, k) in &l.databases {
            let labels = with(&[("db", db.clone())]);
            self.gauge("redis_db_keys", &labels, k.keys as f64);
            self.gauge("redis_db_keys_expiring", &labels, k.expires as f64);
        }
        let r = &l.replication;
        for link in &r.replicas {
            let (ip, port) = link.addr.rsplit_once(':').unwrap_or((&link.addr, ""));
            let labels =
                with(&[("slave_ip", ip.into()), ("slave_port", port.into()), ("slave_state", link.state.clone())]);
            self.gauge("redis_connected_slave_offset_bytes", &labels, link.offset as f64);
            self.gauge("redis_connected_slave_lag_seconds", &labels, link.lag_seconds as f64);
        }
        if let Some(master) = &r.master {
            let (host, port) = master.rsplit_once(':').unwrap_or((master, ""));
            let labels = with(&[("master_host", host.into()), ("master_port", port.into())]);
            self.gauge("redis_master_link_up", &labels, flag(r.master_link_up == Some(true)));
            self.gauge("redis_slave_repl_offset", &labels, r.offset as f64);
            if let Some(io) = info.uint("master_last_io_seconds_ago") {
                self.gauge("redis_master_last_io_seconds_ago", &labels, io as f64);
            }
            if let Some(ms) = r.lag_ms {
                self.gauge("redplate_replica_lag_milliseconds", &node, ms as f64);
            }
        }
        let s = &l.slowlog;
        self.gauge("redis_slowlog_length", &node, s.length as f64);
        self.gauge("redis_slowlog_last_id", &node, s.last_id.unwrap_or(0) as f64);
        self.gauge("redis_last_slow_execution_duration_seconds", &node, s.last_duration_us.unwrap_or(0) as f64 / 1e6);
        for e in &l.latency {
            let labels = with(&[("event_name", e.event.clone())]);
            self.gauge("redis_latency_spike_last", &labels, e.last_unix as f64);
            self.gauge("redis_latency_spike_duration_seconds", &labels, e.latest_ms as f64 / 1e3);
        }
        if let Some(c) = &l.cluster {
            self.gauge("redis_cluster_state", &node, flag(c.state == "ok"));
            for (name, v) in [
                ("redis_cluster_slots_assigned", c.slots_assigned),
                ("redis_cluster_slots_ok", c.slots_ok),
                ("redis_cluster_slots_pfail", c.slots_pfail),
                ("redis_cluster_slots_fail", c.slots_fail),
                ("redis_cluster_known_nodes", c.known_nodes),
                ("redis_cluster_size", c.size),
            ] {
                self.gauge(name, &node, v as f64);
            }
        }
    }

    fn sentinels(&mut self, sentinels: &[SentinelStats]) {
        for s in sentinels {
            let node = node_label(&s.name);
            self.gauge("redis_up", &node, flag(s.up));
            if !s.up {
                continue;
            }
            self.gauge("redis_sentinel_tilt", &node, flag(s.tilt));
            let name = ("master_name", s.master_name.clone());
            let master = [node[0].clone(), name.clone(), ("master_address", s.master.clone().unwrap_or_default())];
            let status = s.master_status.clone().unwrap_or_default();
            let ok = flag(status == "ok");
            self.gauge("redis_sentinel_master_status", &[&master[..], &[("master_status", status)]].concat(), ok);
            self.gauge("redis_sentinel_master_slaves", &master, s.known_replicas as f64);
            self.gauge("redis_sentinel_master_sentinels", &master, s.known_sentinels as f64);
            let labels = [node[0].clone(), name, ("message", s.quorum_message.clone().unwrap_or_default())];
            self.gauge("redis_sentinel_master_ckquorum_status", &labels, flag(s.quorum_ok == Some(true)));
        }
    }

    fn health(&mut self, h: &Health) {
        self.gauge("redplate_health_status", &[], f64::from(h.verdict.code()));
        for (check, ok) in &h.checks {
            self.gauge("redplate_health_check_ok", &[("check", (*check).to_owned())], flag(*ok));
        }
        let down = h.reasons.iter().filter(|r| r.verdict == Verdict::Down).count();
        self.gauge("redplate_health_down_reasons", &[], down as f64);
    }

    fn tenants(&mut self, u: &TenantReport, opts: &UsageOptions) {
        let keys_help = format!(
            "Keys per tenant. key_prefix tenants: counted by a paced SCAN of every master within a {} ms budget, \
             extrapolated from the scanned share of the keyspace when the budget ends first \
             (redplate_tenant_scan_complete 0); database tenants: INFO keyspace. The {} tenants with most keys \
             are named, the others summed as tenant=\"overflow\".",
            opts.scan_budget.as_millis(),
            opts.max_series
        );
        let mem_help = format!(
            "Estimated memory per tenant, by sampling: the mean MEMORY USAGE of up to {} keys per SCAN batch \
             times the tenant's key count (key_prefix tenants only).",
            super::usage::SAMPLES_PER_BATCH
        );
        let conn_help = "Client connections per tenant: CLIENT LIST on every data node, by the tenant's ACL user.";
        for t in &u.tenants {
            let label = [("tenant", t.tenant.clone())];
            self.add("redplate_tenant_keys", &keys_help, Kind::Gauge, &label, t.keys.round());
            if let Some(mem) = t.memory_bytes {
                self.add("redplate_tenant_memory_bytes", &mem_help, Kind::Gauge, &label, mem.round());
            }
            self.add("redplate_tenant_connections", conn_help, Kind::Gauge, &label, t.connections as f64);
        }
        self.gauge("redplate_tenants", &[], u.declared as f64);
        self.gauge("redplate_tenant_scan_complete", &[], flag(u.complete));
        self.gauge("redplate_tenant_scan_keys", &[], u.scanned_keys as f64);
        self.gauge("redplate_tenant_scan_duration_seconds", &[], u.took_ms / 1000.0);
    }
}
