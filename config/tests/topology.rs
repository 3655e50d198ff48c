//! Topology derivation for all four modes and the three targets.

use redplate_config::model::Environment::{Development, Production};
use redplate_config::{Format, Role, Target, Topology, load_str};

fn derive(env: redplate_config::model::Environment, sets: &[&str], target: Target) -> Topology {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match load_str("deployment:\n  name: shop\n", Format::Yaml, "t", Some(env), &sets) {
        Ok(r) => Topology::derive(&r.config, target),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn standalone_is_one_master() {
    let t = derive(Development, &[], Target::Local);
    assert_eq!(t.nodes.len(), 1);
    let n = &t.nodes[0];
    assert_eq!((n.name.as_str(), n.role, n.hostname.as_str()), ("shop-0", Role::Master, "127.0.0.1"));
    assert_eq!(n.ports.client, Some(7000));
    assert_eq!(n.ports.tls, None);
    assert_eq!(n.shard, None);
    assert_eq!(n.data_dir, "data/shop-0");
}

#[test]
fn replication_has_master_and_replicas() {
    let t = derive(Development, &["deployment.mode=replication", "replication.replicas=2"], Target::Compose);
    let roles: Vec<Role> = t.nodes.iter().map(|n| n.role).collect();
    assert_eq!(roles, [Role::Master, Role::Replica, Role::Replica]);
    assert_eq!(t.nodes[2].hostname, "shop-2");
    assert_eq!(t.nodes[1].replica_of.as_deref(), Some("shop-0"));
    assert!(t.nodes.iter().all(|n| n.ports.client == Some(6379) && n.data_dir == "/data"));
}

#[test]
fn sentinel_production_on_kubernetes_is_tls_only() {
    let t = derive(Production, &[], Target::Kubernetes);
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(t.with_role(Role::Sentinel).count(), 3);
    assert_eq!(t.master_name.as_deref(), Some("mymaster"));
    let m = &t.nodes[0];
    assert_eq!(m.hostname, "shop-0.shop-headless.redis.svc.cluster.local");
    assert_eq!(m.ports.client, None, "production uses `port 0`");
    assert_eq!(m.ports.tls, Some(6380));
    assert_eq!(m.ports.metrics, Some(9121));
    let s = &t.nodes[3];
    assert_eq!(s.name, "shop-sentinel-0");
    assert_eq!(s.hostname, "shop-sentinel-0.shop-sentinel-headless.redis.svc.cluster.local");
    assert_eq!(s.ports.sentinel, Some(26379));
}

#[test]
fn sentinel_local_ports_do_not_collide() {
    let t = derive(Production, &[], Target::Local);
    let mut ports: Vec<u16> = t
        .nodes
        .iter()
        .flat_map(|n| [n.ports.client, n.ports.tls, n.ports.cluster_bus, n.ports.sentinel, n.ports.metrics])
        .flatten()
        .collect();
    let all = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), all);
    // Sentinel i sits at offset 2 of local slot i, whatever the number of data nodes.
    assert_eq!(t.nodes[3].ports.sentinel, Some(7002));
    assert_eq!(t.nodes[5].ports.sentinel, Some(7022));
    let few = derive(Production, &["sentinel.sentinels=5", "replication.replicas=1"], Target::Local);
    assert_eq!(few.nodes.last().and_then(|n| n.ports.sentinel), Some(7042));
    assert_eq!(
        Topology::last_local_port(&config(Production, &["sentinel.sentinels=5", "replication.replicas=1"])),
        7050
    );
}

fn config(env: redplate_config::model::Environment, sets: &[&str]) -> redplate_config::Config {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match load_str("deployment:\n  name: shop\n", Format::Yaml, "t", Some(env), &sets) {
        Ok(r) => r.config,
        Err(e) => panic!("{e}"),
    }
}

/// What scaling needs: more replicas only append nodes; every existing node
/// keeps its name, role, ordinal, shard, master and ports.
#[test]
fn scaling_replicas_only_appends_nodes() {
    let cases: [(&[&str], &[&str]); 3] = [
        (&["replication.replicas=1"], &["replication.replicas=3"]),
        (
            &["deployment.mode=cluster", "cluster.shards=3", "cluster.replicas_per_shard=1"],
            &["deployment.mode=cluster", "cluster.shards=3", "cluster.replicas_per_shard=3"],
        ),
        (
            &["deployment.mode=replication", "replication.replicas=1"],
            &["deployment.mode=replication", "replication.replicas=2"],
        ),
    ];
    for (small, big) in cases {
        let (a, b) = (derive(Production, small, Target::Local), derive(Production, big, Target::Local));
        let data = |t: &Topology| t.nodes.iter().filter(|n| n.role != Role::Sentinel).cloned().collect::<Vec<_>>();
        let (da, db) = (data(&a), data(&b));
        assert!(db.len() > da.len());
        assert_eq!(&db[..da.len()], &da[..], "{small:?} -> {big:?}: existing data nodes unchanged");
        let sentinels = |t: &Topology| t.with_role(Role::Sentinel).cloned().collect::<Vec<_>>();
        assert_eq!(sentinels(&a), sentinels(&b), "sentinels unchanged");
        for (i, n) in db.iter().enumerate() {
            assert_eq!(usize::from(n.ordinal), i);
            assert_eq!(n.name, format!("shop-{i}"));
        }
    }
    // Cluster replicas go round the shards: the first replica of every shard, then the second.
    let t = derive(Development, &["deployment.mode=cluster", "cluster.replicas_per_shard=2"], Target::Local);
    let shards: Vec<Option<u16>> = t.nodes.iter().map(|n| n.shard).collect();
    assert_eq!(shards, [0, 1, 2, 0, 1, 2, 0, 1, 2].map(Some));
    assert_eq!(t.nodes[7].replica_of.as_deref(), Some("shop-1"));
    assert_eq!(t.nodes[7].ports.client, Some(7070));
}

#[test]
fn cluster_has_shards_with_replicas_and_bus_ports() {
    let t = derive(
        Production,
        &["deployment.mode=cluster", "cluster.shards=3", "cluster.replicas_per_shard=1"],
        Target::Kubernetes,
    );
    assert_eq!(t.shards, 3);
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(t.with_role(Role::Master).count(), 3);
    assert_eq!(t.with_role(Role::Sentinel).count(), 0);
    for n in &t.nodes {
        assert_eq!(n.ports.cluster_bus, Some(16380), "bus = tls port + 10000 with `port 0`");
    }
    let r = &t.nodes[4];
    assert_eq!((r.role, r.shard, r.replica_of.as_deref()), (Role::Replica, Some(1), Some("shop-1")));
    let local = derive(Development, &["deployment.mode=cluster"], Target::Local);
    assert_eq!(local.nodes[0].ports.cluster_bus, Some(17000));
    assert_eq!(local.nodes[5].ports.client, Some(7050));
}

#[test]
fn topology_serializes_for_plugins() {
    let t = derive(Production, &["deployment.mode=cluster"], Target::Compose);
    let json = serde_json::to_value(&t).unwrap_or_default();
    assert_eq!(json["nodes"][0]["role"], "master");
    assert_eq!(json["target"], "compose");
    let back: Result<Topology, _> = serde_json::from_value(json);
    assert_eq!(back.ok(), Some(t));
}
