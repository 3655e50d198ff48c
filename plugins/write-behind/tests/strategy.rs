//! write-behind against real templates (presets and examples, loaded with
//! `redplate-config`) and a real Redis 7.0: directives accepted, and the
//! queue script run through enqueue, coalescing, take, ack, reclaim and
//! dead-lettering.

#[path = "../../cache-aside/tests/support/mod.rs"]
mod support;

use plugin_write_behind::WriteBehind;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{CacheStrategy, NativeHost, Plan, Severity, WriteMode};
use support::{Conn, Redis, Reply, example_input, preset_input};

const NAME: &str = "write-behind";

fn plan(input: &str) -> Plan {
    WriteBehind::plan(input, &NativeHost::default()).unwrap_or_else(|d| panic!("plan refused: {d:#?}"))
}

fn directives(plan: &Plan) -> Vec<(&str, &str)> {
    plan.directives.iter().map(|d| (d.name.as_str(), d.value.as_str())).collect()
}

fn spec(plan: &Plan) -> serde_json::Value {
    let a = plan.artifacts.iter().find(|a| a.path == "cache/write-behind.json").expect("the plan has a spec");
    serde_json::from_slice(&a.content).unwrap_or_else(|e| panic!("spec is not JSON: {e}"))
}

const DURABLE: [(&str, &str); 3] =
    [("appendonly", "yes"), ("appendfsync", "everysec"), ("maxmemory-policy", "noeviction")];

#[test]
fn multi_tenant_example_gets_a_durable_queue_per_tenant() {
    let plan = plan(&example_input("multi-tenant", NAME, &[]));
    assert_eq!(directives(&plan), DURABLE);
    assert!(plan.directives.iter().all(|d| !d.reason.is_empty()));
    let rules: Vec<_> = plan.key_rules.iter().map(|r| (r.pattern.as_str(), r.write_mode)).collect();
    assert_eq!(
        rules,
        [
            ("tenant:*:profile:*", WriteMode::WriteBehind),
            ("tenant:*:feed:*", WriteMode::WriteBehind),
            ("tenant:*:rate:*", WriteMode::WriteBehind),
            ("*", WriteMode::WriteBehind),
        ]
    );
    let paths: Vec<_> = plan.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["cache/write-behind.lua", "cache/write-behind.json"]);
    let spec = spec(&plan);
    let streams: Vec<_> = spec["queues"].as_array().into_iter().flatten().map(|q| q["stream"].as_str()).collect();
    assert_eq!(
        streams,
        [Some("tenant:acme:{acme:wb}"), Some("tenant:globex:{globex:wb}"), Some("tenant:initech:{initech:wb}")]
    );
    assert_eq!(spec["queue_template"]["dead_letter"], "tenant:<tenant>:{<tenant>:wb}:dead");
    assert_eq!((spec["batch_size"].as_u64(), spec["flush_interval_ms"].as_u64()), (Some(100), Some(1000)));
    assert_eq!((spec["max_deliveries"].as_u64(), spec["claim_min_idle_ms"].as_u64()), (Some(5), Some(30_000)));
    let codes: Vec<_> = plan.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(codes.contains(&"write-behind.tenants-cannot-run-scripts"), "{codes:?}");
    // The example's `allkeys-lru` conflicts with the plan's `noeviction`: the host reports that, not the plugin.
    assert!(plan.diagnostics.iter().all(|d| d.severity != Severity::Error));
}

#[test]
fn presets_with_persistence_plan_and_the_one_without_is_refused_with_a_pointer() {
    for env in [Environment::Staging, Environment::Production] {
        let plan = plan(&preset_input(env, NAME, &[]));
        assert_eq!(directives(&plan), DURABLE, "{env}");
        // The presets' `default_ttl: 0s` leaves cached keys without expiry under `noeviction`.
        let no_ttl = plan.diagnostics.iter().find(|d| d.code == "write-behind.no-ttl-under-noeviction");
        assert_eq!(no_ttl.map(|d| d.path.as_str()), Some("/config/cache/default_ttl"), "{env}");
        let spec = spec(&plan);
        assert_eq!(spec["queues"][0]["stream"], "{wb}", "{env}");
    }
    let doc = preset_input(Environment::Development, NAME, &[]);
    let err = WriteBehind::plan(&doc, &NativeHost::default()).err().unwrap_or_default();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert_eq!(
        (err[0].code.as_str(), err[0].path.as_str()),
        ("write-behind.requires-persistence", "/config/persistence/mode")
    );
    assert!(err[0].hint.as_deref().is_some_and(|h| h.contains("persistence.mode: aof")));
    assert_eq!(WriteBehind::validate(&doc), err);
    let fixed = plan(&preset_input(Environment::Development, NAME, &["persistence.mode=aof"]));
    assert_eq!(directives(&fixed), DURABLE);
}

#[test]
fn stricter_fsync_is_kept_and_weak_settings_are_flagged() {
    let always = plan(&preset_input(Environment::Production, NAME, &["persistence.appendfsync=always"]));
    assert_eq!(always.directives[1].value, "always");
    let rdb =
        plan(&preset_input(Environment::Production, NAME, &["persistence.mode=rdb", "persistence.appendfsync=no"]));
    assert_eq!(rdb.directives[1].value, "everysec");
    let codes: Vec<_> = rdb.diagnostics.iter().map(|d| (d.code.as_str(), d.path.as_str())).collect();
    assert!(codes.contains(&("write-behind.rdb-only", "/config/persistence/mode")), "{codes:?}");
    assert!(codes.contains(&("write-behind.appendfsync-no", "/config/persistence/appendfsync")), "{codes:?}");
    let bad = r#"{"config":{"persistence":{"mode":"aof"},"cache":{"write_behind_batch_size":0,"write_behind_stream":"a b"}}}"#;
    let paths: Vec<_> = WriteBehind::validate(bad).into_iter().map(|d| d.path).collect();
    assert_eq!(paths, ["/config/cache/write_behind_batch_size", "/config/cache/write_behind_stream"]);
}

#[test]
fn plan_is_deterministic() {
    let doc = example_input("multi-tenant", NAME, &[]);
    assert_eq!(plan(&doc), plan(&doc));
}

#[test]
fn decide_jitters_within_exact_bounds_and_writes_behind() {
    let ttls: Vec<u64> = (0..5_000).filter_map(|s| WriteBehind::decide("cart:1", None, 300_000, s).ttl_ms).collect();
    assert!(ttls.iter().all(|t| (270_000..=330_000).contains(t)));
    assert!(ttls.iter().any(|t| *t < 271_000) && ttls.iter().any(|t| *t > 329_000));
    let d = WriteBehind::decide("cart:1", Some("acme"), 300_000, 11);
    assert_eq!(d, WriteBehind::decide("cart:1", Some("acme"), 300_000, 11));
    assert_eq!((d.write_mode, d.refresh_below_ms), (WriteMode::WriteBehind, None));
}

/// Runs one queue operation.
fn op(c: &mut Conn, script: &str, keys: &[&str; 3], args: &[&str]) -> Reply {
    let reply = c.eval(script, keys, args);
    if let Reply::Error(e) = &reply {
        panic!("{args:?}: {e}");
    }
    reply
}

fn entries(reply: &Reply) -> Vec<(String, String, String)> {
    reply.items().iter().map(|e| (e.items()[1].text(), e.items()[2].text(), e.items()[3].text())).collect()
}

#[test]
fn redis_7_accepts_the_directives_and_runs_the_queue_script() {
    let plan = plan(&example_input("multi-tenant", NAME, &["cache.write_behind_max_retries=2"]));
    let args: Vec<_> = plan.directives.iter().map(|d| (d.name.clone(), d.value.clone())).collect();
    let Some(redis) = Redis::start(&args) else { return };
    for (name, value) in &args {
        assert_eq!(&redis.config_get(name), value, "CONFIG GET {name}");
    }
    let script = String::from_utf8_lossy(&plan.artifacts[0].content).into_owned();
    let spec = spec(&plan);
    let q = &spec["queues"][0];
    let keys = [q["stream"].as_str(), q["latest"].as_str(), q["dead_letter"].as_str()].map(|k| k.unwrap_or_default());
    let group = spec["group"].as_str().unwrap_or_default();
    let max = spec["max_deliveries"].to_string();
    let mut c = redis.conn();

    assert_eq!(op(&mut c, &script, &keys, &["group", group]).int(), 1);
    assert_eq!(op(&mut c, &script, &keys, &["group", group]).int(), 0, "a second start finds the group");
    let first = op(&mut c, &script, &keys, &["enqueue", "tenant:acme:cart:1", "set", "v1"]).text();
    let newest = op(&mut c, &script, &keys, &["enqueue", "tenant:acme:cart:1", "set", "v2"]).text();
    op(&mut c, &script, &keys, &["enqueue", "tenant:acme:cart:2", "del", ""]);
    assert_ne!(first, newest);
    // A reader that misses the cache sees the queued write, not the store's old value.
    let peek = op(&mut c, &script, &keys, &["peek", "tenant:acme:cart:1"]);
    assert_eq!(peek.items().iter().map(Reply::text).collect::<Vec<_>>(), [newest.clone(), "set".into(), "v2".into()]);
    assert_eq!(op(&mut c, &script, &keys, &["peek", "tenant:acme:none"]), Reply::Bulk(None));

    // Coalescing: the superseded v1 is settled at once, only the newest write per key is handed out.
    let taken = op(&mut c, &script, &keys, &["take", group, "worker-1", "10"]);
    assert_eq!(
        entries(&taken),
        [
            ("tenant:acme:cart:1".into(), "set".into(), "v2".into()),
            ("tenant:acme:cart:2".into(), "del".into(), "".into())
        ]
    );
    assert_eq!(c.cmd(&["XLEN", keys[0]]).int(), 2, "v1 was deleted");
    // The store committed cart:1; worker-1 dies before committing cart:2.
    let id2 = taken.items()[1].items()[0].text();
    assert_eq!(op(&mut c, &script, &keys, &["ack", group, &newest, "tenant:acme:cart:1"]).int(), 1);
    assert_eq!(c.cmd(&["HEXISTS", keys[1], "tenant:acme:cart:1"]).int(), 0);
    assert_eq!(entries(&op(&mut c, &script, &keys, &["take", group, "worker-1", "10"])), []);

    // Another worker reclaims cart:2 (idle threshold 0 for the test): its second and last allowed delivery…
    let r = op(&mut c, &script, &keys, &["reclaim", group, "worker-2", "0", "10", &max, "0-0"]);
    assert_eq!(entries(&r.items()[1]), [("tenant:acme:cart:2".into(), "del".into(), "".into())], "second delivery");
    assert_eq!(r.items()[2].int(), 0);
    // …then it moves to the dead-letter stream instead of being retried forever or dropped.
    let r = op(&mut c, &script, &keys, &["reclaim", group, "worker-2", "0", "10", &max, "0-0"]);
    assert_eq!((entries(&r.items()[1]).len(), r.items()[2].int()), (0, 1));
    let dead = c.cmd(&["XRANGE", keys[2], "-", "+"]);
    let fields: Vec<_> = dead.items()[0].items()[1].items().iter().map(Reply::text).collect();
    assert_eq!(
        fields[..8],
        [
            "id".to_string(),
            id2,
            "key".into(),
            "tenant:acme:cart:2".into(),
            "action".into(),
            "del".into(),
            "value".into(),
            "".into()
        ]
    );
    assert_eq!(fields[8..10], ["deliveries".to_string(), "3".into()]);
    // Nothing is left pending, queued or tracked.
    assert_eq!(c.cmd(&["XLEN", keys[0]]).int(), 0);
    assert_eq!(c.cmd(&["HLEN", keys[1]]).int(), 0);
    assert_eq!(c.cmd(&["XPENDING", keys[0], group]).items()[0].int(), 0);
    assert!(
        matches!(c.eval(&script, &keys, &["frobnicate"]), Reply::Error(e) if e.contains("unknown write-behind operation"))
    );
}

#[test]
fn multi_tenant_plan_matches_its_snapshot() {
    support::snapshot_plan("multi-tenant", &plan(&example_input("multi-tenant", NAME, &[])));
}
