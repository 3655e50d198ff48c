//! Per-tenant quotas and counters, shared by all of a tenant's connections:
//! a connection count, a token bucket for ops/s, a running memory account,
//! and the counters the metrics show.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A tenant's limits, from the stored template (changed at run time by
/// `tenant update`, picked up by the gateway's reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connections: u32,
    pub ops_per_second: u32,
    pub memory_bytes: u64,
}

/// Why a command or connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Connections,
    Ops,
    Memory,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Connections, Reason::Ops, Reason::Memory];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Connections => "connections",
            Reason::Ops => "ops_per_second",
            Reason::Memory => "memory",
        }
    }
}

/// One tenant's live state in the gateway.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    pub user: String,
    pub prefix: String,
    limits: Mutex<Limits>,
    connections: AtomicU32,
    bucket: Mutex<Bucket>,
    /// Bytes measured at the last sample.
    memory_base: AtomicU64,
    /// Bytes written (estimated) since the last sample began.
    memory_delta: AtomicI64,
    /// A delete ran since the last sample: measure again soon.
    pub dirty: AtomicBool,
    pub commands: AtomicU64,
    rejected: [AtomicU64; 3],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub keys: AtomicU64,
}

impl Tenant {
    pub fn new(id: String, user: String, prefix: String, limits: Limits) -> Tenant {
        Tenant {
            id,
            user,
            prefix,
            bucket: Mutex::new(Bucket::new(limits.ops_per_second, Instant::now())),
            limits: Mutex::new(limits),
            connections: AtomicU32::new(0),
            memory_base: AtomicU64::new(0),
            memory_delta: AtomicI64::new(0),
            dirty: AtomicBool::new(true),
            commands: AtomicU64::new(0),
            rejected: Default::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            keys: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// New limits from a reload; the bucket keeps its tokens.
    pub fn set_limits(&self, limits: Limits) {
        let mut l = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        if l.ops_per_second != limits.ops_per_second {
            self.bucket.lock().unwrap_or_else(|p| p.into_inner()).set_rate(limits.ops_per_second);
        }
        *l = limits;
    }

    /// Takes a connection slot; `false` when the quota is reached.
    pub fn connect(&self) -> bool {
        let quota = self.limits().connections;
        self.connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < quota).then_some(n + 1)).is_ok()
    }

    pub fn disconnect(&self) {
        let _ = self.connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    /// One command's token: how long to wait before sending it, or `None`
    /// when it would wait longer than `max_delay` (refused).
    pub fn take_token(&self, now: Instant, max_delay: Duration) -> Option<Duration> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner()).take(now, max_delay)
    }

    /// The memory account: the last sample plus what was written since.
    pub fn memory(&self) -> u64 {
        let base = self.memory_base.load(Ordering::Acquire);
        let delta = self.memory_delta.load(Ordering::Acquire);
        base.saturating_add_signed(delta.max(0))
    }

    /// Accounts a write of about `bytes` if it fits the quota.
    pub fn reserve_memory(&self, bytes: u64) -> bool {
        let quota = self.limits().memory_bytes;
        if self.memory().saturating_add(bytes) > quota {
            return false;
        }
        self.memory_delta.fetch_add(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::AcqRel);
        true
    }

    /// Starts a sample: what was written before it is part of what it measures.
    pub fn sample_started(&self) -> i64 {
        self.dirty.store(false, Ordering::Release);
        self.memory_delta.load(Ordering::Acquire)
    }

    /// Ends a sample that measured `bytes` in `keys` keys.
    pub fn sample_done(&self, started: i64, bytes: u64, keys: u64) {
        self.memory_base.store(bytes, Ordering::Release);
        self.memory_delta.fetch_sub(started, Ordering::AcqRel);
        self.keys.store(keys, Ordering::Release);
    }

    pub fn rejected(&self, reason: Reason) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TenantSnapshot {
        let limits = self.limits();
        TenantSnapshot {
            tenant: self.id.clone(),
            connections: self.connections(),
            commands: self.commands.load(Ordering::Relaxed),
            rejected: Reason::ALL
                .map(|r| (r.label().to_owned(), self.rejected[r as usize].load(Ordering::Relaxed)))
                .to_vec(),
            memory_bytes: self.memory(),
            keys: self.keys.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            quota_connections: limits.connections,
            quota_ops_per_second: limits.ops_per_second,
            quota_memory_bytes: limits.memory_bytes,
        }
    }
}

/// A tenant's counters at one moment (the metrics snapshot).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TenantSnapshot {
    pub tenant: String,
    pub connections: u32,
    pub commands: u64,
    pub rejected: Vec<(String, u64)>,
    pub memory_bytes: u64,
    pub keys: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub quota_connections: u32,
    pub quota_ops_per_second: u32,
    pub quota_memory_bytes: u64,
}

/// A token bucket holding at most a tenth of a second's tokens, which
/// lends up to `max_delay` ahead: a command that finds it empty waits
/// for its token (the wait is its place in line), and one that would wait
/// longer is refused. Over any window of `w` seconds, at most
/// `rate × (w + 0.1)` commands go out.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Bucket {
        let rate = f64::from(rate.max(1));
        let capacity = (rate / 10.0).max(1.0);
        Bucket { rate, capacity, tokens: capacity, at: now }
    }

    fn set_rate(&mut self, rate: u32) {
        self.rate = f64::from(rate.max(1));
        self.capacity = (self.rate / 10.0).max(1.0);
        self.tokens = self.tokens.min(self.capacity);
    }

    fn take(&mut self, now: Instant, max_delay: Duration) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Some(Duration::ZERO);
        }
        let wait = (1.0 - self.tokens) / self.rate;
        if wait > max_delay.as_secs_f64() {
            return None;
        }
        self.tokens -= 1.0;
        Some(Duration::from_secs_f64(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_keeps_any_window_within_the_rate_and_lends_only_max_delay() {
        let start = Instant::now();
        let mut b = Bucket::new(1000, start);
        let max = Duration::from_millis(100);
        // A client asking as fast as it can for 3 s of simulated time, in 0.1 ms steps.
        let mut sent = Vec::new();
        let mut refused = 0;
        for step in 0..30_000u32 {
            let now = start + Duration::from_micros(u64::from(step) * 100);
            for _ in 0..2 {
                match b.take(now, max) {
                    Some(wait) => sent.push(now + wait),
                    None => refused += 1,
                }
            }
        }
        assert!(refused > 0);
        // Over any 1 s window of send times: at most rate + capacity.
        sent.sort();
        let mut j = 0;
        for i in 0..sent.len() {
            while sent[i].duration_since(sent[j]) >= Duration::from_secs(1) {
                j += 1;
            }
            assert!(i - j < 1000 + 100 + 1, "window of {} at {i}", i - j + 1);
        }
        assert!(sent.len() >= 2900, "the rate is used: {}", sent.len());
        assert!(sent.iter().all(|t| t.duration_since(start) <= Duration::from_millis(3100)));
    }

    #[test]
    fn connections_and_memory_hold_their_quotas() {
        let t = Tenant::new(
            "a".into(),
            "tenant-a".into(),
            "tenant:a:".into(),
            Limits { connections: 2, ops_per_second: 10, memory_bytes: 1000 },
        );
        assert!(t.connect() && t.connect() && !t.connect());
        t.disconnect();
        assert!(t.connect());
        assert!(t.reserve_memory(600) && !t.reserve_memory(600) && t.reserve_memory(400));
        let started = t.sample_started();
        assert!(t.reserve_memory(0));
        t.sample_done(started, 100, 3);
        assert_eq!(t.memory(), 100, "the sample replaces what it measured");
        assert!(t.reserve_memory(900) && !t.reserve_memory(1));
    }
}
