//! `redplate exec`: one command on a running deployment, filtered and
//! audited. Destructive commands are refused unless the caller allows them;
//! commands that do not fit one request and one reply (MONITOR, SUBSCRIBE,
//! SYNC, a blocking pop without a timeout) are refused always. Every call
//! has a timeout and lands in the audit log.

use crate::client::Node;
use crate::exit::Failure;
use crate::ops::audit;
use crate::ops::connect::{endpoint, masters, unreachable};
use crate::registry::Record;
use redplate_config::Diagnostic;
use redplate_config::model::Mode;
use std::time::Duration;

/// What a caller asked for.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// A node by name; default: the master (in a cluster, the master that
    /// serves the command's first key).
    pub node: Option<String>,
    /// Let destructive commands through.
    pub allow_dangerous: bool,
    pub timeout: Duration,
    /// Who asks, for the audit log.
    pub actor: String,
}

/// A reply, as a tree of values (serializes to JSON as such).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Reply {
    Nil,
    Int(i64),
    Text(String),
    Double(f64),
    Array(Vec<Reply>),
    Error { error: String },
}

/// What `exec` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecResult {
    pub node: String,
    pub command: String,
    pub reply: Reply,
}

/// Commands that are never run here: they stream, hold the connection, or
/// take a server over.
const UNSUITABLE: &[(&str, &str)] = &[
    ("MONITOR", "it streams every command of every client; use `redplate logs` or the slow log"),
    ("SUBSCRIBE", "it waits for messages instead of answering once"),
    ("PSUBSCRIBE", "it waits for messages instead of answering once"),
    ("SSUBSCRIBE", "it waits for messages instead of answering once"),
    ("SYNC", "it starts a replication stream"),
    ("PSYNC", "it starts a replication stream"),
    ("HELLO", "it changes the connection's protocol"),
    ("RESET", "it changes the connection's state"),
    ("QUIT", "it closes the connection"),
];

/// Destructive or server-changing commands (and subcommands) that need
/// `--allow-dangerous`.
const DANGEROUS: &[&str] = &[
    "FLUSHALL",
    "FLUSHDB",
    "SHUTDOWN",
    "DEBUG",
    "CONFIG SET",
    "CONFIG REWRITE",
    "CONFIG RESETSTAT",
    "ACL SETUSER",
    "ACL DELUSER",
    "ACL LOAD",
    "ACL SAVE",
    "ACL LOG",
    "MODULE",
    "REPLICAOF",
    "SLAVEOF",
    "FAILOVER",
    "CLUSTER ADDSLOTS",
    "CLUSTER ADDSLOTSRANGE",
    "CLUSTER DELSLOTS",
    "CLUSTER DELSLOTSRANGE",
    "CLUSTER FLUSHSLOTS",
    "CLUSTER FAILOVER",
    "CLUSTER FORGET",
    "CLUSTER MEET",
    "CLUSTER REPLICATE",
    "CLUSTER RESET",
    "CLUSTER SETSLOT",
    "CLUSTER SAVECONFIG",
    "CLUSTER BUMPEPOCH",
    "CLUSTER SET-CONFIG-EPOCH",
    "MIGRATE",
    "SWAPDB",
    "MOVE",
    "KEYS",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "SCRIPT FLUSH",
    "SCRIPT KILL",
    "FUNCTION FLUSH",
    "FUNCTION DELETE",
    "FUNCTION RESTORE",
    "FUNCTION KILL",
    "CLIENT KILL",
    "CLIENT PAUSE",
    "CLIENT NO-EVICT",
    "LATENCY RESET",
    "SLOWLOG RESET",
];

/// Blocking commands and the argument that holds their timeout (counted
/// from the end, 1 = last); a timeout of 0 blocks forever.
const BLOCKING: &[(&str, usize)] =
    &[("BLPOP", 1), ("BRPOP", 1), ("BRPOPLPUSH", 1), ("BLMOVE", 1), ("BZPOPMIN", 1), ("BZPOPMAX", 1)];

/// The command's name as checked: `CONFIG SET`, `GET`.
pub fn command_name(args: &[String]) -> String {
    let first = args.first().map(|a| a.to_uppercase()).unwrap_or_default();
    let with_sub = args.get(1).map(|s| format!("{first} {}", s.to_uppercase()));
    match with_sub {
        Some(both) if DANGEROUS.contains(&both.as_str()) || first == "CLUSTER" || first == "CONFIG" => both,
        _ => first,
    }
}

/// Why `args` may not run (`None`: it may).
pub fn refusal(args: &[String], allow_dangerous: bool) -> Option<Diagnostic> {
    let Some(first) = args.first().map(|a| a.to_uppercase()) else {
        return Some(
            Diagnostic::error("exec.empty", "", "no command was given")
                .with_hint("e.g. `redplate exec orders -- GET key`"),
        );
    };
    if let Some((name, why)) = UNSUITABLE.iter().find(|(n, _)| *n == first) {
        return Some(Diagnostic::error("exec.unsuitable", "", format!("`{name}` cannot run here: {why}")));
    }
    if let Some((name, from_end)) = BLOCKING.iter().find(|(n, _)| *n == first)
        && args.len() > *from_end
        && args[args.len() - from_end].parse::<f64>().is_ok_and(|t| t == 0.0)
    {
        return Some(
            Diagnostic::error("exec.blocks-forever", "", format!("`{name}` with a timeout of 0 would block forever"))
                .with_hint("give it a timeout in seconds below `--timeout`"),
        );
    }
    if let Some(d) = blocks_forever(args) {
        return Some(d);
    }
    let name = command_name(args);
    let dangerous = DANGEROUS.iter().any(|d| *d == name || *d == first);
    if dangerous && !allow_dangerous {
        return Some(
            Diagnostic::error("exec.dangerous", "", format!("`{name}` is destructive or changes the server, so it is refused"))
                .with_hint("add `--allow-dangerous` if you mean it (the call is audited); to empty a deployment use `redplate flush`"),
        );
    }
    None
}

/// A reply as printable values, control characters escaped (line breaks kept).
pub fn reply(value: redis::Value) -> Reply {
    use redis::Value as V;
    // Line breaks survive (INFO, CLUSTER NODES); every other control
    // character a value may hold is shown escaped.
    let text = |bytes: &[u8]| crate::text::clean_lines(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"), 1 << 20);
    match value {
        V::Nil => Reply::Nil,
        V::Int(i) => Reply::Int(i),
        V::BulkString(b) => Reply::Text(text(&b)),
        V::SimpleString(s) => Reply::Text(text(s.as_bytes())),
        V::Okay => Reply::Text("OK".into()),
        V::Double(d) => Reply::Double(d),
        V::Boolean(b) => Reply::Int(i64::from(b)),
        V::VerbatimString { text: t, .. } => Reply::Text(text(t.as_bytes())),
        V::Array(items) | V::Set(items) => Reply::Array(items.into_iter().take(100_000).map(reply).collect()),
        V::Map(pairs) => Reply::Array(pairs.into_iter().take(50_000).flat_map(|(k, v)| [reply(k), reply(v)]).collect()),
        V::ServerError(e) => Reply::Error { error: text(e.to_string().as_bytes()) },
        other => Reply::Text(text(format!("{other:?}").as_bytes())),
    }
}

/// The node to run on: the named one, else the master (in a cluster, the
/// master serving the command's first key, found with `COMMAND GETKEYS`).
async fn target(record: &Record, request: &ExecRequest) -> Result<Node, Failure> {
    if let Some(name) = &request.node {
        let node = record.node(name).ok_or_else(|| {
            let known: Vec<&str> = record.nodes.iter().map(|n| n.name.as_str()).collect();
            Failure::could_not_run(
                Diagnostic::error("exec.unknown-node", "", format!("`{}` has no node `{name}`", record.name))
                    .with_hint(format!("its nodes: {}", known.join(", "))),
            )
        })?;
        return Node::connect(&endpoint(record, node)).await.map_err(unreachable);
    }
    let mut found = masters(record).await?;
    if record.mode == Mode::Cluster && found.len() > 1 {
        let mut getkeys: Vec<&str> = vec!["COMMAND", "GETKEYS"];
        getkeys.extend(request.args.iter().map(String::as_str));
        if let Ok(keys) = found[0].1.query::<Vec<Vec<u8>>, _>(&getkeys).await
            && let Some(key) = keys.first()
        {
            let slot: u16 = found[0].1.query(&[b"CLUSTER".as_slice(), b"KEYSLOT", key]).await.map_err(unreachable)?;
            let masters = crate::client::cluster_masters(&found[0].1).await.map_err(unreachable)?;
            if let Some(owner) = masters.iter().find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
                && let Some(at) =
                    crate::backend::node_at(record, owner.hostname.as_deref().unwrap_or(&owner.host), owner.port)
                && let Some(i) = found.iter().position(|(n, _)| n.name == at.name)
            {
                return Ok(found.swap_remove(i).1);
            }
        }
    }
    Ok(found.swap_remove(0).1)
}

/// Runs one command on `record`'s deployment, filtered and audited.
pub async fn exec(record: &Record, request: &ExecRequest) -> Result<ExecResult, Failure> {
    let command = command_name(&request.args);
    let audit = |target: &str, outcome: String| -> Result<(), Failure> {
        let entry = audit::Entry {
            time: audit::now(),
            actor: request.actor.clone(),
            operation: "exec",
            target: target.to_owned(),
            command: crate::text::clean(&command, 128),
            arguments: request.args.len().saturating_sub(1),
            outcome,
        };
        audit::append(&record.state_dir, &entry).map_err(|e| {
            Failure::could_not_run(Diagnostic::error(
                "audit.write",
                "",
                format!("cannot write the audit log of `{}`: {e}; nothing was run", record.name),
            ))
        })
    };
    if let Some(d) = refusal(&request.args, request.allow_dangerous) {
        audit(request.node.as_deref().unwrap_or("-"), format!("refused: {}", d.code))?;
        return Err(Failure::invalid(vec![d]));
    }
    let node = target(record, request).await?;
    let name = node.endpoint().name.clone();
    audit(&name, "started".into())?;
    let result = node.call_within(&request.args, request.timeout).await;
    let outcome = match &result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("failed: {}", crate::text::clean(&e.to_string(), 512)),
    };
    audit(&name, outcome)?;
    match result {
        Ok(value) => Ok(ExecResult { node: name, command, reply: reply(value) }),
        Err(e) => match e.reply() {
            // An error reply is Redis's verdict on the command: exit 1.
            Some(_) => Err(Failure::invalid(vec![Diagnostic::error("exec.error-reply", "", e.to_string())])),
            None => Err(unreachable(e)),
        },
    }
}

/// Blocking forms whose timeout is not the last argument (BLMPOP, BZMPOP,
/// WAIT, XREAD/XREADGROUP BLOCK) with a timeout of 0.
fn blocks_forever(args: &[String]) -> Option<Diagnostic> {
    let name = args.first()?.to_ascii_uppercase();
    let zero = |s: &String| s.parse::<f64>().is_ok_and(|t| t == 0.0);
    let forever = match name.as_str() {
        // BLMPOP/BZMPOP timeout numkeys key…; WAIT numreplicas timeout.
        "BLMPOP" | "BZMPOP" => args.get(1).is_some_and(zero),
        "WAIT" => args.get(2).is_some_and(zero),
        "XREAD" | "XREADGROUP" => {
            args.iter().position(|a| a.eq_ignore_ascii_case("BLOCK")).and_then(|i| args.get(i + 1)).is_some_and(zero)
        }
        _ => false,
    };
    forever.then(|| {
        Diagnostic::error("exec.blocks-forever", "", format!("`{name}` with a timeout of 0 would block forever"))
            .with_hint("give it a timeout below `--timeout`")
    })
}

/// A reply the way `redis-cli` prints it.
pub fn format_reply(reply: &Reply) -> String {
    fn walk(r: &Reply, indent: usize, out: &mut String) {
        match r {
            Reply::Nil => out.push_str("(nil)\n"),
            Reply::Int(i) => out.push_str(&format!("(integer) {i}\n")),
            Reply::Double(d) => out.push_str(&format!("(double) {d}\n")),
            // Multi-line text (INFO) as it is, like redis-cli; values quoted.
            Reply::Text(t) if t.contains('\n') => {
                out.push_str(t);
                if !t.ends_with('\n') {
                    out.push('\n');
                }
            }
            Reply::Text(t) => out.push_str(&format!("\"{t}\"\n")),
            Reply::Error { error } => out.push_str(&format!("(error) {error}\n")),
            Reply::Array(items) if items.is_empty() => out.push_str("(empty array)\n"),
            Reply::Array(items) => {
                let width = items.len().to_string().len();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&" ".repeat(indent));
                    }
                    let label = format!("{:>width$}) ", i + 1);
                    out.push_str(&label);
                    walk(item, indent + label.len(), out);
                }
            }
        }
    }
    let mut out = String::new();
    walk(reply, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn destructive_commands_need_permission_and_streaming_ones_never_run() {
        for c in [
            "FLUSHALL",
            "flushdb async",
            "config set maxmemory 1",
            "ACL SETUSER x on",
            "KEYS *",
            "cluster forget x",
            "debug sleep 1",
            "shutdown",
            "swapdb 0 1",
            "migrate h 1 k 0 1",
        ] {
            assert_eq!(refusal(&args(c), false).map(|d| d.code), Some("exec.dangerous".into()), "{c}");
            assert!(refusal(&args(c), true).is_none(), "{c} with --allow-dangerous");
        }
        for c in ["MONITOR", "subscribe ch", "PSYNC ? -1", "sync"] {
            assert_eq!(refusal(&args(c), true).map(|d| d.code), Some("exec.unsuitable".into()), "{c}");
        }
        assert_eq!(refusal(&args("BLPOP q 0"), true).map(|d| d.code), Some("exec.blocks-forever".into()));
        for c in
            ["GET k", "SET k v", "BLPOP q 1", "CONFIG GET maxmemory", "INFO", "ACL WHOAMI", "CLUSTER INFO", "SCAN 0"]
        {
            assert!(refusal(&args(c), false).is_none(), "{c}");
        }
    }

    #[test]
    fn blocking_forms_without_a_timeout_are_refused() {
        for c in ["BLMPOP 0 1 k LEFT", "bzmpop 0 1 z MIN", "WAIT 1 0", "XREAD BLOCK 0 STREAMS s $"] {
            assert!(blocks_forever(&args(c)).is_some(), "{c}");
        }
        for c in ["BLMPOP 1 1 k LEFT", "WAIT 1 100", "XREAD COUNT 1 STREAMS s 0", "GET k"] {
            assert!(blocks_forever(&args(c)).is_none(), "{c}");
        }
    }

    #[test]
    fn replies_print_like_redis_cli() {
        let r = Reply::Array(vec![Reply::Text("a".into()), Reply::Int(2), Reply::Nil]);
        assert_eq!(format_reply(&r), "1) \"a\"\n2) (integer) 2\n3) (nil)\n");
        assert_eq!(reply(redis::Value::BulkString(b"\x1b[2J".to_vec())), Reply::Text("\\u{1b}[2J".into()));
    }
}
