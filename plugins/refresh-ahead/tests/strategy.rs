//! refresh-ahead against real templates (presets and examples, loaded with
//! `redplate-config`) and a real Redis 7.0, including the expired-key
//! notifications its refreshers subscribe to.

#[path = "../../cache-aside/tests/support/mod.rs"]
mod support;

use plugin_refresh_ahead::RefreshAhead;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{CacheStrategy, NativeHost, Plan, Severity, WriteMode};
use support::{Redis, Reply, example_input, input, preset_input};

const NAME: &str = "refresh-ahead";

fn plan(input: &str) -> Plan {
    RefreshAhead::plan(input, &NativeHost::default()).unwrap_or_else(|d| panic!("plan refused: {d:#?}"))
}

fn directives(plan: &Plan) -> Vec<(&str, &str)> {
    plan.directives.iter().map(|d| (d.name.as_str(), d.value.as_str())).collect()
}

fn codes(plan: &Plan) -> Vec<(&str, &str)> {
    plan.diagnostics.iter().map(|d| (d.code.as_str(), d.path.as_str())).collect()
}

#[test]
fn multi_tenant_example_refreshes_flagged_patterns_and_the_catch_all() {
    let plan = plan(&example_input("multi-tenant", NAME, &[]));
    assert_eq!(directives(&plan), [("notify-keyspace-events", "xE"), ("maxmemory-policy", "allkeys-lru")]);
    let rules: Vec<_> = plan
        .key_rules
        .iter()
        .map(|r| (r.pattern.as_str(), r.ttl_ms, r.jitter_percent, r.refresh_ahead_percent))
        .collect();
    // `refresh_ahead_threshold_percent: 80` (elapsed) is a refresh in the last 20 % of the TTL.
    assert_eq!(
        rules,
        [
            ("tenant:*:profile:*", Some(3_600_000), 10, Some(20)),
            ("tenant:*:feed:*", Some(120_000), 20, None),
            ("tenant:*:rate:*", Some(1_000), 10, None),
            ("*", Some(900_000), 10, Some(20)),
        ]
    );
    assert!(plan.key_rules.iter().all(|r| r.write_mode == WriteMode::Invalidate));
    let paths: Vec<_> = plan.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["cache/stampede/fill.lua", "cache/stampede/release.lua", "cache/refresh-ahead.json"]);
    let spec: serde_json::Value = serde_json::from_slice(&plan.artifacts[2].content).unwrap_or_default();
    assert_eq!((spec["xfetch"]["beta_centi"].as_u64(), spec["xfetch"]["beta"].as_f64()), (Some(100), Some(1.0)));
    assert!(plan.diagnostics.iter().all(|d| d.severity != Severity::Error), "{:?}", codes(&plan));
}

#[test]
fn presets_without_ttls_pin_untimed_keys_with_a_volatile_policy() {
    for env in Environment::ALL {
        let plan = plan(&preset_input(env, NAME, &[]));
        assert_eq!(
            directives(&plan),
            [("notify-keyspace-events", "xE"), ("maxmemory-policy", "volatile-lru")],
            "{env}"
        );
        let codes = codes(&plan);
        assert!(codes.contains(&("refresh-ahead.nothing-refreshes", "/config/cache/default_ttl")), "{env}: {codes:?}");
        assert!(codes.contains(&("refresh-ahead.volatile-eviction", "/config/cache/default_ttl")), "{env}: {codes:?}");
    }
    let timed = plan(&preset_input(Environment::Production, NAME, &["cache.default_ttl=10m"]));
    assert_eq!(timed.directives[1].value, "allkeys-lru");
    assert_eq!(timed.key_rules[0].refresh_ahead_percent, Some(20));
    let lfu = plan(&preset_input(Environment::Staging, NAME, &["memory.maxmemory_policy=allkeys-lfu"]));
    assert_eq!(lfu.directives[1].value, "volatile-lfu");
    let events = plan(&preset_input(Environment::Staging, NAME, &["cache.keyspace_events=Kg"]));
    assert_eq!(events.directives[0].value, "gxKE");
}

#[test]
fn refresh_pitfalls_are_flagged() {
    let yaml = r#"
deployment: { mode: cluster }
cache:
  strategy: refresh-ahead
  default_ttl: 10m
  refresh_ahead_threshold_percent: 90
  patterns:
    - { pattern: "session:*", ttl: 30m, sliding: true, refresh_ahead: true }
    - { pattern: "quote:*", ttl: 2s, refresh_ahead: true }
"#;
    let plan = plan(&input(yaml, Some(Environment::Production), &[]));
    let codes = codes(&plan);
    assert!(
        codes.contains(&("refresh-ahead.sliding-starves-refresh", "/config/cache/patterns/0/sliding")),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("refresh-ahead.short-refresh-window", "/config/cache/patterns/1/refresh_ahead")),
        "{codes:?}"
    );
    assert!(codes.contains(&("refresh-ahead.node-local-notifications", "/config/deployment/mode")), "{codes:?}");
    assert_eq!(plan.key_rules[1].refresh_ahead_percent, Some(10));
}

#[test]
fn plan_is_deterministic() {
    let doc = example_input("multi-tenant", NAME, &[]);
    assert_eq!(plan(&doc), plan(&doc));
}

#[test]
fn decide_refreshes_in_the_last_fifth_of_the_jittered_ttl() {
    for seed in 0..5_000 {
        let d = RefreshAhead::decide("tenant:acme:profile:1", Some("acme"), 3_600_000, seed);
        let ttl = d.ttl_ms.unwrap_or(0);
        assert!((3_240_000..=3_960_000).contains(&ttl), "seed {seed}: {ttl}");
        assert_eq!(d.refresh_below_ms, Some(ttl * 20 / 100), "seed {seed}");
        assert_eq!((d.sliding, d.write_mode), (false, WriteMode::Invalidate));
    }
    assert_eq!(RefreshAhead::decide("k", None, 1_000, 3), RefreshAhead::decide("k", None, 1_000, 3));
    let none = RefreshAhead::decide("k", None, 0, 3);
    assert_eq!((none.ttl_ms, none.refresh_below_ms), (None, None));
    // Exact arithmetic at the edges: a 1 ms TTL has no room to jitter or refresh.
    assert_eq!(RefreshAhead::decide("k", None, 1, 9).refresh_below_ms, Some(0));
    let ttls: std::collections::BTreeSet<_> =
        (0..2_000).filter_map(|s| RefreshAhead::decide("k", None, 100, s).ttl_ms).collect();
    assert_eq!(ttls.into_iter().collect::<Vec<_>>(), (90..=110).collect::<Vec<_>>());
}

#[test]
fn redis_7_accepts_the_directives_and_publishes_expired_events() {
    let plans = [
        plan(&example_input("multi-tenant", NAME, &[])),
        plan(&preset_input(Environment::Production, NAME, &["cache.keyspace_events=Kg"])),
    ];
    for plan in &plans {
        let args: Vec<_> = plan.directives.iter().map(|d| (d.name.clone(), d.value.clone())).collect();
        let Some(redis) = Redis::start(&args) else { return };
        for (name, value) in &args {
            assert_eq!(&redis.config_get(name), value, "CONFIG GET {name}");
        }
        let mut sub = redis.conn();
        let ok = sub.cmd(&["SUBSCRIBE", "__keyevent@0__:expired"]);
        assert_eq!(ok.items().first().map(Reply::text).as_deref(), Some("subscribe"));
        let mut c = redis.conn();
        assert_eq!(c.cmd(&["SET", "tenant:acme:profile:1", "v", "PX", "20"]), Reply::Simple("OK".into()));
        std::thread::sleep(std::time::Duration::from_millis(60));
        // Reading an expired key deletes it, which publishes the event (bounded by the 5 s read timeout).
        assert_eq!(c.cmd(&["GET", "tenant:acme:profile:1"]), Reply::Bulk(None));
        let message: Vec<_> = sub.next().items().iter().map(Reply::text).collect();
        assert_eq!(message, ["message", "__keyevent@0__:expired", "tenant:acme:profile:1"]);
    }
}

#[test]
fn multi_tenant_plan_matches_its_snapshot() {
    support::snapshot_plan("multi-tenant", &plan(&example_input("multi-tenant", NAME, &[])));
}
