//! Validation throughput: host rules over resolved templates (the presets and
//! examples), and the whole load (parse + layer + strict check + typing) for
//! comparison. Run: `cargo bench -p redplate-config --bench validate`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redplate_config::model::Environment;
use redplate_config::{Config, Format, LoadRequest, load, load_str, validate_config};
use std::hint::black_box;
use std::path::PathBuf;

fn corpus() -> (Vec<Config>, Vec<(String, String)>) {
    let mut configs = Vec::new();
    let mut texts = Vec::new();
    for env in Environment::ALL {
        if let Ok(r) = load_str("", Format::Yaml, "<none>", Some(env), &[]) {
            configs.push(r.config);
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if let Ok(r) = load(&LoadRequest { path: Some(p.clone()), ..Default::default() }) {
            configs.push(r.config);
        }
        if let Ok(t) = std::fs::read_to_string(&p) {
            texts.push((p.display().to_string(), t));
        }
    }
    (configs, texts)
}

fn bench(c: &mut Criterion) {
    let (configs, texts) = corpus();
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(configs.len() as u64));
    g.bench_function("host_rules", |b| {
        b.iter(|| {
            for cfg in &configs {
                black_box(validate_config(black_box(cfg)));
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("load_and_validate", |b| {
        b.iter(|| {
            for (name, text) in &texts {
                if let Ok(r) = load_str(black_box(text), Format::Yaml, name, None, &[]) {
                    black_box(redplate_config::validate(&r));
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
