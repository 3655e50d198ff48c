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
    // An entry is the compiled code and its check file beside it.
    let entry = h.cache_entry_path(&loaded.sha256).expect("cache on");
    let check = PathBuf::from(format!("{}.check", entry.display()));
    let good = std::fs::read(&entry).expect("entry written");
    let good_check = std::fs::read(&check).expect("check file written");
    let other_loaded = h.load_file(&other).expect("loads");
    let other_entry = h.cache_entry_path(&other_loaded.sha256).expect("cache on");
    let other_code = std::fs::read(&other_entry).expect("entry");
    let other_check = std::fs::read(format!("{}.check", other_entry.display())).expect("check file");

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let foreign = b"this is not compiled code at all".repeat(100);
    let damages: Vec<(&str, &Path, Option<Vec<u8>>, &str)> = vec![
        ("a flipped byte", &entry, Some(flipped), "checksum"),
        ("a truncated entry", &entry, Some(good[..good.len() / 3].to_vec()), "truncated or torn"),
        ("a foreign file", &entry, Some(foreign.clone()), "truncated or torn|checksum"),
        ("an empty file", &entry, Some(Vec::new()), "truncated or torn"),
        ("another component's code", &entry, Some(other_code), "truncated or torn|checksum"),
        ("a foreign check file", &check, Some(foreign), "no redplate header"),
        ("an empty check file", &check, Some(Vec::new()), "no redplate header"),
        ("no check file", &check, None, "no redplate header"),
        ("another component's check file", &check, Some(other_check), "another component"),
    ];
    for (what, file, bytes, reason) in damages {
        match bytes {
            Some(bytes) => std::fs::write(file, &bytes).expect("damage the entry"),
            None => std::fs::remove_file(file).expect("remove the check file"),
        }
        match outcome(cache.path(), &plugin) {
            // `a|b`: either reason (whether the damage changed the length).
            CacheOutcome::Recovered(why) => assert!(reason.split('|').any(|r| why.contains(r)), "{what}: {why}"),
            other => panic!("{what}: expected a recovery, got {other:?}"),
        }
        assert_eq!(std::fs::read(&entry).expect("entry"), good, "{what}: the entry was replaced by good code");
        assert_eq!(std::fs::read(&check).expect("check"), good_check, "{what}: and its check file");
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
