//! Built-in generator: Kubernetes manifests for one deployment, one object
//! per file (`kubernetes/<kind>-<name>.yaml`).
//!
//! Manifests are built as JSON values and written as YAML by [`yaml`] (keys
//! sorted, so byte-identical on every run). Config files and scripts inside
//! the ConfigMaps go through the host's Handlebars `render`, so a user can
//! override each of them by name (`kubernetes-redis.conf`, `kubernetes-init.sh`...).
//!
//! Passwords never appear in a manifest. Pods mount the users' passwords
//! from Secrets (by `secrets.users.<user>.secret_name`/`secret_key`) as files
//! in a projected volume, and an init container writes the runtime config
//! (ACL file with `#<sha256>` hashes, `masterauth`, `sentinel auth-pass`,
//! the exporter's password file) into in-memory volumes with mode 0600.
//! Probes pass the probe user's password through `REDISCLI_AUTH`.

#[macro_use]
mod json;
mod conf;
mod ctx;
mod files;
mod input;
mod objects;
mod ops;
mod pods;
mod workloads;
pub mod yaml;

use ctx::Ctx;
use input::{Get, Input};
use redplate_plugin_sdk::{Artifact, Diagnostic, Generator, Host, Output, PluginInfo, Severity, parse_input};
use serde_json::Value;
use sha2::{Digest, Sha256};

const NAME: &str = "kubernetes";

pub struct Plugin;

impl Generator for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::generator(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Kubernetes manifests: StatefulSets, Services, ConfigMaps, PDBs, NetworkPolicy, monitoring, jobs",
            &["kubernetes/*.yaml"],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        match parse_input::<Input>(NAME, input_json) {
            Err(ds) => ds,
            Ok(input) => check(&input).into_iter().filter(|d| d.severity == Severity::Error).collect(),
        }
    }

    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        let mut diagnostics = check(&input);
        if diagnostics.iter().any(|d| d.severity == Severity::Error) {
            return Err(diagnostics);
        }
        let ctx = Ctx::new(&input);
        let objects = manifests(&input, &ctx, host).map_err(|d| vec![d])?;
        let mut artifacts: Vec<Artifact> = Vec::new();
        for obj in &objects {
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object").to_ascii_lowercase();
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("unnamed").to_owned();
            let path = format!("kubernetes/{kind}-{name}.yaml");
            let mut text = String::with_capacity(4096);
            text.push_str("# Rendered by redplate; do not edit. Re-render to change.\n");
            yaml::write_yaml(obj, &mut text);
            artifacts.push(Artifact::new(path, text, "application/yaml"));
        }
        artifacts.sort_by(|a, b| a.path.cmp(&b.path));
        diagnostics.extend(notes(&input, &ctx));
        redplate_plugin_sdk::discard((objects, ctx));
        redplate_plugin_sdk::discard(input);
        Ok(Output { artifacts, diagnostics })
    }
}

/// What makes the input unusable for Kubernetes, and warnings.
fn check(input: &Input) -> Vec<Diagnostic> {
    let mut ds = Vec::new();
    let k = &input.config.kubernetes;
    let ns = k.s("namespace", "redis");
    if ns == "default" && !k.b("allow_default_namespace", false) {
        ds.push(
            Diagnostic::error(
                "kubernetes.default-namespace",
                "/config/kubernetes/namespace",
                "the deployment would go into the `default` namespace",
            )
            .with_hint("set `kubernetes.namespace`, or `kubernetes.allow_default_namespace: true` if you mean it"),
        );
    }
    if !input.topology.nodes.iter().any(|n| n.role == "master") {
        ds.push(
            Diagnostic::error("kubernetes.no-data-nodes", "/topology/nodes", "the topology has no master")
                .with_hint("run `redplate validate` on the template; the host derives the topology"),
        );
    }
    let tls = &input.config.security.tls;
    if tls.b("enabled", false) && tls.s("cert_source", "files") == "cert_manager" && tls.s("issuer", "").is_empty() {
        ds.push(
            Diagnostic::error(
                "kubernetes.tls-no-issuer",
                "/config/security/tls/issuer",
                "TLS certificates from cert-manager need an issuer",
            )
            .with_hint("set `security.tls.issuer` to the name of a cert-manager Issuer in the namespace"),
        );
    }
    ds
}

/// Notes about how a few features map onto Kubernetes.
fn notes(input: &Input, ctx: &Ctx) -> Vec<Diagnostic> {
    let mut ds = Vec::new();
    if ctx.mode == "sentinel" {
        ds.push(Diagnostic::info(
            "kubernetes.master-service",
            "/config/deployment/mode",
            format!(
                "no `{0}-master` Service in sentinel mode: the master moves on failover and nothing in the manifests follows it; clients ask `{0}-sentinel` (port {1}) for master `{2}`",
                ctx.name,
                ctx.sentinel_port,
                conf::sentinel_master_name(input)
            ),
        ));
    }
    if ctx.auth && ctx.user_with_role("probe").is_none() {
        let what = match ctx.user_for(ctx::Job::Probe) {
            Some(u) => format!("probes log in as `{}`, which can do more than PING", u.name),
            None => "probes have no user to log in with and will fail".to_owned(),
        };
        ds.push(
            Diagnostic::warning(
                "kubernetes.no-probe-user",
                "/config/security/users",
                format!("no `probe` user: {what}"),
            )
            .with_hint("set `security.system_users: true` or add a user with `role: probe`"),
        );
    }
    let k = &input.config.kubernetes;
    if k.b("pdb", false) && k.n("pdb_max_unavailable", 1) == 0 {
        if ctx.data_nodes / 2 + 1 >= ctx.data_nodes {
            ds.push(
                Diagnostic::warning(
                    "kubernetes.pdb-blocks-drain",
                    "/config/kubernetes/pdb_max_unavailable",
                    format!(
                        "the PodDisruptionBudget keeps all {} Redis pod(s): node drains will wait forever",
                        ctx.data_nodes
                    ),
                )
                .with_hint("add replicas, or set `kubernetes.pdb_max_unavailable: 1` to allow one eviction"),
            );
        } else if ctx.mode == "cluster" && ctx.replicas_per_master > 0 {
            ds.push(
                Diagnostic::warning(
                    "kubernetes.cluster-pdb",
                    "/config/kubernetes/pdb_max_unavailable",
                    format!(
                        "minAvailable {} of {} lets a shard's master and its replicas be evicted together",
                        ctx.data_nodes / 2 + 1,
                        ctx.data_nodes
                    ),
                )
                .with_hint("set `kubernetes.pdb_max_unavailable: 1` so evictions go one pod at a time"),
            );
        }
    }
    let tls = &input.config.security.tls;
    if ctx.tls && matches!(tls.s("cert_source", "files").as_str(), "files" | "self_signed") {
        ds.push(Diagnostic::info(
            "kubernetes.tls-secret",
            "/config/security/tls/cert_source",
            format!(
                "pods read their certificates from the Secret `{}` (keys `tls.crt`, `tls.key`, `ca.crt`), mounted at `/etc/redis/tls`",
                ctx.tls_secret
            ),
        ));
    }
    let b = &input.config.backup;
    if b.b("enabled", false) {
        if b.get("destination").and_then(|d| d.get("s3")).is_some() {
            ds.push(Diagnostic::warning(
                "kubernetes.backup-s3",
                "/config/backup/destination",
                format!("the backup CronJob writes to the volume `{}-backups`; uploading to S3 is left to `backup/backup.sh`", ctx.name),
            ));
        }
        if b.s("compression", "zstd") == "zstd" {
            ds.push(Diagnostic::info(
                "kubernetes.backup-gzip",
                "/config/backup/compression",
                "the Redis image has no zstd: the backup CronJob compresses with gzip",
            ));
        }
        if b.get("encryption").is_some_and(|e| e.b("enabled", false)) {
            ds.push(Diagnostic::warning(
                "kubernetes.backup-unencrypted",
                "/config/backup/encryption/enabled",
                "the backup CronJob does not encrypt (the Redis image has no encryption tool); use an encrypted storage class",
            ));
        }
    }
    ds
}

fn checksum(files: &files::Files) -> String {
    let mut h = Sha256::new();
    for (k, v) in files.config.iter().chain(files.scripts.iter()) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn manifests(input: &Input, ctx: &Ctx, host: &dyn Host) -> Result<Vec<Value>, Diagnostic> {
    let files = files::build(input, ctx, host)?;
    let sum = checksum(&files);
    let mut out = vec![
        objects::namespace(input, ctx),
        objects::config_map(input, ctx, &format!("{}-config", ctx.name), &files.config),
        objects::config_map(input, ctx, &format!("{}-scripts", ctx.name), &files.scripts),
        workloads::redis_statefulset(input, ctx, &sum),
    ];
    out.extend(objects::services(input, ctx));
    let k = &input.config.kubernetes;
    let pdb = k.b("pdb", false);
    if pdb {
        out.push(objects::pdb(input, ctx, &ctx.name, "redis", ctx.data_nodes));
    }
    if ctx.mode == "sentinel" {
        out.push(workloads::sentinel_statefulset(input, ctx, &sum));
        if pdb {
            out.push(objects::pdb(input, ctx, &ctx.sentinel_sts(), "sentinel", ctx.sentinels));
        }
    }
    if ctx.mode == "cluster" {
        out.push(ops::cluster_init_job(input, ctx));
    }
    if input.config.security.network_policy {
        out.push(objects::network_policy(input, ctx));
    }
    let mon = &input.config.monitoring;
    if ctx.exporter && mon.b("service_monitor", false) {
        out.push(ops::service_monitor(input, ctx));
    }
    if ctx.exporter && mon.get("alerts").is_some_and(|a| a.b("enabled", false)) {
        out.push(ops::prometheus_rule(input, ctx));
    }
    if ctx.exporter {
        out.push(ops::grafana_dashboard(input, ctx));
    }
    if input.config.backup.b("enabled", false) {
        let (claim, pvc) = ops::backup_claim(input, ctx);
        out.extend(pvc);
        out.push(ops::backup_cronjob(input, ctx, &claim));
    }
    let tls = &input.config.security.tls;
    if ctx.tls && tls.s("cert_source", "files") == "cert_manager" {
        out.push(ops::certificate(input, ctx));
    }
    let sa = k.s("service_account", "");
    if !sa.is_empty() {
        out.push(objects::service_account(input, ctx, &sa));
    }
    Ok(out)
}

redplate_plugin_sdk::export_generator!(Plugin);
redplate_plugin_sdk::bump_allocator!();
