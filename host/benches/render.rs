//! In-process warm render: the production cluster (3 shards × 2 replicas)
//! through every built-in generator for all three targets, with plugins
//! loaded and compiled code cached (what `--batch` and the API pay per
//! template).
//!
//! Run: `cargo bench -p redplate --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use redplate::config::{Format, Target, load_str};
use redplate::ops::render::{PluginSet, render};
use redplate::plugin::{HostOptions, PluginHost};
use redplate::secrets::SecretStore;
use std::path::Path;

fn warm_render(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("tmp");
    let home = tempfile::tempdir().expect("tmp");
    let host = PluginHost::new(HostOptions { cache_dir: Some(cache.path().to_owned()), ..HostOptions::default() })
        .expect("host");
    let store = SecretStore::new(home.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root");
    let text = std::fs::read_to_string(root.join("presets/production.yaml")).expect("preset");
    let sets =
        vec!["deployment.mode=cluster".to_string(), "cluster.shards=3".into(), "cluster.replicas_per_shard=2".into()];
    let resolved = load_str(&text, Format::Yaml, "production.yaml", None, &sets).expect("loads");
    let all = [Target::Local, Target::Compose, Target::Kubernetes];
    let plugins = PluginSet::load(&host, &all, None, &[], &[]).expect("plugins");
    // The first render creates the generated passwords; later ones reuse them.
    let first = render(&host, &plugins, &resolved, &all, &store, true).expect("renders");
    eprintln!("{} artifacts, {} bytes", first.artifacts.len(), first.artifacts.total_bytes());
    // Each call of a warm render, one thread: where the time goes.
    let warm = render(&host, &plugins, &resolved, &all, &store, false).expect("renders");
    for (plugin, target, r) in &warm.reports {
        eprintln!("  {plugin} ({target:?}): {:.0} µs, {} fuel", r.wall.as_secs_f64() * 1e6, r.fuel_used);
    }

    let mut group = c.benchmark_group("render");
    group.bench_function("production cluster 3x2, all targets, generators in parallel", |b| {
        b.iter(|| render(&host, &plugins, &resolved, &all, &store, true).expect("renders"))
    });
    group.bench_function("production cluster 3x2, all targets, one thread", |b| {
        b.iter(|| render(&host, &plugins, &resolved, &all, &store, false).expect("renders"))
    });
    group.bench_function("production cluster 3x2, local target, one thread", |b| {
        b.iter(|| render(&host, &plugins, &resolved, &[Target::Local], &store, false).expect("renders"))
    });
    group.finish();
}

criterion_group!(benches, warm_render);
criterion_main!(benches);
