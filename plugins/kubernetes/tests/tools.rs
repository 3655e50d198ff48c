//! The manifests checked by tools we did not write: kubernetes-validate
//! (`--strict`, Kubernetes 1.33 schemas) for every preset × mode and every
//! example, PyYAML for the YAML itself, and checkov for the production
//! renders. Custom resources (ServiceMonitor, PrometheusRule, cert-manager
//! Certificate) have no schema in kubernetes-validate — it only warns
//! "Couldn't find schema" and has no option to validate them — so their
//! structure is checked here against the objects they refer to.

mod common;

use common::{all_cases, input_for, is_crd, parse_yaml, render, tool, unavailable, write};
use redplate_config::model::Environment;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn render_case(config: &redplate_config::Config, dir: &Path) -> Vec<PathBuf> {
    write(&render(&input_for(config, true)), dir)
}

#[test]
fn every_manifest_passes_kubernetes_validate_strict() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    let tmp = common::tempdir();
    let mut failures = Vec::new();
    let mut validated = 0;
    for (case, config) in all_cases() {
        let files = render_case(&config, &tmp.path().join(&case));
        let builtin: Vec<&PathBuf> = files.iter().filter(|f| !is_crd(f)).collect();
        let out = Command::new(&kv).arg("--strict").args(&builtin).output().expect("run kubernetes-validate");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if text.contains("could not be validated") {
            // The tool itself failed (e.g. a jsonschema too old for it).
            unavailable(&format!("kubernetes-validate at {} cannot validate: {text}", kv.display()));
            return;
        }
        for f in &builtin {
            let shown = f.display().to_string();
            if !text.lines().any(|l| l.starts_with("INFO") && l.contains(&shown) && l.contains("passed for resource")) {
                failures.push(format!("{case}: {shown}"));
            }
        }
        if !out.status.success() {
            failures.push(format!("{case}: kubernetes-validate exited with {}:\n{text}", out.status));
        }
        validated += builtin.len();
    }
    assert!(failures.is_empty(), "kubernetes-validate --strict rejected:\n{}", failures.join("\n"));
    eprintln!("kubernetes-validate --strict: {validated} manifests passed");
}

/// Every manifest reads back (PyYAML) to a document that writes out to the
/// same bytes: the YAML writer loses nothing.
#[test]
fn the_yaml_reads_back_to_the_same_document() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    let tmp = common::tempdir();
    for (case, config) in all_cases() {
        let files = render_case(&config, &tmp.path().join(&case));
        let Some(docs) = parse_yaml(&kv, &files) else {
            unavailable("no python with PyYAML next to kubernetes-validate");
            return;
        };
        for (f, doc) in files.iter().zip(docs) {
            let text = std::fs::read_to_string(f).expect("read");
            let body = text.split_once('\n').map(|(_, b)| b).unwrap_or("");
            assert_eq!(plugin_kubernetes::yaml::to_yaml(&doc), body, "{case}: {}", f.display());
        }
    }
}

fn doc_named<'a>(docs: &'a [(PathBuf, Value)], prefix: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|(p, _)| p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.starts_with(prefix)))
        .map(|(_, d)| d)
}

#[test]
fn custom_resources_are_well_formed() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    let tmp = common::tempdir();
    let mut checked = 0;
    for (case, config) in all_cases() {
        let files = render_case(&config, &tmp.path().join(&case));
        let Some(parsed) = parse_yaml(&kv, &files) else {
            unavailable("no python with PyYAML next to kubernetes-validate");
            return;
        };
        let docs: Vec<(PathBuf, Value)> = files.into_iter().zip(parsed).collect();
        let name = &config.deployment.name;
        if let Some(sm) = doc_named(&docs, "servicemonitor-") {
            checked += 1;
            assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1", "{case}");
            let svc = doc_named(&docs, &format!("service-{name}-metrics")).expect("metrics service");
            // The selector matches the metrics Service's labels and its port name exists there.
            let sel = sm["spec"]["selector"]["matchLabels"].as_object().expect("matchLabels");
            for (k, v) in sel {
                assert_eq!(&svc["metadata"]["labels"][k], v, "{case}: selector {k}");
            }
            let port = &sm["spec"]["endpoints"][0]["port"];
            let ports = svc["spec"]["ports"].as_array().expect("ports");
            assert!(ports.iter().any(|p| &p["name"] == port), "{case}: endpoint port {port}");
            assert_eq!(sm["spec"]["endpoints"][0]["interval"], "30s", "{case}");
            assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"][0], config.kubernetes.namespace.as_str());
        }
        if let Some(pr) = doc_named(&docs, "prometheusrule-") {
            checked += 1;
            let rules = pr["spec"]["groups"][0]["rules"].as_array().expect("rules");
            let by = |a: &str| rules.iter().find(|r| r["alert"] == a).unwrap_or_else(|| panic!("{case}: no {a}"));
            for r in rules {
                for key in ["alert", "expr", "for"] {
                    assert!(r[key].is_string(), "{case}: rule without `{key}`: {r}");
                }
                assert!(r["labels"]["severity"].is_string(), "{case}: {r}");
            }
            assert!(
                by("RedisDown")["expr"].as_str().is_some_and(|e| e.starts_with("redis_up{") && e.ends_with("== 0"))
            );
            assert_eq!(by("RedisDown")["for"], "2m", "{case}");
            assert!(by("RedisMemoryHigh")["expr"].as_str().is_some_and(|e| e.ends_with("> 90")), "{case}");
            assert_eq!(by("RedisMemoryHigh")["for"], "2m", "{case}");
            assert!(
                by("RedisEvictions")["expr"].as_str().is_some_and(|e| e.contains("increase(redis_evicted_keys_total"))
            );
        }
        if let Some(cert) = doc_named(&docs, "certificate-") {
            checked += 1;
            assert_eq!(cert["apiVersion"], "cert-manager.io/v1", "{case}");
            let secret = cert["spec"]["secretName"].as_str().expect("secretName");
            let sts = doc_named(&docs, &format!("statefulset-{name}.yaml")).expect("statefulset");
            let vols = sts["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes");
            assert!(vols.iter().any(|v| v["secret"]["secretName"] == secret), "{case}: TLS volume uses {secret}");
            assert!(cert["spec"]["issuerRef"]["name"].as_str().is_some_and(|s| !s.is_empty()), "{case}");
            let dns = cert["spec"]["dnsNames"].as_array().expect("dnsNames");
            let wildcard = format!("*.{name}-headless.{}.svc.cluster.local", config.kubernetes.namespace);
            assert!(dns.iter().any(|d| d == wildcard.as_str()), "{case}: {dns:?}");
        }
    }
    assert!(checked >= 10, "only {checked} custom resources checked");
}

fn skip_list() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("checkov-skip.txt")).expect("skip list");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(id.starts_with("CKV_K8S_") && !reason.trim().is_empty(), "bad skip line: {l}");
            id.to_owned()
        })
        .collect()
}

/// The production renders (every mode, and the examples layered on
/// `production`) fail no checkov Kubernetes check outside the skip list.
#[test]
fn production_renders_fail_no_checkov_check() {
    let Some(checkov) = tool("checkov") else { return };
    let tmp = common::tempdir();
    let mut cases = 0;
    for (case, config) in all_cases() {
        if config.deployment.environment == Environment::Production {
            render_case(&config, &tmp.path().join(&case));
            cases += 1;
        }
    }
    assert!(cases >= 6, "{cases} production cases");
    let skips = skip_list();
    let out = Command::new(&checkov)
        .args(["-d"])
        .arg(tmp.path())
        .args(["--framework", "kubernetes", "--compact", "--quiet", "-o", "json", "--skip-check", &skips.join(",")])
        .output()
        .expect("run checkov");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov gave no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = match report {
        Value::Array(a) => a,
        one => vec![one],
    };
    let k8s = reports.iter().find(|r| r["check_type"] == "kubernetes").expect("a kubernetes report");
    let summary = &k8s["summary"];
    let failed: Vec<String> = k8s["results"]["failed_checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| format!("{} {} — {} ({})", c["check_id"], c["check_name"], c["resource"], c["file_path"]))
                .collect()
        })
        .unwrap_or_default();
    assert!(failed.is_empty(), "checkov failed checks:\n{}", failed.join("\n"));
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().is_some_and(|p| p > 100), "{summary}");
    eprintln!("checkov on {cases} production renders: {summary} (skip list: {})", skips.join(", "));
}
