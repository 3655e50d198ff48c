//! The manifests checked by tools we did not write: kubernetes-validate
//! (`--strict`, its default Kubernetes schemas) for every preset × mode and
//! every example, PyYAML for the YAML itself, and checkov (current, with no
//! skipped check) for the production renders.
//!
//! kubernetes-validate is read strictly: every file must pass ("passed for
//! resource"), and its "Couldn't find schema" warning — which it gives for
//! any unknown kind with exit status 0 — is a failure, except for the three
//! custom resources the generator renders on purpose (ServiceMonitor,
//! PrometheusRule, cert-manager Certificate). kubernetes-validate ships no
//! schema for them and cannot be given one, so
//! `custom_resources_are_well_formed` checks each of them instead: its
//! fields, and that it refers to objects that exist (the metrics Service and
//! its port, the TLS Secret the pods mount, the Service names).

mod common;

use common::{all_cases, input_for, parse_yaml, render, tool, unavailable, write};
use redplate_config::model::Environment;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Custom resources (kind, apiVersion) kubernetes-validate has no schema
/// for, each checked by `custom_resources_are_well_formed`.
const CUSTOM_RESOURCES: [(&str, &str); 3] = [
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
    ("Certificate", "cert-manager.io/v1"),
];

fn render_case(config: &redplate_config::Config, dir: &Path) -> Vec<PathBuf> {
    write(&render(&input_for(config, true)), dir)
}

/// What kubernetes-validate said about each file: `Ok` for a pass, `Err`
/// with its words otherwise. Only the known custom resources may be passed
/// over for want of a schema.
fn verdicts(output: &str, files: &[PathBuf]) -> Vec<(PathBuf, Result<(), String>)> {
    files
        .iter()
        .map(|f| {
            let shown = f.display().to_string();
            let lines: Vec<&str> =
                output.lines().filter(|l| l.split_whitespace().nth(1) == Some(shown.as_str())).collect();
            let passed =
                lines.len() == 1 && lines[0].starts_with("INFO ") && lines[0].contains(" passed for resource ");
            let custom = lines.len() == 1
                && lines[0].starts_with("WARN ")
                && CUSTOM_RESOURCES.iter().any(|(kind, api)| {
                    lines[0].ends_with(&format!(
                        "Couldn't find schema for kind {kind} with api version {api} for kubernetes version {}",
                        kv_version(lines[0])
                    ))
                });
            let verdict = if passed || custom {
                Ok(())
            } else if lines.is_empty() {
                Err(format!("no verdict in:\n{output}"))
            } else {
                Err(lines.join("\n"))
            };
            (f.clone(), verdict)
        })
        .collect()
}

/// The Kubernetes version at the end of a kubernetes-validate line.
fn kv_version(line: &str) -> &str {
    line.rsplit(' ').next().unwrap_or("")
}

/// Whether kubernetes-validate can validate at all: a minimal ConfigMap must
/// pass. Only then is "could not be validated" the manifest's fault.
fn kubernetes_validate_works(kv: &Path) -> bool {
    let tmp = common::tempdir();
    let probe = tmp.path().join("configmap-probe.yaml");
    std::fs::write(&probe, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  a: b\n")
        .expect("write");
    let out = Command::new(kv).arg("--strict").arg(&probe).output().expect("run kubernetes-validate");
    let text = String::from_utf8_lossy(&out.stdout);
    let works = out.status.success() && verdicts(&text, &[probe]).iter().all(|(_, v)| v.is_ok());
    if !works {
        unavailable(&format!(
            "kubernetes-validate at {} cannot validate a minimal ConfigMap: {text}{}",
            kv.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    works
}

#[test]
fn every_manifest_passes_kubernetes_validate_strict() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    if !kubernetes_validate_works(&kv) {
        return;
    }
    let tmp = common::tempdir();
    let mut failures = Vec::new();
    let mut validated = 0;
    for (case, config) in all_cases() {
        let files = render_case(&config, &tmp.path().join(&case));
        let out = Command::new(&kv).arg("--strict").args(&files).output().expect("run kubernetes-validate");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for (f, verdict) in verdicts(&text, &files) {
            if let Err(why) = verdict {
                failures.push(format!("{case}: {}: {why}", f.display()));
            }
        }
        if !out.status.success() {
            failures.push(format!("{case}: kubernetes-validate exited with {}:\n{text}", out.status));
        }
        validated += files.len();
    }
    assert!(failures.is_empty(), "kubernetes-validate --strict rejected:\n{}", failures.join("\n"));
    eprintln!("kubernetes-validate --strict: {validated} manifests passed");
}

/// The reading of kubernetes-validate's output is strict: an unknown kind
/// (exit 0, a warning), a manifest it cannot validate, and an invalid field
/// are all failures; only the three known custom resources pass unchecked.
#[test]
fn kubernetes_validate_warnings_and_unvalidated_files_are_failures() {
    let Some(kv) = tool("kubernetes-validate") else { return };
    if !kubernetes_validate_works(&kv) {
        return;
    }
    let tmp = common::tempdir();
    let file = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let unknown = file("foo.yaml", "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: x\n");
    let no_api = file("noapi.yaml", "kind: Service\nmetadata:\n  name: x\n");
    let extra = file("extra.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  bogus: 1\n");
    let monitor =
        file("monitor.yaml", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\n");
    let files = [unknown, no_api, extra, monitor];
    let out = Command::new(&kv).arg("--strict").args(&files).output().expect("run kubernetes-validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v = verdicts(&text, &files);
    assert!(v[0].1.is_err() && v[1].1.is_err() && v[2].1.is_err(), "{text}");
    assert!(v[3].1.is_ok(), "{text}");
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
        // Every custom resource is one of the three checked below, once per case.
        let custom: Vec<&str> = docs
            .iter()
            .filter_map(|(_, d)| d["kind"].as_str())
            .filter(|k| CUSTOM_RESOURCES.iter().any(|(c, _)| c == k))
            .collect();
        let mut unique = custom.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(custom.len(), unique.len(), "{case}: more than one of a custom resource kind");
        for (_, d) in &docs {
            let kind = d["kind"].as_str().unwrap_or("");
            if let Some((_, api)) = CUSTOM_RESOURCES.iter().find(|(k, _)| *k == kind) {
                assert_eq!(d["apiVersion"], *api, "{case}: {kind}");
            }
        }
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

/// The production renders (every mode, and the examples layered on
/// `production`) fail no check of the current checkov (3.x): none skipped,
/// none suppressed in a manifest, and every file parsed.
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
    let out = Command::new(&checkov)
        .args(["-d"])
        .arg(tmp.path())
        .args(["--framework", "kubernetes", "--compact", "--quiet", "--skip-download", "-o", "json"])
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
    let version = summary["checkov_version"].as_str().unwrap_or("");
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(major >= 3, "checkov {version:?} is older than 3.x: run scripts/setup.sh");
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
    assert_eq!(summary["skipped"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().is_some_and(|p| p > 1000), "{summary}");
    eprintln!("checkov {version} on {cases} production renders: {summary}");
}
