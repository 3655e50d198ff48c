//! write-through against real templates (presets and examples, loaded with
//! `redplate-config`) and a real Redis 7.0.

#[path = "../../cache-aside/tests/support/mod.rs"]
mod support;

use plugin_write_through::WriteThrough;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{CacheStrategy, NativeHost, Plan, Severity, WriteMode};
use support::{Redis, example_input, input, preset_input};

const NAME: &str = "write-through";

fn plan(input: &str) -> Plan {
    WriteThrough::plan(input, &NativeHost::default()).unwrap_or_else(|d| panic!("plan refused: {d:#?}"))
}

#[test]
fn multi_tenant_example_gives_lru_and_write_through_rules() {
    let plan = plan(&example_input("multi-tenant", NAME, &[]));
    let directives: Vec<_> = plan.directives.iter().map(|d| (d.name.as_str(), d.value.as_str())).collect();
    assert_eq!(directives, [("maxmemory-policy", "allkeys-lru")]);
    let rules: Vec<_> = plan.key_rules.iter().map(|r| (r.pattern.as_str(), r.ttl_ms, r.write_mode)).collect();
    assert_eq!(
        rules,
        [
            ("tenant:*:profile:*", Some(3_600_000), WriteMode::WriteThrough),
            ("tenant:*:feed:*", Some(120_000), WriteMode::WriteThrough),
            ("tenant:*:rate:*", Some(1_000), WriteMode::WriteThrough),
            ("*", Some(900_000), WriteMode::WriteThrough),
        ]
    );
    // Nothing durable is required: no persistence directive, only a note.
    assert!(plan.directives.iter().all(|d| !d.name.starts_with("append")));
    let note = plan.diagnostics.iter().find(|d| d.code == "write-through.persistence-optional");
    assert_eq!(note.map(|d| (d.severity, d.path.as_str())), Some((Severity::Info, "/config/persistence/mode")));
    let paths: Vec<_> = plan.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["cache/stampede/fill.lua", "cache/stampede/release.lua", "cache/write-through.json"]);
}

#[test]
fn every_preset_plans_and_pattern_modes_override_the_strategy() {
    for env in Environment::ALL {
        let plan = plan(&preset_input(env, NAME, &[]));
        assert_eq!(plan.directives[0].value, "allkeys-lru", "{env}");
        assert_eq!(plan.key_rules.last().map(|r| r.pattern.as_str()), Some("*"), "{env}");
        assert!(plan.diagnostics.iter().all(|d| d.severity != Severity::Error), "{env}");
    }
    let yaml = r#"
cache:
  strategy: write-through
  default_ttl: 1h
  stampede_lock: false
  patterns:
    - { pattern: "inv:*", ttl: 1m, write_mode: invalidate }
    - { pattern: "audit:*", ttl: 1m, write_mode: write-behind }
"#;
    let plan = plan(&input(yaml, Some(Environment::Production), &[]));
    let modes: Vec<_> = plan.key_rules.iter().map(|r| r.write_mode).collect();
    assert_eq!(modes, [WriteMode::Invalidate, WriteMode::WriteBehind, WriteMode::WriteThrough]);
    let evicted = plan.diagnostics.iter().find(|d| d.code == "write-through.write-behind-under-eviction");
    assert_eq!(evicted.map(|d| d.path.as_str()), Some("/config/cache/patterns/1/write_mode"));
    let paths: Vec<_> = plan.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["cache/write-through.json"]);
}

#[test]
fn plan_is_deterministic() {
    let doc = example_input("multi-tenant", NAME, &[]);
    assert_eq!(plan(&doc), plan(&doc));
}

#[test]
fn decide_jitters_within_exact_bounds_and_writes_through() {
    let ttls: Vec<u64> = (0..10_000).filter_map(|s| WriteThrough::decide("order:9", None, 1_000, s).ttl_ms).collect();
    assert!(ttls.iter().all(|t| (900..=1_100).contains(t)));
    assert!(ttls.contains(&900) && ttls.contains(&1_100), "the exact bounds are reachable");
    let distinct: std::collections::BTreeSet<_> = ttls.iter().collect();
    assert_eq!(distinct.len(), 201, "every TTL in ±10 % of 1000 ms appears");
    let d = WriteThrough::decide("order:9", Some("acme"), 1_000, 5);
    assert_eq!(d, WriteThrough::decide("order:9", Some("acme"), 1_000, 5));
    assert_eq!((d.write_mode, d.refresh_below_ms, d.sliding), (WriteMode::WriteThrough, None, false));
    assert_eq!(WriteThrough::decide("k", None, 0, 5).ttl_ms, None);
}

#[test]
fn redis_7_accepts_the_directives() {
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        let set = format!("memory.maxmemory_policy={policy}");
        let plan = plan(&preset_input(Environment::Production, NAME, &[&set]));
        let directives: Vec<_> = plan.directives.iter().map(|d| (d.name.clone(), d.value.clone())).collect();
        assert_eq!(directives[0].1, policy);
        let Some(redis) = Redis::start(&directives) else { return };
        for (name, value) in &directives {
            assert_eq!(&redis.config_get(name), value, "CONFIG GET {name}");
        }
    }
}

#[test]
fn multi_tenant_plan_matches_its_snapshot() {
    support::snapshot_plan("multi-tenant", &plan(&example_input("multi-tenant", NAME, &[])));
}
