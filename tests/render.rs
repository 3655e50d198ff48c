//! `redplate render` end to end, through the real binary: every preset ×
//! mode and every example renders for all targets, deterministically and
//! atomically; the artifacts pass tools we did not write (kubernetes-validate
//! --strict, docker-compose config, shellcheck, checkov) and Redis boots from
//! them.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

struct Env {
    _tmp: tempfile::TempDir,
    cache: PathBuf,
    home: PathBuf,
    dir: PathBuf,
}

fn env() -> Env {
    // Not a dot-folder: checkov skips hidden directories.
    let tmp = tempfile::Builder::new().prefix("redplate-render-").tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    // One compiled-code cache for the whole test binary run.
    let cache = std::env::temp_dir().join(format!("redplate-render-cache-{}", std::process::id()));
    Env { cache, home: dir.join("home"), dir, _tmp: tmp }
}

fn redplate(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redplate"))
        .args(args)
        .current_dir(root())
        .env("REDPLATE_CACHE_DIR", &env.cache)
        .env("REDPLATE_HOME", &env.home)
        .output()
        .expect("redplate runs")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name() != ".redplate-output" {
                let rel = p.strip_prefix(dir).expect("prefix").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

fn render_case(env: &Env, template: &str, sets: &[String], out: &Path, target: &str) -> Output {
    let mut args = vec!["render", template, "--target", target, "--out", out.to_str().expect("utf-8")];
    for s in sets {
        args.extend(["--set", s.as_str()]);
    }
    redplate(env, &args)
}

fn tool(name: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("REDPLATE_VENV").map(PathBuf::from).unwrap_or_else(|| root().join(".venv"));
    let in_venv = venv.join("bin").join(name);
    if in_venv.exists() {
        return Some(in_venv);
    }
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
    found.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
}

/// Whether a missing tool fails the test: `CI` set to anything but empty,
/// `false` or `0`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn require(name: &str) -> Option<PathBuf> {
    let t = tool(name);
    if t.is_none() {
        assert!(!in_ci(), "`{name}` is missing; CI must have it (scripts/setup.sh installs it)");
        eprintln!("SKIPPED: `{name}` is not installed (run scripts/setup.sh)");
    }
    t
}

/// The custom resources the Kubernetes generator renders: kubernetes-validate
/// has no schema for them (it warns and exits 0); plugins/kubernetes's
/// `custom_resources_are_well_formed` checks them instead. Any other kind it
/// cannot find a schema for is a failure.
const CUSTOM_RESOURCES: [(&str, &str); 3] = [
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
    ("Certificate", "cert-manager.io/v1"),
];

/// Whether kubernetes-validate's output says `file` passed: one line about
/// it, "passed for resource", or the missing-schema warning of a known
/// custom resource. "could not be validated" is the manifest's fault here:
/// the same tool validates every other manifest of the run.
fn kubernetes_validate_passed(output: &str, file: &str) -> bool {
    let lines: Vec<&str> = output.lines().filter(|l| l.split_whitespace().nth(1) == Some(file)).collect();
    match lines.as_slice() {
        [l] if l.starts_with("INFO ") => l.contains(" passed for resource "),
        [l] if l.starts_with("WARN ") => CUSTOM_RESOURCES.iter().any(|(kind, api)| {
            l.contains(&format!(" Couldn't find schema for kind {kind} with api version {api} for kubernetes version "))
        }),
        _ => false,
    }
}

#[test]
fn every_preset_mode_and_example_renders_deterministically_and_passes_the_validators() {
    let env = env();
    let kv = require("kubernetes-validate");
    let dc = require("docker-compose");
    let sc = require("shellcheck");
    for (template, sets) in support::render_cases() {
        let label = format!("{template} {}", sets.join(" "));
        let out1 = env.dir.join("one");
        let out2 = env.dir.join("two");
        let o = render_case(&env, &template, &sets, &out1, "all");
        assert_eq!(o.status.code(), Some(0), "{label}: {}", String::from_utf8_lossy(&o.stderr));
        let o = render_case(&env, &template, &sets, &out2, "all");
        assert_eq!(o.status.code(), Some(0), "{label}: {}", String::from_utf8_lossy(&o.stderr));
        let (a, b) = (files(&out1), files(&out2));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{label}: same files");
        for (path, bytes) in &a {
            assert!(b[path] == *bytes, "{label}: {path} differs between two renders");
        }
        assert!(a.keys().any(|p| p.starts_with("local/redis/")), "{label}: no local redis.conf in {:?}", a.keys());
        assert!(a.keys().any(|p| p.starts_with("kubernetes/kubernetes/")), "{label}: no manifests");
        assert!(a.contains_key("compose/compose/compose.yaml"), "{label}: no compose file");

        if let Some(kv) = &kv {
            let manifests: Vec<String> = a
                .keys()
                .filter(|p| p.starts_with("kubernetes/") && p.ends_with(".yaml"))
                .map(|p| out1.join(p).to_string_lossy().into_owned())
                .collect();
            let o = Command::new(kv).arg("--strict").args(&manifests).output().expect("kubernetes-validate runs");
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            let rejected: Vec<String> =
                manifests.iter().filter(|m| !kubernetes_validate_passed(&text, m)).cloned().collect();
            assert!(
                o.status.success() && rejected.is_empty(),
                "{label}: kubernetes-validate --strict did not pass {rejected:?}:\n{text}"
            );
        }
        if let Some(dc) = &dc {
            let o = Command::new(dc)
                .args(["-f"])
                .arg(out1.join("compose/compose/compose.yaml"))
                .args(["config", "-q"])
                .output()
                .expect("docker-compose runs");
            assert!(o.status.success(), "{label}: docker-compose config:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        if let Some(sc) = &sc {
            let scripts: Vec<PathBuf> = a.keys().filter(|p| p.ends_with(".sh")).map(|p| out1.join(p)).collect();
            if !scripts.is_empty() {
                let o = Command::new(sc).args(&scripts).output().expect("shellcheck runs");
                assert!(o.status.success(), "{label}: shellcheck:\n{}", String::from_utf8_lossy(&o.stdout));
            }
        }
        std::fs::remove_dir_all(&out1).expect("clean");
        std::fs::remove_dir_all(&out2).expect("clean");
    }
}

/// What each preset prints about itself when rendered as it is, for every
/// target: these notices and no other, each said once (not per node or
/// target), each deliberate and explained in the preset's header.
const PRESET_NOTICES: [(&str, &[&str]); 3] = [
    ("development", &[]),
    ("staging", &["info[kubernetes.backup-gzip]", "info[kubernetes.master-service]", "info[kubernetes.tls-secret]"]),
    (
        "production",
        &[
            "info[kubernetes.backup-gzip]",
            "info[kubernetes.master-service]",
            "info[kubernetes.tls-secret]",
            "info[redis-conf.activedefrag-local]",
            "warning[kubernetes.backup-unencrypted]",
        ],
    ),
];

#[test]
fn every_preset_as_it_is_gives_only_its_documented_notices() {
    let env = env();
    for (preset, expected) in PRESET_NOTICES {
        let template = format!("presets/{preset}.yaml");
        let out = env.dir.join(preset);
        let o = render_case(&env, &template, &[], &out, "all");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{template}: {stderr}");
        let mut notices: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warning[") || l.starts_with("info[") || l.starts_with("error["))
            .filter_map(|l| l.split_once(':').map(|(head, _)| head))
            .collect();
        notices.sort_unstable();
        assert_eq!(notices, expected, "{template} --target all:\n{stderr}");
        let header = std::fs::read_to_string(root().join(&template)).expect("preset");
        for notice in expected {
            let code = notice.split_once('[').map(|(_, c)| c.trim_end_matches(']')).unwrap_or_default();
            assert!(header.contains(code), "{template} does not explain `{code}` in its header");
        }
        // The rendered tree is what the presets promise: a backup user for
        // scripts that need one, and containers reachable from their network.
        let tree = files(&out);
        let text = |p: &str| String::from_utf8_lossy(tree.get(p).map_or(&[][..], |b| b.as_slice())).into_owned();
        for (path, bytes) in &tree {
            let content = String::from_utf8_lossy(bytes);
            if path.starts_with("compose/") && (path.ends_with("redis.conf") || path.ends_with("sentinel.conf")) {
                assert!(content.contains("\nbind 0.0.0.0\n"), "{template} {path}: {content}");
            }
        }
        if preset != "development" {
            for target in ["local", "compose"] {
                let script = text(&format!("{target}/backup/backup.sh"));
                assert!(script.contains("DEFAULT_REDIS_USER='backup'"), "{template} {target}: {script}");
                assert!(tree.contains_key(&format!("{target}/secrets/backup.password")), "{template} {target}");
                let acl = text(&format!("{target}/redis/users.acl"));
                assert!(acl.lines().any(|l| l.starts_with("user backup on #") && l.contains(" +bgsave ")), "{acl}");
            }
        }
    }
}

#[test]
fn the_production_kubernetes_render_fails_no_checkov_check() {
    let env = env();
    let Some(checkov) = require("checkov") else { return };
    let out = env.dir.join("prod");
    let o = render_case(&env, "presets/production.yaml", &[], &out, "kubernetes");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // No skip list and no suppression: every check of the current checkov runs.
    let o = Command::new(checkov)
        .args(["--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "-o", "json", "-d"])
        .arg(out.join("kubernetes"))
        .output()
        .expect("checkov runs");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    let summary = |key: &str| report.pointer(&format!("/summary/{key}")).cloned().unwrap_or_default();
    let version = summary("checkov_version");
    eprintln!(
        "checkov {version}: passed {}, failed {}, skipped {}, parsing errors {}",
        summary("passed"),
        summary("failed"),
        summary("skipped"),
        summary("parsing_errors")
    );
    let major = version.as_str().and_then(|v| v.split('.').next()).and_then(|m| m.parse::<u32>().ok());
    assert!(major.is_some_and(|m| m >= 3), "checkov {version} is not 3.x: run scripts/setup.sh");
    assert_eq!(summary("failed"), 0, "checkov failures:\n{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(summary("skipped"), 0, "checks skipped:\n{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(summary("parsing_errors"), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(summary("passed").as_u64().is_some_and(|p| p > 100), "checkov ran too few checks");
}

/// Every entry under `dir` (the `.redplate-output` list included) with its
/// mode and bytes.
fn tree_with_modes(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").filter_map(Result::ok) {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            let rel = p.strip_prefix(dir).expect("prefix").to_string_lossy().into_owned();
            let bytes = if meta.is_dir() { Vec::new() } else { std::fs::read(&p).expect("read") };
            out.insert(rel, (meta.permissions().mode(), bytes));
            if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// The render gets past validation and generation and fails while writing
/// its files: the process may write files of at most 512 bytes
/// (`ulimit -f 1`, which binds root too; SIGXFSZ ignored, so the write
/// fails with EFBIG instead of killing it). The old folder must be left
/// byte for byte, and nothing beside it.
#[test]
fn a_failed_render_leaves_the_folder_as_it_was() {
    let env = env();
    let out = env.dir.join("out");
    let template = "examples/standalone-development.yaml";
    // Also warms the compiled-plugin cache: the limited run writes nothing there.
    let o = render_case(&env, template, &[], &out, "local");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let before = tree_with_modes(&out);
    assert!(before.contains_key(".redplate-output") && before.len() > 3, "{:?}", before.keys());

    let changed = ["performance.maxclients=500".to_owned()];
    let mut args = vec!["render", template, "--target", "local", "--out", out.to_str().expect("utf-8")];
    args.extend(["--set", changed[0].as_str()]);
    let o = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_redplate"))
        .args(&args)
        .current_dir(root())
        .env("REDPLATE_CACHE_DIR", &env.cache)
        .env("REDPLATE_HOME", &env.home)
        .output()
        .expect("sh runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[output.write]") && stderr.contains("File too large"), "{stderr}");
    assert!(tree_with_modes(&out) == before, "the folder changed after a failed write");
    let beside: Vec<_> = std::fs::read_dir(&env.dir)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "out" && n != "home")
        .collect();
    assert!(beside.is_empty(), "left beside the output folder: {beside:?}");

    // The same render without the limit replaces the folder: the failure
    // above was the write's, and the comparison could have failed.
    let o = render_case(&env, template, &changed, &out, "local");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(tree_with_modes(&out) != before, "the unlimited render changed nothing");
}

#[test]
fn stdout_is_a_multi_document_yaml_stream_of_every_artifact() {
    let env = env();
    let out = env.dir.join("out");
    let o = render_case(&env, "examples/sentinel-production.yaml", &[], &out, "kubernetes");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = redplate(&env, &["render", "examples/sentinel-production.yaml", "--target", "kubernetes", "--stdout"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).expect("utf-8");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML stream");
    assert_eq!(docs.len(), files(&out).len(), "one document per artifact");
}

#[test]
fn generated_passwords_are_created_once_and_kept() {
    let env = env();
    let (one, two) = (env.dir.join("one"), env.dir.join("two"));
    for out in [&one, &two] {
        let o = render_case(&env, "presets/production.yaml", &[], out, "local");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let pw = |d: &Path| std::fs::read(d.join("secrets/replication.password")).expect("password file");
    assert_eq!(pw(&one), pw(&two));
    assert!(pw(&one).len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(one.join("secrets/replication.password")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Kubernetes manifests never carry it.
    let k8s = env.dir.join("k8s");
    let o = render_case(&env, "presets/production.yaml", &[], &k8s, "kubernetes");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let secret = String::from_utf8(pw(&one)).expect("utf-8");
    for (path, bytes) in files(&k8s) {
        assert!(!String::from_utf8_lossy(&bytes).contains(&secret), "{path} contains a clear-text password");
    }
}

#[test]
fn a_user_template_overrides_the_plugin_template_of_the_same_name() {
    let env = env();
    let templates = env.dir.join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(
        templates.join("redis.conf.hbs"),
        "# my own redis.conf for {{node.name}}\n{{#each sections}}{{#each directives}}{{line}}\n{{/each}}{{/each}}",
    )
    .expect("template");
    let out = env.dir.join("out");
    let o = redplate(
        &env,
        &[
            "render",
            "examples/standalone-development.yaml",
            "--target",
            "local",
            "--out",
            out.to_str().expect("utf-8"),
            "--templates",
            templates.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = files(&out).into_iter().find(|(p, _)| p.ends_with("redis.conf")).expect("a redis.conf").1;
    let text = String::from_utf8(conf).expect("utf-8");
    assert!(text.starts_with("# my own redis.conf for "), "{text}");
    assert!(text.contains("\nport "), "the override still gets the directives: {text}");

    // A broken override is the user's error, named with its template.
    std::fs::write(templates.join("redis.conf.hbs"), "{{#each sections}}{{/wrong}}").expect("template");
    let o = redplate(
        &env,
        &[
            "render",
            "examples/standalone-development.yaml",
            "--target",
            "local",
            "--out",
            out.to_str().expect("utf-8"),
            "--templates",
            templates.to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr.contains("redis.conf") && stderr.contains("your override"), "{stderr}");
}

/// Pods are reached over the pod network: a development deployment (no
/// password) must not keep protected mode on, or Redis refuses every client
/// outside its own pod; with auth (production) protected mode stays on.
#[test]
fn kubernetes_redis_listens_to_other_pods_without_a_password_and_stays_protected_with_one() {
    let env = env();
    for (preset, protected) in [("presets/development.yaml", "no"), ("presets/production.yaml", "yes")] {
        let out = env.dir.join(preset.replace('/', "-"));
        let o = render_case(&env, preset, &[], &out, "kubernetes");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let all: String = files(&out).values().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        assert!(all.contains("bind 0.0.0.0"), "{preset}: Redis listens on the pod network");
        assert!(all.contains(&format!("protected-mode {protected}")), "{preset}: protected-mode {protected}");
    }
}
