//! The compose file, checked by tools we did not write: `docker-compose
//! config -q` (docker-compose 1.29 from the project's virtualenv) for every
//! preset × mode and every example, plus structural checks on the parsed
//! document (PyYAML from the same virtualenv).

mod common;

use common::{Case, all_cases, input_for, missing_tool, workspace_root, write_placeholders};
use plugin_compose::{OUTPUT, Plugin};
use redplate_config::Target;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{Generator, NativeHost};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv() -> PathBuf {
    std::env::var_os("REDPLATE_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"))
}

fn tool(name: &str) -> Option<PathBuf> {
    let p = venv().join("bin").join(name);
    p.is_file().then_some(p)
}

fn render(case: &Case) -> Vec<u8> {
    let out = Plugin::generate(&case.input.to_string(), &NativeHost::default())
        .unwrap_or_else(|d| panic!("{}: generate failed: {d:#?}", case.name));
    assert!(
        out.diagnostics.iter().all(|d| d.severity != redplate_plugin_sdk::Severity::Error),
        "{}: {:#?}",
        case.name,
        out.diagnostics
    );
    assert_eq!(out.artifacts.len(), 1, "{}: one artifact expected", case.name);
    let a = &out.artifacts[0];
    assert_eq!(a.path, OUTPUT);
    assert!(!a.executable);
    a.content.clone()
}

/// Renders a case into a temp tree laid out as wit/INPUT.md describes.
fn lay_out(case: &Case) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    write_placeholders(dir.path(), &case.input);
    let file = dir.path().join(OUTPUT);
    common::write(&file, &String::from_utf8_lossy(&render(case)));
    (dir, file)
}

fn compose_config(docker_compose: &Path, file: &Path) -> std::process::Output {
    let cwd = file.parent().unwrap_or(Path::new("."));
    Command::new(docker_compose)
        .arg("-f")
        .arg(file)
        .args(["config", "-q"])
        .current_dir(cwd)
        .env_remove("COMPOSE_FILE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", docker_compose.display()))
}

/// Parses YAML with PyYAML (the parser docker-compose itself uses).
fn parse_yaml(python: &Path, file: &Path) -> Value {
    let out = Command::new(python)
        .args(["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(out.status.success(), "PyYAML failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("PyYAML output is not JSON: {e}"))
}

#[test]
fn every_preset_mode_and_example_passes_docker_compose_config() {
    let Some(dc) = tool("docker-compose") else {
        return missing_tool("docker-compose", "the Python virtualenv at $REDPLATE_VENV or <workspace>/.venv");
    };
    let cases = all_cases(Target::Compose);
    let mut failures = Vec::new();
    for case in &cases {
        let (_dir, file) = lay_out(case);
        let out = compose_config(&dc, &file);
        if !out.status.success() {
            failures.push(format!(
                "{}: docker-compose config failed:\n{}{}\n--- compose.yaml ---\n{}",
                case.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&file).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    eprintln!("docker-compose config -q passed for {} cases", cases.len());
}

#[test]
fn a_broken_file_is_caught_by_docker_compose() {
    // The proof above only counts if the tool rejects bad input here.
    let Some(dc) = tool("docker-compose") else {
        return missing_tool("docker-compose", "the Python virtualenv");
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("compose.yaml");
    common::write(
        &file,
        "services:\n  a:\n    image: redis\n    depends_on:\n      b:\n        condition: service_healthy\n",
    );
    assert!(!compose_config(&dc, &file).status.success(), "docker-compose accepted a dependency on a missing service");
}

#[test]
fn rendering_is_deterministic() {
    for case in all_cases(Target::Compose) {
        assert_eq!(render(&case), render(&case), "{}: two renders differ", case.name);
        // The native layout is the built-in template's: with the template
        // "overridden" by itself, Handlebars gives the same bytes.
        let mut through_template = Case { name: case.name.clone(), input: case.input.clone() };
        through_template.input["template_overrides"] = serde_json::json!(["compose.yaml"]);
        assert_eq!(
            String::from_utf8_lossy(&render(&case)),
            String::from_utf8_lossy(&render(&through_template)),
            "{}: the native layout differs from the template",
            case.name
        );
    }
}

#[test]
fn no_password_reaches_the_compose_file() {
    for case in all_cases(Target::Compose) {
        let text = String::from_utf8_lossy(&render(&case)).into_owned();
        if let Some(users) = case.input["secrets"]["users"].as_object() {
            for (name, u) in users {
                let pw = u["password"].as_str().unwrap_or("x");
                assert!(!text.contains(pw), "{}: password of `{name}` is in the file", case.name);
            }
        }
        assert!(!text.contains(" -a "), "{}: `-a` on a command line", case.name);
        assert!(!text.contains("REDIS_PASSWORD:"), "{}: inline exporter password", case.name);
    }
}

#[test]
fn services_follow_the_topology_and_are_hardened() {
    let Some(python) = tool("python3") else {
        return missing_tool("python3", "the Python virtualenv, for PyYAML");
    };
    for case in all_cases(Target::Compose) {
        let (_dir, file) = lay_out(&case);
        let doc = parse_yaml(&python, &file);
        let services = doc["services"].as_object().unwrap_or_else(|| panic!("{}: no services", case.name));
        let config = &case.input["config"];
        let nodes = case.input["topology"]["nodes"].as_array().cloned().unwrap_or_default();
        let exporter = config["monitoring"]["exporter"].as_bool() == Some(true);
        let data = nodes.iter().filter(|n| n["role"] != "sentinel").count();
        let auth_init = usize::from(exporter && config["security"]["auth_enabled"].as_bool() == Some(true));
        let auth = config["security"]["auth_enabled"].as_bool() == Some(true);
        let users = case.input["secrets"]["users"].as_object().cloned().unwrap_or_default();
        let cluster = case.input["topology"]["mode"] == "cluster";
        let cluster_init =
            usize::from(cluster && (!auth || users.contains_key("default") || users.contains_key("admin")));
        let expected = nodes.len() + if exporter { data + auth_init } else { 0 } + cluster_init;
        assert_eq!(services.len(), expected, "{}: services {:?}", case.name, services.keys().collect::<Vec<_>>());
        let publish = config["compose"]["publish_ports"].as_bool() == Some(true);
        for (name, s) in services {
            let ctx = format!("{}: service `{name}`", case.name);
            assert_eq!(s["cap_drop"], serde_json::json!(["ALL"]), "{ctx}");
            assert_eq!(s["security_opt"], serde_json::json!(["no-new-privileges:true"]), "{ctx}");
            assert_eq!(s["read_only"], Value::Bool(true), "{ctx}");
            let user = s["user"].as_str().unwrap_or("");
            assert!(!user.is_empty() && !user.starts_with("0") && !user.starts_with("root"), "{ctx}: user {user:?}");
            let image = s["image"].as_str().unwrap_or("");
            assert!(image.starts_with("redis:") || image.starts_with("oliver006/redis_exporter:"), "{ctx}: {image}");
            let one_shot = name.ends_with("-exporter-auth") || name.ends_with("-cluster-init");
            assert_eq!(s.get("ports").is_some(), publish && !one_shot, "{ctx}: ports");
            if one_shot {
                assert_eq!(s["restart"], "no", "{ctx}");
            }
        }
        for n in &nodes {
            let name = n["name"].as_str().unwrap_or_default();
            let s = &services[name];
            let role = n["role"].as_str().unwrap_or_default();
            let vols: Vec<&str> = s["volumes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let health = s["healthcheck"]["test"][1].as_str().unwrap_or_else(|| panic!("{name}: no healthcheck"));
            assert!(health.contains("redis-cli") && health.contains("ping"), "{name}: {health}");
            if role == "sentinel" {
                if config["security"]["auth_enabled"].as_bool() == Some(true) {
                    assert!(
                        health.starts_with("REDISCLI_AUTH=\"$$(cat /run/secrets/sentinel-password)\" redis-cli -h"),
                        "{name}: {health}"
                    );
                }
                if config["security"]["tls"]["enabled"].as_bool() == Some(true) {
                    assert!(health.contains("--tls --cacert"), "{name}: {health}");
                }
                assert!(vols.contains(
                    &format!("../sentinel/{name}/sentinel.conf:/usr/local/etc/redis/sentinel.conf:ro").as_str()
                ));
                assert!(s["command"][2].as_str().unwrap_or("").contains("exec redis-sentinel"), "{name}");
            } else {
                assert!(
                    vols.contains(&format!("../redis/{name}/redis.conf:/usr/local/etc/redis/redis.conf:ro").as_str())
                );
                // Seeded onto the data volume, run from there (Sentinel's CONFIG REWRITE persists).
                let command = s["command"][2].as_str().unwrap_or("");
                assert_eq!((&s["command"][0], &s["command"][1]), (&serde_json::json!("sh"), &serde_json::json!("-c")));
                assert!(
                    command.contains("cp /usr/local/etc/redis/redis.conf /data/redis.conf")
                        && command.contains("exec redis-server /data/redis.conf"),
                    "{name}: {command}"
                );
                if config["security"]["auth_enabled"].as_bool() == Some(true) {
                    assert!(health.starts_with("REDISCLI_AUTH=\"$$(cat /run/secrets/"), "{name}: {health}");
                    assert!(vols.contains(&"../redis/users.acl:/etc/redis/users.acl:ro"), "{name}");
                    // The users are kept in a seeded copy (`ACL SAVE` writes it).
                    assert!(
                        command.contains("cp /etc/redis/users.acl /data/users.acl")
                            && command.ends_with("exec redis-server /data/redis.conf --aclfile /data/users.acl"),
                        "{name}: {command}"
                    );
                } else {
                    assert!(command.ends_with("exec redis-server /data/redis.conf"), "{name}: {command}");
                }
                if n["ports"]["client"].is_null() {
                    assert!(health.contains("--tls --cacert"), "{name}: TLS-only node probed without TLS: {health}");
                }
            }
            if let Some(master) = n["replica_of"].as_str() {
                assert_eq!(s["depends_on"][master]["condition"], "service_healthy", "{name}");
            }
            if role == "sentinel" {
                let masters = nodes.iter().filter(|m| m["role"] == "master");
                for m in masters {
                    let m = m["name"].as_str().unwrap_or_default();
                    assert_eq!(s["depends_on"][m]["condition"], "service_healthy", "{name}");
                }
            }
        }
        if let Some(secrets) = doc["secrets"].as_object() {
            for (k, v) in secrets {
                let f = v["file"].as_str().unwrap_or_default();
                assert!(f.starts_with("../secrets/") && f.ends_with(".password"), "{}: secret {k}: {f}", case.name);
            }
        }
    }
}

#[test]
fn registry_override_and_published_ports() {
    let sets = [
        "deployment.mode=sentinel".to_owned(),
        "compose.image_registry=registry.example.com/mirror".to_owned(),
        "compose.publish_ports=true".to_owned(),
        "compose.publish_address=127.0.0.1".to_owned(),
    ];
    let input =
        input_for("deployment:\n  name: shop\n", "t.yaml", Some(Environment::Production), &sets, Target::Compose);
    let case = Case { name: "override".into(), input };
    let text = String::from_utf8_lossy(&render(&case)).into_owned();
    // The production preset pins both images by digest, as Kubernetes does.
    let config = &case.input["config"];
    let (redis, exporter) = (
        config["deployment"]["image_digest"].as_str().unwrap_or_default(),
        config["monitoring"]["exporter_image_digest"].as_str().unwrap_or_default(),
    );
    assert!(redis.starts_with("sha256:") && exporter.starts_with("sha256:"), "{config}");
    assert!(text.contains(&format!("image: \"registry.example.com/mirror/redis:7.4@{redis}\"")), "{text}");
    assert!(
        text.contains(&format!("image: \"registry.example.com/mirror/oliver006/redis_exporter:v1.67.0@{exporter}\"")),
        "{text}"
    );
    assert!(!text.contains(":7.4\"") && !text.contains(":v1.67.0\""), "an image pinned by tag only:\n{text}");
    // TLS-only nodes publish their TLS port, one host port per node.
    assert!(text.contains("\"127.0.0.1:6380:6380\""), "{text}");
    assert!(text.contains("\"127.0.0.1:6381:6380\""), "{text}");
    assert!(text.contains("\"127.0.0.1:26380:26379\""), "{text}");
    let Some(dc) = tool("docker-compose") else {
        return missing_tool("docker-compose", "the Python virtualenv");
    };
    let (_dir, file) = lay_out(&case);
    let out = compose_config(&dc, &file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn images_are_pinned_by_digest_only_when_a_digest_is_given() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let sets = [
        "monitoring.exporter=true".to_owned(),
        format!("deployment.image_digest={digest}"),
        "monitoring.exporter_image_digest=\"\"".to_owned(),
    ];
    let input = input_for("", "t.yaml", Some(Environment::Staging), &sets, Target::Compose);
    let text = String::from_utf8_lossy(&render(&Case { name: "digest".into(), input })).into_owned();
    assert!(text.contains(&format!("image: \"redis:7.4@{digest}\"")), "{text}");
    assert!(text.contains("image: \"oliver006/redis_exporter:v1.67.0\""), "{text}");
    // An image that names its own digest is kept as it is.
    let sets = ["monitoring.exporter=true".to_owned(), format!("monitoring.exporter_image=exp@{digest}")];
    let input = input_for("", "t.yaml", Some(Environment::Staging), &sets, Target::Compose);
    let text = String::from_utf8_lossy(&render(&Case { name: "own".into(), input })).into_owned();
    assert!(text.contains(&format!("image: \"exp@{digest}\"")), "{text}");
}

#[test]
fn other_targets_get_no_compose_file() {
    let input = input_for("", "t.yaml", Some(Environment::Development), &[], Target::Local);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(out.artifacts.is_empty());
    assert_eq!(out.diagnostics[0].code, "compose.other-target");
}

#[test]
fn a_user_template_override_wins() {
    struct Override;
    impl redplate_plugin_sdk::Host for Override {
        fn log(&self, _: redplate_plugin_sdk::Severity, _: &str) {}
        fn render(&self, name: &str, _template: &str, data: &str) -> Result<String, String> {
            NativeHost::default().render(name, "# mine: {{project}}\n{{{body}}}", data)
        }
    }
    let mut input = input_for("", "t.yaml", Some(Environment::Development), &[], Target::Compose);
    input["template_overrides"] = serde_json::json!(["compose.yaml"]);
    let out = Plugin::generate(&input.to_string(), &Override).unwrap_or_else(|d| panic!("{d:?}"));
    let text = String::from_utf8_lossy(&out.artifacts[0].content).into_owned();
    assert!(text.starts_with("# mine: redis\nservices:"), "{text}");
}

#[test]
fn malformed_input_is_a_pointed_diagnostic() {
    let ds = Plugin::validate("{\"topology\": 3}");
    assert_eq!(ds[0].code, "compose.bad-input");
    let ds = Plugin::validate("{\"topology\": {\"nodes\": []}}");
    assert_eq!(ds[0].code, "compose.no-data-nodes");
    assert_eq!(ds[0].path, "/topology/nodes");
    assert!(ds[0].hint.is_some());
}

#[test]
fn examples_match_their_reviewed_snapshots() {
    let dir = workspace_root().join("examples");
    for case in all_cases(Target::Compose) {
        if !dir.join(format!("{}.yaml", case.name)).is_file() {
            continue;
        }
        common::assert_snapshot(&format!("{}.compose.yaml", case.name), &String::from_utf8_lossy(&render(&case)));
    }
}

#[test]
fn bind_mounts_a_named_network_and_extra_volumes_pass_docker_compose_config() {
    let sets = [
        "deployment.mode=replication".to_owned(),
        "compose.named_volumes=false".to_owned(),
        "compose.bind_dir=./state".to_owned(),
        "compose.network=redis-net".to_owned(),
        "compose.extra_volumes=[\"./modules:/opt/modules:ro\"]".to_owned(),
        "compose.restart=always".to_owned(),
        "compose.project_name=shop_cache".to_owned(),
    ];
    let input = input_for("deployment:\n  name: shop\n", "t.yaml", Some(Environment::Staging), &sets, Target::Compose);
    let case = Case { name: "options".into(), input };
    let text = String::from_utf8_lossy(&render(&case)).into_owned();
    assert!(text.contains("\"./state/shop-0:/data\""), "{text}");
    assert!(text.contains("\"./modules:/opt/modules:ro\""), "{text}");
    assert!(text.contains("networks:\n  redis-net:\n    name: \"redis-net\""), "{text}");
    assert!(text.contains("restart: \"always\""), "{text}");
    assert!(!text.contains("\nvolumes:\n  shop-0-data"), "named volumes despite named_volumes: false");
    let Some(dc) = tool("docker-compose") else {
        return missing_tool("docker-compose", "the Python virtualenv");
    };
    let (_dir, file) = lay_out(&case);
    let out = compose_config(&dc, &file);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
}
