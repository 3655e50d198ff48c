//! The scripts, checked by tools we did not write: `shellcheck` and `bash -n`
//! for every preset × mode, every example and every target; `--help` runs.

#[path = "../../compose/tests/common/mod.rs"]
mod common;

use common::{Case, all_cases, missing_tool};
use plugin_backup::{BACKUP, Plugin, RESTORE};
use redplate_config::Target;
use redplate_plugin_sdk::{Generator, NativeHost, Severity};
use std::path::Path;
use std::process::Command;

fn render(case: &Case) -> Vec<(String, Vec<u8>)> {
    let out = Plugin::generate(&case.input.to_string(), &NativeHost::default())
        .unwrap_or_else(|d| panic!("{}: generate failed: {d:#?}", case.name));
    assert!(out.diagnostics.iter().all(|d| d.severity != Severity::Error), "{}: {:#?}", case.name, out.diagnostics);
    let paths: Vec<_> = out.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, [BACKUP, RESTORE], "{}", case.name);
    for a in &out.artifacts {
        assert!(a.executable, "{}: {} must be executable", case.name, a.path);
        assert_eq!(a.media_type, "text/x-shellscript");
    }
    out.artifacts.into_iter().map(|a| (a.path, a.content)).collect()
}

fn cases() -> Vec<Case> {
    let mut all = all_cases(Target::Local);
    for mut c in all_cases(Target::Compose).into_iter().chain(all_cases(Target::Kubernetes)) {
        c.name = format!("{}@{}", c.name, c.input["target"].as_str().unwrap_or_default());
        all.push(c);
    }
    all
}

fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn write_script(dir: &Path, path: &str, content: &[u8]) -> std::path::PathBuf {
    let file = dir.join(path);
    common::write(&file, &String::from_utf8_lossy(content));
    file
}

#[test]
fn scripts_pass_shellcheck_for_every_preset_mode_example_and_target() {
    if !has("shellcheck") {
        return missing_tool("shellcheck", "apt-get install shellcheck");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut files = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        for (path, content) in render(case) {
            let file =
                write_script(&dir.path().join(format!("{i:03}-{}", case.name.replace('@', "-"))), &path, &content);
            let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap_or_else(|e| panic!("bash: {e}"));
            assert!(syntax.status.success(), "{} {path}: {}", case.name, String::from_utf8_lossy(&syntax.stderr));
            files.push(file);
        }
    }
    // One run over every script; default checks at the lowest severity (style).
    let out = Command::new("shellcheck")
        .args(["--shell=bash", "--severity=style", "--external-sources"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("shellcheck: {e}"));
    assert!(out.status.success(), "shellcheck found problems:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("shellcheck passed for {} scripts", files.len());
}

#[test]
fn a_bad_script_is_caught_by_shellcheck() {
    // The proof above only counts if shellcheck flags a real mistake here.
    if !has("shellcheck") {
        return missing_tool("shellcheck", "apt-get install shellcheck");
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = write_script(dir.path(), "bad.sh", b"#!/usr/bin/env bash\nrm -rf $DIR/*\n");
    let out = Command::new("shellcheck").arg(&file).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
}

#[test]
fn help_runs_and_needs_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for case in all_cases(Target::Local).into_iter().take(4) {
        for (path, content) in render(&case) {
            let file = write_script(dir.path(), &path, &content);
            let out = Command::new("bash").arg(&file).arg("--help").output().unwrap_or_else(|e| panic!("{e}"));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{} {path} --help: {}", case.name, String::from_utf8_lossy(&out.stderr));
            assert!(text.starts_with("Usage: "), "{text}");
            assert!(text.contains("REDIS_PASSWORD_FILE"), "{text}");
        }
    }
}

#[test]
fn scripts_never_pass_a_password_on_a_command_line() {
    for case in cases() {
        for (path, content) in render(&case) {
            let text = String::from_utf8_lossy(&content);
            assert!(!text.contains(" -a "), "{} {path}: `-a`", case.name);
            assert!(text.contains("REDISCLI_AUTH"), "{} {path}", case.name);
            assert!(text.starts_with("#!/usr/bin/env bash\n"), "{} {path}", case.name);
            assert!(text.contains("\nset -euo pipefail\n"), "{} {path}", case.name);
            if let Some(users) = case.input["secrets"]["users"].as_object() {
                for u in users.values() {
                    let pw = u["password"].as_str().unwrap_or("x");
                    assert!(!text.contains(pw), "{} {path}: a password is in the script", case.name);
                }
            }
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for case in cases() {
        assert_eq!(render(&case), render(&case), "{}", case.name);
    }
}

#[test]
fn the_plugin_lays_out_its_templates_exactly_as_handlebars_does() {
    for case in cases() {
        // Without overrides the plugin renders its templates itself...
        let host = NativeHost::default();
        let native = Plugin::generate(&case.input.to_string(), &host).unwrap_or_else(|d| panic!("{d:#?}"));
        assert_eq!(host.rendered.borrow().as_slice(), &[] as &[String], "{}: templates left to the host", case.name);
        // ...and with each "overridden" by itself, Handlebars gives the same bytes.
        let mut through_templates = Case { name: case.name.clone(), input: case.input.clone() };
        through_templates.input["template_overrides"] =
            serde_json::json!(["backup-common.sh", "backup.sh", "restore.sh"]);
        let host = NativeHost::default();
        let hbs = Plugin::generate(&through_templates.input.to_string(), &host).unwrap_or_else(|d| panic!("{d:#?}"));
        assert!(host.rendered.borrow().len() >= 3, "{}", case.name);
        assert_eq!(native.artifacts.len(), hbs.artifacts.len(), "{}", case.name);
        for (a, b) in native.artifacts.iter().zip(&hbs.artifacts) {
            assert_eq!(
                String::from_utf8_lossy(&a.content),
                String::from_utf8_lossy(&b.content),
                "{} {}: the plugin's layout differs from Handlebars",
                case.name,
                a.path
            );
        }
    }
}

#[test]
fn backup_reads_a_replica_and_restore_targets_the_master() {
    let sets = ["deployment.mode=sentinel".to_owned(), "deployment.name=shop".to_owned()];
    let input =
        common::input_for("", "t.yaml", Some(redplate_config::model::Environment::Staging), &sets, Target::Compose);
    let case = Case { name: "staging-sentinel".into(), input };
    let scripts = render(&case);
    let text = |i: usize| String::from_utf8_lossy(&scripts[i].1).into_owned();
    assert!(text(0).contains("DEFAULT_REDIS_HOST='shop-1'"), "backup.sh should read from a replica");
    assert!(text(1).contains("DEFAULT_REDIS_HOST='shop-0'"), "restore.sh should restore the master");
    assert!(text(0).contains("DEFAULT_REDIS_TLS='1'") && text(0).contains("DEFAULT_REDIS_PORT='6380'"));
    assert!(text(0).contains("DEFAULT_BACKUP_PREFIX='shop'") && text(1).contains("DEFAULT_BACKUP_PREFIX='shop'"));
}

#[test]
fn the_presets_backup_user_runs_the_scripts_on_every_target() {
    use redplate_config::model::Environment;
    for env in [Environment::Staging, Environment::Production] {
        for target in [Target::Local, Target::Compose] {
            let input = common::input_for("", "t.yaml", Some(env), &[], target);
            let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
            assert!(out.diagnostics.is_empty(), "{env} {target:?}: {:#?}", out.diagnostics);
            for a in &out.artifacts {
                let text = String::from_utf8_lossy(&a.content);
                assert!(text.contains("DEFAULT_REDIS_USER='backup'\n"), "{env} {target:?} {}:\n{text}", a.path);
                assert!(
                    text.contains("DEFAULT_REDIS_PASSWORD_FILE=\"$SCRIPT_DIR/../secrets/backup.password\"\n"),
                    "{env} {target:?} {}",
                    a.path
                );
            }
        }
    }
}

#[test]
fn without_a_backup_user_local_falls_back_to_the_backends_admin_and_compose_warns() {
    let users = "security:\n  users:\n    - { name: replication, role: replication, password: { generate: true } }\n";
    let env = Some(redplate_config::model::Environment::Production);
    let input = common::input_for(users, "t.yaml", env, &[], Target::Local);
    let scripts = render(&Case { name: "production@local".into(), input });
    let backup = String::from_utf8_lossy(&scripts[0].1).into_owned();
    assert!(backup.contains("DEFAULT_REDIS_USER='redplate-admin'"), "{backup}");
    assert!(backup.contains("DEFAULT_REDIS_PASSWORD_FILE=\"$SCRIPT_DIR/../secrets/redplate-admin.password\""));
    // A disabled backup user is no backup user.
    let users =
        format!("{users}    - {{ name: backup, role: backup, enabled: false, password: {{ generate: true }} }}\n");
    let input = common::input_for(&users, "t.yaml", env, &[], Target::Compose);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:?}"));
    let codes: Vec<&str> = out.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["backup.no-backup-user"]);
}

#[test]
fn restore_names_one_node_by_its_port_and_its_data_folder() {
    // The local target gives every node its own port and data folder, so a
    // default that mixes two nodes shows.
    for case in all_cases(Target::Local) {
        let nodes = case.input["topology"]["nodes"].as_array().cloned().unwrap_or_default();
        for (path, content) in render(&case) {
            let text = String::from_utf8_lossy(&content);
            let value = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("DEFAULT_REDIS_{key}=")))
                    .map(|v| v.trim_matches(['\'', '"']).to_owned())
                    .unwrap_or_else(|| panic!("{} {path}: no DEFAULT_REDIS_{key}", case.name))
            };
            let (port, dir) = (value("PORT"), value("DATA_DIR"));
            let node = nodes
                .iter()
                .find(|n| [&n["ports"]["client"], &n["ports"]["tls"]].iter().any(|p| p.to_string() == port))
                .unwrap_or_else(|| panic!("{} {path}: port {port} is no node's", case.name));
            let want = node["data_dir"].as_str().unwrap_or_default();
            assert!(
                dir.ends_with(&format!("/../{want}")),
                "{} {path}: port {port} is `{}`, whose data folder is `{want}`, not `{dir}`",
                case.name,
                node["name"]
            );
            if path.ends_with("restore.sh") {
                assert_eq!(node["role"], "master", "{} {path}: restore.sh must default to a master", case.name);
            }
        }
    }
}

#[test]
fn examples_match_their_reviewed_snapshots() {
    let dir = common::workspace_root().join("examples");
    for case in all_cases(Target::Local) {
        if !dir.join(format!("{}.yaml", case.name)).is_file() {
            continue;
        }
        for (path, content) in render(&case) {
            let file = path.trim_start_matches("backup/");
            common::assert_snapshot(&format!("{}.{file}", case.name), &String::from_utf8_lossy(&content));
        }
    }
}

#[test]
fn a_missing_compression_tool_is_a_clear_error() {
    // A PATH with the tools backup.sh needs before it connects, but no zstd.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    for tool in ["dirname", "date", "redis-cli", "sha256sum", "cat"] {
        let found =
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap_or_else(|e| panic!("{e}"));
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        if path.is_empty() {
            return missing_tool(tool, "the missing-tool test");
        }
        std::os::unix::fs::symlink(&path, bin.join(tool)).unwrap_or_else(|e| panic!("{e}"));
    }
    let case = all_cases(Target::Local).into_iter().find(|c| c.name == "production-standalone");
    let Some(case) = case else { panic!("no production-standalone case") };
    let scripts = render(&case);
    let file = write_script(dir.path(), &scripts[0].0, &scripts[0].1);
    let bash = Command::new("sh").args(["-c", "command -v bash"]).output().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(String::from_utf8_lossy(&bash.stdout).trim())
        .arg(&file)
        .env("PATH", &bin)
        .env("BACKUP_COMPRESSION", "zstd")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`zstd` is required") && stderr.contains("BACKUP_COMPRESSION=gzip"), "{stderr}");
}
