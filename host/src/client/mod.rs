//! One way to talk to Redis: an [`Endpoint`] (host, port, TLS files, ACL
//! user, password) becomes a [`Node`] connection on the `redis` crate (async
//! on tokio, TLS through rustls), with a timeout on every command and
//! replies typed. Also finds the current master through Sentinel and the
//! masters of a cluster.
//!
//! This is the lowest layer: it takes endpoints, never registry records or
//! backends (those map their own records to endpoints), and it never spawns
//! `redis-cli`.

mod info;

pub use info::{Info, parse_info};

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use std::path::PathBuf;
use std::time::Duration;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command may take by default.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS files for a connection: the CA to trust and the client's own pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Where and as whom to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A name for messages (the node's name).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsFiles>,
    /// The ACL user; `None` for the `default` user.
    pub user: Option<String>,
    /// The password, already read from where it is kept.
    pub password: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("addr", &format_args!("{}:{}", self.host, self.port))
            .field("tls", &self.tls.is_some())
            .field("user", &self.user)
            .finish()
    }
}

impl Endpoint {
    /// The same place, as another user.
    pub fn as_user(&self, user: Option<String>, password: Option<String>) -> Endpoint {
        Endpoint { user, password, ..self.clone() }
    }

    /// The same credentials and TLS files at another address (a master
    /// found through Sentinel, a cluster peer).
    pub fn at(&self, name: String, host: String, port: u16) -> Endpoint {
        Endpoint { name, host, port, ..self.clone() }
    }
}

/// Why talking to Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS files could not be read.
    #[error("cannot read the TLS file `{path}` for `{endpoint}`: {source}")]
    TlsFile {
        endpoint: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connection could not be opened (refused, TLS, authentication).
    #[error("cannot connect to `{endpoint}` ({addr}): {message}")]
    Connect { endpoint: String, addr: String, message: String },
    /// The server answered with an error.
    #[error("`{endpoint}` refused `{command}`: {message}")]
    Reply { endpoint: String, command: String, message: String },
    /// No answer within the timeout.
    #[error("`{endpoint}` did not answer `{command}` within {timeout:?}")]
    Timeout { endpoint: String, command: String, timeout: Duration },
    /// The connection broke or the reply was not what the command returns.
    #[error("talking to `{endpoint}` failed during `{command}`: {message}")]
    Io { endpoint: String, command: String, message: String },
}

impl ClientError {
    /// The error reply's text, when the server answered with one (e.g.
    /// `NOPERM this user has no permissions…`).
    pub fn reply(&self) -> Option<&str> {
        match self {
            ClientError::Reply { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// An open connection to one Redis server or Sentinel.
#[derive(Clone)]
pub struct Node {
    endpoint: Endpoint,
    conn: redis::aio::MultiplexedConnection,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("endpoint", &self.endpoint).finish()
    }
}

fn read(endpoint: &Endpoint, path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::TlsFile {
        endpoint: endpoint.name.clone(),
        path: path.clone(),
        source,
    })
}

/// Text from a server, safe to put in a message.
fn safe(text: &str) -> String {
    crate::text::clean(text, 1024)
}

/// The first word of a command, for messages (never its arguments, which
/// may be passwords or a tenant's data).
fn command_name(args: &[&[u8]]) -> String {
    let mut name = args.first().map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
    if matches!(name.as_str(), "CONFIG" | "CLIENT" | "CLUSTER" | "ACL" | "SENTINEL" | "MEMORY" | "OBJECT" | "SCRIPT")
        && let Some(sub) = args.get(1)
    {
        name = format!("{name} {}", String::from_utf8_lossy(sub).to_uppercase());
    }
    safe(&name)
}

/// `TCP_NODELAY`, as hiredis (`redis-cli`) sets it: the last, partial
/// segment of a pipelined batch goes out at once instead of waiting (Nagle)
/// for the ACK of the segments before it.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

impl Node {
    /// Opens a connection and authenticates.
    pub async fn connect(endpoint: &Endpoint) -> Result<Node, ClientError> {
        Self::connect_with(endpoint, COMMAND_TIMEOUT).await
    }

    /// [`Node::connect`] for commands that may take up to `response` (a
    /// `MIGRATE` of big keys); `call_within` limits each one further.
    pub async fn connect_with(endpoint: &Endpoint, response: Duration) -> Result<Node, ClientError> {
        // rustls picks its crypto provider from its one enabled crate
        // feature (`ring`; see host/Cargo.toml) when the process sets none.
        let addr = format!("{}:{}", endpoint.host, endpoint.port);
        let connect_error = |message: String| ClientError::Connect {
            endpoint: endpoint.name.clone(),
            addr: addr.clone(),
            message: safe(&message),
        };
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &endpoint.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = &endpoint.password {
            settings = settings.set_password(password);
        }
        let client = match &endpoint.tls {
            None => {
                let info = ConnectionAddr::Tcp(endpoint.host.clone(), endpoint.port)
                    .into_connection_info()
                    .map_err(|e| connect_error(e.to_string()))?
                    .set_redis_settings(settings)
                    .set_tcp_settings(tcp_settings());
                redis::Client::open(info).map_err(|e| connect_error(e.to_string()))?
            }
            Some(tls) => {
                let addr = ConnectionAddr::TcpTls {
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    insecure: false,
                    tls_params: None,
                };
                let info = addr
                    .into_connection_info()
                    .map_err(|e| connect_error(e.to_string()))?
                    .set_redis_settings(settings)
                    .set_tcp_settings(tcp_settings());
                let certs = redis::TlsCertificates {
                    client_tls: Some(redis::ClientTlsConfig {
                        client_cert: read(endpoint, &tls.cert_file)?,
                        client_key: read(endpoint, &tls.key_file)?,
                    }),
                    root_cert: Some(read(endpoint, &tls.ca_file)?),
                };
                redis::Client::build_with_tls(info, certs).map_err(|e| connect_error(e.to_string()))?
            }
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response));
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_secs(1),
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| connect_error(e.to_string()))?;
        Ok(Node { endpoint: endpoint.clone(), conn })
    }

    /// Where this connection goes.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs one command with the default timeout.
    pub async fn call<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Value, ClientError> {
        self.call_within(args, COMMAND_TIMEOUT).await
    }

    /// Runs one command; an error reply, a broken connection or no answer
    /// within `timeout` is an error naming the node and the command.
    pub async fn call_within<A: AsRef<[u8]>>(&self, args: &[A], timeout: Duration) -> Result<Value, ClientError> {
        let parts: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
        let mut cmd = redis::Cmd::new();
        for a in &parts {
            cmd.arg(*a);
        }
        let mut conn = self.conn.clone();
        // The connection's own response timeout (COMMAND_TIMEOUT) would cut
        // a longer wait short: this handle waits as long as asked.
        conn.set_response_timeout(timeout);
        let command = || command_name(&parts);
        match tokio::time::timeout(timeout, cmd.query_async::<Value>(&mut conn)).await {
            Err(_) => Err(ClientError::Timeout { endpoint: self.endpoint.name.clone(), command: command(), timeout }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(command(), e)),
        }
    }

    /// Runs a batch of commands in one round trip (not a transaction);
    /// each reply or error reply in order.
    pub async fn pipeline(&self, commands: &[Vec<Vec<u8>>], timeout: Duration) -> Result<Vec<Value>, ClientError> {
        // Nothing to send: redis-rs would refuse an empty pipeline.
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(commands.len());
        for c in commands {
            let mut cmd = redis::Cmd::new();
            for a in c {
                cmd.arg(a.as_slice());
            }
            pipe.add_command(cmd);
        }
        let mut conn = self.conn.clone();
        conn.set_response_timeout(timeout);
        let command = format!("a pipeline of {} commands", commands.len());
        match tokio::time::timeout(timeout, pipe.query_async::<Vec<Value>>(&mut conn)).await {
            Err(_) => Err(ClientError::Timeout { endpoint: self.endpoint.name.clone(), command, timeout }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(command, e)),
        }
    }

    /// Like [`Node::pipeline`], but an error reply to one command is that
    /// command's `Value::ServerError` rather than the whole batch's error
    /// (a bulk load counts each key's failure and carries on).
    pub async fn pipeline_each(&self, commands: &[Vec<Vec<u8>>], timeout: Duration) -> Result<Vec<Value>, ClientError> {
        // Nothing to send: redis-rs would refuse an empty pipeline.
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::Pipeline::with_capacity(commands.len());
        pipe.ignore_errors();
        for c in commands {
            let mut cmd = redis::Cmd::new();
            for a in c {
                cmd.arg(a.as_slice());
            }
            pipe.add_command(cmd);
        }
        let mut conn = self.conn.clone();
        let command = format!("a pipeline of {} commands", commands.len());
        match tokio::time::timeout(timeout, pipe.query_async::<Vec<Value>>(&mut conn)).await {
            Err(_) => Err(ClientError::Timeout { endpoint: self.endpoint.name.clone(), command, timeout }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(command, e)),
        }
    }

    fn error(&self, command: String, e: redis::RedisError) -> ClientError {
        let endpoint = self.endpoint.name.clone();
        match e.kind() {
            redis::ErrorKind::Io
            | redis::ErrorKind::Client
            | redis::ErrorKind::Parse
            | redis::ErrorKind::UnexpectedReturnType => {
                ClientError::Io { endpoint, command, message: safe(&e.to_string()) }
            }
            _ => {
                // The server's own words (`NOPERM this user has no…`,
                // `MOVED 3999 127.0.0.1:7001`), not the crate's rendering of them.
                let message = match (e.code(), e.detail()) {
                    (Some(code), Some(detail)) => format!("{code} {detail}"),
                    _ => e.to_string(),
                };
                ClientError::Reply { endpoint, command, message: safe(&message) }
            }
        }
    }

    /// Runs a command and reads the reply as `T`.
    pub async fn query<T: redis::FromRedisValue, A: AsRef<[u8]>>(&self, args: &[A]) -> Result<T, ClientError> {
        let value = self.call(args).await?;
        let command = command_name(&args.iter().map(AsRef::as_ref).collect::<Vec<_>>());
        redis::from_redis_value(value).map_err(|e| ClientError::Io {
            endpoint: self.endpoint.name.clone(),
            command,
            message: format!("unexpected reply: {}", safe(&e.to_string())),
        })
    }

    /// `INFO <section>` as a map of fields.
    pub async fn info(&self, section: &str) -> Result<Info, ClientError> {
        let text: String = self.query(&["INFO", section]).await?;
        Ok(parse_info(&text))
    }
}

/// Asks the sentinels, in order, where `master_name`'s master is; the first
/// that answers decides. `Ok(None)` when none knows the master.
pub async fn sentinel_master(sentinels: &[Endpoint], master_name: &str) -> Result<Option<(String, u16)>, ClientError> {
    let mut last = None;
    for s in sentinels {
        let node = match Node::connect(s).await {
            Ok(n) => n,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        match node.query::<Option<(String, u16)>, _>(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name]).await {
            Ok(found) => return Ok(found),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// One master of a cluster: its address and the slot ranges it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMaster {
    pub id: String,
    pub host: String,
    /// The name it announces (`cluster-announce-hostname`), if any.
    pub hostname: Option<String>,
    pub port: u16,
    pub slots: Vec<(u16, u16)>,
}

/// The masters serving slots, as `node` sees the cluster (`CLUSTER NODES`).
pub async fn cluster_masters(node: &Node) -> Result<Vec<ClusterMaster>, ClientError> {
    let text: String = node.query(&["CLUSTER", "NODES"]).await?;
    Ok(parse_cluster_nodes(&text))
}

/// Masters with slots from `CLUSTER NODES` text (failed ones left out).
pub fn parse_cluster_nodes(text: &str) -> Vec<ClusterMaster> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].split(',').any(|f| f == "master") || fields[2].contains("fail") {
            continue;
        }
        // `ip:port@bus[,hostname]`
        let addr = fields[1].split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = addr.rsplit_once(':') else { continue };
        let Ok(port) = port.parse() else { continue };
        let slots: Vec<(u16, u16)> = fields[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|a| (a, a)),
            })
            .collect();
        if !slots.is_empty() {
            let hostname = fields[1].split_once(',').map(|(_, h)| h.to_owned()).filter(|h| !h.is_empty());
            out.push(ClusterMaster { id: fields[0].to_owned(), host: host.to_owned(), hostname, port, slots });
        }
    }
    out
}

/// A tokio runtime for a command-line process: one thread is plenty for
/// talking to a handful of nodes.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_give_the_masters_with_their_slots() {
        let text = "\
07c3 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:7002@17002,redis-1 master - 0 0 2 connected 5461-10922 [5461->-07c3]
292f 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-16383
e7d1 127.0.0.1:7004@17004 slave 07c3 0 0 1 connected
";
        let masters = parse_cluster_nodes(text);
        assert_eq!(masters.len(), 2);
        assert_eq!(masters[0].port, 7001);
        assert_eq!(masters[0].slots, [(0, 5460)]);
        assert_eq!(masters[1].host, "127.0.0.1");
        assert_eq!(masters[1].slots, [(5461, 10922)]);
    }

    #[test]
    fn messages_name_the_command_but_never_its_arguments() {
        assert_eq!(command_name(&[b"AUTH", b"user", b"secret"]), "AUTH");
        assert_eq!(command_name(&[b"config", b"set", b"requirepass", b"x"]), "CONFIG SET");
        let e = Endpoint {
            name: "n".into(),
            host: "h".into(),
            port: 1,
            tls: None,
            user: Some("u".into()),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
