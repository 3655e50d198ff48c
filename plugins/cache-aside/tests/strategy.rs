//! cache-aside against real templates (presets and examples, loaded with
//! `redplate-config`) and a real Redis 7.0.

mod support;

use plugin_cache_aside::CacheAside;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{CacheStrategy, NativeHost, Plan, Severity, WriteMode};
use support::{Redis, Reply, example_input, input, preset_input};

const NAME: &str = "cache-aside";

fn plan(input: &str) -> Plan {
    CacheAside::plan(input, &NativeHost::default()).unwrap_or_else(|d| panic!("plan refused: {d:#?}"))
}

fn codes(plan: &Plan) -> Vec<&str> {
    plan.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

#[test]
fn multi_tenant_example_gives_lru_and_ordered_rules() {
    let plan = plan(&example_input("multi-tenant", NAME, &[]));
    assert_eq!(plan.directives.len(), 1);
    assert_eq!(
        (plan.directives[0].name.as_str(), plan.directives[0].value.as_str()),
        ("maxmemory-policy", "allkeys-lru")
    );
    assert!(!plan.directives[0].reason.is_empty());
    let rules: Vec<_> = plan
        .key_rules
        .iter()
        .map(|r| (r.pattern.as_str(), r.ttl_ms, r.jitter_percent, r.refresh_ahead_percent))
        .collect();
    assert_eq!(
        rules,
        [
            ("tenant:*:profile:*", Some(3_600_000), 10, Some(20)),
            ("tenant:*:feed:*", Some(120_000), 20, None),
            ("tenant:*:rate:*", Some(1_000), 10, None),
            ("*", Some(900_000), 10, None),
        ]
    );
    assert!(plan.key_rules.iter().all(|r| r.write_mode == WriteMode::Invalidate && !r.sliding));
    // The example's tenants may not run scripts, and the stampede lock is Lua.
    assert!(codes(&plan).contains(&"cache-aside.tenants-cannot-run-scripts"), "{:?}", codes(&plan));
    let paths: Vec<_> = plan.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["cache/stampede/fill.lua", "cache/stampede/release.lua", "cache/cache-aside.json"]);
}

#[test]
fn every_preset_plans_with_a_catch_all_and_an_allkeys_policy() {
    for env in Environment::ALL {
        let plan = plan(&preset_input(env, NAME, &[]));
        assert_eq!(plan.directives[0].value, "allkeys-lru", "{env}");
        assert_eq!(plan.key_rules.len(), 1, "{env}");
        let star = &plan.key_rules[0];
        // The presets set `default_ttl: 0s`: the catch-all never expires, so it has no jitter.
        assert_eq!((star.pattern.as_str(), star.ttl_ms, star.jitter_percent), ("*", None, 0), "{env}");
        assert!(plan.diagnostics.iter().all(|d| d.severity != Severity::Error), "{env}");
    }
    let lfu = plan(&preset_input(Environment::Production, NAME, &["memory.maxmemory_policy=allkeys-lfu"]));
    assert_eq!(lfu.directives[0].value, "allkeys-lfu");
}

#[test]
fn plan_is_deterministic() {
    let doc = example_input("multi-tenant", NAME, &[]);
    assert_eq!(plan(&doc), plan(&doc));
}

#[test]
fn risky_rules_are_flagged_where_they_are_written() {
    let yaml = r#"
tenancy: { enabled: true, allow_scripts: true }
cache:
  strategy: cache-aside
  default_ttl: 10m
  jitter_percent: 0
  sliding_min_interval: 0s
  patterns:
    - { pattern: "tenant:*:session:*", ttl: 30m, sliding: true }
    - { pattern: "user:*", ttl: 1m }
    - { pattern: "*", ttl: 5m, jitter_percent: 10 }
    - { pattern: "tenant:*:late:*", ttl: 5m }
"#;
    let plan = plan(&input(yaml, Some(Environment::Production), &[]));
    let find =
        |code: &str| plan.diagnostics.iter().filter(|d| d.code == code).map(|d| d.path.as_str()).collect::<Vec<_>>();
    assert_eq!(find("cache-aside.sliding-write-per-read"), ["/config/cache/patterns/0/sliding"]);
    assert_eq!(
        find("cache-aside.no-jitter"),
        [
            "/config/cache/patterns/0/jitter_percent",
            "/config/cache/patterns/1/jitter_percent",
            "/config/cache/patterns/3/jitter_percent"
        ]
    );
    assert_eq!(find("cache-aside.pattern-outside-tenant-prefix"), ["/config/cache/patterns/1/pattern"]);
    assert_eq!(find("cache-aside.unreachable-rules"), ["/config/cache/patterns/3/pattern"]);
    assert!(find("cache-aside.tenants-cannot-run-scripts").is_empty());
    // A configured `*` is the catch-all: none is added after it.
    assert_eq!(plan.key_rules.iter().filter(|r| r.pattern == "*").count(), 1);
    assert!(plan.diagnostics.iter().all(|d| d.severity == Severity::Warning && d.hint.is_some()));
}

#[test]
fn out_of_range_values_are_refused_with_pointers() {
    let doc = r#"{"config":{"cache":{"jitter_percent":150,"refresh_ahead_threshold_percent":0,
        "patterns":[{"pattern":"a:*","ttl":"1m","jitter_percent":60},{"pattern":""}]}}}"#;
    let err = CacheAside::plan(doc, &NativeHost::default()).err().unwrap_or_default();
    let paths: Vec<_> = err.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/config/cache/jitter_percent",
            "/config/cache/refresh_ahead_threshold_percent",
            "/config/cache/patterns/0/jitter_percent",
            "/config/cache/patterns/1/pattern",
        ]
    );
    assert_eq!(CacheAside::validate(doc), err);
    assert!(CacheAside::validate(&example_input("multi-tenant", NAME, &[])).is_empty());
    let bad = CacheAside::plan("{\"config\": 3}", &NativeHost::default()).err().unwrap_or_default();
    assert_eq!(bad[0].code, "cache-aside.bad-input");
}

#[test]
fn decide_jitters_within_exact_bounds_and_is_deterministic() {
    let ttls: Vec<u64> =
        (0..10_000).filter_map(|seed| CacheAside::decide("user:1", None, 60_000, seed).ttl_ms).collect();
    assert_eq!(ttls.len(), 10_000);
    assert!(ttls.iter().all(|t| (54_000..=66_000).contains(t)));
    let mean = ttls.iter().sum::<u64>() as f64 / ttls.len() as f64;
    assert!((mean - 60_000.0).abs() < 200.0, "mean {mean} is not centred");
    let below = ttls.iter().filter(|t| **t < 57_000).count();
    assert!((2_000..3_000).contains(&below), "{below} of 10000 in the lowest quarter, expected ~2500");
    let distinct: std::collections::BTreeSet<_> = ttls.iter().collect();
    assert!(distinct.len() > 5_000, "only {} distinct TTLs", distinct.len());
    let d = CacheAside::decide("user:1", Some("acme"), 60_000, 42);
    assert_eq!(d, CacheAside::decide("user:1", Some("acme"), 60_000, 42));
    assert_eq!((d.sliding, d.refresh_below_ms, d.write_mode), (false, None, WriteMode::Invalidate));
    // The key is mixed into the seed: one seed still spreads different keys.
    let spread: std::collections::BTreeSet<_> =
        (0..100).filter_map(|i| CacheAside::decide(&format!("k:{i}"), None, 60_000, 7).ttl_ms).collect();
    assert!(spread.len() > 90);
    assert_eq!(CacheAside::decide("k", None, 0, 1).ttl_ms, None);
    assert_eq!(CacheAside::decide("k", None, 1, 1).ttl_ms, Some(1));
}

#[test]
fn redis_7_accepts_the_directives_and_runs_the_lock_scripts() {
    let plan = plan(&example_input("multi-tenant", NAME, &[]));
    let directives: Vec<_> = plan.directives.iter().map(|d| (d.name.clone(), d.value.clone())).collect();
    let Some(redis) = Redis::start(&directives) else { return };
    for (name, value) in &directives {
        assert_eq!(&redis.config_get(name), value, "CONFIG GET {name}");
    }
    let script = |path: &str| {
        let a = plan.artifacts.iter().find(|a| a.path == path).unwrap_or_else(|| panic!("no {path}"));
        String::from_utf8_lossy(&a.content).into_owned()
    };
    let (fill, release) = (script("cache/stampede/fill.lua"), script("cache/stampede/release.lua"));
    let mut c = redis.conn();
    let mine = "__redplate_lock__:token-a";
    assert_eq!(c.cmd(&["SET", "tenant:acme:profile:1", mine, "NX", "PX", "5000"]), Reply::Simple("OK".into()));
    // A second loader cannot take the lock.
    assert_eq!(c.cmd(&["SET", "tenant:acme:profile:1", "__redplate_lock__:b", "NX", "PX", "5000"]), Reply::Bulk(None));
    assert_eq!(c.eval(&fill, &["tenant:acme:profile:1"], &["__redplate_lock__:b", "v-b", "60000"]).int(), 0);
    assert_eq!(c.eval(&fill, &["tenant:acme:profile:1"], &[mine, "v-a", "60000"]).int(), 1);
    assert_eq!(c.cmd(&["GET", "tenant:acme:profile:1"]).text(), "v-a");
    let pttl = c.cmd(&["PTTL", "tenant:acme:profile:1"]).int();
    assert!((59_000..=60_000).contains(&pttl), "pttl {pttl}");
    // A writer's invalidation removes the placeholder: the racing load is not cached.
    assert_eq!(c.cmd(&["SET", "k2", mine, "NX", "PX", "5000"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["UNLINK", "k2"]).int(), 1);
    assert_eq!(c.eval(&fill, &["k2"], &[mine, "old", "0"]).int(), 0);
    assert_eq!(c.cmd(&["EXISTS", "k2"]).int(), 0);
    // Release only removes our own placeholder.
    assert_eq!(c.cmd(&["SET", "k3", mine, "NX", "PX", "5000"]), Reply::Simple("OK".into()));
    assert_eq!(c.eval(&release, &["k3"], &["__redplate_lock__:other"]).int(), 0);
    assert_eq!(c.eval(&release, &["k3"], &[mine]).int(), 1);
    assert_eq!(c.cmd(&["EXISTS", "k3"]).int(), 0);
}

#[test]
fn the_redis_harness_fails_on_a_directive_redis_rejects() {
    // A missing redis-server skips (or fails in CI); it is never a pass.
    if !support::redis_present() {
        return;
    }
    let refused =
        std::panic::catch_unwind(|| Redis::start(&[("maxmemory-policy".into(), "allkeys-random-ish".into())]));
    let Err(payload) = refused else { panic!("redis-server accepted `maxmemory-policy allkeys-random-ish`") };
    let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("exited before accepting connections"), "{message}");
    assert!(message.contains("maxmemory-policy"), "the panic quotes the server's log: {message}");
}

#[test]
fn multi_tenant_plan_matches_its_snapshot() {
    support::snapshot_plan("multi-tenant", &plan(&example_input("multi-tenant", NAME, &[])));
}
