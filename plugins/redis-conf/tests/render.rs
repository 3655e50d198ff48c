//! Rendering without booting: every example template for every target gives
//! the paths of wit/INPUT.md, the same bytes twice, no clear-text secret for
//! Kubernetes, and only Redis 7.0 directives the boot tests have proven.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use redplate_config::{Target, Topology};
use std::collections::BTreeSet;
use support::{build_input, expect::rendered_directives, passwords_for, render, tls::Files};

fn examples() -> Vec<(String, redplate_config::Config)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let request = redplate_config::LoadRequest { path: Some(path.clone()), ..Default::default() };
            let r = redplate_config::load(&request).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), r.config));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 4, "{out:?}");
    out
}

fn files() -> Files {
    Files {
        ca: "/etc/redis/tls/ca.crt".into(),
        cert: "/etc/redis/tls/tls.crt".into(),
        key: "/etc/redis/tls/tls.key".into(),
    }
}

#[test]
fn every_example_renders_for_every_target() {
    for (name, config) in examples() {
        for (target, t) in [(Target::Local, "local"), (Target::Compose, "compose"), (Target::Kubernetes, "kubernetes")]
        {
            let topology = Topology::derive(&config, target);
            let passwords = passwords_for(&config);
            let tls = config.security.tls.enabled.then(files);
            let input = build_input(&config, &topology, t, &passwords, tls.as_ref());
            let artifacts = render(&input);
            assert_eq!(artifacts, render(&input), "{name} ({t}): rendering twice differs");
            // The native layout is the built-in templates' layout: with every
            // template "overridden" (by itself), Handlebars gives the same bytes.
            let mut through_templates = input.clone();
            through_templates["template_overrides"] = serde_json::json!(["redis.conf", "users.acl", "sentinel.conf"]);
            let by_handlebars = render(&through_templates);
            assert_eq!(artifacts.len(), by_handlebars.len(), "{name} ({t})");
            for (native, hbs) in artifacts.iter().zip(&by_handlebars) {
                assert_eq!(
                    String::from_utf8_lossy(&native.content),
                    String::from_utf8_lossy(&hbs.content),
                    "{name} ({t}) {}: the native layout differs from the template",
                    native.path
                );
            }
            let mut want: BTreeSet<String> = BTreeSet::new();
            for n in &topology.nodes {
                want.insert(match n.role {
                    redplate_config::Role::Sentinel => format!("sentinel/{}/sentinel.conf", n.name),
                    _ => format!("redis/{}/redis.conf", n.name),
                });
            }
            if config.security.auth_enabled || !config.security.users.is_empty() {
                want.insert("redis/users.acl".into());
            }
            if let Some(dir) = std::env::var_os("REDIS_CONF_DUMP") {
                // For reviewing: `REDIS_CONF_DUMP=/tmp/out cargo test -p plugin-redis-conf --test render`.
                for a in &artifacts {
                    let path = std::path::Path::new(&dir).join(&name).join(t).join(&a.path);
                    std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
                    std::fs::write(path, &a.content).expect("write");
                }
            }
            let got: BTreeSet<String> = artifacts.iter().map(|a| a.path.clone()).collect();
            assert_eq!(got, want, "{name} ({t})");
            for a in &artifacts {
                let text = String::from_utf8(a.content.clone()).expect("utf-8");
                if t == "kubernetes" {
                    assert!(input["secrets"]["users"].as_object().is_some_and(|u| u.len() == passwords.len()));
                    for (user, password) in &passwords {
                        assert_eq!(
                            input["secrets"]["users"][user]["password"],
                            password.as_str(),
                            "given to the plugin"
                        );
                        assert!(!text.contains(password.as_str()), "{name}: {} holds {user}'s password", a.path);
                        let hash = input["secrets"]["users"][user]["sha256"].as_str().unwrap_or("no hash");
                        assert!(!text.contains(hash), "{name}: {} holds {user}'s password hash", a.path);
                    }
                }
                if a.path.ends_with("redis.conf") {
                    let names: BTreeSet<String> = rendered_directives(&text).into_iter().map(|(n, _)| n).collect();
                    assert!(names.contains("maxmemory") && names.contains("dir"), "{name}: {}", a.path);
                }
            }
        }
    }
}
