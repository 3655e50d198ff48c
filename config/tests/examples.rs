//! Every example and preset loads and validates with zero errors; the
//! committed JSON Schema is up to date.

use redplate_config::model::Environment;
use redplate_config::{Diagnostic, LoadRequest, load, load_str, validate};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn examples_validate_without_errors() {
    let list = examples();
    assert!(list.len() >= 4, "examples missing: {list:?}");
    for path in list {
        let r = load(&LoadRequest { path: Some(path.clone()), ..Default::default() });
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let diags = validate(&r);
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            path.display(),
            diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
        let first = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            first.starts_with("# yaml-language-server: $schema=../config/schema/redplate.schema.json"),
            "{}",
            path.display()
        );
        for d in &diags {
            println!("{}: {d}", path.display());
        }
    }
}

#[test]
fn presets_validate_without_errors() {
    for env in Environment::ALL {
        let r = load_str("", redplate_config::Format::Yaml, "<none>", Some(env), &[]);
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("{env}: {e}"),
        };
        let diags = validate(&r);
        assert!(diags.is_empty(), "{env}: {diags:?}");
    }
}

#[test]
fn committed_schema_is_current() {
    let path = root().join("config/schema/redplate.schema.json");
    let current = serde_json::to_string_pretty(&redplate_config::schema::generate()).unwrap_or_default() + "\n";
    if std::env::var_os("REDPLATE_BLESS").is_some() {
        std::fs::create_dir_all(root().join("config/schema")).ok();
        std::fs::write(&path, &current).ok();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == current, "config/schema/redplate.schema.json is stale: rerun with REDPLATE_BLESS=1");
}
