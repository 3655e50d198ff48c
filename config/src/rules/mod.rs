//! Host validation: cross-field rules over a typed [`Config`]. Every rule has
//! a stable code, says what is wrong as a lowercase phrase with keys in
//! backticks, and hints at what to do. Rules never panic and never allocate
//! unless they fire.

mod data;
mod names;
mod ops;
mod secure;
mod tenancy;
mod topology;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::Resolved;
use crate::model::{Config, Environment};

/// A validation rule's stable code, severity and one-line summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Stable code, e.g. `cluster.too-few-masters`.
    pub code: &'static str,
    /// The severity it reports with (some rules report a warning outside production).
    pub severity: Severity,
    /// What it checks.
    pub summary: &'static str,
}

const fn rule(code: &'static str, severity: Severity, summary: &'static str) -> Rule {
    Rule { code, severity, summary }
}

use Severity::{Error as E, Warning as W};

/// Every host validation rule.
pub const RULES: &[Rule] = &[
    rule("deployment.invalid-name", E, "the deployment name is a DNS label"),
    rule("deployment.unsupported-version", E, "the Redis version is 6.2 or later"),
    rule("deployment.unpinned-image", W, "images are pinned, not `latest`"),
    rule("deployment.invalid-image-digest", E, "image digests are `sha256:` and 64 hex digits, given once"),
    rule("deployment.image-not-digest-pinned", W, "production images are pinned by digest"),
    rule("deployment.stale-image-digest", W, "a preset's image digest is not kept for another image"),
    rule("cluster.too-few-masters", E, "a cluster has at least 3 masters"),
    rule("cluster.too-many-shards", E, "a cluster has at most 16 shards"),
    rule("cluster.too-many-replicas", E, "a cluster shard has 0 to 3 replicas"),
    rule("cluster.no-replicas", W, "production cluster shards have replicas"),
    rule("cluster.full-coverage", W, "production clusters keep serving when some slots are down"),
    rule("cluster.node-timeout-too-short", E, "the cluster node timeout is at least 1 s"),
    rule("cluster.node-timeout", W, "the cluster node timeout is at most 120 s"),
    rule("cluster.migration-barrier", W, "the migration barrier lets replicas migrate"),
    rule("sentinel.even-count", E, "the number of sentinels is odd"),
    rule("sentinel.too-few", E, "there are at least 3 sentinels"),
    rule("sentinel.quorum-too-high", E, "the quorum is at most the number of sentinels"),
    rule("sentinel.quorum-low", W, "the quorum is a majority of the sentinels"),
    rule("sentinel.no-replicas", E, "sentinel mode has replicas to fail over to"),
    rule("sentinel.failover-timeout", W, "the failover timeout exceeds down-after"),
    rule("sentinel.zero-timeout", E, "Sentinel's down-after and failover timeouts are not 0"),
    rule("sentinel.down-after", W, "down-after is at least one second"),
    rule("replication.min-replicas-too-high", E, "`min_replicas_to_write` is at most the number of replicas"),
    rule("replication.no-replicas", E, "replication mode has replicas"),
    rule("replication.parallel-syncs", W, "`parallel_syncs` is at most the number of replicas"),
    rule("replication.ignored", W, "replicas are not set in standalone mode"),
    rule("replication.no-max-lag", E, "`min_replicas_to_write` comes with a positive max lag"),
    rule("replication.timeout-too-short", E, "the replication timeout is at least 1 s"),
    rule("replication.zero-backlog", E, "the replication backlog is not 0"),
    rule("resources.request-exceeds-limit", E, "requests are at most limits"),
    rule("resources.memory-too-small", E, "containers get a memory limit they can run in"),
    rule("memory.maxmemory-exceeds-memory", E, "`maxmemory` fits in `resources.memory`"),
    rule("memory.no-headroom", W, "`maxmemory` leaves room for forks and buffers"),
    rule("memory.no-limit", W, "staging and production set `maxmemory`"),
    rule("memory.eviction-without-limit", W, "an eviction policy comes with `maxmemory`"),
    rule("memory.volatile-without-ttl", W, "volatile eviction has keys with TTLs to evict"),
    rule("memory.defrag-thresholds", E, "defrag lower thresholds are below the upper ones"),
    rule("persistence.save-ignored", W, "save points are used only with RDB"),
    rule("persistence.rdb-without-save", W, "RDB persistence has save points"),
    rule("persistence.off-in-production", W, "production persists data"),
    rule("persistence.off-with-replicas", W, "a master without persistence does not wipe its replicas"),
    rule("backup.without-persistence", E, "backups need persistence"),
    rule("backup.invalid-schedule", E, "the backup schedule is a 5-field cron expression"),
    rule("backup.encryption-without-key", E, "encrypted backups have a key"),
    rule("backup.unencrypted-production", W, "production backups are encrypted"),
    rule("backup.compression-level", E, "the compression level suits the algorithm"),
    rule("backup.no-retention", W, "backups expire"),
    rule("security.production-without-auth", E, "production requires authentication unless waived"),
    rule("security.production-without-tls", E, "production requires TLS unless waived"),
    rule("security.waiver-without-reason", E, "an insecure-production waiver gives a reason"),
    rule("security.inline-secret", E, "secrets are references, not clear text, outside development"),
    rule("security.auth-without-credentials", E, "authentication has a password or users"),
    rule("security.user-without-password", E, "enabled ACL users have a password source"),
    rule("security.duplicate-user", E, "ACL user names are unique"),
    rule("security.reserved-user", E, "the `default` user is configured with `default_user_enabled`"),
    rule("security.missing-system-user", W, "replicated deployments have a replication user"),
    rule("security.default-user-on", W, "production turns the `default` user off"),
    rule("security.dangerous-enabled", W, "production removes `@dangerous` commands"),
    rule("security.unknown-category", E, "disabled ACL categories exist"),
    rule("security.protected-mode-off", W, "protected mode stays on without auth"),
    rule("security.invalid-cidr", E, "allowed networks are CIDRs"),
    rule("tls.missing-certificates", E, "TLS has a certificate source"),
    rule("tls.self-signed-production", W, "production does not use self-signed certificates"),
    rule("tls.no-protocols", E, "TLS enables at least one protocol"),
    rule("tls.plaintext-needed", E, "with `port 0`, replication and the cluster bus speak TLS"),
    rule("network.port-collision", E, "client, TLS, bus, sentinel and exporter ports differ"),
    rule("network.privileged-port", W, "non-root containers use ports from 1024"),
    rule("network.local-ports-overflow", E, "local ports fit below 65536"),
    rule("network.invalid-bind", E, "bind addresses are IP addresses"),
    rule("tenancy.prefix-without-placeholder", E, "the tenant prefix contains `{tenantId}`"),
    rule("tenancy.prefix-without-terminator", E, "the tenant prefix ends with a terminator"),
    rule("tenancy.memory-oversubscribed", W, "tenant memory quotas fit the instance"),
    rule("tenancy.connections-oversubscribed", W, "tenant connection quotas fit `maxclients`"),
    rule("tenancy.too-many-tenants", E, "declared tenants are at most `max_tenants`"),
    rule("tenancy.duplicate-tenant", E, "tenant ids are unique"),
    rule("tenancy.declared-memory-exceeds", E, "declared tenants' memory fits `maxmemory`"),
    rule("tenancy.database-in-cluster", E, "database isolation is not used with Redis Cluster"),
    rule("tenancy.too-few-databases", E, "database isolation has a database per tenant"),
    rule("tenancy.disabled-with-tenants", W, "declared tenants come with `tenancy.enabled`"),
    rule("cache.unknown-strategy", E, "the cache strategy is built in or a listed plugin"),
    rule("cache.write-behind-without-persistence", E, "write-behind requires persistence"),
    rule("cache.refresh-ahead-without-ttl", E, "refresh-ahead has TTLs to refresh ahead of"),
    rule("cache.noeviction", W, "a cache can evict"),
    rule("cache.duplicate-pattern", E, "key patterns are unique"),
    rule("cache.sliding-without-ttl", W, "sliding expiration has TTLs to slide"),
    rule("cache.invalid-keyspace-events", E, "keyspace event flags are valid"),
    rule("cache.write-behind-flush", E, "write-behind flushes at a positive interval"),
    rule("monitoring.service-monitor-without-exporter", E, "a ServiceMonitor has an exporter to scrape"),
    rule("monitoring.alerts-without-exporter", E, "alerts have an exporter to read"),
    rule("monitoring.scrape-timeout", E, "the scrape timeout is below the interval"),
    rule("monitoring.production-without-exporter", W, "production is monitored"),
    rule("monitoring.invalid-alert-label", E, "alert labels are Prometheus label names"),
    rule("kubernetes.default-namespace", E, "the `default` namespace is used only when asked for"),
    rule("kubernetes.invalid-namespace", E, "the namespace is a DNS label"),
    rule("kubernetes.root-user", E, "pods run as a non-root user"),
    rule("kubernetes.pdb-blocks-drain", W, "a PDB leaves room to drain a node"),
    rule("kubernetes.storage-too-small", W, "volumes hold the data set, an RDB and an AOF rewrite"),
    rule("kubernetes.zero-storage", E, "volume claims request storage"),
    rule("kubernetes.invalid-label", E, "labels have Kubernetes label key and value syntax and lengths"),
    rule("kubernetes.invalid-annotation", E, "annotations have Kubernetes keys and fit 256 KiB"),
    rule("kubernetes.invalid-name", E, "referenced Kubernetes objects have valid names and keys"),
    rule("plugins.not-wasm", E, "plugins are `.wasm` components"),
    rule("plugins.duplicate", E, "plugins are listed once"),
    rule("performance.io-threads", W, "`io_threads` is at most the CPU cores"),
];

/// Validates a loaded template; diagnostics carry locations from its sources.
pub fn validate(resolved: &Resolved) -> Vec<Diagnostic> {
    let mut out = validate_config(&resolved.config);
    topology::stale_digests(resolved, &mut out);
    resolved.attach_locations(&mut out);
    out
}

/// Validates a typed config (no locations).
pub fn validate_config(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    topology::check(config, &mut out);
    data::check(config, &mut out);
    secure::check(config, &mut out);
    tenancy::check(config, &mut out);
    ops::check(config, &mut out);
    names::check(config, &mut out);
    out
}

/// Shorthand for an error.
pub(crate) fn err(code: &str, pointer: &str, message: String, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::error(code, pointer, message).with_hint(hint)
}

/// Shorthand for a warning.
pub(crate) fn warn(code: &str, pointer: &str, message: String, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::warning(code, pointer, message).with_hint(hint)
}

/// An error in production, a warning elsewhere.
pub(crate) fn prod_err(
    env: Environment,
    code: &str,
    pointer: &str,
    message: String,
    hint: impl Into<String>,
) -> Diagnostic {
    if env == Environment::Production { err(code, pointer, message, hint) } else { warn(code, pointer, message, hint) }
}

pub(crate) use data::maxmemory as data_maxmemory;
pub(crate) use topology::is_dns_label as topology_label;
