//! Snapshots (insta) of every artifact rendered from every example, for each
//! target, reviewed like code. Generated passwords are pinned first so the
//! snapshots hold no randomness; secrets files themselves are left out.
//!
//! Review changes with `cargo insta review` (or `INSTA_UPDATE=always`).

use redplate::config::{Format, Target, load_str};
use redplate::ops::render::{PluginSet, render};
use redplate::plugin::{HostOptions, PluginHost};
use redplate::secrets::SecretStore;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root")
}

#[test]
fn every_artifact_of_every_example() {
    let cache = std::env::temp_dir().join(format!("redplate-snapshot-cache-{}", std::process::id()));
    let home = tempfile::tempdir().expect("tmp");
    let host = PluginHost::new(HostOptions { cache_dir: Some(cache), ..HostOptions::default() }).expect("host");
    let store = SecretStore::new(home.path());
    let all = [Target::Local, Target::Compose, Target::Kubernetes];
    let plugins = PluginSet::load_all(&host, &[]).expect("plugins");
    let mut examples: Vec<_> = std::fs::read_dir(root().join("examples"))
        .expect("examples")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 4);
    for path in examples {
        let name = path.file_stem().expect("stem").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("example");
        let resolved = load_str(&text, Format::Yaml, &format!("examples/{name}.yaml"), None, &[]).expect("loads");
        // First render creates the generated passwords; pin them, render again.
        render(&host, &plugins, &resolved, &all, &store, true).expect("renders");
        let secrets = home.path().join("secrets").join(format!("{}.json", resolved.config.deployment.name));
        if let Ok(bytes) = std::fs::read(&secrets) {
            let generated: std::collections::BTreeMap<String, String> = serde_json::from_slice(&bytes).expect("json");
            let pinned: std::collections::BTreeMap<String, String> =
                generated.keys().map(|user| (user.clone(), format!("pinned-password-of-{user}"))).collect();
            std::fs::write(&secrets, serde_json::to_vec(&pinned).expect("json")).expect("pin");
        }
        for target in all {
            let rendered = render(&host, &plugins, &resolved, &[target], &store, true).expect("renders");
            let mut doc = String::new();
            for a in rendered.artifacts.iter().filter(|a| !a.path.starts_with("secrets/")) {
                doc.push_str(&format!(
                    "=== {} ({}, {}{}) ===\n",
                    a.path,
                    a.plugin,
                    a.media_type,
                    if a.executable { ", executable" } else { "" }
                ));
                doc.push_str(&String::from_utf8_lossy(&a.content));
                if !doc.ends_with('\n') {
                    doc.push('\n');
                }
            }
            let target_name = redplate::ops::render::target_name(target);
            insta::assert_snapshot!(format!("{name}__{target_name}"), doc);
        }
    }
}
