//! The template commands through the real binary: validate (exit codes,
//! pointed errors, JSON), schema, presets, adapt, export/import.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn redplate(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("redplate-cli-cache-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_redplate"))
        .args(args)
        .current_dir(root())
        .env("REDPLATE_CACHE_DIR", cache)
        .env("REDPLATE_HOME", std::env::temp_dir().join(format!("redplate-cli-home-{}", std::process::id())))
        .output()
        .expect("redplate runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn presets_and_examples_validate_with_plugins() {
    let mut templates: Vec<String> =
        ["development", "staging", "production"].iter().map(|e| format!("presets/{e}.yaml")).collect();
    for e in std::fs::read_dir(root().join("examples")).expect("examples").filter_map(Result::ok) {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.ends_with(".yaml") {
            templates.push(format!("examples/{n}"));
        }
    }
    for t in &templates {
        let o = redplate(&["validate", t]);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", stderr(&o));
        assert!(stderr(&o).contains("is valid"), "{t}: {}", stderr(&o));
    }
}

#[test]
fn an_invalid_template_exits_1_with_a_pointed_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path().join("bad.yaml");
    std::fs::write(&t, "extends: production\ndeployment:\n  name: shop\n  mode: cluster\ncluster:\n  shards: 2\n")
        .expect("write");
    let o = redplate(&["validate", t.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("bad.yaml:6:") && e.contains("/cluster/shards"), "{e}");
    // The same as JSON, for CI.
    let o = redplate(&["validate", t.to_str().expect("utf-8"), "--format", "json", "--no-plugins"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let d = v["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .find(|d| d["pointer"] == "/cluster/shards")
        .expect("shards diagnostic");
    assert_eq!(d["location"]["line"], 6);
}

#[test]
fn unknown_keys_get_a_did_you_mean_hint_and_a_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path().join("typo.yaml");
    std::fs::write(&t, "deployment:\n  name: shop\nmemory:\n  maxmemory_polcy: allkeys-lru\n").expect("write");
    let o = redplate(&["validate", t.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("maxmemory_policy") && e.contains("typo.yaml:4:3"), "{e}");
}

#[test]
fn a_missing_template_exits_2() {
    let o = redplate(&["validate", "no/such/template.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/template.yaml"));
}

#[test]
fn set_overrides_are_typed() {
    let o = redplate(&["validate", "presets/development.yaml", "--no-plugins", "--set", "replication.replicas=many"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("replication"), "{}", stderr(&o));
    let o = redplate(&["export", "presets/development.yaml", "--set", "memory.maxmemory_policy=allkeys-lfu"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["memory"]["maxmemory_policy"], "allkeys-lfu");
}

#[test]
fn schema_describes_the_options() {
    let o = redplate(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json schema");
    assert!(v.get("$schema").is_some() || v.get("properties").is_some(), "{v}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.matches("\"description\"").count() >= 200, "fewer than 200 described options");
}

#[test]
fn presets_list_and_show() {
    let o = redplate(&["presets", "list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for env in ["development", "staging", "production"] {
        assert!(out.contains(env), "{out}");
    }
    let o = redplate(&["presets", "show", "production"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("appendfsync: everysec"));
    let o = redplate(&["presets", "show", "qa"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses an unknown environment");
}

#[test]
fn export_then_import_is_the_identity() {
    let tmp = tempfile::tempdir().expect("tmp");
    for t in ["presets/production.yaml", "examples/multi-tenant.yaml", "examples/cluster-production.yaml"] {
        let o = redplate(&["export", t]);
        assert_eq!(o.status.code(), Some(0), "{t}: {}", stderr(&o));
        let file = tmp.path().join("export.json");
        std::fs::write(&file, &o.stdout).expect("write");
        let back = redplate(&["import", file.to_str().expect("utf-8")]);
        assert_eq!(back.status.code(), Some(0), "{t}: {}", stderr(&back));
        assert_eq!(back.stdout, o.stdout, "{t}: import∘export changed the document");
    }
}

#[test]
fn adapt_shows_the_difference_and_writes_a_valid_template() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("adapted.yaml");
    let template = "examples/standalone-development.yaml";
    let o = redplate(&["adapt", template, "--to", "production", "--out", out.to_str().expect("utf-8")]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("~ /persistence/mode: \"none\" -> \"mixed\""), "the persistence change is not shown: {e}");
    let text = std::fs::read_to_string(&out).expect("adapted template");
    assert!(text.contains("extends: production"), "{text}");
    // It validates: no error, by itself.
    let v = redplate(&["validate", out.to_str().expect("utf-8"), "--no-plugins", "--format", "json"]);
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).expect("validate --format json");
    assert_eq!(report["valid"], true, "{report}");
    // It is the user's own values over production: exactly what the
    // template gives layered on the production preset.
    let export = |args: &[&str]| -> serde_json::Value {
        let o = redplate(&[&["export"][..], args].concat());
        assert_eq!(o.status.code(), Some(0), "export {args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("export is JSON")
    };
    let adapted = export(&[out.to_str().expect("utf-8")]);
    let mut expected = export(&[template, "--preset", "production"]);
    expected["extends"] = "production".into();
    assert_eq!(adapted, expected);
    // Production's values, the user's kept.
    assert_eq!(adapted["deployment"]["environment"], "production");
    assert_eq!(adapted["persistence"]["mode"], "mixed");
    assert_eq!(adapted["security"]["auth_enabled"], true);
    assert_eq!(adapted["security"]["tls"]["enabled"], true);
    assert_eq!(adapted["deployment"]["name"], "dev-cache");
    assert_eq!(adapted["network"]["local_base_port"], 7100);
}

/// `import` checks what `validate` checks: an export edited into a
/// template the host rules refuse exits 1, and the errors name the file and
/// the line of the edited value, not `<import>`.
#[test]
fn import_applies_the_host_rules_and_names_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = redplate(&["export", "examples/cluster-production.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let edited = text.replacen("\"shards\": 3", "\"shards\": 2", 1);
    assert_ne!(edited, text, "the export has `\"shards\": 3`");
    let line = edited.lines().position(|l| l.contains("\"shards\": 2")).expect("edited line") + 1;
    let file = tmp.path().join("edited-export.json");
    std::fs::write(&file, &edited).expect("write");
    let o = redplate(&["import", file.to_str().expect("utf-8")]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(o.stdout.is_empty(), "nothing is printed for an invalid import");
    assert!(e.contains("cluster.too-few-masters"), "{e}");
    assert!(e.contains(&format!("edited-export.json:{line}:")), "{e}");
    assert!(!e.contains("<import>"), "{e}");

    // A schema error names the file too.
    let typo = text.replacen("\"shards\": 3", "\"shards\": \"three\"", 1);
    std::fs::write(&file, typo).expect("write");
    let o = redplate(&["import", file.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("edited-export.json:") && !stderr(&o).contains("<import>"), "{}", stderr(&o));
}

/// A valid import still says what `validate` warns about, with the file's
/// line, and prints the document.
#[test]
fn import_prints_its_warnings() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = redplate(&["export", "presets/production.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let digest = text.lines().find(|l| l.contains("\"image_digest\": \"sha256:")).expect("a pinned image").to_owned();
    let edited = text.replacen(&digest, "    \"image_digest\": \"\",", 1);
    let line = edited.lines().position(|l| l.contains("\"image_digest\": \"\"")).expect("edited line") + 1;
    let file = tmp.path().join("unpinned.json");
    std::fs::write(&file, &edited).expect("write");
    let o = redplate(&["import", file.to_str().expect("utf-8")]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), edited, "the document is printed as imported");
    assert!(e.contains("warning[deployment.image-not-digest-pinned]"), "{e}");
    assert!(e.contains(&format!("unpinned.json:{line}:")), "{e}");
    // An export without findings prints none.
    std::fs::write(&file, &text).expect("write");
    let o = redplate(&["import", file.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "", "a clean import prints nothing on stderr");
}
