//! The proof that a backup restores: a real `redis-server` on a free
//! loopback port, a few thousand keys of several types, `DEBUG DIGEST`
//! before backup.sh and after FLUSHALL + restore.sh must match — with and
//! without AOF, compressed and encrypted. A corrupted backup must make
//! restore.sh fail before it touches the server. The production preset's
//! scripts run as its `backup` user, holding the ACL redis-conf renders.

#[path = "../../compose/tests/common/mod.rs"]
mod common;

use common::{input_for, make_certs, missing_tool, write, write_placeholders};
use plugin_backup::Plugin;
use redplate_config::Target;
use redplate_config::model::Environment;
use redplate_plugin_sdk::{Generator, NativeHost};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PASSWORD: &str = "pw-default-Zq9";

fn has(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("no free port: {e}"));
    l.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

/// A `redis-server` started from a config file (daemonized, with a pid
/// file); killed on drop, even when the test panics.
struct Redis {
    port: u16,
    /// The CA certificate, when the server speaks TLS only.
    ca: Option<PathBuf>,
    conf: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
}

impl Redis {
    fn start(root: &Path, aof: bool, tls: Option<&Path>) -> Redis {
        Self::start_with(root, aof, tls, "")
    }

    fn start_with(root: &Path, aof: bool, tls: Option<&Path>, extra: &str) -> Redis {
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let conf = root.join("redis.conf");
        let pidfile = root.join("redis.pid");
        let log = root.join("redis.log");
        let listen = match tls {
            Some(d) => format!(
                "port 0\ntls-port {port}\ntls-cert-file {0}/tls.crt\ntls-key-file {0}/tls.key\ntls-ca-cert-file {0}/ca.crt\ntls-auth-clients no\ntls-replication yes\n",
                d.display()
            ),
            None => format!("port {port}\n"),
        };
        let text = format!(
            "{listen}bind 127.0.0.1\ndir {}\ndbfilename dump.rdb\nappendonly {}\nappenddirname appendonlydir\nsave \"\"\ndaemonize yes\npidfile {}\nlogfile {}\nenable-debug-command yes\nuser default on >{PASSWORD} ~* &* +@all\n{extra}",
            data.display(),
            if aof { "yes" } else { "no" },
            pidfile.display(),
            log.display(),
        );
        write(&conf, &text);
        let r = Redis { port, ca: tls.map(|d| d.join("ca.crt")), conf, pidfile, log };
        let out = Command::new("redis-server").arg(&r.conf).output().unwrap_or_else(|e| panic!("redis-server: {e}"));
        assert!(out.status.success(), "redis-server failed: {}", String::from_utf8_lossy(&out.stderr));
        r.wait_up(Duration::from_secs(15));
        r
    }

    fn start_cmd(&self) -> String {
        format!("redis-server '{}'", self.conf.display())
    }

    fn wait_up(&self, limit: Duration) {
        let t = Instant::now();
        while self.try_cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                t.elapsed() < limit,
                "redis on port {} did not answer within {limit:?}; log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        self.cli_as("default", PASSWORD, args)
    }

    /// `redis-cli` as `user`; the reply (errors included) when it ran.
    fn cli_as(&self, user: &str, password: &str, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--user", user]);
        if let Some(ca) = &self.ca {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = cmd.args(args).env("REDISCLI_AUTH", password).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).unwrap_or_else(|| panic!("redis-cli {args:?} failed; log:\n{}", self.log_text()))
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(&self.pidfile).unwrap_or_default().trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let pid = self.pid();
        if !pid.is_empty() {
            let _ = Command::new("kill").args(["-9", &pid]).output();
        }
    }
}

/// Four thousand keys: strings, hashes, lists, sets, sorted sets and streams, some with TTLs.
const FILL: &str = r"
for i = 1, 700 do
  redis.call('SET', 'str:' .. i, 'value-' .. i)
  redis.call('HSET', 'hash:' .. i, 'a', i, 'b', 'x' .. i)
  redis.call('RPUSH', 'list:' .. i, i, i + 1, i + 2)
  redis.call('SADD', 'set:' .. i, 'm' .. i, 'n' .. i)
  redis.call('ZADD', 'zset:' .. i, i, 'z' .. i, i * 2, 'w' .. i)
  if i % 7 == 0 then redis.call('PEXPIRE', 'str:' .. i, 3600000) end
end
for i = 1, 300 do
  redis.call('XADD', 'stream:' .. (i % 10), i .. '-1', 'f', i)
end
return redis.call('DBSIZE')
";

struct Run {
    out: Output,
}

impl Run {
    fn ok(&self, what: &str) -> String {
        assert!(
            self.out.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.out.status,
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        );
        String::from_utf8_lossy(&self.out.stdout).trim().to_owned()
    }
}

/// Runs a rendered script under a hard time limit.
fn run(script: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.arg("180").arg("bash").arg(script).args(args);
    // Only what the test sets: the scripts' own defaults otherwise.
    for k in ["REDIS_USER", "REDIS_PASSWORD_FILE", "REDISCLI_AUTH", "REDIS_HOST", "REDIS_TLS", "REDIS_DATA_DIR"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run { out: cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display())) }
}

fn round_trip(aof: bool, compression: &str, method: &str, tls: bool) {
    for tool in ["redis-server", "redis-cli", "openssl", "sha256sum", "timeout", compression] {
        if !has(tool) {
            return missing_tool(tool, "the backup round trip");
        }
    }
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root.path();
    // The host's own CA convention: `secrets.tls` names `tls/…` in the rendered tree.
    let certs = root.join("tls");
    // Render from a real template: development preset + auth + the backup settings under test.
    let sets = [
        "security.auth_enabled=true".to_owned(),
        "security.password={file: /run/secrets/redis-default}".to_owned(),
        format!("persistence.mode={}", if aof { "mixed" } else { "rdb" }),
        format!("backup.compression={compression}"),
        "backup.encryption.enabled=true".to_owned(),
        "backup.retention_count=2".to_owned(),
        "backup.timeout=60s".to_owned(),
    ];
    let tls_sets = [
        "security.tls.enabled=true".to_owned(),
        "security.tls.disable_plain_port=true".to_owned(),
        "security.tls.cert_source=self_signed".to_owned(),
    ];
    let sets: Vec<String> = sets.into_iter().chain(tls_sets.into_iter().filter(|_| tls)).collect();
    let input = input_for("deployment:\n  name: rt\n", "rt.yaml", Some(Environment::Development), &sets, Target::Local);
    write_placeholders(root, &input);
    if tls {
        make_certs(&certs);
    }
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    for a in &out.artifacts {
        write(&root.join(&a.path), &String::from_utf8_lossy(&a.content));
    }
    let key = root.join("backup.key");
    let rand = Command::new("openssl").args(["rand", "-hex", "32"]).output().unwrap_or_else(|e| panic!("{e}"));
    write(&key, &String::from_utf8_lossy(&rand.stdout));

    let backup_sh = std::fs::read_to_string(root.join("backup/backup.sh")).unwrap_or_default();
    // With TLS the rendered defaults alone must reach the server (only the port is overridden).
    assert_eq!(backup_sh.contains("DEFAULT_REDIS_TLS='1'"), tls);
    assert_eq!(backup_sh.contains("DEFAULT_REDIS_CACERT=\"$SCRIPT_DIR/../tls/ca.crt\""), tls);
    let redis = Redis::start(root, aof, tls.then_some(certs.as_path()));
    let keys = redis.cli(&["EVAL", FILL, "0"]);
    assert!(keys.parse::<u32>().unwrap_or(0) >= 3500, "only {keys} keys written");
    let digest = redis.cli(&["DEBUG", "DIGEST"]);
    assert_ne!(digest, "0".repeat(40));

    let backups = root.join("backups");
    let env = vec![
        ("REDIS_PORT", redis.port.to_string()),
        ("BACKUP_DIR", backups.display().to_string()),
        ("BACKUP_KEY_FILE", key.display().to_string()),
        ("BACKUP_METHOD", method.to_owned()),
        ("RESTORE_TIMEOUT", "30".to_owned()),
    ];
    let file = run(&root.join("backup/backup.sh"), &[], &env).ok("backup.sh");
    let file = PathBuf::from(file);
    let ext = if compression == "zstd" { ".rdb.zst.enc" } else { ".rdb.gz.enc" };
    assert!(file.to_string_lossy().ends_with(ext), "{}", file.display());
    assert!(file.is_file() && PathBuf::from(format!("{}.sha256", file.display())).is_file());
    let encrypted = std::fs::read(&file).unwrap_or_default();
    assert!(encrypted.starts_with(b"Salted__"), "the backup is not openssl-encrypted");

    // A corrupted backup: restore.sh refuses before touching the server.
    let bad = backups.join("corrupt.rdb.zst.enc");
    let mut bytes = encrypted.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&bad, &bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(format!("{}.sha256", file.display()), format!("{}.sha256", bad.display()))
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = redis.pid();
    let restore = root.join("backup/restore.sh");
    let start = redis.start_cmd();
    let failed = run(&restore, &["--yes", "--start-cmd", &start, &bad.display().to_string()], &env);
    assert!(!failed.out.status.success(), "restore.sh accepted a corrupted backup");
    let stderr = String::from_utf8_lossy(&failed.out.stderr);
    eprintln!("refused restore:\n{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert_eq!(redis.cli(&["DEBUG", "DIGEST"]), digest, "the data changed after a refused restore");
    assert_eq!(redis.pid(), pid, "the server was restarted by a refused restore");

    // Without --yes nothing happens either.
    let unconfirmed = run(&restore, &["--start-cmd", &start, &file.display().to_string()], &env);
    assert!(!unconfirmed.out.status.success());

    // The real round trip.
    redis.cli(&["FLUSHALL"]);
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
    let restored = run(&restore, &["--yes", "--start-cmd", &start, &file.display().to_string()], &env);
    restored.ok("restore.sh");
    eprintln!("restore.sh log:\n{}", String::from_utf8_lossy(&restored.out.stderr));
    redis.wait_up(Duration::from_secs(15));
    assert_eq!(redis.cli(&["DEBUG", "DIGEST"]), digest, "DEBUG DIGEST differs after restore");
    assert_eq!(redis.cli(&["CONFIG", "GET", "appendonly"]).lines().last(), Some(if aof { "yes" } else { "no" }));

    // The restored data survives a restart (with AOF: from the new AOF).
    let _ = redis.try_cli(&["SHUTDOWN", "NOSAVE"]);
    let t = Instant::now();
    while redis.try_cli(&["PING"]).is_some() {
        assert!(t.elapsed() < Duration::from_secs(15), "redis did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("redis-server").arg(&redis.conf).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    redis.wait_up(Duration::from_secs(15));
    let t = Instant::now();
    while redis.cli(&["INFO", "persistence"]).contains("loading:1") {
        assert!(t.elapsed() < Duration::from_secs(15), "redis is still loading");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(redis.cli(&["DEBUG", "DIGEST"]), digest, "DEBUG DIGEST differs after a restart");
    if aof {
        let log = redis.log_text();
        assert!(log.contains("appendonly.aof.1.base.rdb"), "the AOF base was not loaded:\n{log}");
    }

    // Retention: two more backups leave the newest two.
    run(&root.join("backup/backup.sh"), &[], &env).ok("second backup.sh");
    run(&root.join("backup/backup.sh"), &[], &env).ok("third backup.sh");
    let mut kept: Vec<_> = std::fs::read_dir(&backups)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("rt-") && !n.ends_with(".sha256"))
        .collect();
    kept.sort();
    // An AOF copy is pruned with its RDB: every one left belongs to a kept backup.
    let (aof_copies, rdbs): (Vec<String>, Vec<String>) = kept.into_iter().partition(|n| n.contains(".aof.tar"));
    for copy in &aof_copies {
        let stem = copy.split(".aof.tar").next().unwrap_or_default();
        assert!(rdbs.iter().any(|r| r.starts_with(&format!("{stem}.rdb"))), "{copy} outlived its RDB: {rdbs:?}");
    }
    // (Kept only when the data directory is readable here: not with `redis-cli --rdb`.)
    assert!(aof_copies.is_empty() || aof_copies.len() == rdbs.len(), "{aof_copies:?} vs {rdbs:?}");
    assert!(aof || aof_copies.is_empty(), "no AOF, no AOF copy: {aof_copies:?}");
    let kept = rdbs;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()));
}

#[test]
fn rdb_only_zstd_encrypted_round_trip_from_the_data_dir() {
    round_trip(false, "zstd", "datadir", false);
}

#[test]
fn aof_gzip_encrypted_round_trip_over_redis_cli_rdb() {
    round_trip(true, "gzip", "rdb", false);
}

#[test]
fn aof_zstd_encrypted_round_trip() {
    round_trip(true, "zstd", "auto", false);
}

#[test]
fn tls_only_round_trip_with_the_rendered_tls_settings() {
    round_trip(true, "zstd", "rdb", true);
}

#[test]
fn restore_refuses_a_replica_and_leaves_it_alone() {
    for tool in ["redis-server", "redis-cli", "sha256sum", "timeout", "gzip"] {
        if !has(tool) {
            return missing_tool(tool, "the replica refusal test");
        }
    }
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root.path();
    let sets = [
        "security.auth_enabled=true".to_owned(),
        "security.password={file: /run/secrets/redis-default}".to_owned(),
        "backup.compression=gzip".to_owned(),
    ];
    let input = input_for("deployment:\n  name: rr\n", "rr.yaml", Some(Environment::Development), &sets, Target::Local);
    write_placeholders(root, &input);
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    for a in &out.artifacts {
        write(&root.join(&a.path), &String::from_utf8_lossy(&a.content));
    }
    let master = Redis::start(&root.join("master"), false, None);
    master.cli(&["EVAL", FILL, "0"]);
    let digest = master.cli(&["DEBUG", "DIGEST"]);
    let replica = Redis::start_with(
        &root.join("replica"),
        false,
        None,
        &format!("replicaof 127.0.0.1 {}\nmasterauth {PASSWORD}\n", master.port),
    );
    let t = Instant::now();
    while replica.cli(&["DEBUG", "DIGEST"]) != digest {
        assert!(t.elapsed() < Duration::from_secs(20), "the replica did not sync");
        std::thread::sleep(Duration::from_millis(100));
    }
    let backups = root.join("backups");
    let env = vec![("REDIS_PORT", master.port.to_string()), ("BACKUP_DIR", backups.display().to_string())];
    let file = run(&root.join("backup/backup.sh"), &[], &env).ok("backup.sh");
    let env = vec![("REDIS_PORT", replica.port.to_string()), ("BACKUP_DIR", backups.display().to_string())];
    let pid = replica.pid();
    let refused = run(&root.join("backup/restore.sh"), &["--yes", "--start-cmd", &replica.start_cmd(), &file], &env);
    assert!(!refused.out.status.success(), "restore.sh restored onto a replica");
    let stderr = String::from_utf8_lossy(&refused.out.stderr);
    assert!(stderr.contains("is a replica"), "{stderr}");
    assert_eq!(replica.pid(), pid, "the replica was restarted");
    assert_eq!(replica.cli(&["DEBUG", "DIGEST"]), digest);
}

/// The production preset as it is, standalone, with a CA made here instead
/// of the preset's certificate files: backup.sh and restore.sh run on their
/// rendered defaults — the `backup` user and its password file — against a
/// server that holds the `users.acl` line redis-conf renders for that user.
#[test]
fn production_preset_round_trip_runs_as_the_backup_user() {
    use plugin_redis_conf::RedisConf;
    use sha2::{Digest, Sha256};
    for tool in ["redis-server", "redis-cli", "openssl", "sha256sum", "timeout", "zstd"] {
        if !has(tool) {
            return missing_tool(tool, "the production backup round trip");
        }
    }
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = root.path();
    let sets = [
        "deployment.mode=standalone".to_owned(),
        "security.tls.cert_file=tls/tls.crt".to_owned(),
        "security.tls.key_file=tls/tls.key".to_owned(),
        "security.tls.ca_file=tls/ca.crt".to_owned(),
    ];
    let mut input =
        input_for("deployment:\n  name: prod\n", "prod.yaml", Some(Environment::Production), &sets, Target::Local);
    // The password the host would give the preset's `backup` user, and its hash for users.acl.
    let password = input["secrets"]["users"]["backup"]["password"].as_str().unwrap_or_default().to_owned();
    assert!(!password.is_empty(), "the production preset has no `backup` user: {}", input["secrets"]);
    input["secrets"]["users"]["backup"]["sha256"] = hex::encode(Sha256::digest(password.as_bytes())).into();
    write_placeholders(root, &input);
    make_certs(&root.join("tls"));

    let conf = RedisConf::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    let acl = conf.artifacts.iter().find(|a| a.path == "redis/users.acl").map(|a| String::from_utf8_lossy(&a.content));
    let acl = acl.unwrap_or_else(|| panic!("redis-conf rendered no users.acl"));
    let line = acl.lines().find(|l| l.starts_with("user backup ")).unwrap_or_else(|| panic!("no backup user:\n{acl}"));
    assert!(line.contains(" resetkeys ") && line.contains(" -@all "), "{line}");
    let out = Plugin::generate(&input.to_string(), &NativeHost::default()).unwrap_or_else(|d| panic!("{d:#?}"));
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
    for a in &out.artifacts {
        write(&root.join(&a.path), &String::from_utf8_lossy(&a.content));
    }
    let backup_sh = root.join("backup/backup.sh");
    let text = std::fs::read_to_string(&backup_sh).unwrap_or_default();
    assert!(text.contains("DEFAULT_REDIS_USER='backup'") && text.contains("DEFAULT_REDIS_TLS='1'"), "{text}");

    // The harness keeps `default` for itself (filling, DEBUG DIGEST); the scripts never use it.
    let redis = Redis::start_with(root, true, Some(&root.join("tls")), &format!("{line}\n"));
    redis.cli(&["EVAL", FILL, "0"]);
    let digest = redis.cli(&["DEBUG", "DIGEST"]);
    // Least privilege: no keys, no data commands, no configuration changes.
    for denied in
        [&["GET", "str:1"][..], &["KEYS", "*"], &["FLUSHALL"], &["CONFIG", "SET", "maxmemory", "1"], &["ACL", "LIST"]]
    {
        let reply = redis.cli_as("backup", &password, denied).unwrap_or_default();
        assert!(reply.starts_with("NOPERM"), "the backup user may run {denied:?}: {reply}");
    }
    redis.cli(&["ACL", "LOG", "RESET"]);

    let key = root.join("backup.key");
    write(&key, "0123456789abcdef0123456789abcdef\n");
    let backups = root.join("backups");
    let env = |method: &str| {
        vec![
            ("REDIS_PORT", redis.port.to_string()),
            ("BACKUP_DIR", backups.display().to_string()),
            ("BACKUP_KEY_FILE", key.display().to_string()),
            ("BACKUP_METHOD", method.to_owned()),
            ("RESTORE_TIMEOUT", "30".to_owned()),
        ]
    };
    // `rdb` streams with REPLCONF + SYNC; `datadir` finds the file through CONFIG GET.
    run(&backup_sh, &[], &env("rdb")).ok("backup.sh (redis-cli --rdb)");
    let file = run(&backup_sh, &[], &env("datadir")).ok("backup.sh (data folder)");
    assert!(file.ends_with(".rdb.zst.enc"), "{file}");
    let log = redis.cli(&["ACL", "LOG"]);
    assert!(log.is_empty(), "the backup user was refused a command:\n{log}");

    redis.cli(&["FLUSHALL"]);
    let restored =
        run(&root.join("backup/restore.sh"), &["--yes", "--start-cmd", &redis.start_cmd(), &file], &env("auto"));
    restored.ok("restore.sh");
    let stderr = String::from_utf8_lossy(&restored.out.stderr);
    // It stopped the server itself, as the backup user, having read the data folder from it.
    assert!(stderr.contains("stopping Redis with SHUTDOWN NOSAVE") && !stderr.contains("does not answer"), "{stderr}");
    redis.wait_up(Duration::from_secs(15));
    assert_eq!(redis.cli(&["DEBUG", "DIGEST"]), digest, "DEBUG DIGEST differs after restore");
    // The restarted server's log covers the last step (DBSIZE).
    let counted = stderr.lines().find_map(|l| l.split_once("restored: ")).map(|(_, rest)| rest.split(' ').next());
    assert!(counted.flatten().is_some_and(|n| n.parse::<u32>().is_ok()), "{stderr}");
    let log = redis.cli(&["ACL", "LOG"]);
    assert!(log.is_empty(), "the backup user was refused a command:\n{log}");
}
