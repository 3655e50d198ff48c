//! A tenant's ACL user on the running nodes: its rules checked against what
//! each server's version knows (an unknown name in an ACL file aborts Redis
//! at its next start), set on every data node with rollback, turned off,
//! deleted, and persisted with `ACL SAVE` where the nodes use an ACL file.

use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::{data_endpoints, unreachable};
use crate::registry::Record;
use redis::Value;
use redplate_config::Diagnostic;
use std::collections::{BTreeMap, BTreeSet};

/// Every data node (masters and replicas of every shard), connected as
/// redplate's admin user; any node that cannot be reached stops the
/// operation before it changes anything.
pub(super) async fn connect_all(record: &Record) -> Result<Vec<Node>, Failure> {
    let mut nodes = Vec::new();
    for (_, ep) in data_endpoints(record) {
        nodes.push(Node::connect(&ep).await.map_err(unreachable)?);
    }
    Ok(nodes)
}

/// The names a running server accepts in ACL rules.
struct Known {
    version: String,
    commands: BTreeSet<String>,
    categories: BTreeSet<String>,
    /// Container commands and their subcommands (`config` → `config|get`…).
    subcommands: BTreeMap<String, BTreeSet<String>>,
}

async fn known(node: &Node, version: String, rules: &[String]) -> Result<Known, ClientError> {
    let commands: Vec<String> = node.query(&["COMMAND", "LIST"]).await?;
    let categories: Vec<String> = node.query(&["ACL", "CAT"]).await?;
    let commands: BTreeSet<String> = commands.into_iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut subcommands = BTreeMap::new();
    let parents: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| r.strip_prefix(['+', '-'])?.split_once('|').map(|(c, _)| c))
        .filter(|c| commands.contains(&c.to_ascii_lowercase()))
        .collect();
    for parent in parents {
        // `COMMAND INFO`: [name, arity, flags, first, last, step, categories, tips, key specs, subcommands].
        let info = node.call(&["COMMAND", "INFO", parent]).await?;
        let mut subs = BTreeSet::new();
        if let Value::Array(entries) = info {
            for entry in entries {
                let Value::Array(fields) = entry else { continue };
                let Some(Value::Array(list)) = fields.get(9) else { continue };
                for sub in list {
                    if let Value::Array(f) = sub
                        && let Some(name) = f.first().and_then(text)
                    {
                        subs.insert(name.to_ascii_lowercase());
                    }
                }
            }
        }
        subcommands.insert(parent.to_ascii_lowercase(), subs);
    }
    Ok(Known { version, commands, categories: categories.into_iter().collect(), subcommands })
}

/// Why `rule` would not be accepted by the server `known` describes.
fn check_rule(rule: &str, known: &Known) -> Result<(), String> {
    let Some(name) = rule.strip_prefix(['+', '-']) else { return Ok(()) };
    let name = name.to_ascii_lowercase();
    if let Some(category) = name.strip_prefix('@') {
        return if category == "all" || known.categories.contains(category) {
            Ok(())
        } else {
            Err(format!("the category `@{category}` does not exist"))
        };
    }
    match name.split_once('|') {
        None if known.commands.contains(&name) => Ok(()),
        None => Err(format!("the command `{name}` does not exist")),
        Some((cmd, _)) if !known.commands.contains(cmd) => Err(format!("the command `{cmd}` does not exist")),
        Some((cmd, _)) => match known.subcommands.get(cmd) {
            // A container must know the subcommand; a plain command takes a
            // first-argument rule (`+select|0`).
            Some(subs) if !subs.is_empty() && !subs.contains(&name) => {
                Err(format!("`{cmd}` has no subcommand `{}`", &name[cmd.len() + 1..]))
            }
            _ => Ok(()),
        },
    }
}

/// Checks `rules` against every server's version (asked once per version).
pub(super) async fn check_rules(nodes: &[Node], user: &str, rules: &[String]) -> Result<(), Failure> {
    let mut checked: BTreeSet<String> = BTreeSet::new();
    for node in nodes {
        let info = node.info("server").await.map_err(unreachable)?;
        let version = info.get("redis_version").unwrap_or("unknown").to_owned();
        if !checked.insert(version.clone()) {
            continue;
        }
        let known = known(node, version, rules).await.map_err(unreachable)?;
        let bad: Vec<String> =
            rules.iter().filter_map(|r| check_rule(r, &known).err().map(|why| format!("`{r}`: {why}"))).collect();
        if !bad.is_empty() {
            return Err(Failure::invalid(vec![
                Diagnostic::error(
                    "tenant.unknown-acl-rule",
                    "",
                    format!(
                        "the acl rules of `{user}` name what redis {} on `{}` does not know: {}",
                        known.version,
                        node.endpoint().name,
                        bad.join("; ")
                    ),
                )
                .with_hint(
                    "nothing was changed; an unknown name in an acl file stops redis from starting: set \
                     `deployment.redis_version` to the version the nodes run, or remove the rule from \
                     `security.disabled_commands`",
                ),
            ]));
        }
    }
    Ok(())
}

/// `ACL SETUSER user reset <rules>` on every node; when one refuses, the
/// user is deleted again from those that took it, so no node keeps it.
pub(super) async fn set_everywhere(nodes: &[Node], user: &str, rules: &[String]) -> Result<(), Failure> {
    let mut args: Vec<&str> = vec!["ACL", "SETUSER", user, "reset"];
    args.extend(rules.iter().map(String::as_str));
    for (i, node) in nodes.iter().enumerate() {
        if let Err(e) = node.call(&args).await {
            return Err(rolled_back(unreachable(e), &nodes[..i], user).await);
        }
    }
    Ok(())
}

/// `failure`, after deleting `user` again from `done` (and saving their
/// ACL files); what the rollback could not undo is said too.
pub(super) async fn rolled_back(mut failure: Failure, done: &[Node], user: &str) -> Failure {
    if let Some(d) = failure.diagnostics.first_mut() {
        d.message =
            format!("{}; nothing was kept: `{user}` was removed again from the nodes that had taken it", d.message);
    }
    for node in done {
        let undone = match node.call(&["ACL", "DELUSER", user]).await {
            Ok(_) => save(node).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = undone {
            failure.diagnostics.push(
                Diagnostic::error(
                    "tenant.rollback-failed",
                    "",
                    format!("`{user}` could not be removed again from `{}`: {e}", node.endpoint().name),
                )
                .with_hint(format!(
                    "remove it with `ACL DELUSER {user}` on that node, or `redplate tenant remove` the tenant"
                )),
            );
        }
    }
    failure
}

/// `ACL SAVE` where the node uses an ACL file; `Ok(false)` where it does
/// not (the user then lives until the node restarts, and the stored
/// template brings it back at the next render).
pub(super) async fn save(node: &Node) -> Result<bool, ClientError> {
    let file: Vec<String> = node.query(&["CONFIG", "GET", "aclfile"]).await?;
    if file.get(1).is_none_or(|f| f.is_empty()) {
        return Ok(false);
    }
    node.call(&["ACL", "SAVE"]).await?;
    Ok(true)
}

/// `ACL SAVE` on every node; the names of the nodes that persisted.
pub(super) async fn save_everywhere(nodes: &[Node]) -> Result<Vec<String>, ClientError> {
    let mut saved = Vec::new();
    for node in nodes {
        if save(node).await? {
            saved.push(node.endpoint().name.clone());
        }
    }
    Ok(saved)
}

/// Whether `user` exists on `node`.
pub(super) async fn exists(node: &Node, user: &str) -> Result<bool, ClientError> {
    let users: Vec<String> = node.query(&["ACL", "USERS"]).await?;
    Ok(users.iter().any(|u| u == user))
}

/// The state of `user` on every data node: `on`, `off`, `missing`, or why
/// the node could not be asked.
pub(super) async fn user_states(record: &Record, user: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, ep) in data_endpoints(record) {
        let state = match Node::connect(&ep).await {
            Err(e) => format!("unreachable: {e}"),
            Ok(node) => match node.call(&["ACL", "GETUSER", user]).await {
                Ok(Value::Nil) => "missing".into(),
                Ok(v) => flags_state(&v),
                Err(e) => format!("unknown: {e}"),
            },
        };
        out.push((n.name.clone(), state));
    }
    out
}

/// A reply's text, when it is a string.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `on` or `off` from an `ACL GETUSER` reply (`flags` holds one of them).
fn flags_state(reply: &Value) -> String {
    let pairs: Vec<&Value> = match reply {
        Value::Array(items) => items.iter().collect(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    };
    let text = |v: &Value| text(v).unwrap_or_default();
    for pair in pairs.chunks(2) {
        if let [k, Value::Array(flags) | Value::Set(flags)] = pair
            && text(k) == "flags"
        {
            return if flags.iter().any(|f| text(f) == "on") { "on".into() } else { "off".into() };
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            version: "7.0.15".into(),
            commands: ["get", "config", "select", "eval"].map(String::from).into(),
            categories: ["read", "write", "admin"].map(String::from).into(),
            subcommands: [("config".to_owned(), ["config|get".to_owned()].into())].into(),
        }
    }

    #[test]
    fn rules_are_checked_against_the_server_names() {
        let k = known();
        for ok in ["+get", "-@admin", "+@all", "-config|get", "+select|0", "~tenant:a:*", "&x", "on", "#ab"] {
            assert_eq!(check_rule(ok, &k), Ok(()), "{ok}");
        }
        for bad in ["+waitaof", "-@nosuch", "-config|nosuch", "+nosuch|x"] {
            assert!(check_rule(bad, &k).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_state_is_read_from_getuser_flags() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![bulk("flags"), Value::Array(vec![bulk("off"), bulk("sanitize-payload")])]);
        assert_eq!(flags_state(&reply), "off");
        let reply = Value::Array(vec![bulk("flags"), Value::Array(vec![bulk("on")])]);
        assert_eq!(flags_state(&reply), "on");
    }
}
