//! `SCAN MATCH` over one master, paced by a time budget rather than a fixed
//! `COUNT` (as Dragonfly learned to do): Redis runs one command at a time,
//! so each of ours may hold other clients back by as long as it takes. The
//! batch size grows while a command stays well under the budget and halves
//! when one goes over it, and the scan rests between bursts so that it takes
//! at most `duty` of the server's time.

use crate::client::{ClientError, Node};
use std::time::{Duration, Instant};

/// How hard a scan may press on a server.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The longest one of our commands should hold the server.
    pub budget: Duration,
    /// The share of time our commands may take (0–1].
    pub duty: f64,
    /// The first `COUNT`, and its bounds.
    pub start: u32,
    pub min: u32,
    pub max: u32,
}

impl Pace {
    /// A pace that other clients should not notice: commands under 0.5 ms,
    /// at most half of the server's time. With a 1 ms budget another
    /// client's GET p99 rose by up to 1.3 ms; with 0.5 ms by about 0.4–0.6 ms,
    /// and 1M of 2M keys still go in ~12 s (`scripts/bench-tenant-remove.sh`,
    /// README "Tenants").
    pub fn gentle(start: u32) -> Pace {
        Pace { budget: Duration::from_micros(500), duty: 0.5, start: start.clamp(10, 20_000), min: 10, max: 20_000 }
    }
}

/// Rest after this much work, so sleeps are long enough for the timer.
const BURST: Duration = Duration::from_millis(5);

/// A paced scan of the keys matching `pattern` on one node.
pub struct Scanner<'a> {
    node: &'a Node,
    pattern: String,
    cursor: String,
    count: u32,
    pace: Pace,
    busy: Duration,
    done: bool,
}

impl<'a> Scanner<'a> {
    pub fn new(node: &'a Node, pattern: String, pace: Pace) -> Self {
        Scanner { node, pattern, cursor: "0".into(), count: pace.start, pace, busy: Duration::ZERO, done: false }
    }

    /// The next batch of matching keys (often empty: `SCAN` visits buckets,
    /// not matches), or `None` once the whole keyspace was visited.
    pub async fn next(&mut self) -> Result<Option<Vec<Vec<u8>>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        self.rest().await;
        let count = self.count.to_string();
        let started = Instant::now();
        let (cursor, keys): (String, Vec<Vec<u8>>) =
            self.node.query(&["SCAN", &self.cursor, "MATCH", &self.pattern, "COUNT", &count]).await?;
        self.spent(started.elapsed(), true);
        self.done = cursor == "0";
        self.cursor = cursor;
        Ok(Some(keys))
    }

    /// Accounts for a command of ours that took `took` (the caller's
    /// `UNLINK`s too): over budget halves the batch; well under it grows it.
    pub fn spent(&mut self, took: Duration, may_grow: bool) {
        self.busy += took;
        if took > self.pace.budget {
            self.count = (self.count / 2).max(self.pace.min);
        } else if may_grow && took < self.pace.budget / 2 {
            self.count = (self.count.saturating_mul(3) / 2).clamp(self.pace.min, self.pace.max);
        }
    }

    /// Accounts for time spent on our other commands without changing the
    /// batch size (a pipeline that reads the batch's keys).
    pub fn busy(&mut self, took: Duration) {
        self.busy += took;
    }

    async fn rest(&mut self) {
        if self.busy < BURST {
            return;
        }
        let duty = self.pace.duty.clamp(0.01, 1.0);
        let rest = self.busy.mul_f64((1.0 - duty) / duty);
        self.busy = Duration::ZERO;
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
    }
}
