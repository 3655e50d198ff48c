//! Plugin runtime costs: cold compile of a built-in plugin, load from the
//! disk cache, instantiate + call of a small generator, and a strategy's
//! `decide` with a fresh instance per call vs one reused instance
//! (`Decider`, what `warm` uses for every key).
//!
//! Run: `cargo bench -p redplate --bench plugin_runtime`

use criterion::{Criterion, criterion_group, criterion_main};
use redplate::plugin::{HostOptions, PluginHost, PluginSource, builtin_component};
use std::hint::black_box;
use std::path::Path;

fn host(cache: Option<&Path>) -> PluginHost {
    PluginHost::new(HostOptions { cache_dir: cache.map(Path::to_owned), ..HostOptions::default() })
        .expect("host starts")
}

fn runtime(c: &mut Criterion) {
    let redis_conf = builtin_component("redis-conf").expect("built-in redis-conf");
    let hello_path = Path::new(env!("REDPLATE_WASM_DIR")).join("fixture_hello.wasm");
    let hello = std::fs::read(&hello_path).expect("hello fixture");

    eprintln!("redis-conf component: {} KiB", redis_conf.len() / 1024);
    let mut group = c.benchmark_group("plugin");
    group.sample_size(20);
    let uncached = host(None);
    group.bench_function("cold compile + link + info (redis-conf)", |b| {
        b.iter(|| uncached.load_bytes("redis-conf", black_box(redis_conf), None, PluginSource::Builtin).expect("loads"))
    });
    group.finish();

    let cache = tempfile::tempdir().expect("tmp");
    let cached = host(Some(cache.path()));
    cached.load_bytes("redis-conf", redis_conf, None, PluginSource::Builtin).expect("warms the cache");
    c.bench_function("plugin/load from disk cache + link + info (redis-conf)", |b| {
        b.iter(|| cached.load_bytes("redis-conf", black_box(redis_conf), None, PluginSource::Builtin).expect("loads"))
    });

    let plugin =
        cached.load_bytes("fixture-hello", &hello, None, PluginSource::File(hello_path.clone())).expect("loads");
    c.bench_function("plugin/instantiate + info (fixture-hello)", |b| b.iter(|| cached.info(&plugin).expect("info")));
    let input = r#"{"name":"world"}"#;
    c.bench_function("plugin/instantiate + generate with one host render (fixture-hello)", |b| {
        b.iter(|| cached.generate(&plugin, black_box(input)).expect("generates"))
    });

    let strategy = cached.load_builtin("cache-aside").expect("built-in cache-aside");
    let mut seed = 0u64;
    c.bench_function("plugin/decide, fresh instance per call (cache-aside)", |b| {
        b.iter(|| {
            seed += 1;
            cached.decide(&strategy, black_box("product:1234"), None, 3_600_000, seed).expect("decides")
        })
    });
    let mut decider = cached.decider(&strategy).expect("instantiates");
    c.bench_function("plugin/decide, one reused instance (cache-aside Decider)", |b| {
        b.iter(|| {
            seed += 1;
            decider.decide(black_box("product:1234"), None, 3_600_000, seed).expect("decides")
        })
    });
}

criterion_group!(benches, runtime);
criterion_main!(benches);
