//! Values derived once from the input and shared by every manifest: names,
//! labels, images, ports, TLS, users and their Secret references.

use crate::input::{AclUser, Get, Input, SecretRef};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where the generator mounts things inside every pod.
pub const TEMPLATES_DIR: &str = "/opt/redplate/templates";
pub const SCRIPTS_DIR: &str = "/opt/redplate/scripts";
pub const RUN_DIR: &str = "/var/run/redplate/conf";
pub const SECRETS_DIR: &str = "/var/run/redplate/secrets";
pub const TLS_DIR: &str = "/etc/redis/tls";

/// What a component needs a Redis login for.
#[derive(Clone, Copy)]
pub enum Job {
    /// Replicas to their master (`masteruser`), Sentinel's ROLE check in preStop.
    Replication,
    /// Liveness, readiness and startup probes.
    Probe,
    /// Sentinel to the data nodes (`sentinel auth-user`).
    Sentinel,
    /// The Prometheus exporter.
    Exporter,
    /// The cluster-init Job (`redis-cli --cluster create`).
    ClusterInit,
    /// The backup CronJob (`redis-cli --rdb`).
    Backup,
}

/// One ACL user as rendered for Kubernetes: rules, and where its password is.
#[derive(Clone)]
pub struct User {
    pub name: String,
    pub role: String,
    pub enabled: bool,
    pub secret: Option<SecretRef>,
    pub rules: Vec<String>,
}

pub struct Ctx {
    pub name: String,
    pub namespace: String,
    pub domain: String,
    pub mode: String,
    pub version: String,
    pub major: u32,
    pub image: String,
    pub exporter_image: String,
    pub pull_policy: String,
    pub port: u64,
    pub tls_port: u64,
    pub sentinel_port: u64,
    pub bus_offset: u64,
    pub metrics_port: u64,
    pub tls: bool,
    pub plain: bool,
    pub tls_secret: String,
    pub tls_client_certs: bool,
    pub tls_sentinel: bool,
    pub auth: bool,
    pub users: Vec<User>,
    pub exporter: bool,
    pub data_nodes: u64,
    pub sentinels: u64,
    pub shards: u64,
    pub replicas_per_master: u64,
}

impl Ctx {
    pub fn new(input: &Input) -> Ctx {
        let c = &input.config;
        let dep = &c.deployment;
        let k8s = &c.kubernetes;
        let net = &c.network;
        let tls = &c.security.tls;
        let name = if input.name.is_empty() { dep.s("name", "redis") } else { input.name.clone() };
        let version = dep.s("redis_version", "7.4");
        let major = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(7);
        let repo = dep.s("image", "redis");
        let tag = dep.s("image_tag", "");
        let image = if repo.contains('@') {
            repo
        } else {
            pinned(format!("{repo}:{}", if tag.is_empty() { &version } else { &tag }), &dep.s("image_digest", ""))
        };
        let tls_on = tls.b("enabled", false);
        let cert_source = tls.s("cert_source", "files");
        let tls_secret = match cert_source.as_str() {
            "secret" if !tls.s("secret_name", "").is_empty() => tls.s("secret_name", ""),
            _ => format!("{name}-tls"),
        };
        let mode =
            if input.topology.mode.is_empty() { dep.s("mode", "standalone") } else { input.topology.mode.clone() };
        let data_nodes = input.topology.nodes.iter().filter(|n| n.role != "sentinel").count() as u64;
        let sentinels = input.topology.nodes.iter().filter(|n| n.role == "sentinel").count() as u64;
        let shards = u64::from(input.topology.shards.max(1));
        let mut ctx = Ctx {
            namespace: k8s.s("namespace", "redis"),
            domain: k8s.s("cluster_domain", "cluster.local"),
            version,
            major,
            image,
            exporter_image: pinned(
                c.monitoring.s("exporter_image", "oliver006/redis_exporter:v1.67.0"),
                &c.monitoring.s("exporter_image_digest", ""),
            ),
            pull_policy: dep.s("image_pull_policy", "IfNotPresent"),
            port: net.n("port", 6379),
            tls_port: net.n("tls_port", 6380),
            sentinel_port: net.n("sentinel_port", 26379),
            bus_offset: net.n("cluster_bus_port_offset", 10000),
            metrics_port: c.monitoring.n("exporter_port", 9121),
            tls: tls_on,
            plain: !(tls_on && tls.b("disable_plain_port", false)),
            tls_secret,
            tls_client_certs: tls.s("client_auth", "none") != "none",
            tls_sentinel: tls_on && tls.b("sentinel", true),
            auth: c.security.auth_enabled,
            users: Vec::new(),
            exporter: c.monitoring.b("exporter", false),
            data_nodes: data_nodes.max(1),
            sentinels,
            shards,
            replicas_per_master: (data_nodes.max(1) / shards).saturating_sub(1),
            mode,
            name,
        };
        ctx.users = users(input, &ctx);
        ctx
    }

    /// The port probes, the exporter and other nodes use: TLS when on.
    pub fn redis_port(&self) -> u64 {
        if self.tls { self.tls_port } else { self.port }
    }

    pub fn headless(&self, sts: &str) -> String {
        format!("{sts}-headless")
    }

    /// A pod's stable DNS name.
    pub fn fqdn(&self, sts: &str, ordinal: u64) -> String {
        format!("{sts}-{ordinal}.{}.{}.svc.{}", self.headless(sts), self.namespace, self.domain)
    }

    pub fn svc_fqdn(&self, svc: &str) -> String {
        format!("{svc}.{}.svc.{}", self.namespace, self.domain)
    }

    pub fn sentinel_sts(&self) -> String {
        format!("{}-sentinel", self.name)
    }

    /// `app.kubernetes.io/*` labels for one component, plus the user's labels.
    pub fn labels(&self, input: &Input, component: &str) -> Value {
        let mut m: BTreeMap<String, String> = input.config.deployment.map("labels");
        m.extend(input.config.kubernetes.map("labels"));
        let owner = input.config.deployment.s("owner", "");
        if !owner.is_empty() {
            m.insert("redplate.io/owner".into(), owner);
        }
        m.entry("app.kubernetes.io/part-of".into()).or_insert_with(|| self.name.clone());
        m.insert("app.kubernetes.io/name".into(), "redis".into());
        m.insert("app.kubernetes.io/instance".into(), self.name.clone());
        m.insert("app.kubernetes.io/component".into(), component.into());
        m.insert("app.kubernetes.io/managed-by".into(), "redplate".into());
        m.insert("app.kubernetes.io/version".into(), self.version.clone());
        json!(m)
    }

    /// The labels a selector matches on for one component (never user labels,
    /// which may change without recreating the StatefulSet).
    pub fn selector(&self, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "redis",
            "app.kubernetes.io/instance": self.name.clone(),
            "app.kubernetes.io/component": component,
        })
    }

    pub fn metadata(&self, input: &Input, name: &str, component: &str) -> Value {
        let mut md =
            json!({ "name": name, "namespace": self.namespace.clone(), "labels": self.labels(input, component) });
        let mut ann: Map<String, Value> =
            input.config.kubernetes.map("annotations").into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let desc = input.config.deployment.s("description", "");
        if !desc.is_empty() {
            ann.insert("redplate.io/description".into(), Value::String(desc));
        }
        if !ann.is_empty() {
            md["annotations"] = Value::Object(ann);
        }
        md
    }

    /// The first enabled user with a role and a password, if any.
    pub fn user_with_role(&self, role: &str) -> Option<&User> {
        self.users.iter().find(|u| u.role == role && u.enabled && u.secret.is_some())
    }

    /// The user a component authenticates as: its own system user, else the
    /// next best one, else an admin (the `default` user when only
    /// `requirepass` is configured).
    pub fn user_for(&self, job: Job) -> Option<&User> {
        let order: &[&str] = match job {
            Job::Replication => &["replication", "admin"],
            Job::Probe => &["probe", "replication", "admin"],
            Job::Sentinel => &["sentinel", "admin"],
            Job::Exporter => &["exporter", "admin"],
            Job::ClusterInit => &["admin", "replication"],
            Job::Backup => &["backup", "replication", "admin"],
        };
        order.iter().find_map(|r| self.user_with_role(r))
    }

    /// `redis-cli` TLS arguments (a shell fragment, no secrets).
    pub fn cli_tls(&self, on: bool) -> String {
        if !on {
            return String::new();
        }
        let mut s = format!("--tls --cacert {TLS_DIR}/ca.crt");
        if self.tls_client_certs {
            s.push_str(&format!(" --cert {TLS_DIR}/tls.crt --key {TLS_DIR}/tls.key"));
        }
        s
    }
}

/// `image` pinned by `digest` when one is given (`repo:tag@sha256:…`): the
/// tag stays for people reading the manifest, the runtime pulls the digest.
fn pinned(image: String, digest: &str) -> String {
    if digest.is_empty() || image.contains('@') { image } else { format!("{image}@{digest}") }
}

const SYSTEM_ROLES: [&str; 4] = ["replication", "sentinel", "exporter", "probe"];

fn users(input: &Input, ctx: &Ctx) -> Vec<User> {
    let sec = &input.config.security;
    if !sec.auth_enabled {
        return Vec::new();
    }
    let mut list: Vec<AclUser> = sec.users.clone();
    if sec.system_users {
        for role in SYSTEM_ROLES {
            if !list.iter().any(|u| u.role == role) && !list.iter().any(|u| u.name == role) {
                list.push(AclUser {
                    name: role.into(),
                    role: role.into(),
                    password: Some(json!({"generate": true})),
                    enabled: true,
                    ..AclUser::default()
                });
            }
        }
    }
    let mut out: Vec<User> = Vec::new();
    let default_pw = sec.password.clone().filter(|p| !p.is_null());
    let has_default = list.iter().any(|u| u.name == "default");
    if !has_default {
        let secret = default_pw.as_ref().map(|p| secret_ref(input, &ctx.name, "default", p));
        out.push(User {
            name: "default".into(),
            role: "admin".into(),
            enabled: sec.default_user_enabled && secret.is_some(),
            rules: if secret.is_some() { vec!["~*".into(), "&*".into(), "+@all".into()] } else { Vec::new() },
            secret,
        });
    }
    for u in list {
        let secret = u.password.as_ref().filter(|p| !p.is_null()).map(|p| secret_ref(input, &ctx.name, &u.name, p));
        let rules = rules(&u, sec, &ctx.mode);
        out.push(User { name: u.name, role: u.role, enabled: u.enabled, secret, rules });
    }
    out
}

/// The Secret holding a user's password: the host's answer when it gave one,
/// else the user's own `secret:` source, else `<deployment>-auth` / `<user>`
/// (where the host keeps generated passwords).
fn secret_ref(input: &Input, name: &str, user: &str, source: &Value) -> SecretRef {
    if let Some(r) = input.secrets.users.get(user).filter(|r| !r.secret_name.is_empty() && !r.secret_key.is_empty()) {
        return r.clone();
    }
    if let Some(s) = source.get("secret") {
        let (n, k) = (s.s("name", ""), s.s("key", ""));
        if !n.is_empty() && !k.is_empty() {
            return SecretRef { secret_name: n, secret_key: k };
        }
    }
    SecretRef { secret_name: format!("{name}-auth"), secret_key: user.to_owned() }
}

fn rules(u: &AclUser, sec: &crate::input::Security, mode: &str) -> Vec<String> {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let mut r = match u.role.as_str() {
        "admin" => words("~* &* +@all"),
        // Redis' documented minimum for `masteruser`; `sync` lets backups use `redis-cli --rdb`.
        "replication" if mode == "cluster" => {
            // The cluster-init Job runs as the replication user when no admin exists.
            words("-@all +psync +replconf +sync +ping +info +cluster")
        }
        "replication" => words("-@all +psync +replconf +sync +ping +info"),
        // Redis' documented Sentinel user.
        "sentinel" => words(
            "&__sentinel__:hello -@all +multi +slaveof +replicaof +ping +exec +subscribe +config|rewrite +role \
             +publish +info +client|setname +client|kill +script|kill",
        ),
        // redis_exporter's documented minimal user.
        "exporter" => words(
            "~* -@all +@connection +memory +config|get +info +latency +slowlog +client +cluster|info +strlen \
             +xinfo +pfcount +zcard +type +xlen +scard +llen +hlen +get +scan +select",
        ),
        "probe" => words("-@all +ping"),
        // What the backup CronJob's `redis-cli --rdb` sends: `REPLCONF rdb-only`, then `SYNC`.
        "backup" => words("-@all +ping +info +replconf +sync"),
        _ => {
            let mut r: Vec<String> = u.keys.iter().map(|k| format!("~{k}")).collect();
            r.extend(u.channels.iter().map(|c| format!("&{c}")));
            r.extend(u.commands.iter().cloned());
            r.extend(sec.disabled_categories.iter().map(|c| format!("-@{c}")));
            r.extend(sec.disabled_commands.iter().map(|c| format!("-{c}")));
            r
        }
    };
    if u.role != "app" && u.role != "admin" {
        r.insert(0, "resetchannels".into());
        r.insert(0, "resetkeys".into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_come_from_the_host_then_the_source_then_the_default() {
        let i: Input = serde_json::from_value(json!({
            "name": "orders",
            "config": { "security": { "auth_enabled": true, "system_users": true, "users": [
                { "name": "a", "password": { "secret": { "name": "s-a", "key": "k" } } },
                { "name": "b", "password": { "generate": true } },
                { "name": "c", "password": { "generate": true } },
            ] } },
            "secrets": { "users": { "c": { "secret_name": "host-c", "secret_key": "kc" } } },
        }))
        .expect("input");
        let ctx = Ctx::new(&i);
        let r = |n: &str| {
            ctx.users.iter().find(|u| u.name == n).and_then(|u| u.secret.clone()).map(|s| (s.secret_name, s.secret_key))
        };
        assert_eq!(r("a"), Some(("s-a".into(), "k".into())));
        assert_eq!(r("b"), Some(("orders-auth".into(), "b".into())));
        assert_eq!(r("c"), Some(("host-c".into(), "kc".into())));
        // System users are added when missing, with generated passwords.
        assert_eq!(r("probe"), Some(("orders-auth".into(), "probe".into())));
        assert!(ctx.user_with_role("exporter").is_some());
    }

    #[test]
    fn the_backup_job_runs_as_the_backup_user_with_only_what_redis_cli_rdb_sends() {
        let i: Input = serde_json::from_value(json!({
            "name": "orders",
            "config": { "security": { "auth_enabled": true, "system_users": true, "users": [
                { "name": "dump", "role": "backup", "enabled": true, "password": { "generate": true } },
            ] } },
        }))
        .expect("input");
        let ctx = Ctx::new(&i);
        let user = ctx.user_for(Job::Backup).expect("a backup user");
        assert_eq!(user.name, "dump");
        assert_eq!(user.rules.join(" "), "resetkeys resetchannels -@all +ping +info +replconf +sync");
    }

    #[test]
    fn the_grafana_dashboard_is_a_config_map_the_grafana_sidecar_imports() {
        let i: Input = serde_json::from_value(json!({ "name": "orders", "config": {} })).expect("input");
        let ctx = Ctx::new(&i);
        let cm = crate::ops::grafana_dashboard(&i, &ctx);
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        let text = cm["data"]["orders-redis.json"].as_str().expect("the dashboard");
        let dashboard: serde_json::Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(dashboard["uid"], "redplate-redis");
    }
}
