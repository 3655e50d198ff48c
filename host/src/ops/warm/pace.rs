//! How fast a load may write, so it cannot hurt the deployment: an optional
//! keys-per-second cap, and a look at every master between batches (at most
//! every [`CHECK_EVERY`]) that holds the load back while a replica lags or
//! its output buffer fills — a pipelined burst that outruns a replica gets
//! it disconnected at `client-output-buffer-limit replica` and then fully
//! resynced, which forks the master — and stops it when memory nears
//! `maxmemory` (a cache would start evicting the keys it holds).

use super::{Progress, Throttled};
use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::unreachable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the masters are asked how their replicas and memory are.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Memory use, as a share of `maxmemory`, at which the load stops.
pub const MEMORY_STOP: f64 = 0.90;
/// How long a load waits for replicas to catch up before it gives up.
pub const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// What one master allows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Replication lag (bytes a replica has not acknowledged) that pauses
    /// the load: half the replica output-buffer limit, and never below the
    /// backlog. Replicas acknowledge once a second (`REPLCONF ACK`), so at
    /// a high write rate this reads up to a second's worth of writes high;
    /// a lower bound (say a quarter of a 1 MB backlog) paused a 1000-key
    /// batch every few batches for up to a second, waiting for the next ack.
    pub lag_bytes: u64,
    /// Output-buffer use of a replica client (`omem`, current) that pauses
    /// the load: a quarter of its `client-output-buffer-limit replica` (soft
    /// limit, else hard) — the limit whose crossing disconnects the replica
    /// and forces the full resync this is here to prevent.
    pub omem_bytes: u64,
}

/// Why the load paused or stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Go,
    /// A replica is this many bytes behind.
    ReplicaLag {
        node: String,
        bytes: u64,
    },
    /// A replica's output buffer holds this many bytes.
    OutputBuffer {
        node: String,
        bytes: u64,
    },
    /// Memory use is at this share of `maxmemory`.
    Memory {
        node: String,
        used: u64,
        max: u64,
    },
}

/// Reads a master's limits from its config (`repl-backlog-size`,
/// `client-output-buffer-limit`).
pub async fn limits(node: &Node) -> Result<Limits, ClientError> {
    let backlog: Vec<String> = node.query(&["CONFIG", "GET", "repl-backlog-size"]).await?;
    let backlog = backlog.get(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(1 << 20);
    let buffers: Vec<String> = node.query(&["CONFIG", "GET", "client-output-buffer-limit"]).await?;
    let omem = buffers.get(1).map(|v| replica_buffer_limit(v)).unwrap_or(0);
    // With no limit configured, still keep a replica's buffer modest.
    let omem = if omem == 0 { 64 << 20 } else { omem };
    Ok(Limits { lag_bytes: (omem / 2).max(backlog), omem_bytes: (omem / 4).max(256 << 10) })
}

/// The replica class's soft limit (else its hard limit) from
/// `client-output-buffer-limit` (`normal 0 0 0 slave 268435456 67108864 60 pubsub …`).
pub fn replica_buffer_limit(value: &str) -> u64 {
    let words: Vec<&str> = value.split_whitespace().collect();
    for chunk in words.chunks(4) {
        if let [class, hard, soft, _] = chunk
            && matches!(*class, "slave" | "replica")
        {
            let (hard, soft) = (hard.parse::<u64>().unwrap_or(0), soft.parse::<u64>().unwrap_or(0));
            return if soft > 0 { soft } else { hard };
        }
    }
    0
}

/// How one master is doing: the worst of its replicas and its memory.
pub async fn check(name: &str, node: &Node, limits: &Limits) -> Result<Verdict, ClientError> {
    let memory = node.info("memory").await?;
    let (used, max) = (memory.uint("used_memory").unwrap_or(0), memory.uint("maxmemory").unwrap_or(0));
    if max > 0 && used as f64 >= max as f64 * MEMORY_STOP {
        return Ok(Verdict::Memory { node: name.to_owned(), used, max });
    }
    let replication = node.info("replication").await?;
    let lag = replica_lag(&replication);
    if lag > limits.lag_bytes {
        return Ok(Verdict::ReplicaLag { node: name.to_owned(), bytes: lag });
    }
    if replication.uint("connected_slaves").unwrap_or(0) > 0 {
        let clients: String = node.query(&["CLIENT", "LIST", "TYPE", "replica"]).await?;
        let omem = largest_omem(&clients);
        if omem > limits.omem_bytes {
            return Ok(Verdict::OutputBuffer { node: name.to_owned(), bytes: omem });
        }
    }
    Ok(Verdict::Go)
}

/// The most bytes any online replica is behind (`master_repl_offset` −
/// its `offset` in `slaveN:ip=…,state=online,offset=…,lag=…`).
pub fn replica_lag(info: &crate::client::Info) -> u64 {
    let master = info.uint("master_repl_offset").unwrap_or(0);
    info.0
        .iter()
        .filter(|(k, _)| k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()) && k.len() > 5)
        .filter_map(|(_, v)| {
            let fields: Vec<(&str, &str)> = v.split(',').filter_map(|f| f.split_once('=')).collect();
            let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            (get("state") == Some("online")).then(|| get("offset").and_then(|o| o.parse::<u64>().ok()).unwrap_or(0))
        })
        .map(|offset| master.saturating_sub(offset))
        .max()
        .unwrap_or(0)
}

/// The largest `omem=` in `CLIENT LIST` output.
pub fn largest_omem(clients: &str) -> u64 {
    clients
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("omem=")))
        .filter_map(|v| v.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// The keys-per-second cap: a token bucket holding at most a tenth of a
/// second's worth, so a pause is not followed by a burst.
pub struct Rate {
    per_second: Option<f64>,
    tokens: f64,
    last: Instant,
}

impl Rate {
    pub fn new(per_second: Option<u64>) -> Rate {
        Rate { per_second: per_second.map(|r| r.max(1) as f64), tokens: 0.0, last: Instant::now() }
    }

    /// How long to wait before writing `keys` more.
    pub fn wait_for(&mut self, keys: usize) -> Duration {
        let Some(rate) = self.per_second else { return Duration::ZERO };
        let now = Instant::now();
        let cap = (rate / 10.0).max(keys as f64);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(cap);
        self.last = now;
        self.tokens -= keys as f64;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / rate) }
    }

    /// A batch size that keeps writes smooth under the cap (a tenth of a
    /// second's worth), at most `max`.
    pub fn batch(&self, max: usize) -> usize {
        match self.per_second {
            Some(r) => ((r / 10.0) as usize).clamp(1, max),
            None => max,
        }
    }
}

/// `sync_full` of every master.
pub(super) async fn sync_full(nodes: &[Node]) -> Result<Vec<u64>, ClientError> {
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        out.push(n.info("stats").await?.uint("sync_full").unwrap_or(0));
    }
    Ok(out)
}

/// Waits while any master's replicas lag or buffer too much; `Some(reason)`
/// when the load must stop (memory near `maxmemory`, a wait too long).
pub(super) async fn hold_back(
    nodes: &[Node],
    names: &[String],
    limits: &[Limits],
    throttled: &mut Throttled,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Option<String>, Failure> {
    let started = Instant::now();
    let mut first = true;
    loop {
        let mut verdict = Verdict::Go;
        for ((node, name), limit) in nodes.iter().zip(names).zip(limits) {
            verdict = check(name, node, limit).await.map_err(unreachable)?;
            if verdict != Verdict::Go {
                break;
            }
        }
        let waited = started.elapsed();
        let message = match &verdict {
            Verdict::Go => {
                if !first {
                    throttled.seconds += waited.as_secs_f64();
                }
                return Ok(None);
            }
            Verdict::Memory { node, used, max } => {
                return Ok(Some(format!(
                    "`{node}` uses {used} of its {max} bytes of `maxmemory` ({:.0} %): the load stops at {:.0} % so \
                     it does not evict what the cache holds",
                    *used as f64 * 100.0 / (*max).max(1) as f64,
                    MEMORY_STOP * 100.0
                )));
            }
            Verdict::ReplicaLag { node, bytes } => {
                if first {
                    throttled.replica_lag += 1;
                }
                format!("pausing: a replica of `{node}` is {bytes} bytes behind")
            }
            Verdict::OutputBuffer { node, bytes } => {
                if first {
                    throttled.output_buffer += 1;
                }
                format!("pausing: a replica's output buffer on `{node}` holds {bytes} bytes")
            }
        };
        progress.note(&message);
        if waited > LONGEST_WAIT {
            throttled.seconds += waited.as_secs_f64();
            return Ok(Some(format!("{message} after {} s of waiting; gave up", waited.as_secs())));
        }
        if cancel.load(Ordering::Relaxed) {
            throttled.seconds += waited.as_secs_f64();
            return Ok(Some("interrupted".into()));
        }
        first = false;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_class_gives_the_buffer_limit() {
        assert_eq!(
            replica_buffer_limit("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
            67108864
        );
        assert_eq!(replica_buffer_limit("normal 0 0 0 replica 1000 0 0 pubsub 0 0 0"), 1000);
        assert_eq!(replica_buffer_limit("normal 0 0 0"), 0);
    }

    #[test]
    fn lag_is_the_furthest_online_replica() {
        let info = crate::client::parse_info(
            "master_repl_offset:1000\r\nslave0:ip=127.0.0.1,port=1,state=online,offset=900,lag=0\r\n\
             slave1:ip=127.0.0.1,port=2,state=online,offset=400,lag=1\r\n\
             slave2:ip=127.0.0.1,port=3,state=wait_bgsave,offset=0,lag=0\r\nslave_read_repl_offset:1\r\n",
        );
        assert_eq!(replica_lag(&info), 600);
        assert_eq!(largest_omem("id=1 addr=x omem=0 tot-mem=1\nid=2 addr=y omem=4096 tot-mem=2\n"), 4096);
    }

    #[test]
    fn a_rate_cap_spaces_batches() {
        let mut r = Rate::new(Some(1000));
        assert_eq!(r.batch(1000), 100);
        let first = r.wait_for(100);
        let second = r.wait_for(100);
        assert!(second > first, "{first:?} then {second:?}");
        assert!(second <= Duration::from_millis(200));
        assert_eq!(Rate::new(None).wait_for(1_000_000), Duration::ZERO);
    }
}
