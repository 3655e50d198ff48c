//! JSON and TOML templates load like YAML ones, with positions in errors;
//! `--preset` overrides `extends`; `--set` is typed.

use redplate_config::model::{Environment, Mode};
use redplate_config::{Format, LoadRequest, load, load_str};

#[test]
fn json_template_with_positions() {
    let text = "{\n  \"extends\": \"production\",\n  \"deployment\": {\"mode\": \"cluster\"},\n  \"memory\": {\"maxmemory_polcy\": \"allkeys-lru\"}\n}\n";
    let err = load_str(text, Format::Json, "t.json", None, &[]).err().map(|e| e.diagnostics()).unwrap_or_default();
    let d = &err[0];
    assert_eq!(d.pointer, "/memory/maxmemory_polcy");
    assert_eq!(d.location.as_ref().map(|l| (l.file.as_str(), l.line)), Some(("t.json", 4)));
    assert_eq!(d.hint.as_deref(), Some("did you mean `maxmemory_policy`?"));
    let ok = load_str(&text.replace("polcy", "policy"), Format::Json, "t.json", None, &[]);
    assert_eq!(ok.map(|r| r.config.deployment.mode).ok(), Some(Mode::Cluster));
}

#[test]
fn toml_template_with_positions() {
    let text = "extends = \"development\"\n\n[cluster]\nshards = \"three\"\n";
    let err = load_str(text, Format::Toml, "t.toml", None, &[]).err().map(|e| e.diagnostics()).unwrap_or_default();
    assert_eq!(err[0].code, "template.wrong-type");
    assert_eq!(err[0].location.as_ref().map(|l| l.line), Some(4));
    let bad =
        load_str("[cluster\n", Format::Toml, "t.toml", None, &[]).err().map(|e| e.diagnostics()).unwrap_or_default();
    assert_eq!(bad[0].code, "template.syntax");
}

#[test]
fn preset_argument_overrides_extends() {
    let r = load_str("extends: production\n", Format::Yaml, "t", Some(Environment::Development), &[]);
    assert_eq!(
        r.map(|r| (r.preset, r.config.deployment.environment)).ok(),
        Some((Some(Environment::Development), Environment::Development))
    );
}

#[test]
fn set_values_are_typed_and_located() {
    let sets = vec!["cluster.shards=many".to_string()];
    let err = load_str("", Format::Yaml, "t", Some(Environment::Development), &sets)
        .err()
        .map(|e| e.diagnostics())
        .unwrap_or_default();
    assert_eq!(err[0].pointer, "/cluster/shards");
    assert_eq!(err[0].location.as_ref().map(|l| (l.file.as_str(), l.line, l.column)), Some(("<--set>", 1, 16)));
    let sets = vec!["deployment.redis_version=7.2".to_string(), "memory.maxmemory=2gb".to_string()];
    let r = load_str("", Format::Yaml, "t", Some(Environment::Development), &sets);
    assert_eq!(r.map(|r| r.config.deployment.redis_version).ok().as_deref(), Some("7.2"));
}

#[test]
fn missing_file_is_an_io_error() {
    let e = load(&LoadRequest { path: Some("/nonexistent/x.yaml".into()), ..Default::default() }).err();
    assert!(e.is_some_and(|e| e.diagnostics()[0].code == "template.unreadable"));
}
