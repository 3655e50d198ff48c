//! Shared by the integration tests that run real deployments: a
//! `REDPLATE_HOME` of their own, the binary run against it, and a guard that
//! destroys a deployment when the test ends (on panic too). Include it with
//! `mod support;` — each test binary compiles its own copy.
#![allow(dead_code, reason = "each test binary uses a different part of the kit")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_redplate");

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// Whether Redis is installed; in CI (`CI` set) its absence fails the test.
pub fn redis_present() -> bool {
    let ok = ["redis-server", "redis-sentinel", "redis-cli"]
        .iter()
        .all(|t| Command::new(t).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "redis-server, redis-sentinel and redis-cli are needed in CI");
        eprintln!("SKIPPED: redis-server / redis-sentinel / redis-cli not installed");
    }
    ok
}

/// One `REDPLATE_HOME` and the binary run against it.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home { dir: tempfile::Builder::new().prefix("redplate-test-").tempdir().expect("tempdir") }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-backend-plugin-cache");
        Command::new(BIN)
            .args(args)
            .env("REDPLATE_HOME", self.dir.path())
            .env("REDPLATE_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .current_dir(root())
            .output()
            .expect("run redplate")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "redplate {args:?} failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Deploys `template` (relative to the workspace root) and returns a
    /// guard that destroys it with `--purge` when dropped.
    pub fn deploy(&self, template: &str, extra: &[&str]) -> Deployed<'_> {
        let mut args = vec!["deploy", template, "--format", "json", "--quiet"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let d = Deployed { home: self, name: record["name"].as_str().unwrap_or_default().to_owned(), record };
        assert!(out.status.success(), "deploy {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        d
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running deployment; destroyed with `--purge` on drop.
pub struct Deployed<'a> {
    pub home: &'a Home,
    pub name: String,
    pub record: Value,
}

impl Deployed<'_> {
    /// Data nodes' (name, port).
    pub fn data_nodes(&self) -> Vec<(String, u16)> {
        self.record["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["role"] != "sentinel")
            .map(|n| (n["name"].as_str().unwrap_or_default().to_owned(), n["port"].as_u64().unwrap_or(0) as u16))
            .collect()
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.record["state_dir"].as_str().unwrap_or("/nonexistent"))
    }
}

impl Drop for Deployed<'_> {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = self.home.run(&["destroy", &self.name, "--purge", "--quiet"]);
        }
    }
}
