//! The ConfigMaps' contents: config files and scripts, each rendered through
//! the host's Handlebars `render` so a user can override any of them by name
//! (`kubernetes/redis.conf`, `kubernetes/init.sh`, ...).

use crate::conf;
use crate::ctx::{Ctx, Job, RUN_DIR, SECRETS_DIR, TEMPLATES_DIR, User};
use crate::input::{Get, Input};
use redplate_plugin_sdk::{Diagnostic, Host, TemplateOverrides};
use serde_json::Value;
use std::collections::BTreeMap;

const REDIS_CONF: &str = include_str!("templates/redis.conf.hbs");
const SENTINEL_CONF: &str = include_str!("templates/sentinel.conf.hbs");
const USERS_ACL: &str = include_str!("templates/users.acl.hbs");
const INIT_SH: &str = include_str!("templates/init.sh.hbs");
const SENTINEL_INIT_SH: &str = include_str!("templates/sentinel-init.sh.hbs");
const PROBE_SH: &str = include_str!("templates/probe.sh.hbs");
const PRESTOP_SH: &str = include_str!("templates/prestop.sh.hbs");
const CLUSTER_INIT_SH: &str = include_str!("templates/cluster-init.sh.hbs");
const BACKUP_SH: &str = include_str!("templates/backup.sh.hbs");

/// Where the exporter's password file is written (an in-memory volume).
pub const EXPORTER_DIR: &str = "/var/run/redplate/exporter";

/// The two ConfigMaps' data: config files, and scripts.
pub struct Files {
    pub config: BTreeMap<String, String>,
    pub scripts: BTreeMap<String, String>,
}

/// A user as the scripts see it: the file its password is mounted as.
fn user_json(u: Option<&User>) -> Value {
    match u {
        Some(u) => json!({ "name": u.name.clone(), "file": u.name.clone() }),
        None => Value::Null,
    }
}

fn render(
    host: &dyn Host,
    templates: &TemplateOverrides,
    name: &str,
    template: &str,
    data: &Value,
) -> Result<String, Diagnostic> {
    // Override names are plain file names (`--templates DIR` holds
    // `kubernetes-init.sh.hbs`), prefixed so they never collide with another
    // plugin's `redis.conf`.
    templates.render_value(host, &format!("kubernetes-{name}"), template, data).map_err(|e| render_error(name, e))
}

/// `redis.conf` or `sentinel.conf` (the `kubernetes-<name>` template): a
/// first line naming the file, `header`, then one directive per line.
#[allow(clippy::too_many_arguments)]
fn config_file(
    host: &dyn Host,
    templates: &TemplateOverrides,
    name: &str,
    template: &str,
    header: &str,
    directives: &conf::Conf,
    ctx: &Ctx,
    with: &dyn Fn(Value) -> Value,
) -> Result<String, Diagnostic> {
    let data = || Ok(with(json!({"directives": directives.json()})).to_string());
    let native = || {
        let mut out = format!("# {name} for `{}` — rendered by redplate, mounted from a ConfigMap.\n", ctx.name);
        out.push_str(header);
        directives.write_lines(&mut out);
        out
    };
    templates.render(host, &format!("kubernetes-{name}"), template, data, native).map_err(|e| render_error(name, e))
}

fn render_error(name: &str, e: String) -> Diagnostic {
    Diagnostic::error("kubernetes.render", "", e)
        .with_hint(format!("check the override `kubernetes-{name}.hbs` given with `--templates`"))
}

/// The hosts a backup streams from: one node per shard, a replica when asked
/// and one exists.
pub fn backup_hosts(input: &Input, ctx: &Ctx) -> Vec<String> {
    let from_replica = input.config.backup.b("from_replica", true);
    (0..ctx.shards)
        .map(|s| {
            let replica = input
                .topology
                .nodes
                .iter()
                .find(|n| n.role == "replica" && u64::from(n.shard.unwrap_or(0)) == s && from_replica);
            let ordinal = replica.map(|n| u64::from(n.ordinal)).unwrap_or(s);
            ctx.fqdn(&ctx.name, ordinal)
        })
        .collect()
}

pub fn build(input: &Input, ctx: &Ctx, host: &dyn Host) -> Result<Files, Diagnostic> {
    let mut config = BTreeMap::new();
    let mut scripts = BTreeMap::new();
    let redis_tls = ctx.cli_tls(ctx.tls);
    let sentinel_tls = ctx.cli_tls(ctx.tls_sentinel);
    let master_name = conf::sentinel_master_name(input);
    let sentinel = ctx.mode == "sentinel";
    let cluster = ctx.mode == "cluster";
    let with_secret: Vec<Value> = ctx
        .users
        .iter()
        .enumerate()
        .filter(|(_, u)| u.secret.is_some())
        .map(|(i, u)| json!({"index": i, "name": u.name.clone(), "file": u.name.clone()}))
        .collect();
    let replication = ctx.user_for(Job::Replication);
    let probe = ctx.user_for(Job::Probe);
    let base = json!({
        "name": ctx.name.clone(),
        "namespace": ctx.namespace.clone(),
        "domain": ctx.domain.clone(),
        "headless": ctx.headless(&ctx.name),
        "sentinel_headless": ctx.headless(&ctx.sentinel_sts()),
        "sentinel_service": ctx.svc_fqdn(&ctx.sentinel_sts()),
        "sentinel_port": ctx.sentinel_port,
        "sentinel_tls": sentinel_tls,
        "redis_port": ctx.redis_port(),
        "redis_tls": redis_tls,
        "master_name": master_name,
        "master_fqdn": ctx.fqdn(&ctx.name, 0),
        "run_dir": RUN_DIR,
        "templates_dir": TEMPLATES_DIR,
        "secrets_dir": SECRETS_DIR,
        "exporter_dir": EXPORTER_DIR,
        "auth": ctx.auth,
        "users": with_secret,
        "replication_user": user_json(replication.filter(|_| ctx.mode != "standalone")),
        "probe_user": user_json(probe),
        "exporter_user": user_json(ctx.user_for(Job::Exporter).filter(|_| ctx.exporter)),
        "sentinel_user": user_json(ctx.user_for(Job::Sentinel)),
        "role_user": user_json(ctx.user_for(Job::Sentinel)),
        "admin_user": user_json(ctx.user_for(Job::ClusterInit)),
        "exporter_scheme": if ctx.tls { "rediss" } else { "redis" },
        "announce": input.config.network.b("announce_hostname", true),
        "announce_cluster": cluster && ctx.major >= 7 && input.config.cluster.b("announce_hostnames", true),
        "nodes_conf": format!(
            "{}/{}",
            input.config.persistence.s("data_dir", "/data"),
            input.config.cluster.s("config_file", "nodes.conf")
        ),
        "cluster": cluster,
        "sentinel": sentinel,
        "replication": ctx.mode == "replication",
        "has_master": sentinel || ctx.mode == "replication",
    });
    let with = |extra: Value| {
        let mut d = base.clone();
        if let (Value::Object(m), Value::Object(e)) = (&mut d, extra) {
            m.extend(e);
        }
        d
    };
    let templates = &input.template_overrides;
    let directives = conf::redis_directives(input, ctx);
    let header = "# No password is written here: the init script appends `masteruser`,\n\
                  # `masterauth`, `replicaof` and the announced host name at pod start, reading\n\
                  # the passwords from the mounted Secret into an in-memory volume (mode 0600).\n";
    let text = config_file(host, templates, "redis.conf", REDIS_CONF, header, &directives, ctx, &with)?;
    config.insert("redis.conf".into(), text);
    if ctx.auth {
        let users = conf::acl_users(ctx);
        let text = templates
            .render(
                host,
                "kubernetes-users.acl",
                USERS_ACL,
                || Ok(json!({ "users": &users }).to_string()),
                || {
                    let mut out = String::new();
                    for u in &users {
                        u.write_line(&mut out);
                    }
                    out
                },
            )
            .map_err(|e| render_error("users.acl", e))?;
        config.insert("users.acl".into(), text);
    }
    scripts.insert("init.sh".into(), render(host, templates, "init.sh", INIT_SH, &base)?);
    scripts.insert("probe.sh".into(), render(host, templates, "probe.sh", PROBE_SH, &base)?);
    if sentinel {
        let directives = conf::sentinel_directives(input, ctx);
        let header = "# The init script fills in the current master (asked from the running\n\
                      # sentinels, else the first pod) and appends `sentinel auth-user`/`auth-pass`\n\
                      # from the mounted Secret; Sentinel rewrites its copy in an in-memory volume.\n";
        let text = config_file(host, templates, "sentinel.conf", SENTINEL_CONF, header, &directives, ctx, &with)?;
        config.insert("sentinel.conf".into(), text);
        scripts
            .insert("sentinel-init.sh".into(), render(host, templates, "sentinel-init.sh", SENTINEL_INIT_SH, &base)?);
        scripts.insert("prestop.sh".into(), render(host, templates, "prestop.sh", PRESTOP_SH, &base)?);
    }
    if cluster {
        let nodes: Vec<String> = (0..ctx.data_nodes).map(|i| ctx.fqdn(&ctx.name, i)).collect();
        let data = with(json!({"nodes": nodes, "replicas": ctx.replicas_per_master}));
        scripts.insert("cluster-init.sh".into(), render(host, templates, "cluster-init.sh", CLUSTER_INIT_SH, &data)?);
    }
    let backup = &input.config.backup;
    if backup.b("enabled", false) {
        let retention = backup.n("retention_count", 7).max(1);
        let data = with(json!({
            "dest": crate::ops::BACKUP_DIR,
            "retention": retention,
            "keep_from": retention + 1,
            "hosts": backup_hosts(input, ctx),
            "user": user_json(ctx.user_for(Job::Backup)),
            "timeout": (backup.millis("timeout", 3_600_000) / 1000).max(60),
            "gzip": backup.s("compression", "zstd") != "none",
            "level": backup.n("compression_level", 3).clamp(1, 9),
            "verify": backup.b("verify", true),
        }));
        scripts.insert("backup.sh".into(), render(host, templates, "backup.sh", BACKUP_SH, &data)?);
    }
    Ok(Files { config, scripts })
}
