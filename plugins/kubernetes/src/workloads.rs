//! The StatefulSets: Redis data nodes (one set for every mode; in cluster
//! mode it holds every shard's nodes, ordinals as in the topology) and the
//! Sentinels.

use crate::ctx::{Ctx, Job, RUN_DIR, SCRIPTS_DIR, TLS_DIR, User};
use crate::files::EXPORTER_DIR;
use crate::input::{Get, Input};
use crate::pods::{
    config_volume, container, empty_dir, exec_probe, mem_quantity, mount, pod_spec, resources, script_mounts,
    secrets_volume, templates_mount, tls_volume,
};
use serde_json::Value;

fn probes(c: &mut Value, kind: &str) {
    let script = format!("{SCRIPTS_DIR}/probe.sh");
    // Startup allows 10 minutes for loading a large AOF/RDB before liveness starts.
    c["startupProbe"] = exec_probe(&[&script, kind, "live"], 5, 5, 120);
    c["livenessProbe"] = exec_probe(&[&script, kind, "live"], 10, 5, 5);
    c["readinessProbe"] = exec_probe(&[&script, kind, "ready"], 5, 5, 3);
}

fn pod_template(ctx: &Ctx, input: &Input, component: &str, checksum: &str, spec: Value) -> Value {
    let mut md = json!({ "labels": ctx.labels(input, component) });
    if input.config.kubernetes.b("checksum_annotations", true) {
        md["annotations"] = json!({ "checksum/config": checksum });
    }
    json!({ "metadata": md, "spec": spec })
}

fn init_container(input: &Input, ctx: &Ctx, script: &str, with_secrets: bool, extra: Vec<Value>) -> Value {
    let mut c = container(
        input,
        ctx,
        "init-config",
        &ctx.image,
        json!(["sh", format!("{SCRIPTS_DIR}/{script}")]),
        resources(50, 200, 32 << 20, 64 << 20),
    );
    let mut mounts = script_mounts(ctx, with_secrets);
    mounts.push(templates_mount());
    mounts.push(mount("run", RUN_DIR, false));
    mounts.extend(extra);
    c["volumeMounts"] = json!(mounts);
    c
}

fn exporter_container(input: &Input, ctx: &Ctx) -> Value {
    let mon = &input.config.monitoring;
    let scheme = if ctx.tls { "rediss" } else { "redis" };
    let addr = format!(
        "{scheme}://$(POD_NAME).{}.{}.svc.{}:{}",
        ctx.headless(&ctx.name),
        ctx.namespace,
        ctx.domain,
        ctx.redis_port()
    );
    let mut args = vec![format!("--redis.addr={addr}"), format!("--web.listen-address=:{}", ctx.metrics_port)];
    let mut mounts = vec![];
    if let Some(u) = ctx.user_for(Job::Exporter) {
        args.push(format!("--redis.user={}", u.name));
        args.push(format!("--redis.password-file={EXPORTER_DIR}/passwords.json"));
        mounts.push(mount("exporter", EXPORTER_DIR, true));
    }
    if ctx.tls {
        args.push(format!("--tls-ca-cert-file={TLS_DIR}/ca.crt"));
        if ctx.tls_client_certs {
            args.push(format!("--tls-client-cert-file={TLS_DIR}/tls.crt"));
            args.push(format!("--tls-client-key-file={TLS_DIR}/tls.key"));
        }
        mounts.push(mount("tls", TLS_DIR, true));
    }
    let keys = mon.list("check_keys");
    if !keys.is_empty() {
        args.push(format!("--check-keys={}", keys.join(",")));
    }
    let mem = input.config.resources.bytes("exporter_memory", 64 << 20);
    let mut c = container(input, ctx, "exporter", &ctx.exporter_image, Value::Null, resources(50, 200, mem, mem));
    if let Value::Object(m) = &mut c {
        m.remove("command");
    }
    c["args"] = json!(args);
    c["env"] = json!([{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }]);
    c["ports"] = json!([{ "name": "metrics", "containerPort": ctx.metrics_port, "protocol": "TCP" }]);
    let http = |period: u64, failures: u64| {
        json!({ "httpGet": { "path": "/health", "port": "metrics" }, "periodSeconds": period,
            "timeoutSeconds": 5, "failureThreshold": failures, "successThreshold": 1 })
    };
    c["livenessProbe"] = http(15, 5);
    c["readinessProbe"] = http(10, 3);
    c["volumeMounts"] = json!(mounts);
    c
}

fn redis_ports(ctx: &Ctx) -> Vec<Value> {
    let mut p = Vec::new();
    if ctx.plain {
        p.push(json!({ "name": "redis", "containerPort": ctx.port, "protocol": "TCP" }));
    }
    if ctx.tls {
        p.push(json!({ "name": "redis-tls", "containerPort": ctx.tls_port, "protocol": "TCP" }));
    }
    if ctx.mode == "cluster" {
        p.push(json!({ "name": "cluster-bus", "containerPort": ctx.redis_port() + ctx.bus_offset, "protocol": "TCP" }));
    }
    p
}

fn data_persistent(input: &Input, ctx: &Ctx) -> bool {
    input.config.persistence.s("mode", "none") != "none" || ctx.mode == "cluster"
}

pub fn redis_statefulset(input: &Input, ctx: &Ctx, checksum: &str) -> Value {
    let res = &input.config.resources;
    let (mem, cpu) = (res.bytes("memory", 1 << 30), res.n("cpu_millis", 1000));
    let mem_req = match res.bytes("memory_request", 0) {
        0 => mem,
        m => m,
    };
    let cpu_req = match res.n("cpu_request_millis", 0) {
        0 => cpu,
        c => c,
    };
    let data_dir = input.config.persistence.s("data_dir", "/data");
    let mut redis = container(
        input,
        ctx,
        "redis",
        &ctx.image,
        json!(["redis-server", format!("{RUN_DIR}/redis.conf")]),
        resources(cpu_req, cpu, mem_req, mem),
    );
    redis["ports"] = json!(redis_ports(ctx));
    let users: Vec<&User> = ctx.users.iter().filter(|u| u.secret.is_some()).collect();
    let with_secrets = !users.is_empty();
    let mut mounts = script_mounts(ctx, with_secrets);
    // Writable: Sentinel's `CONFIG REWRITE` after a failover and `ACL SAVE` write here.
    mounts.push(mount("run", RUN_DIR, false));
    mounts.push(mount("data", &data_dir, false));
    redis["volumeMounts"] = json!(mounts);
    probes(&mut redis, "redis");
    if ctx.mode == "sentinel" {
        redis["lifecycle"] =
            json!({ "preStop": { "exec": { "command": ["sh", format!("{SCRIPTS_DIR}/prestop.sh")] } } });
    }
    let exporter_secret = ctx.exporter && ctx.user_for(Job::Exporter).is_some();
    let mut init_extra = if exporter_secret { vec![mount("exporter", EXPORTER_DIR, false)] } else { vec![] };
    if ctx.mode == "cluster" {
        // init.sh refreshes the node addresses in nodes.conf.
        init_extra.push(mount("data", &data_dir, false));
    }
    let mut containers = vec![redis];
    if ctx.exporter {
        containers.push(exporter_container(input, ctx));
    }
    let mut volumes = vec![
        config_volume("templates", &format!("{}-config", ctx.name), 0o444),
        config_volume("scripts", &format!("{}-scripts", ctx.name), 0o555),
        empty_dir("run", true, "16Mi"),
        empty_dir("tmp", false, "64Mi"),
    ];
    if exporter_secret {
        volumes.push(empty_dir("exporter", true, "1Mi"));
    }
    volumes.extend(secrets_volume(&users));
    if ctx.tls {
        volumes.push(tls_volume(ctx));
    }
    let persistent = data_persistent(input, ctx);
    if !persistent {
        volumes.push(empty_dir("data", false, &mem_quantity(mem.saturating_mul(2))));
    }
    let mut spec = pod_spec(input, ctx, Some("redis"), json!(containers), volumes);
    spec["initContainers"] = json!([init_container(input, ctx, "init.sh", with_secrets, init_extra)]);
    let mut sts = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": ctx.metadata(input, &ctx.name, "redis"),
        "spec": {
            "serviceName": ctx.headless(&ctx.name),
            "replicas": ctx.data_nodes,
            // The first pod starts as the master; in cluster mode every node
            // must be up before the init Job joins them.
            "podManagementPolicy": if ctx.mode == "cluster" { "Parallel" } else { "OrderedReady" },
            "updateStrategy": { "type": "RollingUpdate" },
            "selector": { "matchLabels": ctx.selector("redis") },
            "template": pod_template(ctx, input, "redis", checksum, spec),
        },
    });
    if persistent {
        let k = &input.config.kubernetes;
        let mut pvc = json!({
            "metadata": { "name": "data", "labels": ctx.selector("redis") },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": mem_quantity(k.bytes("storage_size", 8 << 30)) } },
            },
        });
        let class = k.s("storage_class", "");
        if !class.is_empty() {
            pvc["spec"]["storageClassName"] = json!(class);
        }
        sts["spec"]["volumeClaimTemplates"] = json!([pvc]);
    }
    sts
}

pub fn sentinel_statefulset(input: &Input, ctx: &Ctx, checksum: &str) -> Value {
    let sts_name = ctx.sentinel_sts();
    let mem = input.config.resources.bytes("sentinel_memory", 64 << 20);
    let mut sentinel = container(
        input,
        ctx,
        "sentinel",
        &ctx.image,
        json!(["redis-sentinel", format!("{RUN_DIR}/sentinel.conf")]),
        resources(100, 500, mem, mem),
    );
    sentinel["ports"] = json!([{ "name": "sentinel", "containerPort": ctx.sentinel_port, "protocol": "TCP" }]);
    let sentinel_user: Vec<&User> = ctx.user_for(Job::Sentinel).into_iter().collect();
    let with_secrets = !sentinel_user.is_empty();
    let mut mounts = script_mounts(ctx, false);
    mounts.push(mount("run", RUN_DIR, false));
    sentinel["volumeMounts"] = json!(mounts);
    probes(&mut sentinel, "sentinel");
    let mut volumes = vec![
        config_volume("templates", &format!("{}-config", ctx.name), 0o444),
        config_volume("scripts", &format!("{}-scripts", ctx.name), 0o555),
        empty_dir("run", true, "16Mi"),
        empty_dir("tmp", false, "64Mi"),
    ];
    volumes.extend(secrets_volume(&sentinel_user));
    if ctx.tls {
        volumes.push(tls_volume(ctx));
    }
    let mut spec = pod_spec(input, ctx, Some("sentinel"), json!([sentinel]), volumes);
    spec["initContainers"] = json!([init_container(input, ctx, "sentinel-init.sh", with_secrets, vec![])]);
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": ctx.metadata(input, &sts_name, "sentinel"),
        "spec": {
            "serviceName": ctx.headless(&sts_name),
            "replicas": ctx.sentinels,
            "podManagementPolicy": "Parallel",
            "updateStrategy": { "type": "RollingUpdate" },
            "selector": { "matchLabels": ctx.selector("sentinel") },
            "template": pod_template(ctx, input, "sentinel", checksum, spec),
        },
    })
}
