//! Builds the Compose document: one service per topology node, an exporter
//! next to every data node when monitoring is on, secrets from the files the
//! host writes, named volumes and the top-level sections.

use crate::input::{Input, Node};
use crate::yaml::{MapBuilder, Yaml};
use redplate_plugin_sdk::Diagnostic;

/// Where the rendered config files are mounted inside the Redis containers.
pub const CONF_DIR: &str = "/usr/local/etc/redis";
/// Where redis-conf's `aclfile` points in containers.
pub const ACL_FILE: &str = "/etc/redis/users.acl";
/// The upstream `redis` image's own non-root user: a fresh named volume
/// mounted on `/data` inherits the image directory's owner (this user), so
/// Redis can write without a root init step. Compose has no `fsGroup`.
pub const REDIS_USER: &str = "999:999";
/// Where the exporter reads its password map (a named volume).
const EXPORTER_AUTH_DIR: &str = "/auth";

/// A user whose password a container reads from a Compose secret.
#[derive(Debug, Clone)]
pub struct Cred {
    pub user: String,
    pub secret: String,
}

/// Everything the service builders share.
pub struct Ctx<'a> {
    pub input: &'a Input,
    pub project: String,
    pub probe: Option<Cred>,
    pub exporter: Option<Cred>,
    /// Forms the cluster (mode `cluster`): an admin, or `default`.
    pub admin: Option<Cred>,
    /// The password Sentinel's own port asks for (the sentinel user's).
    pub sentinel_auth: Option<Cred>,
    pub tls: Option<TlsPaths>,
    pub diagnostics: Vec<Diagnostic>,
    pub errors: Vec<Diagnostic>,
}

/// TLS files: where they are mounted in the containers.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: String,
    pub key: String,
    pub ca: String,
    pub client_cert: bool,
    /// Container path → file in the rendered tree (relative to the compose folder).
    pub sources: Vec<(String, String)>,
}

impl TlsPaths {
    /// The bind mounts of the certificate, key and CA.
    fn mounts(&self) -> Vec<String> {
        [&self.cert, &self.key, &self.ca].iter().map(|p| self.mount(p)).collect()
    }
    /// `source:path:ro`; a file not in `sources` is taken from `../tls/<file name>`.
    pub(crate) fn mount(&self, path: &str) -> String {
        let source = self
            .sources
            .iter()
            .find(|(c, _)| c == path)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| format!("../tls/{}", base_name(path)));
        format!("{source}:{path}:ro")
    }
    pub(crate) fn cli_args(&self) -> String {
        let mut s = format!(" --tls --cacert {}", self.ca);
        if self.client_cert {
            s.push_str(&format!(" --cert {} --key {}", self.cert, self.key));
        }
        s
    }
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Characters that need no quoting in `sh` (paths, user and host names).
pub fn shell_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@'))
}

/// `image` pinned by `digest` when one is given (`repo:tag@sha256:…`), as
/// the Kubernetes generator does: the tag stays for people reading the file,
/// Docker pulls the digest. An image that already names a digest is kept.
fn pinned(image: String, digest: &str) -> String {
    if digest.is_empty() || image.contains('@') { image } else { format!("{image}@{digest}") }
}

/// The secret name a user's password file is published under.
pub fn secret_name(user: &str) -> String {
    format!("{user}-password")
}

impl Ctx<'_> {
    fn compose(&self) -> &crate::input::Compose {
        &self.input.config.compose
    }

    /// An image reference with the registry override applied.
    pub fn image(&self, reference: &str) -> String {
        let registry = self.compose().image_registry.trim_end_matches('/');
        if registry.is_empty() { reference.to_owned() } else { format!("{registry}/{reference}") }
    }

    pub fn redis_image(&self) -> String {
        let d = &self.input.config.deployment;
        let tag = if d.image_tag.is_empty() { &d.redis_version } else { &d.image_tag };
        self.image(&pinned(format!("{}:{tag}", d.image), &d.image_digest))
    }

    pub fn exporter_image(&self) -> String {
        let m = &self.input.config.monitoring;
        self.image(&pinned(m.exporter_image.clone(), &m.exporter_image_digest))
    }

    pub(crate) fn labels(&self, node: &str, role: &str) -> Yaml {
        let mut m = MapBuilder::new()
            .put("com.redplate.deployment", Yaml::s(&self.project))
            .put("com.redplate.node", Yaml::s(node))
            .put("com.redplate.role", Yaml::s(role));
        for (k, v) in &self.input.config.deployment.labels {
            m.push(k.clone(), Yaml::s(v));
        }
        m.build()
    }

    /// The hardening every container gets.
    pub(crate) fn harden(&self, m: MapBuilder, user: &str) -> MapBuilder {
        let sc = &self.input.config.kubernetes.security_context;
        let mut m = m.put("user", Yaml::s(user));
        if sc.read_only_root_filesystem {
            m = m.put("read_only", Yaml::Bool(true)).put("tmpfs", Yaml::strs(["/tmp"]));
        }
        if sc.drop_all_capabilities {
            m = m.put("cap_drop", Yaml::strs(["ALL"]));
        }
        if !sc.allow_privilege_escalation {
            m = m.put("security_opt", Yaml::strs(["no-new-privileges:true"]));
        }
        m
    }

    pub(crate) fn restart(&self) -> Yaml {
        Yaml::s(match self.compose().restart.as_str() {
            "no" => "no",
            "always" => "always",
            "on-failure" => "on-failure",
            _ => "unless-stopped",
        })
    }

    pub(crate) fn networks(&self) -> Option<Yaml> {
        let n = &self.compose().network;
        (!n.is_empty()).then(|| Yaml::strs([n.clone()]))
    }

    /// `addr:host-port:container-port`, the host port shifted by the node's
    /// ordinal so several nodes can publish on one host.
    fn publish(&self, container: u16, ordinal: u16) -> Option<Yaml> {
        let c = self.compose();
        if !c.publish_ports {
            return None;
        }
        let Ok(host) = u16::try_from(u32::from(container) + u32::from(ordinal)) else {
            return None;
        };
        let addr = &c.publish_address;
        let spec = match addr.as_str() {
            "" => format!("{host}:{container}"),
            a if a.contains(':') => format!("[{a}]:{host}:{container}"),
            a => format!("{a}:{host}:{container}"),
        };
        Some(Yaml::strs([spec]))
    }

    fn data_volume(&self, node: &Node) -> String {
        let c = self.compose();
        let dir = self.data_dir(node);
        if c.named_volumes {
            format!("{}-data:{dir}", node.name)
        } else {
            format!("{}/{}:{dir}", c.bind_dir.trim_end_matches('/'), node.name)
        }
    }

    fn data_dir(&self, node: &Node) -> String {
        if node.data_dir.starts_with('/') {
            node.data_dir.clone()
        } else {
            self.input.config.persistence.data_dir.clone()
        }
    }

    pub(crate) fn tls_for(&self, node: &Node) -> Option<&TlsPaths> {
        let tls = self.tls.as_ref()?;
        if node.is_data() || self.input.config.security.tls.sentinel { Some(tls) } else { None }
    }

    /// `redis-cli … ping`, TLS-aware, password from a secret through
    /// `REDISCLI_AUTH` (never `-a`). `$$` is Compose's escape for `$`.
    fn ping(&self, node: &Node, cred: Option<&Cred>) -> Option<String> {
        let (port, tls) = match (node.ports.sentinel, node.ports.client, node.ports.tls) {
            (Some(p), _, _) => (p, self.tls_for(node)),
            (None, Some(p), _) => (p, None),
            (None, None, Some(p)) => (p, self.tls.as_ref()),
            _ => return None,
        };
        let mut cmd = String::new();
        if let Some(c) = cred.filter(|_| node.role == "sentinel") {
            // Sentinel's port takes the sentinel user's password as `requirepass`.
            cmd.push_str(&format!("REDISCLI_AUTH=\"$$(cat /run/secrets/{})\" redis-cli", c.secret));
        } else if let Some(c) = cred {
            cmd.push_str(&format!("REDISCLI_AUTH=\"$$(cat /run/secrets/{})\" redis-cli --user {}", c.secret, c.user));
        } else {
            cmd.push_str("redis-cli");
        }
        cmd.push_str(&format!(" -h 127.0.0.1 -p {port}"));
        if let Some(t) = tls {
            cmd.push_str(&t.cli_args());
        }
        cmd.push_str(" ping | grep -q PONG");
        Some(cmd)
    }

    fn healthcheck(&self, node: &Node, cred: Option<&Cred>, start_period: &str) -> Option<Yaml> {
        let cmd = self.ping(node, cred)?;
        Some(
            MapBuilder::new()
                .put("test", Yaml::List(vec![Yaml::s("CMD-SHELL"), Yaml::s(cmd)]))
                .put("interval", Yaml::s("10s"))
                .put("timeout", Yaml::s("5s"))
                .put("retries", Yaml::Int(5))
                .put("start_period", Yaml::s(start_period))
                .build(),
        )
    }

    pub(crate) fn healthy(names: impl IntoIterator<Item = String>) -> Yaml {
        let mut m = MapBuilder::new();
        for n in names {
            m.push(n, MapBuilder::new().put("condition", Yaml::s("service_healthy")).build());
        }
        m.build()
    }

    /// A master or replica. Like a Sentinel's, its config is seeded onto
    /// the data volume and run from there: Sentinel persists a failover with
    /// `CONFIG REWRITE` (`replicaof`), which a read-only file would lose, so
    /// after a restart of the whole project the nodes would come back in
    /// their rendered roles and fight the sentinels. 0600: it holds passwords.
    pub fn data_service(&self, node: &Node, masters: &[String]) -> Yaml {
        let mut volumes = vec![format!("../redis/{}/redis.conf:{CONF_DIR}/redis.conf:ro", node.name)];
        if uses_acl_file(self.input) {
            // redis-conf's `aclfile` for container targets.
            volumes.push(format!("../redis/users.acl:{ACL_FILE}:ro"));
        }
        volumes.push(self.data_volume(node));
        if let Some(t) = &self.tls {
            volumes.extend(t.mounts());
        }
        volumes.extend(self.compose().extra_volumes.iter().cloned());
        let port = node.ports.client.or(node.ports.tls);
        let depends = match &node.replica_of {
            Some(m) if masters.contains(m) => Some(Self::healthy([m.clone()])),
            _ => None,
        };
        let dir = self.data_dir(node);
        let script = seeded(&format!("{CONF_DIR}/redis.conf"), &dir, "redis", uses_acl_file(self.input));
        let m = MapBuilder::new()
            .put("image", Yaml::s(self.redis_image()))
            .put("hostname", Yaml::s(&node.hostname))
            .put("command", Yaml::strs(["sh", "-c", &script]));
        let m = self
            .harden(m, REDIS_USER)
            .put("restart", self.restart())
            .put("stop_grace_period", Yaml::s("30s"))
            .put("volumes", Yaml::strs(volumes))
            .put_opt("ports", port.and_then(|p| self.publish(p, node.ordinal)))
            .put_opt("secrets", self.probe.as_ref().map(|c| Yaml::strs([c.secret.clone()])))
            .put_opt("healthcheck", self.healthcheck(node, self.probe.as_ref(), "60s"))
            .put_opt("depends_on", depends)
            .put_opt("mem_limit", size(&self.input.config.resources.memory))
            .put_opt("cpus", cpus(self.input.config.resources.cpu_millis))
            .put_opt("networks", self.networks())
            .put("labels", self.labels(&node.name, &node.role));
        m.build()
    }

    /// A Sentinel. Sentinel rewrites its config file, so the read-only
    /// rendered file seeds a copy on the data volume, re-seeded only when the
    /// rendered file changes (learned state survives restarts otherwise).
    pub fn sentinel_service(&self, node: &Node, masters: &[String]) -> Yaml {
        let dir = self.data_dir(node);
        let seed = format!("{CONF_DIR}/sentinel.conf");
        let script = seeded(&seed, &dir, "sentinel", false);
        let mut volumes = vec![format!("../sentinel/{}/sentinel.conf:{seed}:ro", node.name), self.data_volume(node)];
        if let Some(t) = self.tls_for(node) {
            volumes.extend(t.mounts());
        }
        let m = MapBuilder::new()
            .put("image", Yaml::s(self.redis_image()))
            .put("hostname", Yaml::s(&node.hostname))
            .put("command", Yaml::strs(["sh", "-c", &script]));
        self.harden(m, REDIS_USER)
            .put("restart", self.restart())
            .put("volumes", Yaml::strs(volumes))
            .put_opt("ports", node.ports.sentinel.and_then(|p| self.publish(p, node.ordinal)))
            .put_opt("secrets", self.sentinel_auth.as_ref().map(|c| Yaml::strs([c.secret.clone()])))
            .put_opt("healthcheck", self.healthcheck(node, self.sentinel_auth.as_ref(), "30s"))
            .put_nonempty("depends_on", Self::healthy(masters.iter().cloned()))
            .put_opt("mem_limit", size(&self.input.config.resources.sentinel_memory))
            .put_opt("networks", self.networks())
            .put("labels", self.labels(&node.name, &node.role))
            .build()
    }

    pub fn exporter_auth_volume(&self) -> String {
        format!("{}-exporter-auth", self.project)
    }

    fn redis_uri(&self, node: &Node) -> String {
        match (node.ports.client, node.ports.tls) {
            (Some(p), _) => format!("redis://{}:{p}", node.hostname),
            (None, Some(p)) => format!("rediss://{}:{p}", node.hostname),
            _ => format!("redis://{}:6379", node.hostname),
        }
    }

    /// A one-shot service turning the exporter's password secret into the
    /// JSON password map `redis_exporter` reads (`REDIS_PASSWORD_FILE` is a
    /// URI → password map), on a volume only the exporters mount.
    pub fn exporter_auth_service(&self, cred: &Cred, data_nodes: &[&Node]) -> Yaml {
        let entries: Vec<String> = data_nodes.iter().map(|n| format!("\"{}\":\"%s\"", self.redis_uri(n))).collect();
        let args: Vec<&str> = data_nodes.iter().map(|_| "\"$$pw\"").collect();
        let script = format!(
            "set -eu; umask 077; pw=$$(sed -e 's/\\\\/\\\\\\\\/g' -e 's/\"/\\\\\"/g' /run/secrets/{secret} | tr -d '\\n'); printf '{{{entries}}}' {args} > /data/passwords.json.tmp; mv /data/passwords.json.tmp /data/passwords.json",
            secret = cred.secret,
            entries = entries.join(","),
            args = args.join(" "),
        );
        let m = MapBuilder::new()
            .put("image", Yaml::s(self.redis_image()))
            .put("command", Yaml::strs(["sh", "-c", &script]));
        self.harden(m, REDIS_USER)
            .put("restart", Yaml::s("no"))
            .put("volumes", Yaml::strs([format!("{}:/data", self.exporter_auth_volume())]))
            .put("secrets", Yaml::strs([cred.secret.clone()]))
            .put("labels", self.labels(&format!("{}-exporter-auth", self.project), "init"))
            .build()
    }

    /// `redis_exporter` next to a data node.
    pub fn exporter_service(&self, node: &Node) -> Yaml {
        let mon = &self.input.config.monitoring;
        let port = node.ports.metrics.unwrap_or(mon.exporter_port);
        let mut env = MapBuilder::new()
            .put("REDIS_ADDR", Yaml::s(self.redis_uri(node)))
            .put("REDIS_EXPORTER_WEB_LISTEN_ADDRESS", Yaml::s(format!(":{port}")));
        let mut volumes = Vec::new();
        let mut depends =
            MapBuilder::new().put(&node.name, MapBuilder::new().put("condition", Yaml::s("service_healthy")).build());
        if let Some(c) = &self.exporter {
            env.push("REDIS_USER", Yaml::s(&c.user));
            env.push("REDIS_PASSWORD_FILE", Yaml::s(format!("{EXPORTER_AUTH_DIR}/passwords.json")));
            volumes.push(format!("{}:{EXPORTER_AUTH_DIR}:ro", self.exporter_auth_volume()));
            depends.push(
                format!("{}-exporter-auth", self.project),
                MapBuilder::new().put("condition", Yaml::s("service_completed_successfully")).build(),
            );
        }
        if let (Some(t), None) = (&self.tls, node.ports.client) {
            env.push("REDIS_EXPORTER_TLS_CA_CERT_FILE", Yaml::s(&t.ca));
            volumes.push(t.mount(&t.ca));
            if t.client_cert {
                env.push("REDIS_EXPORTER_TLS_CLIENT_CERT_FILE", Yaml::s(&t.cert));
                env.push("REDIS_EXPORTER_TLS_CLIENT_KEY_FILE", Yaml::s(&t.key));
                volumes.push(t.mount(&t.cert));
                volumes.push(t.mount(&t.key));
            }
        }
        let m = MapBuilder::new().put("image", Yaml::s(self.exporter_image()));
        self.harden(m, REDIS_USER)
            .put("restart", self.restart())
            .put("environment", env.build())
            .put_nonempty("volumes", Yaml::strs(volumes))
            .put_opt("ports", self.publish(port, node.ordinal))
            .put("depends_on", depends.build())
            .put_opt("mem_limit", size(&self.input.config.resources.exporter_memory))
            .put_opt("networks", self.networks())
            .put("labels", self.labels(&format!("{}-exporter", node.name), "exporter"))
            .build()
    }
}

/// Whether the data nodes load `users.acl` (ACL users or system users with auth on).
pub fn uses_acl_file(input: &Input) -> bool {
    let s = &input.config.security;
    s.auth_enabled && (!s.users.is_empty() || s.system_users)
}

/// A size from the config (`4gb`, `512mb`, a number of bytes) in bytes.
pub fn size(v: &serde_json::Value) -> Option<Yaml> {
    let bytes = match v {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let n: u64 = num.parse().ok()?;
            let mult: u64 = match unit {
                "" | "b" => 1,
                "k" => 1000,
                "kb" | "kib" => 1 << 10,
                "m" => 1_000_000,
                "mb" | "mib" => 1 << 20,
                "g" => 1_000_000_000,
                "gb" | "gib" => 1 << 30,
                "tb" | "tib" => 1 << 40,
                _ => return None,
            };
            n.checked_mul(mult)?
        }
        _ => return None,
    };
    (bytes > 0).then(|| Yaml::Int(i64::try_from(bytes).unwrap_or(i64::MAX)))
}

fn cpus(millis: u32) -> Option<Yaml> {
    (millis > 0).then(|| Yaml::Float(f64::from(millis) / 1000.0))
}

/// The shell command that copies the rendered config `seed` to
/// `<dir>/<kind>.conf` (0600) when it differs from the last one copied, then
/// runs `redis-<kind>` on the copy, which the server may rewrite. With `acl`
/// (a data node that loads `users.acl`) the read-only rendered ACL file is
/// seeded the same way into `<dir>/users.acl`, where the server keeps its
/// users (`--aclfile`): `ACL SAVE` — tenants made at run time — works and
/// survives restarts, and a new render of the file replaces the copy.
fn seeded(seed: &str, dir: &str, kind: &str, acl: bool) -> String {
    let server = if kind == "sentinel" { "redis-sentinel" } else { "redis-server" };
    let copy = |from: &str, to: &str, mark: &str| {
        format!("if ! cmp -s {from} {dir}/{mark}; then cp {from} {dir}/{to} && cp {from} {dir}/{mark}; fi")
    };
    let mut script = format!("umask 077; {}", copy(seed, &format!("{kind}.conf"), &format!("{kind}.seed.conf")));
    let mut run = format!("exec {server} {dir}/{kind}.conf");
    if acl {
        script.push_str(&format!("; {}", copy(ACL_FILE, "users.acl", "users.seed.acl")));
        run.push_str(&format!(" --aclfile {dir}/users.acl"));
    }
    format!("{script}; {run}")
}
