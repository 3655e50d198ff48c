//! Rendering properties that need no external tool: every preset × mode and
//! every example renders, deterministically, without a clear-text password,
//! with the objects each mode needs.

mod common;

use common::{all_cases, fake_password, input_for, render};
use serde_json::Value;
use std::collections::BTreeSet;

fn paths(out: &redplate_plugin_sdk::Output) -> BTreeSet<String> {
    out.artifacts.iter().map(|a| a.path.clone()).collect()
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    for (case, config) in all_cases() {
        let input = input_for(&config, true);
        let a = render(&input);
        let b = render(&input);
        assert_eq!(a.artifacts, b.artifacts, "{case}: two renders differ");
        // The native layout of the config files is the built-in templates':
        // with them "overridden" by themselves, Handlebars gives the same bytes.
        let mut doc: serde_json::Value = serde_json::from_str(&input).expect("input is JSON");
        let names = ["redis.conf", "sentinel.conf", "users.acl", "init.sh", "probe.sh", "sentinel-init.sh"];
        let more = ["prestop.sh", "cluster-init.sh", "backup.sh"];
        doc["template_overrides"] =
            serde_json::json!(names.iter().chain(&more).map(|n| format!("kubernetes-{n}")).collect::<Vec<_>>());
        let c = render(&doc.to_string());
        // Without overrides, no template needs the host.
        let host = redplate_plugin_sdk::NativeHost::default();
        <plugin_kubernetes::Plugin as redplate_plugin_sdk::Generator>::generate(&input, &host).expect("renders");
        assert_eq!(host.rendered.borrow().as_slice(), &[] as &[String], "{case}: templates left to the host");
        for (native, hbs) in a.artifacts.iter().zip(&c.artifacts) {
            assert_eq!(
                String::from_utf8_lossy(&native.content),
                String::from_utf8_lossy(&hbs.content),
                "{case} {}: the native layout differs from the template",
                native.path
            );
        }
        assert_eq!(a.artifacts.len(), c.artifacts.len(), "{case}");
    }
}

#[test]
fn no_clear_text_password_reaches_a_manifest() {
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, true));
        let users: Vec<String> = config
            .security
            .users
            .iter()
            .map(|u| u.name.clone())
            .chain(["default", "replication", "sentinel", "exporter", "probe"].iter().map(|s| s.to_string()))
            .collect();
        for a in &out.artifacts {
            let text = String::from_utf8_lossy(&a.content);
            for u in &users {
                assert!(!text.contains(&fake_password(u)), "{case}: {} contains the password of `{u}`", a.path);
            }
            assert!(!text.contains(" -a "), "{case}: {} passes a password with `-a`", a.path);
            assert!(!text.contains("secretKeyRef") || !text.contains("value: \"pw-"), "{case}: {}", a.path);
        }
    }
}

#[test]
fn each_mode_gets_its_objects() {
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, false));
        let p = paths(&out);
        let name = &config.deployment.name;
        let ns = &config.kubernetes.namespace;
        let has = |f: &str| p.contains(&format!("kubernetes/{f}.yaml"));
        assert!(has(&format!("namespace-{ns}")), "{case}: {p:?}");
        assert!(has(&format!("statefulset-{name}")), "{case}: {p:?}");
        assert!(has(&format!("service-{name}-headless")) && has(&format!("service-{name}")), "{case}: {p:?}");
        assert!(has(&format!("configmap-{name}-config")), "{case}: {p:?}");
        let mode = format!("{:?}", config.deployment.mode).to_lowercase();
        assert_eq!(has(&format!("statefulset-{name}-sentinel")), mode == "sentinel", "{case}: {p:?}");
        // Sentinel mode has none: nothing in the manifests could follow the master.
        assert_eq!(has(&format!("service-{name}-master")), mode == "replication", "{case}");
        assert_eq!(has(&format!("job-{name}-cluster-init")), mode == "cluster", "{case}: {p:?}");
        assert_eq!(has(&format!("cronjob-{name}-backup")), config.backup.enabled, "{case}: {p:?}");
        assert_eq!(has(&format!("poddisruptionbudget-{name}")), config.kubernetes.pdb, "{case}");
        assert_eq!(has(&format!("networkpolicy-{name}")), config.security.network_policy, "{case}");
        let sm = config.monitoring.exporter && config.monitoring.service_monitor;
        assert_eq!(has(&format!("servicemonitor-{name}")), sm, "{case}");
        for a in &out.artifacts {
            let text = String::from_utf8_lossy(&a.content);
            assert!(!text.contains("namespace: \"default\""), "{case}: {}", a.path);
        }
    }
}

#[test]
fn production_statefulset_is_hardened_and_rolls_on_config_change() {
    let config = common::preset_config(redplate_config::model::Environment::Production, "sentinel");
    let out = render(&input_for(&config, false));
    let sts = out
        .artifacts
        .iter()
        .find(|a| a.path == "kubernetes/statefulset-production-sentinel.yaml")
        .expect("statefulset");
    let text = String::from_utf8_lossy(&sts.content);
    for needle in [
        "runAsNonRoot: true",
        "runAsUser: 10001",
        "runAsGroup: 10001",
        "fsGroup: 10001",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "automountServiceAccountToken: false",
        "- \"ALL\"",
        "type: \"RuntimeDefault\"",
        "checksum/config: \"",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "\"oliver006/redis_exporter:v1.67.0@sha256:120f7ec77293459ccfdad66bb1db75ab72e8bfeab99f58b1cc2564cadcd7a9e7\"",
        "\"--redis.addr=rediss://$(POD_NAME).production-sentinel-headless.redis.svc.cluster.local:6380\"",
        "image: \"redis:7.4@sha256:71da9275c5f3fcb97d0fa0c8c5b36cc995327265420f17a04bfd544f458059f7\"",
        "imagePullPolicy: \"IfNotPresent\"",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    // A config change changes the checksum on the pod template.
    let mut changed = config.clone();
    changed.performance.maxclients = 1234;
    let out2 = render(&input_for(&changed, false));
    let sum = |o: &redplate_plugin_sdk::Output| {
        o.artifacts.iter().find(|a| a.path == sts.path).map(|a| {
            String::from_utf8_lossy(&a.content).lines().find(|l| l.contains("checksum/config")).map(str::to_owned)
        })
    };
    assert_ne!(sum(&out), sum(&out2));
    // PDB: minAvailable ⌊3/2⌋+1 = 2 in production.
    let pdb = out.artifacts.iter().find(|a| a.path == "kubernetes/poddisruptionbudget-production-sentinel.yaml");
    let pdb = String::from_utf8_lossy(&pdb.expect("pdb").content).into_owned();
    assert!(pdb.contains("minAvailable: 2"), "{pdb}");
}

#[test]
fn the_default_namespace_is_refused_unless_asked() {
    let mut config = common::preset_config(redplate_config::model::Environment::Development, "standalone");
    config.kubernetes.namespace = "default".into();
    let input = input_for(&config, false);
    let ds = <plugin_kubernetes::Plugin as redplate_plugin_sdk::Generator>::validate(&input);
    assert_eq!(ds[0].code, "kubernetes.default-namespace");
    assert_eq!(ds[0].path, "/config/kubernetes/namespace");
    config.kubernetes.allow_default_namespace = true;
    let out = render(&input_for(&config, false));
    assert!(out.artifacts.iter().any(|a| a.path == "kubernetes/namespace-default.yaml"));
}

#[test]
fn malformed_input_is_a_diagnostic() {
    let ds = <plugin_kubernetes::Plugin as redplate_plugin_sdk::Generator>::validate("{not json");
    assert_eq!(ds[0].code, "kubernetes.bad-input");
}

/// `REDPLATE_K8S_DUMP=/some/dir cargo test -p plugin-kubernetes --test render -- --ignored dump`
/// writes every case's manifests for reading.
#[test]
#[ignore = "writes files for inspection"]
fn dump() {
    let Some(dir) = std::env::var_os("REDPLATE_K8S_DUMP") else { return };
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, false));
        common::write(&out, &std::path::Path::new(&dir).join(&case));
        for d in &out.diagnostics {
            println!("{case}: {:?} {} {} {}", d.severity, d.code, d.path, d.message);
        }
    }
}

#[test]
fn images_take_a_registry_override_and_a_service_account_is_rendered() {
    let sets = [
        "deployment.image=registry.example.com/mirror/redis",
        "deployment.image_tag=7.4.1",
        "deployment.image_digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "monitoring.exporter_image=registry.example.com/mirror/redis_exporter:v1.67.0",
        "monitoring.exporter_image_digest=''",
        "kubernetes.service_account=redis-sa",
        "deployment.image_pull_policy=Always",
    ]
    .map(String::from);
    let config = redplate_config::load_str(
        "",
        redplate_config::Format::Yaml,
        "<t>",
        Some(redplate_config::model::Environment::Production),
        &sets,
    )
    .expect("loads")
    .config;
    let out = render(&input_for(&config, false));
    let name = &config.deployment.name;
    let text = |p: &str| {
        out.artifacts
            .iter()
            .find(|a| a.path == p)
            .map(|a| String::from_utf8_lossy(&a.content).into_owned())
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let sts = text(&format!("kubernetes/statefulset-{name}.yaml"));
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(sts.contains(&format!("image: \"registry.example.com/mirror/redis:7.4.1@{digest}\"")), "{sts}");
    assert!(sts.contains("image: \"registry.example.com/mirror/redis_exporter:v1.67.0\""), "{sts}");
    assert!(sts.contains("serviceAccountName: \"redis-sa\""), "{sts}");
    assert!(!sts.contains("IfNotPresent"), "{sts}");
    let sa = text("kubernetes/serviceaccount-redis-sa.yaml");
    assert!(sa.contains("automountServiceAccountToken: false"), "{sa}");
}

/// Only `requirepass` (the `default` user's password from a Secret): probes,
/// replicas and the exporter log in as `default`, and the password still
/// never appears.
#[test]
fn requirepass_only_deployments_log_in_as_default() {
    let yaml = "deployment: { name: rp, mode: replication }\nreplication: { replicas: 1 }\n\
                monitoring: { exporter: true }\n\
                security: { auth_enabled: true, password: { secret: { name: rp-pass, key: pw } } }\n";
    let config = redplate_config::load_str(
        yaml,
        redplate_config::Format::Yaml,
        "<t>",
        Some(redplate_config::model::Environment::Development),
        &[],
    )
    .expect("loads")
    .config;
    let out = render(&input_for(&config, true));
    let all: String = out.artifacts.iter().map(|a| String::from_utf8_lossy(&a.content).into_owned()).collect();
    assert!(!all.contains(&fake_password("default")));
    assert!(all.contains("user default on #@@pw0@@ ~* &* +@all"), "{all}");
    assert!(all.contains("--user default"), "probe user: {all}");
    assert!(all.contains("masteruser %s\\nmasterauth %s\\n' default"), "{all}");
    assert!(all.contains("\"--redis.user=default\""), "{all}");
    assert!(all.contains("name: \"rp-pass\"") && all.contains("key: \"pw\""), "{all}");
    assert!(out.diagnostics.iter().any(|d| d.code == "kubernetes.no-probe-user"));
}

/// The labels a controller sets on the pods it creates, with the values it
/// can give them: a StatefulSet names each pod `<set>-<ordinal>`.
fn controller_labels(kind: &str, name: &str, replicas: u64) -> Vec<(String, Vec<String>)> {
    match kind {
        "StatefulSet" => {
            vec![("statefulset.kubernetes.io/pod-name".into(), (0..replicas).map(|i| format!("{name}-{i}")).collect())]
        }
        _ => Vec::new(),
    }
}

/// Every Service and PodDisruptionBudget selects pods that the manifests
/// themselves create (by the labels of a pod template, or a label the
/// StatefulSet controller sets), and every named `targetPort` is a port of
/// those pods: `kubectl apply -f` alone gives each Service its endpoints.
#[test]
fn every_selector_matches_pods_the_manifests_create() {
    let mut checked = 0;
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, false));
        let docs: Vec<Value> = out
            .artifacts
            .iter()
            .map(|a| {
                let text = String::from_utf8_lossy(&a.content);
                redplate_config::source::parse_yaml_value(&text, &a.path)
                    .unwrap_or_else(|d| panic!("{case}: {} does not parse: {d}", a.path))
            })
            .collect();
        // (labels, controller labels, container ports) of every pod template.
        let mut pods = Vec::new();
        for d in &docs {
            let kind = d["kind"].as_str().unwrap_or("");
            let template = match kind {
                "StatefulSet" | "Job" => &d["spec"]["template"],
                "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"],
                _ => continue,
            };
            let name = d["metadata"]["name"].as_str().unwrap_or("");
            let labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
            let ports: BTreeSet<String> = template["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
            pods.push((labels, controller_labels(kind, name, replicas), ports));
        }
        for d in &docs {
            let kind = d["kind"].as_str().unwrap_or("");
            let selector = match kind {
                "Service" => &d["spec"]["selector"],
                "PodDisruptionBudget" => &d["spec"]["selector"]["matchLabels"],
                _ => continue,
            };
            let name = d["metadata"]["name"].as_str().unwrap_or("");
            let selector = selector.as_object().unwrap_or_else(|| panic!("{case}: {kind} {name} selects nothing"));
            assert!(!selector.is_empty(), "{case}: {kind} {name} has an empty selector");
            let matching: Vec<_> = pods
                .iter()
                .filter(|(labels, by_controller, _)| {
                    selector.iter().all(|(k, v)| {
                        labels.get(k) == Some(v)
                            || by_controller.iter().any(|(ck, values)| ck == k && values.iter().any(|cv| v == cv))
                    })
                })
                .collect();
            assert!(
                !matching.is_empty(),
                "{case}: {kind} `{name}` selects {selector:?}, which no pod the manifests create carries"
            );
            for port in d["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(target) = port["targetPort"].as_str() {
                    assert!(
                        matching.iter().all(|(_, _, ports)| ports.contains(target)),
                        "{case}: Service `{name}` targets port `{target}`, which its pods do not declare"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} selectors checked");
}
