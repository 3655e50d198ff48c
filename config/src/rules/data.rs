//! Rules about resources, memory, persistence and backups.

use super::{err, prod_err, warn};
use crate::diagnostic::Diagnostic;
use crate::model::{Compression, Config, Environment, EvictionPolicy, Mode, PersistenceMode};
use crate::units::ByteSize;

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    resources(c, out);
    memory(c, out);
    persistence(c, out);
    backup(c, out);
}

fn resources(c: &Config, out: &mut Vec<Diagnostic>) {
    let r = &c.resources;
    // The least memory each container is given: below it Redis, Sentinel or
    // the exporter cannot hold their own buffers; 0 means no limit at all.
    let limits = [
        ("memory", r.memory, ByteSize::mib(32), true),
        ("sentinel_memory", r.sentinel_memory, ByteSize::mib(16), c.deployment.mode == Mode::Sentinel),
        ("exporter_memory", r.exporter_memory, ByteSize::mib(16), c.monitoring.exporter),
    ];
    for (key, value, min, used) in limits {
        if used && value.0 < min.0 {
            let why = if value.0 == 0 {
                "the containers would run without a memory limit".to_string()
            } else {
                format!("under the {min} a container needs")
            };
            out.push(prod_err(
                c.deployment.environment,
                "resources.memory-too-small",
                &format!("/resources/{key}"),
                format!("`resources.{key}` is {value}: {why}"),
                format!("give at least {min}"),
            ));
        }
    }
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
