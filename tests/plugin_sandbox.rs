//! The sandbox contains every adversarial fixture plugin: each ends in a
//! named diagnostic with the documented exit code, nothing is written, and
//! the host never panics. Drives the real `redplate` binary. Speed is the
//! benchmarks' business: the only time bound here is a generous one that
//! tells "stopped by the sandbox" from "hung" on a loaded machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn wasm(name: &str) -> PathBuf {
    Path::new(env!("REDPLATE_WASM_DIR")).join(format!("{name}.wasm"))
}

/// A cache folder shared by the tests in this file, so each fixture is
/// compiled once; the cache tests use their own.
fn shared_cache() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redplate-test-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

fn redplate(cache: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_redplate"))
        .args(args)
        .env("REDPLATE_CACHE_DIR", cache)
        .output()
        .expect("redplate runs");
    (out, started.elapsed())
}

fn input_file(dir: &Path) -> PathBuf {
    let p = dir.join("input.json");
    std::fs::write(&p, r#"{"name":"world"}"#).expect("input");
    p
}

struct Case {
    fixture: &'static str,
    extra: &'static [&'static str],
    exit: i32,
    /// Any of these codes (whichever limit fires first on a busy machine).
    codes: &'static [&'static str],
    says: &'static [&'static str],
}

/// Far above every sandbox limit (the default deadline is 1.5 s), far
/// below "hung".
const CONTAINED: Duration = Duration::from_secs(30);

/// What a host panic looks like on stderr (a plugin's own panic is a
/// diagnostic, `plugin.panic`, and does not print this).
fn host_panicked(stderr: &str) -> bool {
    stderr.contains("thread 'main' panicked") || stderr.contains("RUST_BACKTRACE")
}

const CASES: &[Case] = &[
    Case {
        fixture: "fixture_loop_forever",
        extra: &[],
        exit: 2,
        // Fuel usually runs out first; on a loaded machine the deadline may.
        codes: &["plugin.fuel-exhausted", "plugin.deadline-exceeded"],
        says: &["fixture-loop-forever"],
    },
    Case {
        fixture: "fixture_loop_forever",
        extra: &["--fuel", "18446744073709551615", "--timeout-ms", "300"],
        exit: 2,
        codes: &["plugin.deadline-exceeded"],
        says: &["300ms deadline"],
    },
    Case {
        fixture: "fixture_memory_bomb",
        extra: &[],
        exit: 2,
        codes: &["plugin.memory-cap"],
        says: &["256 MiB memory cap"],
    },
    Case {
        fixture: "fixture_memory_creep",
        extra: &["--memory-mb", "64"],
        exit: 2,
        codes: &["plugin.memory-cap"],
        says: &["64 MiB"],
    },
    Case { fixture: "fixture_trap", extra: &[], exit: 2, codes: &["plugin.trap"], says: &["unreachable"] },
    Case {
        fixture: "fixture_panic",
        extra: &[],
        exit: 2,
        codes: &["plugin.panic"],
        says: &["the fixture panicked on purpose"],
    },
    Case { fixture: "fixture_path_traversal", extra: &[], exit: 2, codes: &["plugin.unsafe-path"], says: &["`..`"] },
    Case { fixture: "fixture_absolute_path", extra: &[], exit: 2, codes: &["plugin.unsafe-path"], says: &["absolute"] },
    Case {
        fixture: "fixture_bad_path_chars",
        extra: &[],
        exit: 2,
        codes: &["plugin.unsafe-path"],
        says: &["backslash"],
    },
    Case {
        fixture: "fixture_duplicate_path",
        extra: &[],
        exit: 2,
        codes: &["plugin.duplicate-path"],
        says: &["redis.conf", "twice"],
    },
    Case {
        fixture: "fixture_huge_output",
        extra: &[],
        exit: 2,
        codes: &["plugin.output-too-large"],
        says: &["the cap is 67108864"],
    },
    Case {
        fixture: "fixture_artifact_flood",
        extra: &[],
        exit: 2,
        codes: &["plugin.too-many-artifacts"],
        says: &["100000 artifacts"],
    },
    Case { fixture: "fixture_stdout_flood", extra: &[], exit: 2, codes: &["plugin.output-flood"], says: &["stdout"] },
    Case {
        fixture: "fixture_render_bomb",
        extra: &[],
        exit: 2,
        codes: &["plugin.render-too-large"],
        says: &["16 MiB"],
    },
    Case {
        fixture: "fixture_future_contract",
        extra: &[],
        exit: 2,
        codes: &["plugin.incompatible-contract"],
        says: &["fixture_future_contract.wasm", "redplate:plugin@1.0.0", "speaks 0.1.0"],
    },
    Case {
        fixture: "fixture_not_a_plugin",
        extra: &[],
        exit: 2,
        codes: &["plugin.not-a-plugin"],
        says: &["wasi:cli/run"],
    },
];

#[test]
fn every_adversarial_fixture_is_contained() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = shared_cache();
    let input = input_file(tmp.path());
    for case in CASES {
        let out_dir = tmp.path().join(format!("out-{}", case.fixture));
        let plugin = wasm(case.fixture);
        let mut args = vec!["plugins", "test", plugin.to_str().expect("utf-8 path"), "--input"];
        args.push(input.to_str().expect("utf-8 path"));
        args.extend(["--out", out_dir.to_str().expect("utf-8 path")]);
        args.extend(case.extra);
        let (out, took) = redplate(&cache, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{}: exit {:?} in {:?}\n{stderr}", case.fixture, out.status.code(), took);
        assert_eq!(out.status.code(), Some(case.exit), "{}: {stderr}", case.fixture);
        assert!(
            case.codes.iter().any(|code| stderr.contains(&format!("error[{code}]"))),
            "{}: expected one of {:?}: {stderr}",
            case.fixture,
            case.codes
        );
        for s in case.says {
            assert!(stderr.contains(s), "{}: expected {s:?} in: {stderr}", case.fixture);
        }
        assert!(took < CONTAINED, "{} was not contained: {took:?}", case.fixture);
        assert!(!out_dir.exists(), "{}: the output folder was created", case.fixture);
        assert!(!host_panicked(&stderr), "{}: the host panicked: {stderr}", case.fixture);
    }
}

#[test]
fn files_that_are_not_components_are_refused_by_kind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = shared_cache();
    let input = input_file(tmp.path());
    let hello = std::fs::read(wasm("fixture_hello")).expect("hello fixture");
    let mut random = vec![0u8; 4096];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut component_header_then_noise = hello[..8].to_vec();
    component_header_then_noise.extend_from_slice(&random);
    let files: &[(&str, Vec<u8>, &str)] = &[
        ("core.wasm", b"\0asm\x01\0\0\0".to_vec(), "plugin.core-module"),
        ("truncated.wasm", hello[..hello.len() / 2].to_vec(), "plugin.invalid-component"),
        ("random.wasm", random.clone(), "plugin.not-wasm"),
        ("noise.wasm", component_header_then_noise, "plugin.invalid-component"),
        ("empty.wasm", Vec::new(), "plugin.not-wasm"),
    ];
    for (name, bytes, code) in files {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let out_dir = tmp.path().join("out");
        let (out, took) = redplate(
            &cache,
            &[
                "plugins",
                "test",
                path.to_str().expect("utf-8"),
                "--input",
                input.to_str().expect("utf-8"),
                "--out",
                out_dir.to_str().expect("utf-8"),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&format!("error[{code}]")) && stderr.contains(name), "{name}: {stderr}");
        assert!(took < CONTAINED, "{name} was not contained: {took:?}");
        assert!(!host_panicked(&stderr), "{name}: the host panicked: {stderr}");
        assert!(!out_dir.exists());
    }
}

#[test]
fn a_well_behaved_plugin_passes_and_writes_its_artifacts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input_file(tmp.path());
    let out_dir = tmp.path().join("out");
    let plugin = wasm("fixture_hello");
    let (out, _) = redplate(
        &shared_cache(),
        &[
            "plugins",
            "test",
            plugin.to_str().expect("utf-8"),
            "--input",
            input.to_str().expect("utf-8"),
            "--out",
            out_dir.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["deterministic"], true);
    assert_eq!(report["plugin"]["name"], "fixture-hello");
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs[0]["fuel_used"].as_u64().expect("fuel") > 0);
    assert_eq!(runs[0]["fuel_used"], runs[1]["fuel_used"], "fuel is deterministic");
    assert!(runs[0]["peak_memory_bytes"].as_u64().expect("memory") > 0);
    assert_eq!(std::fs::read_to_string(out_dir.join("hello.txt")).expect("artifact"), "hello world\n");
    assert_eq!(runs[0]["logs"][0]["message"], "rendered hello.txt");
}

#[test]
fn clocks_and_randomness_are_fixed_so_outputs_are_byte_identical() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input_file(tmp.path());
    let plugin = wasm("fixture_nondeterministic");
    let mut outputs = Vec::new();
    for i in 0..2 {
        let out_dir = tmp.path().join(format!("out{i}"));
        let (out, _) = redplate(
            &shared_cache(),
            &[
                "plugins",
                "test",
                plugin.to_str().expect("utf-8"),
                "--input",
                input.to_str().expect("utf-8"),
                "--out",
                out_dir.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        outputs.push(std::fs::read(out_dir.join("t.txt")).expect("artifact"));
    }
    assert_eq!(outputs[0], outputs[1], "two processes, same bytes");
    assert!(
        String::from_utf8_lossy(&outputs[0]).starts_with("946684800000000000 "),
        "the wall clock is fixed at 2000-01-01"
    );
}

#[test]
fn a_log_flood_is_capped_not_fatal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = input_file(tmp.path());
    let plugin = wasm("fixture_log_flood");
    let (out, took) = redplate(
        &shared_cache(),
        &["plugins", "test", plugin.to_str().expect("utf-8"), "--input", input.to_str().expect("utf-8")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("more lines dropped past the log cap"), "{stdout}");
    assert!(stdout.lines().filter(|l| l.starts_with("log [info]")).count() < 10_000);
    assert!(took < CONTAINED, "not contained: {took:?}");
}

#[test]
fn bad_input_json_points_at_the_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("bad.json");
    std::fs::write(&input, "{\n  \"a\": 1,\n  oops\n}\n").expect("input");
    let plugin = wasm("fixture_hello");
    let (out, _) = redplate(
        &shared_cache(),
        &["plugins", "test", plugin.to_str().expect("utf-8"), "--input", input.to_str().expect("utf-8")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[input.not-json]") && stderr.contains("bad.json:3:3"), "{stderr}");
}

#[test]
fn third_party_plugins_are_listed_from_a_plugin_dir_and_bad_ones_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(wasm("fixture_hello"), tmp.path().join("hello.wasm")).expect("copy");
    std::fs::copy(wasm("fixture_future_contract"), tmp.path().join("future.wasm")).expect("copy");
    let (out, _) = redplate(
        &shared_cache(),
        &["plugins", "list", "--plugin-dir", tmp.path().to_str().expect("utf-8"), "--format", "json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = rows.as_array().expect("array").iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(
        names.contains(&"redis-conf") && names.contains(&"cache-aside") && names.contains(&"fixture-hello"),
        "{names:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("future.wasm") && stderr.contains("incompatible-contract"), "{stderr}");
    assert_eq!(out.status.code(), Some(2));
    // A third-party plugin is found by its name too.
    let (out, _) = redplate(
        &shared_cache(),
        &["plugins", "inspect", "fixture-hello", "--plugin-dir", tmp.path().to_str().expect("utf-8")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a bad plugin beside it does not hide the good one: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sha256:"));
}

#[test]
fn a_cache_strategy_plugin_plans_through_the_test_harness() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"config":{"cache":{"patterns":[{"pattern":"user:*","ttl":"5s"}]}}}"#).expect("input");
    let plugin = wasm("plugin_cache_aside");
    let (out, _) = redplate(
        &shared_cache(),
        &[
            "plugins",
            "test",
            plugin.to_str().expect("utf-8"),
            "--input",
            input.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["plan"]["directives"][0]["value"], "allkeys-lru");
    assert_eq!(report["plan"]["key_rules"][0]["ttl_ms"], 5000);
}
