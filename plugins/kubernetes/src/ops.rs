//! Operations objects: ServiceMonitor and PrometheusRule (Prometheus
//! Operator CRDs), the Grafana dashboard, the cluster-init Job, the backup
//! CronJob and its volume, and the cert-manager Certificate.

use crate::ctx::{Ctx, Job, SCRIPTS_DIR, User};
use crate::input::{Get, Input};
use crate::pods::{
    config_volume, container, empty_dir, mem_quantity, mount, pod_spec, resources, script_mounts, secrets_volume,
    tls_volume,
};
use serde_json::Value;

/// Where the backup CronJob writes.
pub const BACKUP_DIR: &str = "/backups";

fn secs(ms: u64) -> String {
    format!("{}s", ms / 1000)
}

pub fn service_monitor(input: &Input, ctx: &Ctx) -> Value {
    let m = &input.config.monitoring;
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.metadata(input, &ctx.name, "metrics"),
        "spec": {
            "selector": { "matchLabels": ctx.selector("metrics") },
            "namespaceSelector": { "matchNames": [ctx.namespace.clone()] },
            "endpoints": [{
                "port": "metrics",
                "path": "/metrics",
                "interval": secs(m.millis("scrape_interval", 30_000)),
                "scrapeTimeout": secs(m.millis("scrape_timeout", 10_000)),
            }],
        },
    })
}

/// The dashboard on redis_exporter's metric names (and `redplate metrics`'
/// additions), the same file for every deployment: it picks the deployment
/// with its `job` variable.
const GRAFANA_DASHBOARD: &str = include_str!("templates/grafana-dashboard.json");

/// The Grafana dashboard as a ConfigMap labelled `grafana_dashboard: "1"`,
/// which Grafana's dashboard sidecar (kube-prometheus-stack, the Grafana
/// chart) imports from every namespace it watches.
pub fn grafana_dashboard(input: &Input, ctx: &Ctx) -> Value {
    let mut metadata = ctx.metadata(input, &format!("{}-grafana-dashboard", ctx.name), "metrics");
    metadata["labels"]["grafana_dashboard"] = Value::String("1".into());
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": { format!("{}-redis.json", ctx.name): GRAFANA_DASHBOARD },
    })
}

fn prom_duration(ms: u64) -> String {
    if ms >= 60_000 && ms.is_multiple_of(60_000) { format!("{}m", ms / 60_000) } else { format!("{}s", ms / 1000) }
}

pub fn prometheus_rule(input: &Input, ctx: &Ctx) -> Value {
    let a = input.config.monitoring.get("alerts").cloned().unwrap_or(Value::Null);
    let sel = format!("namespace=\"{}\",service=\"{}-metrics\"", ctx.namespace, ctx.name);
    let mut labels = a.map("labels");
    labels.entry("severity".into()).or_insert_with(|| "critical".into());
    let mut warn = labels.clone();
    warn.insert("severity".into(), "warning".into());
    let rule =
        |alert: &str, expr: String, dur: String, labels: &std::collections::BTreeMap<String, String>, what: &str| {
            json!({ "alert": alert, "expr": expr, "for": dur, "labels": labels,
            "annotations": { "summary": format!("{} {what}", ctx.name),
                "description": format!("{{{{ $labels.pod }}}} of `{}`: {what}.", ctx.name) } })
        };
    let mut rules = vec![rule(
        "RedisDown",
        format!("redis_up{{{sel}}} == 0"),
        prom_duration(a.millis("down_for", 120_000)),
        &labels,
        "Redis is down",
    )];
    let pct = a.n("memory_percent", 90);
    rules.push(rule(
        "RedisMemoryHigh",
        format!(
            "redis_memory_max_bytes{{{sel}}} > 0 and 100 * redis_memory_used_bytes{{{sel}}} / redis_memory_max_bytes{{{sel}}} > {pct}"
        ),
        prom_duration(a.millis("memory_for", 120_000)),
        &warn,
        &format!("memory above {pct}% of maxmemory"),
    ));
    if a.b("evictions", true) {
        rules.push(rule(
            "RedisEvictions",
            format!("increase(redis_evicted_keys_total{{{sel}}}[5m]) > 0"),
            "0s".into(),
            &warn,
            "keys evicted in the last 5 minutes",
        ));
    }
    let clients = a.n("clients_percent", 90);
    rules.push(rule(
        "RedisTooManyClients",
        format!("100 * redis_connected_clients{{{sel}}} / redis_config_maxclients{{{sel}}} > {clients}"),
        "2m".into(),
        &warn,
        &format!("connected clients above {clients}% of maxclients"),
    ));
    if a.b("replication_broken", true) && ctx.mode != "standalone" {
        rules.push(rule(
            "RedisReplicationBroken",
            format!("delta(redis_connected_slaves{{{sel}}}[5m]) < 0"),
            "0s".into(),
            &labels,
            "a master lost replicas",
        ));
    }
    if a.b("rdb_save_failed", true) {
        rules.push(rule(
            "RedisRdbSaveFailed",
            format!("redis_rdb_last_bgsave_status{{{sel}}} == 0"),
            "0s".into(),
            &warn,
            "the last RDB save failed",
        ));
    }
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": ctx.metadata(input, &ctx.name, "metrics"),
        "spec": { "groups": [{ "name": format!("{}.redis", ctx.name), "rules": rules }] },
    })
}

fn job_pod(
    input: &Input,
    ctx: &Ctx,
    name: &str,
    script: &str,
    user: Option<&User>,
    extra: Vec<(Value, Value)>,
) -> Value {
    let users: Vec<&User> = user.into_iter().collect();
    let secrets = secrets_volume(&users);
    let mut c = container(
        input,
        ctx,
        name,
        &ctx.image,
        json!(["sh", format!("{SCRIPTS_DIR}/{script}")]),
        resources(100, 500, 64 << 20, 256 << 20),
    );
    let mut mounts = script_mounts(ctx, secrets.is_some());
    let mut volumes =
        vec![config_volume("scripts", &format!("{}-scripts", ctx.name), 0o555), empty_dir("tmp", false, "64Mi")];
    volumes.extend(secrets);
    if ctx.tls {
        volumes.push(tls_volume(ctx));
    }
    for (m, v) in extra {
        mounts.push(m);
        volumes.push(v);
    }
    c["volumeMounts"] = json!(mounts);
    let mut spec = pod_spec(input, ctx, None, json!([c]), volumes);
    spec["restartPolicy"] = json!("OnFailure");
    json!({ "metadata": { "labels": ctx.labels(input, name) }, "spec": spec })
}

/// Joins the cluster's nodes once; idempotent (see `cluster-init.sh`).
pub fn cluster_init_job(input: &Input, ctx: &Ctx) -> Value {
    let user = ctx.user_for(Job::ClusterInit);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": ctx.metadata(input, &format!("{}-cluster-init", ctx.name), "cluster-init"),
        "spec": {
            "backoffLimit": 10,
            "activeDeadlineSeconds": 1800,
            "template": job_pod(input, ctx, "cluster-init", "cluster-init.sh", user, vec![]),
        },
    })
}

/// The volume backups are written to: the user's claim, or one rendered here.
pub fn backup_claim(input: &Input, ctx: &Ctx) -> (String, Option<Value>) {
    let b = &input.config.backup;
    if let Some(pvc) = b.get("destination").and_then(|d| d.get("pvc")).and_then(Value::as_str) {
        return (pvc.to_owned(), None);
    }
    let name = format!("{}-backups", ctx.name);
    let k = &input.config.kubernetes;
    let size = k.bytes("storage_size", 8 << 30).saturating_mul(2);
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": { "requests": { "storage": mem_quantity(size) } },
    });
    let class = k.s("storage_class", "");
    if !class.is_empty() {
        spec["storageClassName"] = json!(class);
    }
    let pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": ctx.metadata(input, &name, "backup"),
        "spec": spec,
    });
    (name, Some(pvc))
}

pub fn backup_cronjob(input: &Input, ctx: &Ctx, claim: &str) -> Value {
    let b = &input.config.backup;
    let user = ctx.user_for(Job::Backup);
    let extra = vec![(
        mount("backups", BACKUP_DIR, false),
        json!({ "name": "backups", "persistentVolumeClaim": { "claimName": claim } }),
    )];
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": ctx.metadata(input, &format!("{}-backup", ctx.name), "backup"),
        "spec": {
            "schedule": b.s("schedule", "0 3 * * *"),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": { "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": (b.millis("timeout", 3_600_000) / 1000).max(60),
                "template": job_pod(input, ctx, "backup", "backup.sh", user, extra),
            } },
        },
    })
}

/// A cert-manager Certificate covering every pod and Service name, used by
/// Redis, Sentinel, the exporter and the probes.
pub fn certificate(input: &Input, ctx: &Ctx) -> Value {
    let n = &ctx.name;
    let mut dns = vec![format!("*.{}.{}.svc.{}", ctx.headless(n), ctx.namespace, ctx.domain), ctx.svc_fqdn(n)];
    if ctx.mode == "replication" {
        dns.push(ctx.svc_fqdn(&format!("{n}-master")));
    }
    if ctx.mode == "sentinel" {
        dns.push(format!("*.{}.{}.svc.{}", ctx.headless(&ctx.sentinel_sts()), ctx.namespace, ctx.domain));
        dns.push(ctx.svc_fqdn(&ctx.sentinel_sts()));
    }
    dns.push("localhost".into());
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": ctx.metadata(input, &ctx.tls_secret, "tls"),
        "spec": {
            "secretName": ctx.tls_secret.clone(),
            "issuerRef": { "name": input.config.security.tls.s("issuer", ""), "kind": "Issuer" },
            "dnsNames": dns,
            "ipAddresses": ["127.0.0.1"],
            "usages": ["server auth", "client auth"],
            "privateKey": { "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always" },
        },
    })
}
