//! Rules about resources, memory, persistence, backups, tenancy and the
//! cache strategy.

use super::{err, warn};
use crate::diagnostic::Diagnostic;
use crate::model::{
    BUILTIN_STRATEGIES, Compression, Config, Environment, EvictionPolicy, Isolation, Mode, PersistenceMode, WriteMode,
};
use crate::units::{ByteSize, MemoryLimit};

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    resources(c, out);
    memory(c, out);
    persistence(c, out);
    backup(c, out);
    tenancy(c, out);
    cache(c, out);
}

fn resources(c: &Config, out: &mut Vec<Diagnostic>) {
    let r = &c.resources;
    if r.memory_request.0 > r.memory.0 {
        out.push(err(
            "resources.request-exceeds-limit",
            "/resources/memory_request",
            format!("`resources.memory_request` ({}) exceeds `resources.memory` ({})", r.memory_request, r.memory),
            "request at most the limit (0 means the same as the limit)",
        ));
    }
    if r.cpu_request_millis > r.cpu_millis {
        out.push(err(
            "resources.request-exceeds-limit",
            "/resources/cpu_request_millis",
            format!(
                "`resources.cpu_request_millis` ({}) exceeds `resources.cpu_millis` ({})",
                r.cpu_request_millis, r.cpu_millis
            ),
            "request at most the limit (0 means the same as the limit)",
        ));
    }
}

/// `maxmemory` in bytes, `None` when unlimited.
pub(crate) fn maxmemory(c: &Config) -> Option<u64> {
    c.memory.maxmemory.resolve(c.resources.memory)
}

fn memory(c: &Config, out: &mut Vec<Diagnostic>) {
    let m = &c.memory;
    let limit = maxmemory(c);
    let env = c.deployment.environment;
    match limit {
        Some(bytes) if bytes > c.resources.memory.0 => out.push(err(
            "memory.maxmemory-exceeds-memory",
            "/memory/maxmemory",
            format!("`memory.maxmemory` ({}) exceeds `resources.memory` ({})", ByteSize(bytes), c.resources.memory),
            "set `maxmemory: 80%` so Redis evicts before the kernel kills it",
        )),
        Some(bytes) if c.persistence.mode != PersistenceMode::None && bytes > c.resources.memory.0 / 100 * 90 => out
            .push(warn(
                "memory.no-headroom",
                "/memory/maxmemory",
                format!(
                    "`memory.maxmemory` ({}) leaves under 10% of `resources.memory` for fork copy-on-write and buffers",
                    ByteSize(bytes)
                ),
                "use about 80% of the memory when persistence is on",
            )),
        None if env != Environment::Development => out.push(warn(
            "memory.no-limit",
            "/memory/maxmemory",
            format!("`memory.maxmemory` is unlimited in {env}: the container gets OOM-killed instead of evicting"),
            "set `maxmemory: 80%`",
        )),
        _ => {}
    }
    if limit.is_none() && m.maxmemory_policy != EvictionPolicy::Noeviction {
        out.push(warn(
            "memory.eviction-without-limit",
            "/memory/maxmemory_policy",
            format!("eviction policy `{}` never runs without `memory.maxmemory`", m.maxmemory_policy.as_str()),
            "set `memory.maxmemory`, e.g. `80%`",
        ));
    }
    if m.maxmemory_policy.is_volatile() && !cache_sets_ttls(c) {
        out.push(warn(
            "memory.volatile-without-ttl",
            "/memory/maxmemory_policy",
            format!(
                "eviction policy `{}` only evicts keys with a TTL, but the cache strategy sets none",
                m.maxmemory_policy.as_str()
            ),
            "set `cache.default_ttl` or pattern TTLs, or use an `allkeys-*` policy",
        ));
    }
    if m.active_defrag_threshold_lower >= m.active_defrag_threshold_upper {
        out.push(err(
            "memory.defrag-thresholds",
            "/memory/active_defrag_threshold_lower",
            format!(
                "`memory.active_defrag_threshold_lower` ({}) is not below `active_defrag_threshold_upper` ({})",
                m.active_defrag_threshold_lower, m.active_defrag_threshold_upper
            ),
            "e.g. lower 10 and upper 100",
        ));
    }
    if m.active_defrag_cycle_min > m.active_defrag_cycle_max {
        out.push(err(
            "memory.defrag-thresholds",
            "/memory/active_defrag_cycle_min",
            format!(
                "`memory.active_defrag_cycle_min` ({}) exceeds `active_defrag_cycle_max` ({})",
                m.active_defrag_cycle_min, m.active_defrag_cycle_max
            ),
            "e.g. min 1 and max 25",
        ));
    }
}

/// Whether the cache strategy gives keys a TTL.
pub(crate) fn cache_sets_ttls(c: &Config) -> bool {
    c.cache.default_ttl.0 > 0 || c.cache.patterns.iter().any(|p| p.ttl.0 > 0)
}

fn persistence(c: &Config, out: &mut Vec<Diagnostic>) {
    let p = &c.persistence;
    let rdb = matches!(p.mode, PersistenceMode::Rdb | PersistenceMode::Mixed);
    if !rdb && !p.save.is_empty() {
        out.push(warn(
            "persistence.save-ignored",
            "/persistence/save",
            format!("`persistence.save` points are ignored with `persistence.mode: {}`", mode_name(p.mode)),
            "use `mode: rdb` or `mixed`, or remove the save points",
        ));
    }
    if rdb && p.save.is_empty() {
        out.push(warn(
            "persistence.rdb-without-save",
            "/persistence/save",
            format!("`persistence.mode: {}` without save points never snapshots on its own", mode_name(p.mode)),
            "add save points such as `{seconds: 900, changes: 1}`",
        ));
    }
    if p.mode == PersistenceMode::None {
        if c.deployment.environment == Environment::Production {
            out.push(warn(
                "persistence.off-in-production",
                "/persistence/mode",
                "production runs without persistence: a restart loses every key".to_string(),
                "use `persistence.mode: mixed` unless this is a pure cache",
            ));
        }
        if matches!(c.deployment.mode, Mode::Replication | Mode::Sentinel) && c.replication.replicas > 0 {
            out.push(warn(
                "persistence.off-with-replicas",
                "/persistence/mode",
                "a master without persistence that restarts empty wipes its replicas".to_string(),
                "turn persistence on, or make sure the master cannot restart before a failover",
            ));
        }
    }
}

fn mode_name(m: PersistenceMode) -> &'static str {
    match m {
        PersistenceMode::None => "none",
        PersistenceMode::Rdb => "rdb",
        PersistenceMode::Aof => "aof",
        PersistenceMode::Mixed => "mixed",
    }
}

/// Whether `expr` is a plausible 5-field cron expression.
pub(crate) fn valid_cron(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return false;
    }
    let max = [59u32, 23, 31, 12, 7];
    fields.iter().zip(max).all(|(f, max)| {
        f.split(',').all(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let step_ok = step.is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n > 0 && n <= max));
            let range_ok = range == "*"
                || range.split('-').count() <= 2 && range.split('-').all(|n| n.parse::<u32>().is_ok_and(|n| n <= max));
            step_ok && range_ok
        })
    })
}

fn backup(c: &Config, out: &mut Vec<Diagnostic>) {
    let b = &c.backup;
    if !b.enabled {
        return;
    }
    if c.persistence.mode == PersistenceMode::None {
        out.push(err(
            "backup.without-persistence",
            "/backup/enabled",
            "backups are on but `persistence.mode` is `none`: there is no RDB to back up".to_string(),
            "set `persistence.mode: rdb` or `mixed`, or `backup.enabled: false`",
        ));
    }
    if !valid_cron(&b.schedule) {
        out.push(err(
            "backup.invalid-schedule",
            "/backup/schedule",
            format!("backup schedule `{}` is not a 5-field cron expression", b.schedule),
            "write minute hour day month weekday, e.g. `0 3 * * *`",
        ));
    }
    if b.encryption.enabled && b.encryption.key.is_none() {
        out.push(err(
            "backup.encryption-without-key",
            "/backup/encryption/key",
            "backup encryption is on but `backup.encryption.key` is not set".to_string(),
            "reference a key, e.g. `key: { file: /run/secrets/redis/backup.key }`",
        ));
    }
    if !b.encryption.enabled && c.deployment.environment == Environment::Production {
        out.push(warn(
            "backup.unencrypted-production",
            "/backup/encryption/enabled",
            "production backups are not encrypted".to_string(),
            "set `backup.encryption.enabled: true` with a key reference",
        ));
    }
    let max_level = match b.compression {
        Compression::Zstd => 19,
        Compression::Gzip => 9,
        Compression::None => 19,
    };
    if b.compression_level > max_level {
        out.push(err(
            "backup.compression-level",
            "/backup/compression_level",
            format!("`backup.compression_level` {} is above {max_level}, the highest gzip level", b.compression_level),
            "use 1 to 9 with gzip",
        ));
    }
    if b.retention_age.0 == 0 && b.retention_count > 1000 {
        out.push(warn(
            "backup.no-retention",
            "/backup/retention_count",
            format!("`backup.retention_count` keeps {} backups and `retention_age` is unset", b.retention_count),
            "keep fewer backups or set `retention_age`, e.g. `30d`",
        ));
    }
}

fn tenancy(c: &Config, out: &mut Vec<Diagnostic>) {
    let t = &c.tenancy;
    if !t.enabled {
        if !t.tenants.is_empty() {
            out.push(warn(
                "tenancy.disabled-with-tenants",
                "/tenancy/tenants",
                format!("{} tenant(s) are declared but `tenancy.enabled` is false", t.tenants.len()),
                "set `tenancy.enabled: true` or remove the tenants",
            ));
        }
        return;
    }
    if t.isolation == Isolation::KeyPrefix {
        if !t.prefix_pattern.contains("{tenantId}") {
            out.push(err(
                "tenancy.prefix-without-placeholder",
                "/tenancy/prefix_pattern",
                format!("tenant prefix `{}` does not contain `{{tenantId}}`", t.prefix_pattern),
                "use a pattern such as `tenant:{tenantId}:`",
            ));
        } else if !t.prefix_pattern.ends_with([':', '/', '|', '.', '}', '#'])
            || t.prefix_pattern.ends_with("{tenantId}")
        {
            out.push(err(
                "tenancy.prefix-without-terminator",
                "/tenancy/prefix_pattern",
                format!(
                    "tenant prefix `{}` has no terminator: tenant `a` would also match tenant `ab`'s keys",
                    t.prefix_pattern
                ),
                "end the prefix with `:`, e.g. `tenant:{tenantId}:`",
            ));
        }
    }
    let limit = maxmemory(c).unwrap_or(c.resources.memory.0);
    let total = t.memory_per_tenant.0.saturating_mul(u64::from(t.max_tenants));
    if total > limit {
        out.push(warn(
            "tenancy.memory-oversubscribed",
            "/tenancy/memory_per_tenant",
            format!(
                "{} tenants × {} is {} but the instance holds {}",
                t.max_tenants,
                t.memory_per_tenant,
                ByteSize(total),
                ByteSize(limit)
            ),
            "lower `memory_per_tenant` or `max_tenants`, or raise `resources.memory`",
        ));
    }
    let conns = u64::from(t.connections_per_tenant).saturating_mul(u64::from(t.max_tenants));
    if conns > u64::from(c.performance.maxclients) {
        out.push(warn(
            "tenancy.connections-oversubscribed",
            "/tenancy/connections_per_tenant",
            format!(
                "{} tenants × {} connections exceeds `performance.maxclients` ({})",
                t.max_tenants, t.connections_per_tenant, c.performance.maxclients
            ),
            "lower the per-tenant quota or raise `maxclients`",
        ));
    }
    if t.tenants.len() > t.max_tenants as usize {
        out.push(err(
            "tenancy.too-many-tenants",
            "/tenancy/tenants",
            format!("{} tenants are declared but `tenancy.max_tenants` is {}", t.tenants.len(), t.max_tenants),
            "raise `max_tenants` or declare fewer tenants",
        ));
    }
    for (i, tenant) in t.tenants.iter().enumerate() {
        if t.tenants[..i].iter().any(|o| o.id == tenant.id) {
            out.push(err(
                "tenancy.duplicate-tenant",
                &format!("/tenancy/tenants/{i}/id"),
                format!("tenant `{}` is declared twice", tenant.id),
                "give every tenant a unique `id`",
            ));
        }
    }
    let declared: u64 = t
        .tenants
        .iter()
        .map(|x| if x.memory.0 > 0 { x.memory.0 } else { t.memory_per_tenant.0 })
        .fold(0, u64::saturating_add);
    if declared > limit {
        out.push(err(
            "tenancy.declared-memory-exceeds",
            "/tenancy/tenants",
            format!("the declared tenants need {} but the instance holds {}", ByteSize(declared), ByteSize(limit)),
            "lower tenant memory quotas or raise `resources.memory`",
        ));
    }
    if t.isolation == Isolation::Database {
        if c.deployment.mode == Mode::Cluster {
            out.push(err(
                "tenancy.database-in-cluster",
                "/tenancy/isolation",
                "`tenancy.isolation: database` cannot work with redis cluster, which only has database 0".to_string(),
                "use `isolation: key_prefix`",
            ));
        } else if t.max_tenants > u32::from(c.performance.databases) {
            out.push(err(
                "tenancy.too-few-databases",
                "/tenancy/max_tenants",
                format!(
                    "`tenancy.max_tenants` is {} but there are {} databases",
                    t.max_tenants, c.performance.databases
                ),
                "raise `performance.databases` or use `isolation: key_prefix`",
            ));
        }
    }
}

fn cache(c: &Config, out: &mut Vec<Diagnostic>) {
    let k = &c.cache;
    let builtin = BUILTIN_STRATEGIES.contains(&k.strategy.as_str());
    if !builtin && !c.plugins.iter().any(|p| plugin_stem(p) == k.strategy) {
        let hint = match crate::strict::did_you_mean(&k.strategy, BUILTIN_STRATEGIES) {
            Some(m) => format!("did you mean `{m}`? a custom strategy must be listed in `plugins`"),
            None => "use a built-in strategy or list the strategy plugin's `.wasm` in `plugins`".to_string(),
        };
        out.push(err(
            "cache.unknown-strategy",
            "/cache/strategy",
            format!("unknown cache strategy `{}`", k.strategy),
            hint,
        ));
    }
    let write_behind =
        k.strategy == "write-behind" || k.patterns.iter().any(|p| p.write_mode == WriteMode::WriteBehind);
    if write_behind && c.persistence.mode == PersistenceMode::None {
        out.push(err(
            "cache.write-behind-without-persistence",
            "/cache/strategy",
            "write-behind keeps pending writes in redis but `persistence.mode` is `none`: a restart loses them"
                .to_string(),
            "set `persistence.mode: aof` or `mixed`",
        ));
    }
    if write_behind && k.write_behind_flush_interval.0 == 0 {
        out.push(err(
            "cache.write-behind-flush",
            "/cache/write_behind_flush_interval",
            "`cache.write_behind_flush_interval` is 0".to_string(),
            "use e.g. `1s`",
        ));
    }
    let refresh = k.strategy == "refresh-ahead" || k.patterns.iter().any(|p| p.refresh_ahead);
    if refresh && !cache_sets_ttls(c) {
        out.push(err(
            "cache.refresh-ahead-without-ttl",
            "/cache/strategy",
            "refresh-ahead needs keys with a TTL, but `cache.default_ttl` and every pattern TTL are 0".to_string(),
            "set `cache.default_ttl` or pattern TTLs",
        ));
    }
    if matches!(k.strategy.as_str(), "cache-aside" | "refresh-ahead")
        && c.memory.maxmemory_policy == EvictionPolicy::Noeviction
        && c.memory.maxmemory != MemoryLimit::Unlimited
    {
        out.push(warn(
            "cache.noeviction",
            "/memory/maxmemory_policy",
            format!(
                "cache strategy `{}` with `noeviction`: a full cache refuses writes instead of evicting",
                k.strategy
            ),
            "use `maxmemory_policy: allkeys-lru` or `allkeys-lfu` for a cache",
        ));
    }
    for (i, p) in k.patterns.iter().enumerate() {
        if k.patterns[..i].iter().any(|o| o.pattern == p.pattern) {
            out.push(err(
                "cache.duplicate-pattern",
                &format!("/cache/patterns/{i}/pattern"),
                format!("key pattern `{}` is listed twice", p.pattern),
                "merge the two rules",
            ));
        }
    }
    let sliding = k.sliding_expiration || k.patterns.iter().any(|p| p.sliding);
    if sliding && !cache_sets_ttls(c) {
        out.push(warn(
            "cache.sliding-without-ttl",
            "/cache/sliding_expiration",
            "sliding expiration is on but no key has a TTL to slide".to_string(),
            "set `cache.default_ttl` or pattern TTLs",
        ));
    }
    if let Some(bad) = k.keyspace_events.chars().find(|ch| !"KEg$lshzxetmdnA".contains(*ch)) {
        out.push(err(
            "cache.invalid-keyspace-events",
            "/cache/keyspace_events",
            format!("`cache.keyspace_events` has the unknown flag `{bad}`"),
            "use flags from `KEg$lshzxetmdnA`, e.g. `Ex` for expiry events",
        ));
    }
}

/// A plugin's name: its file name without `.wasm`.
pub(crate) fn plugin_stem(path: &str) -> &str {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    file.strip_suffix(".wasm").unwrap_or(file)
}
