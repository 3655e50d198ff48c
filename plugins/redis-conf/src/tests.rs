//! Unit tests over hand-written input documents; the presets and real Redis
//! are exercised in `tests/`.

use super::*;
use redplate_plugin_sdk::NativeHost;
use serde_json::{Value, json};

fn input(config: Value, nodes: Value) -> Value {
    json!({
        "contract": "0.1.0", "name": "t", "target": "local", "config": config,
        "topology": {"target": "local", "mode": "replication", "shards": 1, "nodes": nodes},
        "strategy": null, "secrets": {"users": {}}
    })
}

fn nodes() -> Value {
    json!([
        {"name": "t-0", "role": "master", "ordinal": 0, "hostname": "127.0.0.1", "ports": {"client": 7000}, "data_dir": "data/t-0"},
        {"name": "t-1", "role": "replica", "ordinal": 1, "hostname": "127.0.0.1", "ports": {"client": 7010}, "data_dir": "data/t-1", "replica_of": "t-0"}
    ])
}

fn file(out: &Output, path: &str) -> String {
    let a = out.artifacts.iter().find(|a| a.path == path);
    String::from_utf8_lossy(&a.map(|a| a.content.clone()).unwrap_or_default()).into_owned()
}

#[test]
fn renders_one_file_per_data_node_and_replicaof() {
    let doc = input(json!({"memory": {"maxmemory": "50%"}, "resources": {"memory": "1gb"}}), nodes());
    let out = RedisConf::generate(&doc.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let paths: Vec<_> = out.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["redis/t-0/redis.conf", "redis/t-1/redis.conf"]);
    let replica = file(&out, "redis/t-1/redis.conf");
    assert!(replica.contains("\nport 7010\n"), "{replica}");
    assert!(replica.contains("\nreplicaof 127.0.0.1 7000\n"), "{replica}");
    assert!(replica.contains("\nmaxmemory 536870900\n"), "{replica}");
    assert!(replica.contains("\ndir data/t-1\n"), "{replica}");
    assert!(!file(&out, "redis/t-0/redis.conf").contains("replicaof"));
}

#[test]
fn strategy_directives_replace_never_duplicate() {
    let mut doc = input(json!({"memory": {"maxmemory_policy": "noeviction"}}), nodes());
    doc["strategy"] = json!({"name": "cache-aside", "directives": [
        {"name": "maxmemory-policy", "value": "allkeys-lru", "reason": "a cache"},
        {"name": "notify-keyspace-events", "value": "Ex", "reason": "expiry events"}
    ], "key_rules": []});
    let out = RedisConf::generate(&doc.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let conf = file(&out, "redis/t-0/redis.conf");
    assert_eq!(conf.matches("maxmemory-policy").count(), 1, "{conf}");
    assert!(conf.contains("maxmemory-policy allkeys-lru\n"), "{conf}");
    assert!(conf.contains("notify-keyspace-events Ex\n"), "{conf}");
}

#[test]
fn tls_without_files_is_a_pointed_error() {
    let doc = input(json!({"security": {"tls": {"enabled": true}}}), nodes());
    let ds = RedisConf::validate(&doc.to_string());
    assert!(ds.iter().any(|d| d.code == "redis-conf.tls-without-certificates" && d.path == "/secrets/tls"), "{ds:?}");
}

#[test]
fn unknown_command_names_are_refused_before_redis_sees_them() {
    let doc = input(
        json!({"security": {"disabled_commands": ["flushall", "waitaof"], "users": [
            {"name": "app", "role": "app", "commands": ["+@read", "+@dangerzone"], "keys": ["app:*"]}
        ]}}),
        nodes(),
    );
    let ds = RedisConf::validate(&doc.to_string());
    let paths: Vec<_> =
        ds.iter().filter(|d| d.code == "redis-conf.unknown-acl-rule").map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["/config/security/disabled_commands/1", "/config/security/users/0/commands/1"], "{ds:?}");
}

#[test]
fn auth_without_secrets_is_refused() {
    let doc = input(
        json!({"security": {"auth_enabled": true, "system_users": true, "default_user_enabled": false}}),
        nodes(),
    );
    let ds = RedisConf::validate(&doc.to_string());
    assert!(ds.iter().any(|d| d.path == "/secrets/users/replication"), "{ds:?}");
}

#[test]
fn tenant_users_are_bound_to_their_prefix() {
    let mut doc = input(
        json!({"tenancy": {"enabled": true, "prefix_pattern": "tenant:{tenantId}:", "channel_pattern": "tenant:{tenantId}:*",
               "tenants": [{"id": "acme"}]}}),
        nodes(),
    );
    doc["secrets"]["users"]["tenant-acme"] = json!({"password": "pw", "sha256": "a".repeat(64)});
    let out = RedisConf::generate(&doc.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let acl = file(&out, "redis/users.acl");
    let line = acl.lines().find(|l| l.starts_with("user tenant-acme ")).unwrap_or_default();
    assert!(
        line.contains(&format!(" #{} resetkeys ~tenant:acme:* resetchannels &tenant:acme:* -@all ", "a".repeat(64))),
        "{line}"
    );
    for denied in [" -scan ", " -keys ", " -flushall ", " -config ", " -info ", " -select "] {
        assert!(line.contains(denied), "{denied} in {line}");
    }
    assert!(file(&out, "redis/t-0/redis.conf").contains("\naclfile ../../redis/users.acl\n"));
}

#[test]
fn a_prefix_without_terminator_is_refused() {
    let doc = input(
        json!({"tenancy": {"enabled": true, "prefix_pattern": "tenant{tenantId}", "tenants": [{"id": "a"}]}}),
        nodes(),
    );
    let ds = RedisConf::validate(&doc.to_string());
    assert!(ds.iter().any(|d| d.code == "redis-conf.bad-tenant-prefix"), "{ds:?}");
}

#[test]
fn malformed_input_is_a_diagnostic() {
    let ds = RedisConf::validate("{not json");
    assert_eq!(ds[0].code, "redis-conf.bad-input");
}

#[test]
fn a_topology_without_data_nodes_is_refused() {
    let doc = input(json!({}), json!([{"name": "s", "role": "sentinel", "ports": {"sentinel": 1}}]));
    let ds = RedisConf::validate(&doc.to_string());
    assert!(ds.iter().any(|d| d.code == "redis-conf.no-data-nodes"), "{ds:?}");
}

#[test]
fn a_newer_command_is_kept_for_a_newer_image_but_refused_locally() {
    let config = json!({"deployment": {"redis_version": "7.4"}, "security": {"disabled_commands": ["waitaof"]}});
    let mut doc = input(config, nodes());
    let local = RedisConf::validate(&doc.to_string());
    assert!(local.iter().any(|d| d.code == "redis-conf.unknown-acl-rule"), "{local:?}");
    doc["target"] = json!("compose");
    let compose = RedisConf::validate(&doc.to_string());
    assert!(compose.iter().any(|d| d.code == "redis-conf.newer-acl-rule"), "{compose:?}");
    assert!(!compose.iter().any(|d| d.severity == redplate_plugin_sdk::Severity::Error), "{compose:?}");
}

#[test]
fn tenants_never_share_channels() {
    let t = json!({"enabled": true, "prefix_pattern": "t:{tenantId}:", "channel_pattern": "events:*", "tenants": [{"id": "a"}]});
    let ds = RedisConf::validate(&input(json!({ "tenancy": t }), nodes()).to_string());
    assert!(ds.iter().any(|d| d.path == "/config/tenancy/channel_pattern"), "{ds:?}");
}

#[test]
fn every_rendered_directive_is_a_redis_7_0_directive() {
    let config = json!({
        "memory": {"maxmemory": "1gb", "active_defrag": false}, "resources": {"memory": "2gb"},
        "network": {"bind": ["127.0.0.1"], "unix_socket": "/tmp/r.sock", "unix_socket_perm": 700, "announce_hostname": true},
        "persistence": {"mode": "mixed", "save": [{"seconds": 60, "changes": 1}]},
        "security": {"tls": {"enabled": true, "ciphersuites": "TLS_AES_128_GCM_SHA256"}},
        "cache": {"keyspace_events": "Ex"}
    });
    let mut doc = input(config, nodes());
    doc["secrets"]["tls"] = json!({"cert_file": "/c", "key_file": "/k", "ca_file": "/ca"});
    doc["topology"]["mode"] = json!("cluster");
    let input: crate::input::Input = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{e}"));
    let plan = crate::plan::plan(&input);
    for (_, sections) in &plan.redis {
        for d in sections.iter().flat_map(|s| &s.directives) {
            assert!(crate::commands::known_directive(&d.name), "`{}` is not a redis 7.0 directive", d.name);
        }
    }
}

#[test]
fn an_unknown_strategy_directive_is_refused_locally() {
    let mut doc = input(json!({}), nodes());
    doc["strategy"] = json!({"name": "s", "directives": [{"name": "no-such-directive", "value": "1", "reason": "r"}]});
    let ds = RedisConf::validate(&doc.to_string());
    assert!(
        ds.iter()
            .any(|d| d.path == "/strategy/directives/0/name" && d.severity == redplate_plugin_sdk::Severity::Error),
        "{ds:?}"
    );
}

#[test]
fn a_declared_user_named_like_a_tenant_is_refused() {
    let config = json!({
        "security": {"users": [{"name": "tenant-a", "role": "app"}]},
        "tenancy": {"enabled": true, "prefix_pattern": "t:{tenantId}:", "tenants": [{"id": "a"}]}
    });
    let ds = RedisConf::validate(&input(config, nodes()).to_string());
    assert!(ds.iter().any(|d| d.code == "redis-conf.duplicate-user"), "{ds:?}");
}
