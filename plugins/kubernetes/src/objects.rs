//! Namespace, ConfigMaps, Services, PodDisruptionBudgets and the
//! NetworkPolicy.

use crate::ctx::Ctx;
use crate::input::{Get, Input};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn namespace(input: &Input, ctx: &Ctx) -> Value {
    let mut labels = ctx.labels(input, "namespace");
    // The pods meet the `restricted` Pod Security Standard in every preset.
    labels["pod-security.kubernetes.io/enforce"] = json!("restricted");
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": ctx.namespace.clone(), "labels": labels },
    })
}

pub fn config_map(input: &Input, ctx: &Ctx, name: &str, data: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ctx.metadata(input, name, "config"),
        "data": data,
    })
}

fn port(name: &str, port: u64) -> Value {
    json!({ "name": name, "port": port, "targetPort": name, "protocol": "TCP" })
}

fn redis_service_ports(ctx: &Ctx, bus: bool) -> Vec<Value> {
    let mut p = Vec::new();
    if ctx.plain {
        p.push(port("redis", ctx.port));
    }
    if ctx.tls {
        p.push(port("redis-tls", ctx.tls_port));
    }
    if bus && ctx.mode == "cluster" {
        p.push(port("cluster-bus", ctx.redis_port() + ctx.bus_offset));
    }
    p
}

fn service(input: &Input, ctx: &Ctx, name: &str, component: &str, selector: Value, spec: Value) -> Value {
    let mut s = json!({ "selector": selector });
    if let (Value::Object(m), Value::Object(extra)) = (&mut s, spec) {
        m.extend(extra);
    }
    json!({ "apiVersion": "v1", "kind": "Service", "metadata": ctx.metadata(input, name, component), "spec": s })
}

/// Headless and client Services for the Redis nodes, the master Service in
/// replication mode, Sentinel's Services and the metrics one.
pub fn services(input: &Input, ctx: &Ctx) -> Vec<Value> {
    let mut out = Vec::new();
    let n = &ctx.name;
    out.push(service(
        input,
        ctx,
        &ctx.headless(n),
        "redis",
        ctx.selector("redis"),
        // Pods must resolve each other before they are ready (replicas find
        // the master, the cluster-init Job meets every node).
        json!({ "clusterIP": "None", "publishNotReadyAddresses": true, "ports": redis_service_ports(ctx, true) }),
    ));
    let service_type = input.config.kubernetes.s("service_type", "ClusterIP");
    out.push(service(
        input,
        ctx,
        n,
        "redis",
        ctx.selector("redis"),
        json!({ "type": service_type, "ports": redis_service_ports(ctx, false) }),
    ));
    match ctx.mode.as_str() {
        "replication" => {
            // Without failover the first pod is always the master.
            let mut sel = ctx.selector("redis");
            sel["statefulset.kubernetes.io/pod-name"] = json!(format!("{n}-0"));
            out.push(service(
                input,
                ctx,
                &format!("{n}-master"),
                "redis",
                sel,
                json!({ "type": "ClusterIP", "ports": redis_service_ports(ctx, false) }),
            ));
        }
        "sentinel" => out.extend(sentinel_services(input, ctx)),
        _ => {}
    }
    if ctx.exporter {
        out.push(service(
            input,
            ctx,
            &format!("{n}-metrics"),
            "metrics",
            ctx.selector("redis"),
            json!({ "type": "ClusterIP", "ports": [port("metrics", ctx.metrics_port)] }),
        ));
    }
    out
}

/// Sentinel's Services. Sentinel mode renders no `<name>-master` Service:
/// only a label on the current master could route one, and nothing in the
/// manifests could keep that label right after a failover (the pods get no
/// API token, and the Redis image has no HTTP client to patch their own
/// labels with). Clients ask `<name>-sentinel` for the master, as Redis'
/// Sentinel protocol intends.
fn sentinel_services(input: &Input, ctx: &Ctx) -> Vec<Value> {
    let s = ctx.sentinel_sts();
    let sentinel_port = || json!([port("sentinel", ctx.sentinel_port)]);
    vec![
        service(
            input,
            ctx,
            &ctx.headless(&s),
            "sentinel",
            ctx.selector("sentinel"),
            json!({ "clusterIP": "None", "publishNotReadyAddresses": true, "ports": sentinel_port() }),
        ),
        service(
            input,
            ctx,
            &s,
            "sentinel",
            ctx.selector("sentinel"),
            json!({ "type": "ClusterIP", "ports": sentinel_port() }),
        ),
    ]
}

/// `minAvailable ⌊n/2⌋+1` when `pdb_max_unavailable` is 0 (production), else
/// `maxUnavailable`.
pub fn pdb(input: &Input, ctx: &Ctx, name: &str, component: &str, replicas: u64) -> Value {
    let max = input.config.kubernetes.n("pdb_max_unavailable", 1);
    let mut spec = json!({ "selector": { "matchLabels": ctx.selector(component) } });
    if max == 0 {
        spec["minAvailable"] = json!(replicas / 2 + 1);
    } else {
        spec["maxUnavailable"] = json!(max);
    }
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ctx.metadata(input, name, component),
        "spec": spec,
    })
}

fn tcp(p: u64) -> Value {
    json!({ "protocol": "TCP", "port": p })
}

/// One policy for every pod of the deployment: traffic between its own pods,
/// clients from the allowed networks (or, when none are given, from the same
/// namespace), Prometheus on the metrics port, and DNS out — UDP and TCP 53,
/// plus 5353 for OpenShift's DNS — which default-deny policies often forget.
pub fn network_policy(input: &Input, ctx: &Ctx) -> Value {
    let instance = json!({ "matchLabels": {
        "app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": ctx.name.clone() } });
    let mut cidrs = input.config.network.list("allowed_cidrs");
    cidrs.extend(input.config.security.allowed_networks.iter().cloned());
    cidrs.sort();
    cidrs.dedup();
    let mut client_ports = Vec::new();
    if ctx.plain {
        client_ports.push(tcp(ctx.port));
    }
    if ctx.tls {
        client_ports.push(tcp(ctx.tls_port));
    }
    if ctx.mode == "sentinel" {
        client_ports.push(tcp(ctx.sentinel_port));
    }
    let from: Vec<Value> = if cidrs.is_empty() {
        vec![json!({ "podSelector": {} })]
    } else {
        cidrs.iter().map(|c| json!({ "ipBlock": { "cidr": c } })).collect()
    };
    let mut ingress =
        vec![json!({ "from": [{ "podSelector": instance.clone() }] }), json!({ "from": from, "ports": client_ports })];
    if ctx.exporter {
        ingress.push(json!({ "from": [{ "namespaceSelector": {} }], "ports": [tcp(ctx.metrics_port)] }));
    }
    let dns: Vec<Value> = [("UDP", 53), ("TCP", 53), ("UDP", 5353), ("TCP", 5353)]
        .iter()
        .map(|(p, n)| json!({ "protocol": p, "port": n }))
        .collect();
    let mut egress = vec![json!({ "ports": dns }), json!({ "to": [{ "podSelector": instance.clone() }] })];
    let backup = &input.config.backup;
    if backup.b("enabled", false) && backup.get("destination").and_then(|d| d.get("s3")).is_some() {
        egress.push(json!({ "ports": [tcp(443)] }));
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": ctx.metadata(input, &ctx.name, "network-policy"),
        "spec": {
            "podSelector": instance,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    })
}

/// The ServiceAccount named by `kubernetes.service_account`; its token is
/// not mounted (the pods do not talk to the API server).
pub fn service_account(input: &Input, ctx: &Ctx, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": ctx.metadata(input, name, "service-account"),
        "automountServiceAccountToken": false,
    })
}
