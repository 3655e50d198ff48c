//! Rules about tenancy (quotas, prefixes, isolation) and the cache strategy.

use super::data::{cache_sets_ttls, maxmemory};
use super::{err, warn};
use crate::diagnostic::Diagnostic;
use crate::model::{BUILTIN_STRATEGIES, Config, EvictionPolicy, Isolation, Mode, PersistenceMode, WriteMode};
use crate::units::{ByteSize, MemoryLimit};

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    tenancy(c, out);
    cache(c, out);
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
