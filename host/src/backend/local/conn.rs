//! How the local backend talks to its nodes: through the Redis client
//! ([`crate::client`]: typed replies, TLS and ACL auth, a timeout on every
//! command), never through `redis-cli`.
//!
//! The backend's own code is synchronous — it spawns processes, writes
//! files and polls for readiness, and ops calls it from the CLI's thread —
//! so [`Redis`] drives the async client with a current-thread tokio runtime
//! of its own, and keeps one connection per node open for the run (a
//! readiness loop asks the same nodes many times). It must not be used from
//! a thread that runs a tokio runtime (`block_on` panics there): async code
//! runs backend operations with `spawn_blocking`, as it runs plugin calls.

use super::files;
use crate::backend::BackendError;
use crate::client::{ClientError, Endpoint, Info, Node, TlsFiles};
use crate::registry::{NodeRecord, Record};
use redis::{FromRedisValue, Value};
use redplate_config::Role;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The endpoint of one local node: redplate's admin user on a data node,
/// the sentinel password (its `requirepass`) on a sentinel.
pub fn endpoint(record: &Record, node: &NodeRecord) -> Endpoint {
    let (user, password) = if node.role == Role::Sentinel {
        (None, files::conf_value(&record.path(&node.conf), "requirepass"))
    } else {
        let password = record
            .admin_password_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(record.path(f)).ok())
            .map(|p| p.trim().to_owned());
        (record.admin_user.clone(), password)
    };
    let tls = record.tls.as_ref().filter(|_| node.tls).map(|t| TlsFiles {
        ca_file: t.ca_file.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
    });
    Endpoint { name: node.name.clone(), host: "127.0.0.1".into(), port: node.port, tls, user, password }
}

/// Open connections by address and user.
type Key = (String, u16, Option<String>);

fn key(endpoint: &Endpoint) -> Key {
    (endpoint.host.clone(), endpoint.port, endpoint.user.clone())
}

/// The local backend's Redis client: a runtime, and the connections open so far.
#[derive(Default)]
pub struct Redis {
    runtime: OnceLock<tokio::runtime::Runtime>,
    open: Mutex<HashMap<Key, Node>>,
}

impl Redis {
    /// A connection handle to `node` of `record` (opened on first use).
    pub fn to(&self, record: &Record, node: &NodeRecord) -> Conn<'_> {
        Conn { redis: self, endpoint: endpoint(record, node) }
    }

    /// Runs `future` to completion on this client's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, BackendError> {
        let runtime = match self.runtime.get() {
            Some(r) => r,
            None => {
                let r = crate::client::runtime().map_err(|source| BackendError::Runtime { source })?;
                self.runtime.get_or_init(|| r)
            }
        };
        Ok(runtime.block_on(future))
    }

    /// Runs every future at once (one round trip's time for all the nodes,
    /// not one per node) and returns their outputs in order.
    pub fn join<F: Future>(&self, futures: impl IntoIterator<Item = F>) -> Result<Vec<F::Output>, BackendError> {
        self.block_on(futures_util::future::join_all(futures))
    }

    /// The open connection to `endpoint`, or a new one; and whether it was open already.
    async fn node(&self, endpoint: &Endpoint) -> Result<(Node, bool), ClientError> {
        if let Some(node) = self.lock().get(&key(endpoint)) {
            return Ok((node.clone(), true));
        }
        let node = match Node::connect(endpoint).await {
            // A record written before redplate checked that the default user
            // has a password at all: the server refuses an AUTH it does not expect.
            Err(ClientError::Connect { message, .. })
                if endpoint.user.is_none() && message.contains("without any password configured") =>
            {
                Node::connect(&endpoint.as_user(None, None)).await?
            }
            other => other?,
        };
        self.lock().insert(key(endpoint), node.clone());
        Ok((node, false))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Node>> {
        // A poisoned map only means a panic elsewhere; the connections are still good.
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one command. A connection that broke since its last use (the
    /// node restarted) is opened again and the command sent once more; one
    /// that failed or timed out is dropped, so the next call starts afresh.
    async fn call(&self, endpoint: &Endpoint, args: &[&str], timeout: Duration) -> Result<Value, ClientError> {
        let (node, was_open) = self.node(endpoint).await?;
        let result = match node.call_within(args, timeout).await {
            Err(ClientError::Io { .. }) if was_open => {
                self.lock().remove(&key(endpoint));
                let (node, _) = self.node(endpoint).await?;
                node.call_within(args, timeout).await
            }
            other => other,
        };
        if let Err(e) = &result
            && !matches!(e, ClientError::Reply { .. })
        {
            self.lock().remove(&key(endpoint));
        }
        result
    }
}

/// One node of a local deployment, as the backend talks to it.
pub struct Conn<'r> {
    redis: &'r Redis,
    endpoint: Endpoint,
}

/// The usual timeout of a management command.
pub const T: Duration = Duration::from_secs(5);

impl Conn<'_> {
    /// The node's name.
    pub fn node(&self) -> &str {
        &self.endpoint.name
    }

    /// Runs one command; an error reply is [`BackendError::Redis`].
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<Value, BackendError> {
        Ok(self.redis.block_on(self.redis.call(&self.endpoint, args, timeout))??)
    }

    /// Runs one command and reads its reply as `V`.
    pub fn query<V: FromRedisValue>(&self, args: &[&str], timeout: Duration) -> Result<V, BackendError> {
        self.redis.block_on(self.query_async(args, timeout))?
    }

    /// [`Conn::query`], to run beside others with [`Redis::join`].
    pub async fn query_async<V: FromRedisValue>(&self, args: &[&str], timeout: Duration) -> Result<V, BackendError> {
        let value = self.redis.call(&self.endpoint, args, timeout).await?;
        redis::from_redis_value(value).map_err(|e| {
            BackendError::Redis(ClientError::Io {
                endpoint: self.endpoint.name.clone(),
                command: args.first().map(|c| c.to_uppercase()).unwrap_or_default(),
                message: format!("unexpected reply: {}", crate::text::clean(&e.to_string(), 256)),
            })
        })
    }

    /// `INFO <section>` (every section when empty).
    pub fn info(&self, section: &str) -> Result<Info, BackendError> {
        self.redis.block_on(self.info_async(section))?
    }

    /// [`Conn::info`], to run beside others with [`Redis::join`].
    pub async fn info_async(&self, section: &str) -> Result<Info, BackendError> {
        let args: &[&str] = if section.is_empty() { &["INFO"] } else { &["INFO", section] };
        let text: String = self.query_async(args, T).await?;
        Ok(crate::client::parse_info(&text))
    }

    /// The pid of the server answering here, once it has loaded its data
    /// (`INFO` answers while loading; PING would say `LOADING`).
    pub fn ready_pid(&self) -> Option<u32> {
        let text: String = self.query(&["INFO", "server", "persistence"], T).ok()?;
        let info = crate::client::parse_info(&text);
        if info.get("loading").is_some_and(|l| l != "0") {
            return None;
        }
        info.uint("process_id").and_then(|p| u32::try_from(p).ok())
    }
}

/// Whether `e` is the error reply of a command that Redis refused with
/// `needle` in its message (`Unknown node`, `NOGOODSLAVE`…).
pub fn refused_with(e: &BackendError, needle: &str) -> bool {
    matches!(e, BackendError::Redis(c) if c.reply().is_some_and(|m| m.contains(needle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_does_not_listen_is_an_error_naming_it_not_a_hang() {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).expect("a port").port();
        let redis = Redis::default();
        let endpoint =
            Endpoint { name: "shop-0".into(), host: "127.0.0.1".into(), port, tls: None, user: None, password: None };
        let conn = Conn { redis: &redis, endpoint };
        let e = conn.run(&["PING"], T).expect_err("nothing listens");
        assert!(e.to_string().contains("shop-0"), "{e}");
        assert_eq!(conn.ready_pid(), None);
        assert!(redis.lock().is_empty(), "no connection kept");
    }
}
