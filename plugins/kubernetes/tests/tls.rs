//! The production render, TLS included, run for real: certificates made
//! with openssl stand for the TLS Secret; the rendered init script writes the
//! config and the ACL file from (test) Secret files; `redis-server` boots
//! from them with `port 0`; the rendered probes pass over TLS with the probe
//! user; the users get exactly their permissions; the exporter's password
//! file fits its address; the rendered backup script streams an RDB over TLS
//! as the replication user, checksums it and applies the retention.

mod common;

use common::sandbox::{Server, cli_with, edit, make_certs, pod_root, run_script};
use common::{config_map_data, fake_password, input_for, render, system_tool, tempdir, tool};
use redplate_config::model::Environment;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn production_tls_node_boots_probes_and_backs_up() {
    let tools = (system_tool("redis-server"), system_tool("redis-cli"), system_tool("openssl"), tool("python"));
    let (Some(server), Some(_), Some(openssl), Some(python)) = tools else { return };
    // The production preset as it is, standalone; only active defrag is off
    // (Debian's redis-server lacks the jemalloc it needs; the upstream image has it).
    let sets = ["deployment.mode=standalone", "deployment.name=boot", "memory.active_defrag=false"].map(String::from);
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    assert!(config.security.tls.enabled && config.security.tls.disable_plain_port);
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "boot-config");
    let scripts = config_map_data(&python, &out, "boot-scripts");
    let root = tempdir();
    let r = pod_root(root.path(), "boot-0", &conf, &scripts);
    let tls = r.join("tls");
    make_certs(&openssl, &tls);
    run_script(&r, "init.sh");

    use std::os::unix::fs::PermissionsExt;
    for f in ["run/users.acl", "run/redis.conf", "exporter/passwords.json"] {
        let mode = std::fs::metadata(r.join(f)).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let acl = std::fs::read_to_string(r.join("run/users.acl")).expect("acl");
    assert!(!acl.contains(&fake_password("probe")) && acl.contains("user probe on #"), "{acl}");

    let port = common::sandbox::free_port();
    let child = Command::new(server)
        .arg(r.join("run/redis.conf"))
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let mut srv = Server(child);
    let probe = ("probe", fake_password("probe"));
    let exporter = ("exporter", fake_password("exporter"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli_with("127.0.0.1", port, Some((probe.0, &probe.1)), Some(&tls), &["ping"]) != "PONG" {
        assert!(srv.0.try_wait().ok().flatten().is_none(), "redis-server exited");
        assert!(Instant::now() < deadline, "redis-server did not answer over TLS");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The rendered probes, TLS-aware, as the probe user through REDISCLI_AUTH.
    edit(&r.join("scripts/probe.sh"), "-p 6380", &format!("-p {port}"));
    for check in ["live", "ready"] {
        let st = Command::new("sh").arg(r.join("scripts/probe.sh")).args(["redis", check]).status().expect("probe");
        assert!(st.success(), "probe.sh redis {check}");
    }
    // Plain text is off; `default` is off; each system user gets only its share.
    let no_tls = Command::new("redis-cli").args(["-p", &port.to_string(), "ping"]).output().expect("redis-cli");
    assert_ne!(String::from_utf8_lossy(&no_tls.stdout).trim(), "PONG");
    let tcli = |user: Option<(&str, &str)>, args: &[&str]| cli_with("127.0.0.1", port, user, Some(&tls), args);
    assert!(tcli(None, &["ping"]).contains("NOAUTH"));
    assert!(tcli(Some((probe.0, &probe.1)), &["info"]).contains("NOPERM"));
    assert!(tcli(Some((exporter.0, &exporter.1)), &["set", "k", "v"]).contains("NOPERM"));
    let maxmemory = tcli(Some((exporter.0, &exporter.1)), &["config", "get", "maxmemory"]);
    assert!(maxmemory.ends_with(&(4u64 << 30).div_euclid(100).saturating_mul(80).to_string()), "{maxmemory}");
    for (key, want) in [("appendonly", "yes"), ("maxmemory-policy", "noeviction"), ("tls-replication", "yes")] {
        let got = tcli(Some((exporter.0, &exporter.1)), &["config", "get", key]);
        assert!(got.ends_with(want), "{key}: {got}");
    }
    // The exporter's password file: keyed by the rediss:// address it scrapes.
    let pw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("exporter/passwords.json")).expect("pw")).expect("JSON");
    let (addr, secret) = pw.as_object().and_then(|m| m.iter().next()).expect("one entry");
    assert_eq!(addr, "rediss://boot-0.boot-headless.redis.svc.cluster.local:6380");
    assert_eq!(secret, &fake_password("exporter"));

    // The rendered backup script, as the replication user over TLS.
    let backup = r.join("scripts/backup.sh");
    edit(&backup, "boot-0.boot-headless.redis.svc.cluster.local", "127.0.0.1");
    edit(&backup, "-p 6380", &format!("-p {port}"));
    run_script(&r, "backup.sh");
    std::thread::sleep(Duration::from_millis(1100)); // a new timestamp
    edit(&backup, "-gt 14 ]", "-gt 1 ]");
    run_script(&r, "backup.sh");
    let mut files: Vec<String> = std::fs::read_dir(r.join("backups"))
        .expect("backups")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one backup and its checksum kept: {files:?}");
    assert!(files[0].starts_with("127-") && files[0].ends_with(".rdb.gz") && files[1].ends_with(".rdb.gz.sha256"));
    let check =
        Command::new("sha256sum").current_dir(r.join("backups")).arg("-c").arg(&files[1]).output().expect("sha256sum");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let gz = Command::new("gzip").arg("-t").arg(r.join("backups").join(&files[0])).status().expect("gzip");
    assert!(gz.success());
}
