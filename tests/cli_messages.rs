//! What a newcomer reads: messages that say what to do, counts in plain
//! English, and the same exit code for the same kind of mistake. Drives the
//! real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn redplate(home: &Path, args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("redplate-messages-cache-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_redplate"))
        .args(args)
        .current_dir(root())
        .env("REDPLATE_CACHE_DIR", cache)
        .env("REDPLATE_HOME", home)
        .output()
        .expect("redplate runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_folder_given_as_a_template_points_at_batch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let o = redplate(tmp.path(), &["render", "examples", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a folder") && stderr(&o).contains("--batch"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("os error"), "{}", stderr(&o));
}

#[test]
fn a_template_override_that_replaces_nothing_is_a_warning() {
    let tmp = tempfile::tempdir().expect("tmp");
    let templates = tmp.path().join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    let builtin = std::fs::read(root().join("plugins/redis-conf/src/templates/redis.conf.hbs")).expect("template");
    std::fs::write(templates.join("redis.conf.hbs"), &builtin).expect("write");
    std::fs::write(templates.join("redis.cnf.hbs"), &builtin).expect("write the typo");
    let out = tmp.path().join("out");
    let o = redplate(
        tmp.path(),
        &[
            "render",
            "presets/development.yaml",
            "--target",
            "local",
            "--templates",
            templates.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("templates.unused-override") && err.contains("`redis.cnf.hbs`"), "{err}");
    assert!(!err.contains("`redis.conf.hbs` replaced no template"), "the used override is not reported: {err}");
}

#[test]
fn counts_read_as_english_and_batch_never_runs_on_zero_threads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("one");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(root().join("examples/standalone-development.yaml"), dir.join("a.yaml")).expect("copy");
    let out = tmp.path().join("out");
    let o = redplate(
        tmp.path(),
        &["render", dir.to_str().expect("utf-8"), "--batch", "--jobs", "0", "--out", out.to_str().expect("utf-8")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("rendered 1 of 1 template (") && err.contains("on 1 thread"), "{err}");
    assert!(!err.contains("0 threads"), "{err}");
}

#[test]
fn an_unknown_preset_lists_every_accepted_name_and_both_ways_use_documented_codes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let flag = redplate(tmp.path(), &["validate", "presets/development.yaml", "--preset", "foo"]);
    assert_eq!(flag.status.code(), Some(2), "a command-line mistake is 2: {}", stderr(&flag));
    assert!(stderr(&flag).contains("`prod`") && stderr(&flag).contains("`dev`"), "{}", stderr(&flag));
    let template = tmp.path().join("t.yaml");
    std::fs::write(&template, "extends: foo\n").expect("write");
    let file = redplate(tmp.path(), &["validate", template.to_str().expect("utf-8")]);
    assert_eq!(file.status.code(), Some(1), "a mistake in the template is 1: {}", stderr(&file));
    assert!(stderr(&file).contains("`prod`"), "{}", stderr(&file));
}

#[test]
fn plugins_test_shows_each_finding_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("input.json");
    let emit = redplate(
        tmp.path(),
        &[
            "render",
            "presets/production.yaml",
            "--target",
            "local",
            "--stdout",
            "--emit-input",
            input.to_str().expect("utf-8"),
        ],
    );
    assert!(emit.status.success(), "{}", stderr(&emit));
    let plugin = Path::new(env!("REDPLATE_WASM_DIR")).join("plugin_redis_conf.wasm");
    let o = redplate(
        tmp.path(),
        &["plugins", "test", plugin.to_str().expect("utf-8"), "--input", input.to_str().expect("utf-8")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let findings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("warning[") || l.starts_with("info[")).collect();
    assert!(!findings.is_empty(), "the production preset gives redis-conf something to say: {stdout}");
    let mut unique = findings.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(findings.len(), unique.len(), "a finding printed twice: {stdout}");
}
