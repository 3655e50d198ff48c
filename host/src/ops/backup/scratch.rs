//! What a decoded backup holds, asked of a scratch `redis-server` loaded
//! from it on a loopback port of its own: key count, `DEBUG DIGEST`, and
//! the `DUMP` of a sample of keys. This is both the "in the backup" figure a
//! restore shows before it acts and what the restored node is checked
//! against afterwards (an AOF cut at `--to-time` has no other record).

use super::io_failure;
use crate::client::{ClientError, Endpoint, Node};
use crate::exit::Failure;
use redis::Value;
use redplate_config::Diagnostic;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Keys compared one by one when `DEBUG DIGEST` is not allowed on the node.
pub const SAMPLE: usize = 1000;

/// What a data set holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Contents {
    pub keys: u64,
    pub digest: String,
    /// `(key, BLAKE3 of its DUMP payload)` of up to [`SAMPLE`] keys.
    pub sample: Vec<(Vec<u8>, String)>,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Loads `dir` (`dump.rdb`, or the AOF folder `aof/` when `aof`) into a
/// scratch server and reads what it holds.
pub async fn contents(dir: &Path, aof: bool) -> Result<Contents, Failure> {
    let port = free_port().map_err(|e| io_failure("backup.scratch", "cannot find a free loopback port".into(), e))?;
    let log = dir.join("scratch.log");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dbfilename", "dump.rdb"])
        .args(["--appendonly", if aof { "yes" } else { "no" }, "--appenddirname", "aof"])
        .args(["--enable-debug-command", "local", "--protected-mode", "yes", "--aof-load-truncated", "yes"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io_failure("backup.scratch", "cannot start `redis-server` to read the backup".into(), e))?;
    let _server = Server(child);
    let ep = Endpoint { name: "scratch".into(), host: "127.0.0.1".into(), port, tls: None, user: None, password: None };
    let deadline = Instant::now() + Duration::from_secs(600);
    let node = loop {
        if let Ok(n) = Node::connect(&ep).await
            && n.info("persistence").await.is_ok_and(|i| i.get("loading") == Some("0"))
        {
            break n;
        }
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(Failure::could_not_run(Diagnostic::error(
                "backup.scratch",
                "",
                format!(
                    "the backup did not load into a scratch server; its log ends:\n{}",
                    crate::text::clean_lines(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"), 2000)
                ),
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let fail = |e: ClientError| {
        Failure::could_not_run(Diagnostic::error("backup.scratch", "", format!("reading the backup's contents: {e}")))
    };
    let contents = read(&node, true).await.map_err(fail)?;
    let _ = node.call(&["SHUTDOWN", "NOSAVE"]).await;
    Ok(contents)
}

/// Key count, digest (when `debug`) and a sample of keys with their `DUMP`.
pub async fn read(node: &Node, debug: bool) -> Result<Contents, ClientError> {
    let keys: u64 = node.query(&["DBSIZE"]).await?;
    let digest = if debug { digest(node).await? } else { String::new() };
    let mut sample = Vec::new();
    let mut cursor = "0".to_owned();
    while sample.len() < SAMPLE {
        let (next, batch): (String, Vec<Vec<u8>>) =
            node.query(&[b"SCAN".as_slice(), cursor.as_bytes(), b"COUNT", b"1000"]).await?;
        for key in batch.into_iter().take(SAMPLE - sample.len()) {
            sample.push((key, String::new()));
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    dump(node, &mut sample).await?;
    Ok(Contents { keys, digest, sample })
}

/// `DEBUG DIGEST`: it reads every key (about 10 s for a million on a busy
/// machine), so it gets minutes, not the default 10 s.
pub async fn digest(node: &Node) -> Result<String, ClientError> {
    match node.call_within(&["DEBUG", "DIGEST"], Duration::from_secs(600)).await? {
        Value::SimpleString(s) => Ok(s),
        Value::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Ok(format!("{other:?}")),
    }
}

/// Fills in the hash of the `DUMP` of every key of `sample` (empty when it is gone).
pub async fn dump(node: &Node, sample: &mut [(Vec<u8>, String)]) -> Result<(), ClientError> {
    let commands: Vec<Vec<Vec<u8>>> = sample.iter().map(|(k, _)| vec![b"DUMP".to_vec(), k.clone()]).collect();
    let replies = node.pipeline(&commands, Duration::from_secs(60)).await?;
    for ((_, payload), reply) in sample.iter_mut().zip(replies) {
        *payload = match reply {
            Value::BulkString(b) => blake3::hash(&b).to_hex().to_string(),
            _ => String::new(),
        };
    }
    Ok(())
}
