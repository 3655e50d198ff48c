//! Test support shared by the four built-in strategy crates (each includes
//! it by path): input documents built from the real presets and examples
//! with `redplate-config`, a throwaway `redis-server` on a free loopback
//! port (killed on drop, bounded waits), and a minimal RESP client.

#![allow(dead_code)]

use redplate_config::model::Environment;
use redplate_config::{Format, load_str};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The input document a strategy receives for a template text, a preset and
/// `--set` assignments (`cache.strategy=write-behind`).
pub fn input(text: &str, preset: Option<Environment>, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
    let resolved = match load_str(text, Format::Yaml, "<test>", preset, &sets) {
        Ok(r) => r,
        Err(e) => panic!("the test template does not load: {e}"),
    };
    let config: serde_json::Value = serde_json::from_str(&redplate_config::export(&resolved.config))
        .unwrap_or_else(|e| panic!("export is not JSON: {e}"));
    serde_json::json!({
        "contract": "0.1.0",
        "name": resolved.config.deployment.name,
        "target": "local",
        "config": config,
        "topology": null,
        "strategy": null,
    })
    .to_string()
}

/// Whether a missing tool or snapshot fails the test rather than skipping:
/// `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `redis-server` is installed; missing, a test skips with a
/// visible message, or fails in CI.
pub fn redis_present() -> bool {
    if Command::new("redis-server").arg("--version").output().is_ok() {
        return true;
    }
    assert!(!in_ci(), "redis-server is required in CI");
    eprintln!("SKIPPED: redis-server is not installed");
    false
}

/// A preset alone with the strategy selected.
pub fn preset_input(env: Environment, strategy: &str, extra_sets: &[&str]) -> String {
    let mut sets = vec![format!("cache.strategy={strategy}")];
    sets.extend(extra_sets.iter().map(|s| (*s).to_owned()));
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    input("", Some(env), &sets)
}

/// `examples/<name>.yaml` with the strategy selected.
pub fn example_input(name: &str, strategy: &str, extra_sets: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut sets = vec![format!("cache.strategy={strategy}")];
    sets.extend(extra_sets.iter().map(|s| (*s).to_owned()));
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    input(&text, None, &sets)
}

/// Compares `actual` with `tests/snapshots/<name>` of the crate under test.
/// A missing snapshot is written (outside CI) for review; `UPDATE_SNAPSHOTS=1`
/// rewrites a changed one.
pub fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    if update || (!path.exists() && !in_ci()) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote snapshot {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("snapshot {}: {e}", path.display()));
    assert!(
        expected == actual,
        "snapshot `{name}` changed; review the diff and rerun with UPDATE_SNAPSHOTS=1:\n{actual}"
    );
}

/// Snapshots a whole plan: directives, key rules and diagnostics as JSON,
/// and every artifact as its own file under `<name>/`.
pub fn snapshot_plan(name: &str, plan: &redplate_plugin_sdk::Plan) {
    let summary = serde_json::json!({
        "directives": plan.directives,
        "key_rules": plan.key_rules,
        "diagnostics": plan.diagnostics,
        "artifacts": plan.artifacts.iter().map(|a| {
            serde_json::json!({ "path": a.path, "media_type": a.media_type, "executable": a.executable })
        }).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    text.push('\n');
    snapshot(&format!("{name}.plan.json"), &text);
    for a in &plan.artifacts {
        snapshot(&format!("{name}/{}", a.path), &String::from_utf8_lossy(&a.content));
    }
}

/// A `redis-server` started for one test; killed and cleaned up on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts `redis-server --port <free> --save '' --<name> <value> …`.
    /// Returns `None` (with a visible message) when `redis-server` is missing
    /// outside CI (see [`redis_present`]); panics when it exits instead of
    /// answering (a directive it refuses), quoting its log.
    pub fn start(directives: &[(String, String)]) -> Option<Redis> {
        if !redis_present() {
            return None;
        }
        // Another test may grab the free port between probe and bind: retry then.
        for attempt in 1..=3 {
            let mut redis = Redis::spawn(directives);
            match redis.wait_ready() {
                Ok(()) => return Some(redis),
                Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("redis-server exited before accepting connections:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(directives: &[(String, String)]) -> Redis {
        let port = free_port();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("redplate-strategy-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let log = std::fs::File::create(dir.join("redis.log")).unwrap_or_else(|e| panic!("cannot create log: {e}"));
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"]);
        cmd.arg("--dir").arg(&dir);
        for (name, value) in directives {
            cmd.arg(format!("--{name}")).arg(value);
        }
        let child = cmd
            .stdout(Stdio::from(log.try_clone().unwrap_or_else(|e| panic!("log: {e}"))))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        Redis { child, port, dir }
    }

    /// Waits (at most 10 s) until *this* server answers: a server of another
    /// test on the same port does not count. `Err` carries the log of a
    /// server that exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ours = format!("process_id:{}\r\n", self.child.id());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exit status {status}\n{}", self.log()));
            }
            if let Ok(mut c) = Conn::open(self.port)
                && c.cmd(&["INFO", "server"]).text().contains(&ours)
            {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "redis-server did not answer within 10s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// A new connection.
    pub fn conn(&self) -> Conn {
        Conn::open(self.port).unwrap_or_else(|e| panic!("cannot connect to redis on {}: {e}", self.port))
    }

    /// `CONFIG GET name`'s value.
    pub fn config_get(&self, name: &str) -> String {
        match self.conn().cmd(&["CONFIG", "GET", name]) {
            Reply::Array(Some(items)) if items.len() == 2 => items[1].text(),
            other => panic!("CONFIG GET {name}: unexpected reply {other:?}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("no free port: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("no local address: {e}"))
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// A bulk or simple string as text ("" for nil).
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) => s.clone(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }
    /// The items of an array reply (empty for anything else).
    pub fn items(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
    /// An integer reply.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
}

/// One connection speaking RESP2, with 5 s read and write timeouts.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(Conn { writer: stream.try_clone()?, reader: BufReader::new(stream) })
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).unwrap_or_else(|e| panic!("write {args:?}: {e}"));
        self.read().unwrap_or_else(|e| panic!("reply to {args:?}: {e}"))
    }

    /// `EVAL script numkeys keys… args…`.
    pub fn eval(&mut self, script: &str, keys: &[&str], args: &[&str]) -> Reply {
        let n = keys.len().to_string();
        let mut all = vec!["EVAL", script, n.as_str()];
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        self.cmd(&all)
    }

    /// Reads the next reply without sending anything (pub/sub messages).
    pub fn next(&mut self) -> Reply {
        self.read().unwrap_or_else(|e| panic!("no message: {e}"))
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.ends_with("\r\n") {
            return Err(std::io::Error::other(format!("truncated reply line {line:?}")));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        let num = || rest.parse::<i64>().map_err(|e| std::io::Error::other(format!("bad length {rest:?}: {e}")));
        Ok(match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(num()?),
            "$" => match usize::try_from(num()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut buf = vec![0; len + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(len);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match usize::try_from(num()?) {
                Err(_) => Reply::Array(None),
                Ok(len) => Reply::Array(Some((0..len).map(|_| self.read()).collect::<Result<_, _>>()?)),
            },
            _ => return Err(std::io::Error::other(format!("unknown reply {line:?}"))),
        })
    }
}
