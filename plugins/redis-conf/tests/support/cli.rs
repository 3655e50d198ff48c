//! `redis-cli` against the deployment's nodes: TLS flags, the user and its
//! password (through `REDISCLI_AUTH`, never on the command line), and a
//! deadline on every call.

use super::{Deployment, TIMEOUT};
use redplate_config::topology::Node;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Deployment {
    /// Runs `redis-cli` against a node; the password goes through `REDISCLI_AUTH`.
    pub fn cli(&self, n: &Node, who: Who, args: &[&str]) -> Reply {
        self.cli_opts(n, who, &[], args, None)
    }

    pub fn cli_opts(&self, n: &Node, who: Who, opts: &[&str], args: &[&str], stdin: Option<&str>) -> Reply {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port(n).to_string(), "--no-auth-warning"]);
        self.tls_and_auth(&mut cmd, who);
        cmd.args(opts).args(args);
        run(cmd, stdin, TIMEOUT)
    }

    /// Adds TLS flags and credentials to a `redis-cli` command.
    pub fn tls_and_auth(&self, cmd: &mut Command, who: Who) {
        let sentinel_tls = self.config.security.tls.sentinel;
        if let Some(t) = &self.tls
            && (who != Who::Sentinel || sentinel_tls)
        {
            cmd.args(["--tls", "--cacert", &t.ca, "--cert", &t.cert, "--key", &t.key]);
        }
        match who {
            Who::Default => {}
            Who::User(u) => {
                cmd.args(["--user", u]).env("REDISCLI_AUTH", &self.passwords[u]);
            }
            Who::Sentinel if self.auth() => {
                cmd.env("REDISCLI_AUTH", &self.passwords["sentinel"]);
            }
            Who::Sentinel => {}
        }
    }
}

/// Who a command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No credentials (the `default` user).
    Default,
    /// An ACL user, with the password generated for it.
    User(&'static str),
    /// A sentinel client (the sentinel's `requirepass`).
    Sentinel,
}

/// What `redis-cli` printed.
#[derive(Debug, Clone)]
pub struct Reply {
    pub stdout: String,
    pub stderr: String,
}

impl Reply {
    pub fn denied(&self) -> bool {
        self.stdout.contains("NOPERM") || self.stderr.contains("NOPERM")
    }
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs a command with a deadline; the child is killed past it.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Reply {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let _ = pipe.write_all(text.as_bytes());
    }
    // Read the pipes while waiting, so a large reply never blocks the child.
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Reply {
        stdout: out_reader.join().unwrap_or_default().trim_end().to_owned(),
        stderr: err_reader.join().unwrap_or_default().trim_end().to_owned(),
    }
}
