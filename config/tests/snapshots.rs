//! Snapshots of each resolved preset (the canonical export) and of the
//! production topology, reviewed like code.

use redplate_config::model::Environment;
use redplate_config::{Format, Target, Topology, export, load_str};

#[test]
fn resolved_presets() {
    for env in Environment::ALL {
        let r = match load_str("", Format::Yaml, "<none>", Some(env), &[]) {
            Ok(r) => r,
            Err(e) => panic!("{env}: {e}"),
        };
        insta::assert_snapshot!(format!("preset-{env}"), export(&r.config));
    }
}

#[test]
fn production_topology() {
    let r = match load_str("deployment:\n  name: orders\n", Format::Yaml, "t", Some(Environment::Production), &[]) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    for target in [Target::Local, Target::Kubernetes] {
        let t = Topology::derive(&r.config, target);
        insta::assert_json_snapshot!(format!("topology-production-{target:?}").to_lowercase(), t);
    }
}
