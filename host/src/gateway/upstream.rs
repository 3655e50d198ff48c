//! Where the gateway's tenant connections go: the deployment's current
//! master (the only data node of a standalone deployment, or the one
//! Sentinel names, watched so a failover moves every connection), over TCP
//! or TLS as the node speaks; plus redplate's admin connection to it for
//! `SCAN` and memory sampling.

use super::tls;
use crate::client::{Endpoint, Node, sentinel_master};
use crate::registry::Record;
use redplate_config::Role;
use redplate_config::model::Mode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream to or from a peer (TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The master and how to reach it.
pub struct Upstream {
    sentinels: Vec<Endpoint>,
    master_name: String,
    /// The admin endpoint of the data node first known as master (TLS
    /// files, admin user); `at` moves it to the current master.
    admin: Endpoint,
    tls: Option<tls::Client>,
    current: RwLock<(String, u16)>,
    generation: AtomicU64,
    admin_node: tokio::sync::Mutex<Option<(u64, Node)>>,
}

impl Upstream {
    /// From the deployment's record: standalone or Sentinel (cluster mode is
    /// refused by the caller).
    pub fn new(record: &Record) -> Result<Upstream, String> {
        let data: Vec<_> = record.data_nodes().collect();
        let first = data
            .iter()
            .find(|n| n.role == Role::Master)
            .or(data.first())
            .ok_or_else(|| format!("`{}` has no data node", record.name))?;
        let admin = crate::ops::connect::endpoint(record, first);
        let tls = match (&admin.tls, first.tls) {
            (Some(files), true) => Some(tls::Client::new(files)?),
            _ => None,
        };
        let sentinels = if record.mode == Mode::Sentinel {
            record
                .nodes
                .iter()
                .filter(|n| n.role == Role::Sentinel)
                .map(|n| crate::ops::connect::endpoint(record, n))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Upstream {
            sentinels,
            master_name: record.master_name.clone().unwrap_or_else(|| "mymaster".into()),
            current: RwLock::new((admin.host.clone(), admin.port)),
            admin,
            tls,
            generation: AtomicU64::new(0),
            admin_node: tokio::sync::Mutex::new(None),
        })
    }

    /// The master's address and the generation it belongs to.
    pub fn current(&self) -> ((String, u16), u64) {
        let addr = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        (addr, self.generation.load(Ordering::Acquire))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Asks Sentinel where the master is; a change starts a new generation
    /// (every connection moves to it before its next command). `true` when
    /// the master moved.
    pub async fn refresh(&self) -> bool {
        if self.sentinels.is_empty() {
            return false;
        }
        let Ok(Some(found)) = sentinel_master(&self.sentinels, &self.master_name).await else { return false };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if *current == found {
            return false;
        }
        // The address is Sentinel's text: cleaned before it reaches the log.
        let to = crate::text::clean(&format!("{}:{}", found.0, found.1), 300);
        tracing::info!(from = %crate::text::clean(&format!("{}:{}", current.0, current.1), 300), to = %to, "the master moved");
        *current = found;
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Follows Sentinel's answer for as long as the gateway runs.
    pub fn watch(self: &Arc<Self>) {
        if self.sentinels.is_empty() {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                me.refresh().await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    /// Opens a stream to `addr` (TLS when the nodes speak it).
    pub async fn open(&self, addr: &(String, u16)) -> std::io::Result<Stream> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((addr.0.as_str(), addr.1)))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 3 s"))??;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(client) => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, client.connect(&addr.0, tcp))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake took over 3 s"))??;
                Ok(Box::new(stream))
            }
        }
    }

    /// redplate's admin connection to the current master (reopened after a
    /// failover or an error).
    pub async fn admin(&self) -> Result<Node, crate::client::ClientError> {
        let mut slot = self.admin_node.lock().await;
        let ((host, port), generation) = self.current();
        if let Some((g, node)) = slot.as_ref()
            && *g == generation
        {
            return Ok(node.clone());
        }
        let endpoint = self.admin.at(format!("{host}:{port}"), host, port);
        let node = Node::connect(&endpoint).await?;
        *slot = Some((generation, node.clone()));
        Ok(node)
    }

    /// Forgets the admin connection (after it failed).
    pub async fn drop_admin(&self) {
        *self.admin_node.lock().await = None;
    }
}
