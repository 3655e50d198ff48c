//! The compiled-code cache is used on the second load, and an unusable
//! entry (corrupt, truncated, foreign, another component's) is recompiled
//! and replaced — never trusted, never a crash.

use redplate::plugin::{CacheOutcome, HostOptions, PluginHost};
use std::path::{Path, PathBuf};
use std::process::Command;

fn wasm(name: &str) -> PathBuf {
    Path::new(env!("REDPLATE_WASM_DIR")).join(format!("{name}.wasm"))
}

fn host(cache: &Path) -> PluginHost {
    PluginHost::new(HostOptions { cache_dir: Some(cache.to_owned()), ..HostOptions::default() }).expect("host starts")
}

fn outcome(cache: &Path, plugin: &Path) -> CacheOutcome {
    host(cache).load_file(plugin).expect("plugin loads").cache
}

#[test]
fn the_second_load_comes_from_the_disk_cache() {
    let cache = tempfile::tempdir().expect("tmp");
    let plugin = wasm("fixture_hello");
    assert_eq!(outcome(cache.path(), &plugin), CacheOutcome::Miss);
    assert_eq!(outcome(cache.path(), &plugin), CacheOutcome::Hit);
    // And across processes, as the CLI reports it.
    let out = Command::new(env!("CARGO_BIN_EXE_redplate"))
        .args(["plugins", "inspect", plugin.to_str().expect("utf-8"), "--format", "json"])
        .env("REDPLATE_CACHE_DIR", cache.path())
        .output()
        .expect("redplate runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["cache"]["outcome"], "hit", "{report}");
}

#[test]
fn unusable_entries_are_recompiled_and_replaced() {
    let cache = tempfile::tempdir().expect("tmp");
    let plugin = wasm("fixture_hello");
    let other = wasm("fixture_trap");
    let h = host(cache.path());
    let loaded = h.load_file(&plugin).expect("loads");
    let entry = h.cache_entry_path(&loaded.sha256).expect("cache on");
    let good = std::fs::read(&entry).expect("entry written");
    let other_loaded = h.load_file(&other).expect("loads");
    let other_entry = std::fs::read(h.cache_entry_path(&other_loaded.sha256).expect("cache on")).expect("entry");

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let damages: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a flipped byte", flipped, "checksum"),
        ("a truncated entry", good[..good.len() / 3].to_vec(), "checksum"),
        ("a foreign file", b"this is not compiled code at all".repeat(100), "no redplate header"),
        ("an empty file", Vec::new(), "no redplate header"),
        ("another component's entry", other_entry, "another component"),
    ];
    for (what, bytes, reason) in damages {
        std::fs::write(&entry, &bytes).expect("damage the entry");
        match outcome(cache.path(), &plugin) {
            CacheOutcome::Recovered(why) => assert!(why.contains(reason), "{what}: {why}"),
            other => panic!("{what}: expected a recovery, got {other:?}"),
        }
        assert_eq!(std::fs::read(&entry).expect("entry"), good, "{what}: the entry was replaced by good code");
        assert_eq!(outcome(cache.path(), &plugin), CacheOutcome::Hit, "{what}: and is used again");
    }
}

#[test]
fn an_unwritable_cache_only_costs_speed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, "x").expect("file");
    let loaded = host(&not_a_dir).load_file(&wasm("fixture_hello")).expect("still loads");
    assert!(matches!(loaded.cache, CacheOutcome::StoreFailed(_)), "{:?}", loaded.cache);
}
