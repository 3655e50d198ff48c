//! Pod building blocks shared by the StatefulSets, the cluster-init Job and
//! the backup CronJob: hardened security contexts, resources, volumes,
//! anti-affinity and the secret projection.

use crate::ctx::{Ctx, SCRIPTS_DIR, SECRETS_DIR, TEMPLATES_DIR, TLS_DIR, User};
use crate::input::{Get, Input};
use serde_json::Value;

/// A Kubernetes memory quantity for a byte count.
pub fn mem_quantity(bytes: u64) -> String {
    for (unit, suffix) in [(1u64 << 40, "Ti"), (1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")] {
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

pub fn resources(cpu_req: u64, cpu_lim: u64, mem_req: u64, mem_lim: u64) -> Value {
    json!({
        "requests": { "cpu": format!("{cpu_req}m"), "memory": mem_quantity(mem_req) },
        "limits": { "cpu": format!("{cpu_lim}m"), "memory": mem_quantity(mem_lim) },
    })
}

/// The container security context: from `kubernetes.security_context`,
/// whose defaults are the hardened ones in every preset.
pub fn container_security(input: &Input) -> Value {
    let sc = input.config.kubernetes.get("security_context").cloned().unwrap_or(Value::Null);
    let mut v = json!({
        "allowPrivilegeEscalation": sc.b("allow_privilege_escalation", false),
        "privileged": false,
        "readOnlyRootFilesystem": sc.b("read_only_root_filesystem", true),
        "runAsNonRoot": sc.b("run_as_non_root", true),
        "runAsUser": sc.n("run_as_user", 10001),
        "runAsGroup": sc.n("run_as_group", 10001),
    });
    if sc.b("drop_all_capabilities", true) {
        v["capabilities"] = json!({ "drop": ["ALL"] });
    }
    if sc.b("seccomp_runtime_default", true) {
        v["seccompProfile"] = json!({ "type": "RuntimeDefault" });
    }
    v
}

fn pod_security(input: &Input) -> Value {
    let sc = input.config.kubernetes.get("security_context").cloned().unwrap_or(Value::Null);
    let mut v = json!({
        "runAsNonRoot": sc.b("run_as_non_root", true),
        "runAsUser": sc.n("run_as_user", 10001),
        "runAsGroup": sc.n("run_as_group", 10001),
        "fsGroup": sc.n("fs_group", 10001),
        "fsGroupChangePolicy": "OnRootMismatch",
    });
    if sc.b("seccomp_runtime_default", true) {
        v["seccompProfile"] = json!({ "type": "RuntimeDefault" });
    }
    v
}

/// Pod-level fields every workload of the deployment shares.
pub fn pod_spec(input: &Input, ctx: &Ctx, component: Option<&str>, containers: Value, volumes: Vec<Value>) -> Value {
    let k = &input.config.kubernetes;
    let sc = k.get("security_context").cloned().unwrap_or(Value::Null);
    let mut spec = json!({
        "automountServiceAccountToken": sc.b("automount_service_account_token", false),
        "enableServiceLinks": false,
        "securityContext": pod_security(input),
        "containers": containers,
        "volumes": volumes,
    });
    let sa = k.s("service_account", "");
    if !sa.is_empty() {
        spec["serviceAccountName"] = json!(sa);
    }
    let pc = k.s("priority_class", "");
    if !pc.is_empty() {
        spec["priorityClassName"] = json!(pc);
    }
    let ns = k.map("node_selector");
    if !ns.is_empty() {
        spec["nodeSelector"] = json!(ns);
    }
    let secrets = k.list("image_pull_secrets");
    if !secrets.is_empty() {
        spec["imagePullSecrets"] = json!(secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>());
    }
    if let Some(component) = component {
        spec["terminationGracePeriodSeconds"] = json!(k.millis("termination_grace_period", 30_000) / 1000);
        if let Some(a) = anti_affinity(input, ctx, component) {
            spec["affinity"] = a;
        }
    }
    spec
}

fn anti_affinity(input: &Input, ctx: &Ctx, component: &str) -> Option<Value> {
    let k = &input.config.kubernetes;
    let term = json!({
        "labelSelector": { "matchLabels": ctx.selector(component) },
        "topologyKey": k.s("topology_key", "kubernetes.io/hostname"),
    });
    match k.s("anti_affinity", "soft").as_str() {
        "hard" => Some(json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})),
        "soft" => Some(json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}
        ]}})),
        _ => None,
    }
}

pub fn empty_dir(name: &str, memory: bool, size: &str) -> Value {
    let mut ed = json!({ "sizeLimit": size });
    if memory {
        ed["medium"] = json!("Memory");
    }
    json!({ "name": name, "emptyDir": ed })
}

pub fn config_volume(name: &str, config_map: &str, mode: u32) -> Value {
    json!({ "name": name, "configMap": { "name": config_map, "defaultMode": mode } })
}

pub fn tls_volume(ctx: &Ctx) -> Value {
    json!({ "name": "tls", "secret": {
        "secretName": ctx.tls_secret.clone(),
        "defaultMode": 0o440,
        "items": [
            {"key": "tls.crt", "path": "tls.crt"},
            {"key": "tls.key", "path": "tls.key"},
            {"key": "ca.crt", "path": "ca.crt"},
        ],
    }})
}

/// The users' passwords, projected by Secret name and key into files named
/// after the users: files rather than env vars, so no password reaches
/// `/proc/*/environ`, crash dumps or `kubectl describe`.
pub fn secrets_volume(users: &[&User]) -> Option<Value> {
    let sources: Vec<Value> = users
        .iter()
        .filter_map(|u| {
            u.secret.as_ref().map(|s| {
                json!({ "secret": { "name": s.secret_name.clone(), "optional": false,
                    "items": [{ "key": s.secret_key.clone(), "path": u.name.clone() }] } })
            })
        })
        .collect();
    (!sources.is_empty())
        .then(|| json!({ "name": "secrets", "projected": { "defaultMode": 0o440, "sources": sources } }))
}

pub fn mount(name: &str, path: &str, read_only: bool) -> Value {
    json!({ "name": name, "mountPath": path, "readOnly": read_only })
}

/// Standard mounts for a container running redplate's scripts.
pub fn script_mounts(ctx: &Ctx, with_secrets: bool) -> Vec<Value> {
    let mut m = vec![mount("scripts", SCRIPTS_DIR, true), mount("tmp", "/tmp", false)];
    if with_secrets {
        m.push(mount("secrets", SECRETS_DIR, true));
    }
    if ctx.tls {
        m.push(mount("tls", TLS_DIR, true));
    }
    m
}

pub fn templates_mount() -> Value {
    mount("templates", TEMPLATES_DIR, true)
}

/// A container with the common fields filled in.
pub fn container(input: &Input, ctx: &Ctx, name: &str, image: &str, command: Value, resources: Value) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": ctx.pull_policy.clone(),
        "command": command,
        "securityContext": container_security(input),
        "resources": resources,
    })
}

pub fn exec_probe(args: &[&str], period: u64, timeout: u64, failures: u64) -> Value {
    let mut command = vec![json!("sh")];
    command.extend(args.iter().map(|a| json!(a)));
    json!({
        "exec": { "command": command },
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    })
}
