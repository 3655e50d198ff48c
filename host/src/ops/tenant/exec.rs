//! `tenant exec`: one command as the tenant's own ACL user, so Redis itself
//! decides what the tenant may do. What does not fit one request and one
//! reply (MONITOR, SUBSCRIBE…, a blocking command without a timeout) is
//! refused before anything is sent (the same filter as `redplate exec`);
//! every command has a timeout. In a cluster the command goes to a master
//! and follows `MOVED`/`ASK` to the one serving its keys.

use super::{check_id, check_isolation, find, open, user_name};
use crate::client::{ClientError, Endpoint, Node};
use crate::exit::Failure;
use crate::ops::connect::{endpoint, masters, unreachable};
use crate::ops::exec::{Reply, refusal, reply};
use crate::secrets::SecretStore;
use redplate_config::{Diagnostic, Target};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What `tenant exec` was asked.
#[derive(Debug, Clone)]
pub struct TenantExec {
    pub id: String,
    /// The command and its arguments.
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// The reply, and who answered it to whom.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReply {
    pub node: String,
    pub user: String,
    pub reply: Reply,
}

/// Runs `request.args` as tenant `request.id` of `deployment`.
pub async fn exec(home: &Path, deployment: &str, request: &TenantExec) -> Result<TenantReply, Failure> {
    check_id(&request.id)?;
    // Redis enforces the tenant's acl; what is refused here is only what
    // cannot run as one request with one reply.
    if let Some(d) = refusal(&request.args, true) {
        return Err(Failure::invalid(vec![d]));
    }
    let deployment = &super::holder(home, deployment, &request.id)?;
    let opened = open(home, deployment)?;
    let config = &opened.resolved.config;
    check_isolation(config, deployment)?;
    find(config, deployment, &request.id)?;
    let user = user_name(&request.id);
    let secrets = crate::secrets::resolve(config, Target::Local, &SecretStore::new(home)).map_err(Failure::invalid)?;
    let password = secrets["users"][&user]["password"].as_str().map(str::to_owned);
    let found = masters(&opened.record).await?;
    let Some((node, _)) = found.first() else {
        return Err(Failure::could_not_run(Diagnostic::error(
            "redis.no-master",
            "",
            format!("no master of `{deployment}` answers"),
        )));
    };
    let mut ep = endpoint(&opened.record, node).as_user(Some(user.clone()), password);
    let mut asking = false;
    // A slot moves at most once or twice while we ask.
    for _ in 0..4 {
        let conn = Node::connect(&ep).await.map_err(unreachable)?;
        let result = if asking {
            let commands = vec![vec![b"ASKING".to_vec()], request.args.iter().map(|a| a.as_bytes().to_vec()).collect()];
            conn.pipeline(&commands, request.timeout).await.map(|mut r| r.pop().unwrap_or(redis::Value::Nil))
        } else {
            conn.call_within(&request.args, request.timeout).await
        };
        match result {
            Ok(value) => return Ok(TenantReply { node: ep.name.clone(), user, reply: reply(value) }),
            Err(e) => match redirect(&e) {
                Some((ask, host, port)) => {
                    let name = opened.record.data_nodes().find(|n| n.port == port).map(|n| n.name.clone());
                    ep = Endpoint { name: name.unwrap_or_else(|| format!("{host}:{port}")), host, port, ..ep };
                    asking = ask;
                }
                None => return Err(refused(e, &user)),
            },
        }
    }
    Err(Failure::could_not_run(
        Diagnostic::error(
            "tenant.redirects",
            "",
            format!("`{deployment}` kept redirecting the command: its slots are moving"),
        )
        .with_hint("try again once the cluster is stable (`redplate status`)"),
    ))
}

/// An error reply is Redis's verdict on the command (exit 1); anything
/// else means the command could not be run (exit 2).
fn refused(e: ClientError, user: &str) -> Failure {
    match e.reply() {
        Some(text) => Failure::invalid(vec![Diagnostic::error(
            "tenant.error-reply",
            "",
            format!("redis answered `{user}` with an error: {text}"),
        )]),
        None => unreachable(e),
    }
}

/// `MOVED`/`ASK <slot> <host>:<port>`: whether it is an ASK, and where to.
fn redirect(e: &ClientError) -> Option<(bool, String, u16)> {
    let text = e.reply()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| {
        let w = w.trim_matches(['"', ':']).to_ascii_uppercase();
        w == "MOVED" || w == "ASK"
    })?;
    let ask = words[at].trim_matches(['"', ':']).eq_ignore_ascii_case("ASK");
    let (host, port) = words.get(at + 2)?.rsplit_once(':')?;
    Some((ask, host.to_owned(), port.parse().ok()?))
}

/// Blocking forms the shared filter does not know: a timeout of 0 (or
/// `BLOCK 0`) waits forever.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_codes_are_read_from_error_replies() {
        let e = |m: &str| ClientError::Reply { endpoint: "n".into(), command: "GET".into(), message: m.into() };
        assert_eq!(redirect(&e("MOVED 3999 127.0.0.1:7001")), Some((false, "127.0.0.1".into(), 7001)));
        assert_eq!(redirect(&e("ASK 12 10.0.0.2:6379")), Some((true, "10.0.0.2".into(), 6379)));
        assert_eq!(redirect(&e("NOPERM this user has no permissions")), None);
    }
}
