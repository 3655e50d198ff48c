//! Rules about ports, monitoring, Kubernetes, plugins and performance.

use super::{err, prod_err, warn};
use crate::diagnostic::Diagnostic;
use crate::model::{BackupDestination, Config, Mode, PersistenceMode};
use crate::topology::Topology;

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    ports(c, out);
    monitoring(c, out);
    kubernetes(c, out);
    plugins(c, out);
    if u32::from(c.performance.io_threads) > (c.resources.cpu_millis / 1000).max(1) {
        out.push(warn(
            "performance.io-threads",
            "/performance/io_threads",
            format!(
                "`performance.io_threads` {} exceeds the {} millicores of CPU",
                c.performance.io_threads, c.resources.cpu_millis
            ),
            "use at most one I/O thread per core",
        ));
    }
}

fn ports(c: &Config, out: &mut Vec<Diagnostic>) {
    let n = &c.network;
    let tls = &c.security.tls;
    let plain = !(tls.enabled && tls.disable_plain_port);
    let mut used: Vec<(&str, &str, u32)> = Vec::with_capacity(5);
    if plain {
        used.push(("client", "/network/port", u32::from(n.port)));
    }
    if tls.enabled {
        used.push(("tls", "/network/tls_port", u32::from(n.tls_port)));
    }
    if c.deployment.mode == Mode::Cluster {
        let base = if plain { n.port } else { n.tls_port };
        let bus = u32::from(base) + u32::from(n.cluster_bus_port_offset);
        if bus > 65535 {
            out.push(err(
                "network.port-collision",
                "/network/cluster_bus_port_offset",
                format!("the cluster bus port {base} + {} is above 65535", n.cluster_bus_port_offset),
                "keep client port + bus offset below 65536 (the usual offset is 10000)",
            ));
        }
        used.push(("cluster bus", "/network/cluster_bus_port_offset", bus));
    }
    if c.deployment.mode == Mode::Sentinel {
        used.push(("sentinel", "/network/sentinel_port", u32::from(n.sentinel_port)));
    }
    if c.monitoring.exporter {
        used.push(("exporter", "/monitoring/exporter_port", u32::from(c.monitoring.exporter_port)));
    }
    for (i, (name, ptr, port)) in used.iter().enumerate() {
        if let Some((other, _, _)) = used[..i].iter().find(|(_, _, p)| p == port) {
            out.push(err(
                "network.port-collision",
                ptr,
                format!("the {name} port {port} is also the {other} port"),
                "give the client (6379), TLS (6380), cluster bus (+10000), sentinel (26379) and exporter (9121) ports distinct values",
            ));
        }
    }
    if c.kubernetes.security_context.run_as_non_root
        && let Some((name, ptr, port)) = used.iter().find(|(_, _, p)| *p < 1024)
    {
        out.push(warn(
            "network.privileged-port",
            ptr,
            format!("the {name} port {port} is below 1024 but containers run as non-root"),
            "use a port from 1024, e.g. 6379",
        ));
    }
    let last = Topology::last_local_port(c);
    if last > 65535 {
        out.push(err(
            "network.local-ports-overflow",
            "/network/local_base_port",
            format!("local ports from `network.local_base_port` {} run up to {last}, past 65535", n.local_base_port),
            "lower `network.local_base_port`, e.g. 7000",
        ));
    }
    for (i, b) in n.bind.iter().enumerate() {
        let addr = b.strip_prefix('-').unwrap_or(b);
        if addr.parse::<std::net::IpAddr>().is_err() && addr != "*" {
            out.push(err(
                "network.invalid-bind",
                &format!("/network/bind/{i}"),
                format!("bind address `{b}` is not an IP address"),
                "use an address such as `0.0.0.0`, `127.0.0.1` or `::`",
            ));
        }
    }
}

fn monitoring(c: &Config, out: &mut Vec<Diagnostic>) {
    let m = &c.monitoring;
    if m.service_monitor && !m.exporter {
        out.push(err(
            "monitoring.service-monitor-without-exporter",
            "/monitoring/service_monitor",
            "a `ServiceMonitor` is requested but `monitoring.exporter` is off".to_string(),
            "set `monitoring.exporter: true`",
        ));
    }
    if m.alerts.enabled && !m.exporter {
        out.push(err(
            "monitoring.alerts-without-exporter",
            "/monitoring/alerts/enabled",
            "alerts are on but `monitoring.exporter` is off: every alert would stay silent".to_string(),
            "set `monitoring.exporter: true`",
        ));
    }
    if m.exporter && m.scrape_timeout >= m.scrape_interval {
        out.push(err(
            "monitoring.scrape-timeout",
            "/monitoring/scrape_timeout",
            format!(
                "`monitoring.scrape_timeout` ({}) is not below `scrape_interval` ({})",
                m.scrape_timeout, m.scrape_interval
            ),
            "use e.g. a 10s timeout with a 30s interval",
        ));
    }
    if !m.exporter && c.deployment.environment == crate::model::Environment::Production {
        out.push(warn(
            "monitoring.production-without-exporter",
            "/monitoring/exporter",
            "production runs without the prometheus exporter".to_string(),
            "set `monitoring.exporter: true`",
        ));
    }
}

fn kubernetes(c: &Config, out: &mut Vec<Diagnostic>) {
    let k = &c.kubernetes;
    if k.namespace == "default" && !k.allow_default_namespace {
        out.push(err(
            "kubernetes.default-namespace",
            "/kubernetes/namespace",
            "`kubernetes.namespace` is `default`".to_string(),
            "use a dedicated namespace such as `redis`, or set `allow_default_namespace: true`",
        ));
    } else if !crate::rules::topology_label(&k.namespace) {
        out.push(err(
            "kubernetes.invalid-namespace",
            "/kubernetes/namespace",
            format!("namespace `{}` is not a lowercase DNS label", k.namespace),
            "use lowercase letters, digits and `-`, at most 63 characters",
        ));
    }
    let sc = &k.security_context;
    if !sc.run_as_non_root || sc.run_as_user == 0 {
        out.push(prod_err(
            c.deployment.environment,
            "kubernetes.root-user",
            if sc.run_as_user == 0 {
                "/kubernetes/security_context/run_as_user"
            } else {
                "/kubernetes/security_context/run_as_non_root"
            },
            "pods would run as root".to_string(),
            "set `run_as_non_root: true` and `run_as_user: 10001`",
        ));
    }
    let data_nodes = Topology::data_node_count(c);
    if k.pdb && k.pdb_max_unavailable == 0 && data_nodes <= 1 {
        out.push(warn(
            "kubernetes.pdb-blocks-drain",
            "/kubernetes/pdb",
            "a PDB with `minAvailable` 1 over a single redis node blocks every node drain".to_string(),
            "set `kubernetes.pdb: false` for standalone, or `pdb_max_unavailable: 1`",
        ));
    }
    let volumes = c.persistence.mode != PersistenceMode::None
        || c.deployment.mode == Mode::Cluster
        || (c.backup.enabled && !matches!(c.backup.destination, BackupDestination::Pvc(_)));
    if volumes && k.storage_size.0 == 0 {
        out.push(err(
            "kubernetes.zero-storage",
            "/kubernetes/storage_size",
            "`kubernetes.storage_size` is 0: the API server refuses a volume claim of 0".to_string(),
            "give volumes at least 2× `maxmemory`, e.g. `8gb`",
        ));
    } else if c.persistence.mode != PersistenceMode::None {
        let data = crate::rules::data_maxmemory(c).unwrap_or(c.resources.memory.0);
        if k.storage_size.0 < data.saturating_mul(2) {
            out.push(warn(
                "kubernetes.storage-too-small",
                "/kubernetes/storage_size",
                format!(
                    "`kubernetes.storage_size` ({}) is under twice the data size ({})",
                    k.storage_size,
                    crate::units::ByteSize(data)
                ),
                "give volumes at least 2× `maxmemory` for the RDB and an AOF rewrite",
            ));
        }
    }
}

fn plugins(c: &Config, out: &mut Vec<Diagnostic>) {
    for (i, p) in c.plugins.iter().enumerate() {
        if !p.ends_with(".wasm") {
            out.push(err(
                "plugins.not-wasm",
                &format!("/plugins/{i}"),
                format!("plugin `{p}` is not a `.wasm` file"),
                "list paths to WebAssembly components ending in `.wasm`",
            ));
        }
        if c.plugins[..i].contains(p) {
            out.push(err(
                "plugins.duplicate",
                &format!("/plugins/{i}"),
                format!("plugin `{p}` is listed twice"),
                "list each plugin once",
            ));
        }
    }
}
