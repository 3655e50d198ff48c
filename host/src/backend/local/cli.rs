//! Talking to local nodes through `redis-cli`: it already speaks TLS and
//! ACL auth, and the password travels in `REDISCLI_AUTH`, never on a command
//! line. Every call has a deadline so a stopped (SIGSTOP) node cannot hang us.

use crate::backend::BackendError;
use crate::registry::{NodeRecord, Record, TlsFiles};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to reach one node.
#[derive(Debug, Clone)]
pub struct Conn {
    pub node: String,
    pub port: u16,
    pub tls: Option<TlsFiles>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Error replies start with an upper-case code (`ERR`, `NOAUTH`, `LOADING`…).
fn is_error_reply(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    const CODES: &[&str] = &[
        "ERR",
        "NOAUTH",
        "WRONGPASS",
        "NOPERM",
        "LOADING",
        "MASTERDOWN",
        "CLUSTERDOWN",
        "READONLY",
        "BUSY",
        "MOVED",
        "ASK",
        "TRYAGAIN",
        "NOREPLICAS",
        "MISCONF",
        "WRONGTYPE",
        "EXECABORT",
        "NOTBUSY",
        "Could",
        "Error:",
        "AUTH",
    ];
    CODES.contains(&first)
}

impl Conn {
    /// Admin access to a data node, or the sentinel password for a sentinel.
    pub fn to(record: &Record, node: &NodeRecord) -> Conn {
        let (user, password) = if node.role == redplate_config::Role::Sentinel {
            (None, super::files::conf_value(&record.path(&node.conf), "requirepass"))
        } else {
            let password = record
                .admin_password_file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(record.path(f)).ok())
                .map(|p| p.trim().to_owned());
            (record.admin_user.clone(), password)
        };
        Conn {
            node: node.name.clone(),
            port: node.port,
            tls: if node.tls { record.tls.clone() } else { None },
            user,
            password,
        }
    }

    /// Connection flags (no password: that goes in the environment).
    pub fn flags(&self) -> Vec<String> {
        let mut args = vec!["-h".into(), "127.0.0.1".into(), "-p".into(), self.port.to_string()];
        if let Some(t) = &self.tls {
            args.push("--tls".into());
            for (flag, path) in [("--cacert", &t.ca_file), ("--cert", &t.cert_file), ("--key", &t.key_file)] {
                args.push(flag.into());
                args.push(path.display().to_string());
            }
        }
        if let Some(u) = &self.user {
            args.push("--user".into());
            args.push(u.clone());
        }
        args
    }

    /// A `redis-cli` command with these connection settings (for callers
    /// that add their own arguments, such as `--cluster create`).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(self.flags()).arg("--no-auth-warning");
        if let Some(p) = &self.password {
            cmd.env("REDISCLI_AUTH", p);
        } else {
            cmd.env_remove("REDISCLI_AUTH");
        }
        cmd
    }

    /// Runs one command; an error reply becomes [`BackendError::Command`].
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<String, BackendError> {
        let mut cmd = self.command();
        cmd.args(args);
        let out = run_with_deadline(cmd, timeout)?;
        let text = out.trim_end().to_owned();
        if is_error_reply(&text) {
            return Err(BackendError::Command { node: self.node.clone(), command: args.join(" "), message: text });
        }
        Ok(text)
    }

    /// `INFO <section>` as a map.
    pub fn info(&self, section: &str) -> Result<BTreeMap<String, String>, BackendError> {
        let args: &[&str] = if section.is_empty() { &["INFO"] } else { &["INFO", section] };
        let text = self.run(args, Duration::from_secs(3))?;
        Ok(parse_info(&text))
    }

    /// The pid of the server answering on this port, once it has loaded its
    /// data (`INFO` answers while loading; PING would say `LOADING`).
    pub fn ready_pid(&self) -> Option<u32> {
        let info = self.info("").ok()?;
        if info.get("loading").is_some_and(|l| l.trim() != "0") {
            return None;
        }
        info.get("process_id")?.trim().parse().ok()
    }
}

/// `key:value` lines (INFO, CLUSTER INFO) as a map.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Runs `cmd` with stdout captured, killing it after `timeout`.
pub fn run_with_deadline(mut cmd: Command, timeout: Duration) -> Result<String, BackendError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| BackendError::MissingProgram { program: program.clone(), source })?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut out);
        }
        let mut err = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut err);
        }
        out.push_str(&err);
        out
    });
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(BackendError::Command {
                    node: String::new(),
                    command: program,
                    message: format!("no answer within {} ms", timeout.as_millis()),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(BackendError::Io { action: "wait for", path: program.into(), source: e }),
        }
    }
    Ok(reader.join().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_recognised() {
        assert!(is_error_reply("ERR unknown command"));
        assert!(is_error_reply("LOADING Redis is loading the dataset in memory"));
        assert!(is_error_reply("Could not connect to Redis at 127.0.0.1:1: Connection refused"));
        assert!(!is_error_reply("PONG"));
        assert!(!is_error_reply("# Replication\nrole:master"));
    }

    #[test]
    fn info_lines_become_a_map() {
        let m = parse_info("# Replication\r\nrole:master\r\nslave0:ip=127.0.0.1,port=7011,state=online\r\n");
        assert_eq!(m.get("role").map(String::as_str), Some("master"));
        assert_eq!(m.get("slave0").map(String::as_str), Some("ip=127.0.0.1,port=7011,state=online"));
    }
}
