//! Table-driven tests: every host validation rule has a template that fires
//! it and a close variant that does not. Templates are a preset plus `--set`
//! assignments, the way a user would write them on the command line.

use redplate_config::model::Environment::{self, Development as Dev, Production as Prod, Staging as Stg};
use redplate_config::{Diagnostic, Format, RULES, load_str, validate};
use std::collections::BTreeSet;

type Case = (&'static str, Environment, &'static [&'static str], &'static [&'static str]);

const CLUSTER: &str = "deployment.mode=cluster";
const TEN: &str = "tenancy.enabled=true";
const DIGEST: &str = "deployment.image_digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const CASES: &[Case] = &[
    ("deployment.invalid-name", Dev, &["deployment.name=Bad_Name"], &["deployment.name=good-name"]),
    ("deployment.unsupported-version", Dev, &["deployment.redis_version=6.0"], &["deployment.redis_version=7.2.4"]),
    ("deployment.unpinned-image", Dev, &["deployment.image_tag=latest"], &["deployment.image_tag=7.4.1"]),
    ("deployment.invalid-image-digest", Dev, &["deployment.image_digest=sha256:abc"], &[DIGEST]),
    ("deployment.image-not-digest-pinned", Prod, &["deployment.image_digest=''"], &[DIGEST]),
    (
        "deployment.stale-image-digest",
        Prod,
        &["deployment.redis_version=7.2"],
        &["deployment.redis_version=7.2", DIGEST],
    ),
    ("cluster.too-few-masters", Prod, &[CLUSTER, "cluster.shards=2"], &[CLUSTER, "cluster.shards=3"]),
    ("cluster.too-many-shards", Prod, &[CLUSTER, "cluster.shards=17"], &[CLUSTER, "cluster.shards=16"]),
    (
        "cluster.too-many-replicas",
        Prod,
        &[CLUSTER, "cluster.replicas_per_shard=4"],
        &[CLUSTER, "cluster.replicas_per_shard=3"],
    ),
    (
        "cluster.no-replicas",
        Prod,
        &[CLUSTER, "cluster.replicas_per_shard=0", "replication.min_replicas_to_write=0"],
        &[CLUSTER],
    ),
    ("cluster.full-coverage", Prod, &[CLUSTER, "cluster.require_full_coverage=true"], &[CLUSTER]),
    (
        "cluster.node-timeout-too-short",
        Prod,
        &[CLUSTER, "cluster.node_timeout=0"],
        &[CLUSTER, "cluster.node_timeout=1s"],
    ),
    ("cluster.node-timeout", Prod, &[CLUSTER, "cluster.node_timeout=200s"], &[CLUSTER, "cluster.node_timeout=15s"]),
    (
        "cluster.migration-barrier",
        Prod,
        &[CLUSTER, "cluster.migration_barrier=2"],
        &[CLUSTER, "cluster.migration_barrier=1"],
    ),
    (
        "sentinel.even-count",
        Prod,
        &["sentinel.sentinels=4", "sentinel.quorum=3"],
        &["sentinel.sentinels=5", "sentinel.quorum=3"],
    ),
    ("sentinel.too-few", Prod, &["sentinel.sentinels=1", "sentinel.quorum=1"], &["sentinel.sentinels=3"]),
    ("sentinel.quorum-too-high", Prod, &["sentinel.quorum=4"], &["sentinel.quorum=3"]),
    ("sentinel.quorum-low", Prod, &["sentinel.quorum=1"], &["sentinel.quorum=2"]),
    (
        "sentinel.no-replicas",
        Prod,
        &["replication.replicas=0", "replication.min_replicas_to_write=0"],
        &["replication.replicas=1"],
    ),
    ("sentinel.failover-timeout", Prod, &["sentinel.failover_timeout=5s"], &["sentinel.failover_timeout=60s"]),
    ("sentinel.zero-timeout", Prod, &["sentinel.down_after=0"], &["sentinel.down_after=1s"]),
    ("sentinel.down-after", Prod, &["sentinel.down_after=500ms"], &["sentinel.down_after=10s"]),
    (
        "replication.min-replicas-too-high",
        Prod,
        &["replication.min_replicas_to_write=3"],
        &["replication.min_replicas_to_write=2"],
    ),
    (
        "replication.no-replicas",
        Dev,
        &["deployment.mode=replication"],
        &["deployment.mode=replication", "replication.replicas=1"],
    ),
    ("replication.parallel-syncs", Prod, &["sentinel.parallel_syncs=3"], &["sentinel.parallel_syncs=2"]),
    (
        "replication.ignored",
        Dev,
        &["replication.replicas=2"],
        &["deployment.mode=replication", "replication.replicas=2"],
    ),
    (
        "replication.no-max-lag",
        Prod,
        &["replication.min_replicas_max_lag=0"],
        &["replication.min_replicas_max_lag=10s"],
    ),
    ("replication.timeout-too-short", Dev, &["replication.timeout=500ms"], &["replication.timeout=1s"]),
    ("replication.zero-backlog", Dev, &["replication.backlog_size=0"], &["replication.backlog_size=16kb"]),
    ("resources.memory-too-small", Prod, &["resources.memory=0"], &["resources.memory=32mb"]),
    ("resources.request-exceeds-limit", Dev, &["resources.memory_request=1gb"], &["resources.memory_request=128mb"]),
    ("memory.maxmemory-exceeds-memory", Dev, &["memory.maxmemory=1gb"], &["memory.maxmemory=128mb"]),
    ("memory.no-headroom", Prod, &["memory.maxmemory=95%"], &["memory.maxmemory=80%"]),
    ("memory.no-limit", Stg, &["memory.maxmemory=0"], &["memory.maxmemory=1gb"]),
    (
        "memory.eviction-without-limit",
        Dev,
        &["memory.maxmemory=0"],
        &["memory.maxmemory=0", "memory.maxmemory_policy=noeviction"],
    ),
    (
        "memory.volatile-without-ttl",
        Dev,
        &["memory.maxmemory_policy=volatile-lru"],
        &["memory.maxmemory_policy=volatile-lru", "cache.default_ttl=10m"],
    ),
    (
        "memory.defrag-thresholds",
        Dev,
        &["memory.active_defrag_threshold_lower=200"],
        &["memory.active_defrag_threshold_lower=50"],
    ),
    (
        "persistence.save-ignored",
        Dev,
        &["persistence.save=[{seconds: 60, changes: 1}]"],
        &["persistence.mode=rdb", "persistence.save=[{seconds: 60, changes: 1}]"],
    ),
    ("persistence.rdb-without-save", Prod, &["persistence.save=[]"], &["persistence.save=[{seconds: 60, changes: 1}]"]),
    (
        "persistence.off-in-production",
        Prod,
        &["persistence.mode=none", "backup.enabled=false"],
        &["persistence.mode=aof", "persistence.save=[]"],
    ),
    (
        "persistence.off-with-replicas",
        Stg,
        &["persistence.mode=none", "backup.enabled=false"],
        &["persistence.mode=aof", "persistence.save=[]"],
    ),
    ("backup.without-persistence", Prod, &["persistence.mode=none"], &["persistence.mode=rdb"]),
    ("backup.invalid-schedule", Prod, &["backup.schedule=every day"], &["backup.schedule='*/15 * * * *'"]),
    (
        "backup.encryption-without-key",
        Prod,
        &["backup.encryption.key=null"],
        &["backup.encryption.key={env: BACKUP_KEY}"],
    ),
    ("backup.unencrypted-production", Prod, &["backup.encryption.enabled=false"], &["backup.encryption.enabled=true"]),
    (
        "backup.compression-level",
        Prod,
        &["backup.compression=gzip", "backup.compression_level=12"],
        &["backup.compression=gzip", "backup.compression_level=9"],
    ),
    (
        "backup.no-retention",
        Prod,
        &["backup.retention_count=5000"],
        &["backup.retention_count=5000", "backup.retention_age=30d"],
    ),
    (
        "security.production-without-auth",
        Prod,
        &["security.auth_enabled=false"],
        &[
            "security.auth_enabled=false",
            "security.allow_insecure_production=true",
            "security.insecure_waiver_reason=isolated lab",
        ],
    ),
    (
        "security.production-without-tls",
        Prod,
        &["security.tls.enabled=false"],
        &[
            "security.tls.enabled=false",
            "security.allow_insecure_production=true",
            "security.insecure_waiver_reason=isolated lab",
        ],
    ),
    (
        "security.waiver-without-reason",
        Prod,
        &["security.allow_insecure_production=true"],
        &["security.allow_insecure_production=true", "security.insecure_waiver_reason=lab"],
    ),
    (
        "security.inline-secret",
        Stg,
        &["security.users.0.password={value: hunter2}"],
        &["security.users.0.password={file: /run/secrets/r}"],
    ),
    (
        "security.auth-without-credentials",
        Stg,
        &["security.users=[]", "security.system_users=false"],
        &["security.users=[]", "security.system_users=true"],
    ),
    (
        "security.user-without-password",
        Prod,
        &["security.users.0.password=null"],
        &["security.users.0.password={env: REPL_PASSWORD}"],
    ),
    ("security.duplicate-user", Prod, &["security.users.1.name=replication"], &["security.users.1.name=sentinel2"]),
    ("security.reserved-user", Prod, &["security.users.0.name=default"], &["security.users.0.name=repl"]),
    (
        "security.missing-system-user",
        Prod,
        &["security.system_users=false", "security.users=[{name: app, password: {generate: true}}]"],
        &["security.system_users=false"],
    ),
    (
        "security.default-user-on",
        Prod,
        &["security.default_user_enabled=true"],
        &["security.default_user_enabled=false"],
    ),
    (
        "security.dangerous-enabled",
        Prod,
        &["security.disabled_categories=[]"],
        &["security.disabled_categories=['@dangerous']"],
    ),
    (
        "security.unknown-category",
        Dev,
        &["security.disabled_categories=[dangerus]"],
        &["security.disabled_categories=[dangerous]"],
    ),
    ("security.protected-mode-off", Dev, &["security.protected_mode=false"], &["security.protected_mode=true"]),
    ("security.invalid-cidr", Dev, &["network.allowed_cidrs=[10.0.0.0/33]"], &["network.allowed_cidrs=[10.0.0.0/8]"]),
    ("tls.missing-certificates", Prod, &["security.tls.cert_file="], &["security.tls.cert_file=/etc/tls/other.crt"]),
    (
        "tls.self-signed-production",
        Prod,
        &["security.tls.cert_source=self_signed"],
        &["security.tls.cert_source=files"],
    ),
    ("tls.no-protocols", Prod, &["security.tls.protocols=[]"], &["security.tls.protocols=[TLSv1.3]"]),
    (
        "tls.plaintext-needed",
        Prod,
        &["security.tls.replication=false"],
        &["security.tls.replication=false", "security.tls.disable_plain_port=false"],
    ),
    ("network.port-collision", Prod, &["monitoring.exporter_port=26379"], &["monitoring.exporter_port=9121"]),
    ("network.privileged-port", Dev, &["network.port=80"], &["network.port=6379"]),
    (
        "network.local-ports-overflow",
        Dev,
        &[CLUSTER, "network.local_base_port=60000"],
        &[CLUSTER, "network.local_base_port=7000"],
    ),
    ("network.invalid-bind", Dev, &["network.bind=[localhost]"], &["network.bind=[127.0.0.1]"]),
    ("tenancy.prefix-without-placeholder", Dev, &[TEN, "tenancy.prefix_pattern=tenant:"], &[TEN]),
    (
        "tenancy.prefix-without-terminator",
        Dev,
        &[TEN, "tenancy.prefix_pattern=tenant:{tenantId}"],
        &[TEN, "tenancy.prefix_pattern=t/{tenantId}/"],
    ),
    ("tenancy.memory-oversubscribed", Dev, &[TEN, "tenancy.max_tenants=1000"], &[TEN, "tenancy.max_tenants=2"]),
    (
        "tenancy.connections-oversubscribed",
        Dev,
        &[TEN, "tenancy.max_tenants=2", "tenancy.connections_per_tenant=6000"],
        &[TEN, "tenancy.max_tenants=2"],
    ),
    (
        "tenancy.too-many-tenants",
        Dev,
        &[TEN, "tenancy.max_tenants=1", "tenancy.tenants=[{id: a}, {id: b}]"],
        &[TEN, "tenancy.max_tenants=2", "tenancy.tenants=[{id: a}, {id: b}]"],
    ),
    (
        "tenancy.duplicate-tenant",
        Dev,
        &[TEN, "tenancy.max_tenants=2", "tenancy.tenants=[{id: a}, {id: a}]"],
        &[TEN, "tenancy.max_tenants=2", "tenancy.tenants=[{id: a}, {id: b}]"],
    ),
    (
        "tenancy.declared-memory-exceeds",
        Dev,
        &[TEN, "tenancy.max_tenants=2", "tenancy.tenants=[{id: a, memory: 1gb}]"],
        &[TEN, "tenancy.max_tenants=2", "tenancy.tenants=[{id: a, memory: 10mb}]"],
    ),
    (
        "tenancy.database-in-cluster",
        Prod,
        &[CLUSTER, TEN, "tenancy.isolation=database"],
        &[CLUSTER, TEN, "tenancy.isolation=key_prefix"],
    ),
    (
        "tenancy.too-few-databases",
        Dev,
        &[TEN, "tenancy.isolation=database", "tenancy.max_tenants=20"],
        &[TEN, "tenancy.isolation=database", "tenancy.max_tenants=3"],
    ),
    ("tenancy.disabled-with-tenants", Dev, &["tenancy.tenants=[{id: a}]"], &[TEN, "tenancy.tenants=[{id: a}]"]),
    ("cache.unknown-strategy", Dev, &["cache.strategy=cache-asid"], &["cache.strategy=cache-aside"]),
    (
        "cache.write-behind-without-persistence",
        Dev,
        &["cache.strategy=write-behind"],
        &["cache.strategy=write-behind", "persistence.mode=aof"],
    ),
    (
        "cache.refresh-ahead-without-ttl",
        Dev,
        &["cache.strategy=refresh-ahead"],
        &["cache.strategy=refresh-ahead", "cache.default_ttl=1m"],
    ),
    (
        "cache.noeviction",
        Prod,
        &["cache.strategy=cache-aside"],
        &["cache.strategy=cache-aside", "memory.maxmemory_policy=allkeys-lru"],
    ),
    (
        "cache.duplicate-pattern",
        Dev,
        &["cache.patterns=[{pattern: 'a:*', ttl: 1m}, {pattern: 'a:*'}]"],
        &["cache.patterns=[{pattern: 'a:*', ttl: 1m}, {pattern: 'b:*'}]"],
    ),
    (
        "cache.sliding-without-ttl",
        Dev,
        &["cache.sliding_expiration=true"],
        &["cache.sliding_expiration=true", "cache.default_ttl=1m"],
    ),
    ("cache.invalid-keyspace-events", Dev, &["cache.keyspace_events=Exq"], &["cache.keyspace_events=Ex"]),
    (
        "cache.write-behind-flush",
        Dev,
        &["cache.strategy=write-behind", "persistence.mode=aof", "cache.write_behind_flush_interval=0"],
        &["cache.strategy=write-behind", "persistence.mode=aof", "cache.write_behind_flush_interval=1s"],
    ),
    (
        "monitoring.service-monitor-without-exporter",
        Dev,
        &["monitoring.service_monitor=true"],
        &["monitoring.service_monitor=true", "monitoring.exporter=true"],
    ),
    (
        "monitoring.alerts-without-exporter",
        Dev,
        &["monitoring.alerts.enabled=true"],
        &["monitoring.alerts.enabled=true", "monitoring.exporter=true"],
    ),
    (
        "monitoring.invalid-alert-label",
        Prod,
        &["monitoring.alerts.labels={team-name: db}"],
        &["monitoring.alerts.labels={team_name: db}"],
    ),
    ("monitoring.scrape-timeout", Stg, &["monitoring.scrape_timeout=30s"], &["monitoring.scrape_timeout=10s"]),
    (
        "monitoring.production-without-exporter",
        Prod,
        &["monitoring.exporter=false", "monitoring.service_monitor=false", "monitoring.alerts.enabled=false"],
        &["monitoring.exporter=true"],
    ),
    (
        "kubernetes.default-namespace",
        Dev,
        &["kubernetes.namespace=default"],
        &["kubernetes.namespace=default", "kubernetes.allow_default_namespace=true"],
    ),
    ("kubernetes.invalid-namespace", Dev, &["kubernetes.namespace=Redis_NS"], &["kubernetes.namespace=redis-ns"]),
    (
        "kubernetes.root-user",
        Prod,
        &["kubernetes.security_context.run_as_user=0"],
        &["kubernetes.security_context.run_as_user=1001"],
    ),
    (
        "kubernetes.pdb-blocks-drain",
        Dev,
        &["kubernetes.pdb=true", "kubernetes.pdb_max_unavailable=0"],
        &["kubernetes.pdb=true", "kubernetes.pdb_max_unavailable=1"],
    ),
    ("kubernetes.storage-too-small", Prod, &["kubernetes.storage_size=4gb"], &["kubernetes.storage_size=8gb"]),
    ("kubernetes.zero-storage", Prod, &["kubernetes.storage_size=0"], &["kubernetes.storage_size=1gb"]),
    ("kubernetes.invalid-label", Dev, &["deployment.owner=team\u{202e}stnemyap"], &["deployment.owner=team-payments"]),
    (
        "kubernetes.invalid-annotation",
        Dev,
        &["kubernetes.annotations={'a b': x}"],
        &["kubernetes.annotations={'example.com/a-b': x}"],
    ),
    (
        "kubernetes.invalid-name",
        Dev,
        &["kubernetes.service_account=Redis_SA"],
        &["kubernetes.service_account=redis-sa"],
    ),
    ("plugins.not-wasm", Dev, &["plugins=[./x.so]"], &["plugins=[./x.wasm]"]),
    ("plugins.duplicate", Dev, &["plugins=[a.wasm, a.wasm]"], &["plugins=[a.wasm, b.wasm]"]),
    ("performance.io-threads", Dev, &["performance.io_threads=4"], &["performance.io_threads=1"]),
];

fn run(env: Environment, sets: &[&str]) -> Vec<Diagnostic> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match load_str("", Format::Yaml, "<test>", Some(env), &sets) {
        Ok(r) => validate(&r),
        Err(e) => panic!("{sets:?} does not load: {e}"),
    }
}

#[test]
fn every_rule_fires_and_stays_quiet() {
    let mut failures = Vec::new();
    for (code, env, fire, quiet) in CASES {
        let fired = run(*env, fire);
        match fired.iter().find(|d| d.code == *code) {
            None => failures.push(format!(
                "{code}: did not fire with {fire:?}; got {:?}",
                fired.iter().map(|d| &d.code).collect::<Vec<_>>()
            )),
            Some(d) => {
                if d.location.is_none() || d.pointer.is_empty() || d.hint.is_none() {
                    failures.push(format!("{code}: missing pointer, location or hint: {d:?}"));
                }
                if d.message.starts_with(|c: char| c.is_uppercase()) {
                    failures.push(format!("{code}: message is not a lowercase phrase: {}", d.message));
                }
            }
        }
        let quiet_run = run(*env, quiet);
        if quiet_run.iter().any(|d| d.code == *code) {
            failures.push(format!("{code}: fired with {quiet:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_rule() {
    let listed: BTreeSet<&str> = RULES.iter().map(|r| r.code).collect();
    let tested: BTreeSet<&str> = CASES.iter().map(|c| c.0).collect();
    assert_eq!(listed.len(), RULES.len(), "duplicate rule codes");
    let untested: Vec<_> = listed.difference(&tested).collect();
    let unknown: Vec<_> = tested.difference(&listed).collect();
    assert!(untested.is_empty() && unknown.is_empty(), "untested: {untested:?}, unlisted: {unknown:?}");
    assert!(RULES.len() >= 40);
}

#[test]
fn set_locations_point_at_the_argument() {
    let d = run(Prod, &["backup.compression=gzip", "backup.compression_level=12"]);
    let d = d.iter().find(|d| d.code == "backup.compression-level").cloned();
    let loc = d.and_then(|d| d.location).map(|l| (l.file, l.line));
    assert_eq!(loc, Some(("<--set>".to_string(), 2)));
}

/// Values found by mutating the presets and examples that Redis or the API
/// server would refuse (or accept and then break on): each makes the
/// template invalid, not merely warned about.
#[test]
fn values_redis_or_the_api_server_refuse_are_errors() {
    let cases: &[(Environment, &[&str], &str)] = &[
        (Prod, &[CLUSTER, "cluster.node_timeout=0"], "cluster.node-timeout-too-short"),
        (Prod, &["kubernetes.storage_size=0"], "kubernetes.zero-storage"),
        (Prod, &["resources.memory=0"], "resources.memory-too-small"),
        (Prod, &["sentinel.down_after=0"], "sentinel.zero-timeout"),
        (Dev, &["replication.timeout=0"], "replication.timeout-too-short"),
        (Dev, &["replication.backlog_size=0"], "replication.zero-backlog"),
        (Dev, &["deployment.owner=team\u{202e}x"], "kubernetes.invalid-label"),
        (Dev, &["kubernetes.labels={tier: 'a b'}"], "kubernetes.invalid-label"),
        (Dev, &["kubernetes.node_selector={'pool/x/y': a}"], "kubernetes.invalid-label"),
        (Dev, &["security.password={secret: {name: Redis_Auth, key: pw}}"], "kubernetes.invalid-name"),
    ];
    for (env, sets, code) in cases {
        let ds = run(*env, sets);
        assert!(
            ds.iter().any(|d| d.code == *code && d.is_error()),
            "{sets:?}: no error `{code}` in {:?}",
            ds.iter().map(|d| (&d.code, d.severity)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn control_and_bidi_characters_in_labels_are_shown_escaped() {
    let yaml = "deployment:\n  owner: \"team\\u0007payments\"\n  labels:\n    tier: \"cache\\u202Eevil\"\n";
    let r = load_str(yaml, Format::Yaml, "owner.yaml", Some(Dev), &[]).expect("loads");
    let ds: Vec<Diagnostic> = validate(&r).into_iter().filter(|d| d.code == "kubernetes.invalid-label").collect();
    assert_eq!(ds.len(), 2, "{ds:?}");
    assert!(ds[0].message.contains("team\\u{7}payments"), "{}", ds[0].message);
    assert!(ds[1].message.contains("cache\\u{202e}evil"), "{}", ds[1].message);
    assert_eq!(ds[0].location.as_ref().map(|l| (l.file.as_str(), l.line)), Some(("owner.yaml", 2)));
}
