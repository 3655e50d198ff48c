//! One client connection through the gateway. Commands are read in
//! batches (a pipeline is one batch), checked against the tenant's quotas,
//! forwarded to the master on the connection's own upstream connection
//! (authenticated as the tenant, so Redis's ACL decides what it may touch),
//! and the replies are streamed back in order, with the gateway's own
//! answers (refusals, `SCAN`/`KEYS`) in their places. Reading the next
//! batch waits until the client has taken the replies of the last one, so a
//! client that never reads holds one batch of memory, then is cut off.

use super::Shared;
use super::link::{self, Link};
use super::mux;
use super::quota::{Reason, Tenant};
use super::resp::{self, Frame, Parsed, Scanner};
use super::upstream::Stream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod shared;

/// The most commands in one batch.
const BATCH: usize = 1024;
/// Replies are passed on to the client once this much has gathered.
const FLUSH: usize = 256 << 10;
/// How long a subscribed connection's command may wait for its ops/s turn.
const RELAY_MAX_WAIT: Duration = Duration::from_secs(10);
/// How a refused AUTH reads: as Redis says it, naming no tenant.
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// What answers one command of a batch, in order.
enum Entry {
    /// The next reply from Redis.
    Forward,
    /// The first reply to a `SUBSCRIBE` (or `MONITOR`): unless it is an
    /// error, the connection streams from then on.
    Subscribe,
    /// A reply from Redis the client did not ask for (an injected `PEXPIRE`).
    Swallow,
    /// The gateway's own answer.
    Local(Vec<u8>),
}

/// A command the gateway runs itself, between batches.
enum Barrier {
    Auth {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Hello {
        proto: Option<Vec<u8>>,
        auth: Option<(Vec<u8>, Vec<u8>)>,
        setname: Option<Vec<u8>>,
    },
    Scan(Vec<Vec<u8>>),
    Keys(Vec<u8>),
    Quit,
    Reset,
    /// The command before it must be the last of its batch.
    EndBatch,
}

pub struct Session {
    shared: Arc<Shared>,
    client: Stream,
    inbuf: Vec<u8>,
    start: usize,
    partial: Option<resp::Partial>,
    out: Vec<u8>,
    tenant: Option<Arc<Tenant>>,
    credentials: Option<(Vec<u8>, Vec<u8>)>,
    proto: Option<Vec<u8>>,
    /// The session's own upstream connection (opened at AUTH, which it
    /// proves to Redis; used once the session is pinned).
    upstream: Option<Link>,
    /// The session holds connection state: its batches go over its own
    /// upstream connection from now on, not a shared one.
    pinned: bool,
    /// The shared connections of its tenant and protocol, and which of them it uses.
    pool: Option<(Arc<mux::Pool>, String, u8)>,
    mux_index: usize,
    /// Buffers handed back by the shared connection, reused for the next batch.
    spare: (Vec<u8>, Vec<bool>),
    in_multi: bool,
    /// When the batch being planned was read (its commands' ops/s tokens are taken at it).
    batch_at: Instant,
    subscribed: bool,
    closing: bool,
    /// Bytes of the global buffer budget this connection holds.
    budget: usize,
}

/// Why a session ended (logged at debug level).
type End = String;

impl Session {
    pub fn new(shared: Arc<Shared>, client: Stream) -> Session {
        Session {
            pinned: shared.options.shared_upstreams == 0,
            mux_index: shared.pools.next_index(),
            shared,
            client,
            inbuf: Vec::with_capacity(16 << 10),
            start: 0,
            partial: None,
            out: Vec::with_capacity(16 << 10),
            tenant: None,
            credentials: None,
            proto: None,
            upstream: None,
            pool: None,
            spare: (Vec::new(), Vec::new()),
            in_multi: false,
            batch_at: Instant::now(),
            subscribed: false,
            closing: false,
            budget: 0,
        }
    }

    pub async fn run(mut self) {
        let end = self.serve().await;
        if let Err(why) = end {
            tracing::debug!(why = %crate::text::clean(&why, 200), "connection closed");
        }
        self.release();
    }

    /// Gives back the tenant's connection slot and the buffer budget (also
    /// when the task unwinds: see `Drop`).
    fn release(&mut self) {
        if let Some(t) = self.tenant.take() {
            t.disconnect();
        }
        if self.budget > 0 {
            self.shared.buffered.fetch_sub(self.budget, Ordering::AcqRel);
            self.budget = 0;
        }
    }

    async fn serve(&mut self) -> Result<(), End> {
        loop {
            // Parse what is buffered into one batch.
            let mut entries: Vec<Entry> = Vec::new();
            let mut upout: Vec<u8> = std::mem::take(&mut self.spare.0);
            let mut delay = Duration::ZERO;
            // One clock reading per batch: its commands arrived together.
            self.batch_at = Instant::now();
            let mut barrier = None;
            let mut need_more = false;
            while entries.len() < BATCH && barrier.is_none() && !self.closing {
                match resp::parse_resuming(&self.inbuf, self.start, &self.shared.limits, &mut self.partial) {
                    Parsed::Command(cmd) => {
                        if !self.pinned && self.tenant.is_some() && self.pins(&cmd) {
                            if entries.iter().any(|e| !matches!(e, Entry::Local(_))) {
                                // The commands before it still go over the
                                // shared connection; this one starts the next batch.
                                break;
                            }
                            self.pinned = true;
                        }
                        self.start = cmd.raw.end;
                        let size = (cmd.raw.end - cmd.raw.start) as u64;
                        if let Some(t) = &self.tenant {
                            t.bytes_in.fetch_add(size, Ordering::Relaxed);
                        }
                        barrier = self.plan(&cmd, &mut entries, &mut upout, &mut delay);
                    }
                    Parsed::Empty(n) => self.start += n,
                    Parsed::Incomplete { at_least } => {
                        let pending = at_least.saturating_sub(self.start);
                        if pending > self.shared.max_request {
                            entries.push(Entry::Local(resp::error(&format!(
                                "ERR Protocol error: a command of over {} bytes is more than the gateway takes",
                                self.shared.max_request
                            ))));
                            self.closing = true;
                        }
                        need_more = true;
                        break;
                    }
                    Parsed::Error(e) => {
                        entries.push(Entry::Local(resp::error(&format!("ERR {e}"))));
                        self.closing = true;
                        break;
                    }
                }
            }
            if !entries.is_empty() {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let dedicated = self.pinned;
                self.execute(entries, upout, dedicated).await?;
            }
            if let Some(b) = barrier {
                self.barrier(b).await?;
            }
            if !self.out.is_empty() {
                self.flush().await?;
            }
            if self.closing {
                let _ = self.client.shutdown().await;
                return Ok(());
            }
            if self.subscribed {
                return self.relay().await;
            }
            self.compact();
            if need_more {
                self.read_client().await?;
            }
        }
    }

    /// Reads more from the client, within the auth or idle timeout.
    async fn read_client(&mut self) -> Result<(), End> {
        let limit =
            if self.tenant.is_none() { self.shared.options.auth_timeout } else { self.shared.options.idle_timeout };
        if self.inbuf.capacity() - self.inbuf.len() < 4096 {
            self.inbuf.reserve(16 << 10);
        }
        self.account_buffer()?;
        let read = self.client.read_buf(&mut self.inbuf);
        let n = if limit.is_zero() {
            read.await
        } else {
            match tokio::time::timeout(limit, read).await {
                Ok(r) => r,
                Err(_) => {
                    let why = if self.tenant.is_none() { "no AUTH within" } else { "idle for" };
                    let msg = format!("ERR {why} {} s: the gateway closes the connection", limit.as_secs());
                    let _ = self.client.write_all(&resp::error(&msg)).await;
                    return Err(format!("{why} {limit:?}"));
                }
            }
        }
        .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the client closed the connection".into());
        }
        Ok(())
    }

    /// Keeps the connection's buffers within the gateway's global budget:
    /// past 1 MiB, a buffer's growth is taken from the budget, and a
    /// connection that cannot get it is closed.
    fn account_buffer(&mut self) -> Result<(), End> {
        let held = (self.inbuf.capacity() + self.out.capacity()).saturating_sub(1 << 20);
        if held > self.budget {
            let more = held - self.budget;
            let total = self.shared.buffered.fetch_add(more, Ordering::AcqRel) + more;
            self.budget = held;
            if total > self.shared.options.buffer_budget {
                return Err("the gateway's buffer budget is spent".into());
            }
        }
        Ok(())
    }

    /// Drops the bytes of commands already handled.
    fn compact(&mut self) {
        if self.start == self.inbuf.len() {
            self.inbuf.clear();
            self.start = 0;
            if self.inbuf.capacity() > 1 << 20 {
                self.inbuf = Vec::with_capacity(16 << 10);
            }
        } else if self.start > 64 << 10 {
            self.inbuf.drain(..self.start);
            self.start = 0;
            self.partial = None;
        }
        if self.out.capacity() > 1 << 20 && self.out.is_empty() {
            self.out = Vec::with_capacity(16 << 10);
        }
        let held = (self.inbuf.capacity() + self.out.capacity()).saturating_sub(1 << 20);
        if held < self.budget {
            self.shared.buffered.fetch_sub(self.budget - held, Ordering::AcqRel);
            self.budget = held;
        }
    }

    /// Decides how one command is answered; a command the gateway runs
    /// itself ends the batch.
    fn plan(
        &mut self,
        cmd: &resp::Command,
        entries: &mut Vec<Entry>,
        upout: &mut Vec<u8>,
        delay: &mut Duration,
    ) -> Option<Barrier> {
        let inbuf = &self.inbuf;
        let args: Vec<&[u8]> = cmd.args.iter().map(|r| &inbuf[r.clone()]).collect();
        // Lowercased on the stack: this runs for every command.
        let mut lower = [0u8; 32];
        let long;
        let name: &[u8] = match lower.get_mut(..args[0].len()) {
            Some(l) => {
                l.copy_from_slice(args[0]);
                l.make_ascii_lowercase();
                l
            }
            None => {
                long = args[0].to_ascii_lowercase();
                &long
            }
        };
        // Connection commands, answered before and after AUTH.
        match name {
            b"auth" => {
                return match args.len() {
                    3 => Some(Barrier::Auth { user: args[1].to_vec(), password: args[2].to_vec() }),
                    2 => {
                        entries.push(Entry::Local(resp::error(
                            "WRONGPASS the tenant gateway needs `AUTH <user> <password>` with your tenant's user \
                             (tenant-<id>)",
                        )));
                        None
                    }
                    _ => {
                        entries.push(Entry::Local(resp::error("ERR wrong number of arguments for 'auth' command")));
                        None
                    }
                };
            }
            b"hello" => return hello(&args, self.tenant.is_some(), entries),
            b"quit" => return Some(Barrier::Quit),
            _ => {}
        }
        let Some(tenant) = self.tenant.clone() else {
            entries.push(Entry::Local(resp::error("NOAUTH Authentication required.")));
            return None;
        };
        match tenant.take_token(self.batch_at, self.shared.options.max_delay) {
            Some(wait) => *delay = (*delay).max(wait),
            None => {
                tenant.rejected(Reason::Ops);
                let quota = tenant.limits().ops_per_second;
                entries.push(Entry::Local(resp::error(&format!(
                    "BUSY tenant '{}' is over its quota of {quota} ops/s; slow down and retry",
                    tenant.id
                ))));
                return None;
            }
        }
        match name {
            b"scan" | b"keys" if self.in_multi => {
                entries.push(Entry::Local(resp::error(
                    "ERR SCAN and KEYS cannot be queued in a transaction through the tenant gateway",
                )));
                return None;
            }
            b"scan" => return Some(Barrier::Scan(args[1..].iter().map(|a| a.to_vec()).collect())),
            b"keys" if args.len() == 2 => return Some(Barrier::Keys(args[1].to_vec())),
            b"keys" => {
                entries.push(Entry::Local(resp::error("ERR wrong number of arguments for 'keys' command")));
                return None;
            }
            b"reset" => return Some(Barrier::Reset),
            b"client" if args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"reply")) => {
                entries.push(Entry::Local(resp::error(
                    "ERR CLIENT REPLY is not supported through the tenant gateway (every command gets its reply)",
                )));
                return None;
            }
            b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe" | b"sunsubscribe"
            | b"monitor" => {
                // Replies come one per channel, then as messages arrive.
                tenant.commands.fetch_add(1, Ordering::Relaxed);
                upout.extend_from_slice(&self.inbuf[cmd.raw.clone()]);
                entries.push(Entry::Subscribe);
                return Some(Barrier::EndBatch);
            }
            b"multi" => self.in_multi = true,
            b"exec" | b"discard" => self.in_multi = false,
            _ => {}
        }
        let info = self.shared.commands.get(name).copied().unwrap_or_default();
        if info.denyoom {
            let keys = info.keys(args.len()).count().max(1) as u64;
            // What Redis allocates for it: each argument as an sds in its
            // allocator's size class, and per key an object header, a
            // dictionary entry and (the cache rules give most keys one) an
            // expiry entry. `MEMORY USAGE` of a 1 KiB string: 1,351 bytes;
            // this: 1,392.
            let bytes: u64 = args[1..].iter().map(|a| size_class(a.len() as u64 + 5)).sum::<u64>() + 80 * keys;
            if !tenant.reserve_memory(bytes) {
                tenant.rejected(Reason::Memory);
                let quota = redplate_config::units::ByteSize(tenant.limits().memory_bytes);
                entries.push(Entry::Local(resp::error(&format!(
                    "OOM tenant '{}' is at its memory quota of {quota} (about {} used); reads and deletes still \
                     work: delete keys or ask for a bigger quota",
                    tenant.id,
                    human(tenant.memory())
                ))));
                return None;
            }
        } else if info.write {
            tenant.dirty.store(true, Ordering::Release);
        }
        tenant.commands.fetch_add(1, Ordering::Relaxed);
        // Cache rules: a write without an expiry to a key a rule covers gets the rule's TTL.
        let mut follow: Vec<Vec<u8>> = Vec::new();
        if info.denyoom && !self.shared.rules.is_empty() && !self.subscribed {
            if name == b"set" {
                let has_expiry = args.get(3..).unwrap_or_default().iter().any(|a| {
                    let a = a.to_ascii_lowercase();
                    matches!(a.as_slice(), b"ex" | b"px" | b"exat" | b"pxat" | b"keepttl")
                });
                if !has_expiry
                    && args.len() >= 3
                    && let Some(ttl) = self.shared.ttl_for(args[1], &tenant.id)
                {
                    let ttl = ttl.to_string();
                    let mut all: Vec<&[u8]> = args.clone();
                    all.push(b"PX");
                    all.push(ttl.as_bytes());
                    resp::encode(upout, &all);
                    entries.push(Entry::Forward);
                    return None;
                }
            } else if !self.in_multi && !matches!(name, b"setex" | b"psetex" | b"restore" | b"getex") {
                for p in info.keys(args.len()).take(16) {
                    if let Some(ttl) = self.shared.ttl_for(args[p], &tenant.id) {
                        follow.push(pexpire(args[p], ttl));
                    }
                }
            }
        }
        upout.extend_from_slice(&self.inbuf[cmd.raw.clone()]);
        entries.push(Entry::Forward);
        for f in follow {
            upout.extend_from_slice(&f);
            entries.push(Entry::Swallow);
        }
        None
    }

    /// Sends the batch's forwarded commands and answers every entry in order.
    async fn execute(&mut self, entries: Vec<Entry>, upout: Vec<u8>, dedicated: bool) -> Result<(), End> {
        let forwarded = entries.iter().any(|e| !matches!(e, Entry::Local(_)));
        if forwarded && !dedicated {
            return self.execute_shared(entries, upout).await;
        }
        if forwarded {
            if let Err(why) = self.ensure_upstream().await {
                let msg = resp::error(&format!("TRYAGAIN the master cannot be reached: {why}"));
                for e in entries {
                    match e {
                        Entry::Local(bytes) => self.out.extend_from_slice(&bytes),
                        Entry::Forward | Entry::Subscribe => self.out.extend_from_slice(&msg),
                        Entry::Swallow => {}
                    }
                }
                return Ok(());
            }
            let up = self.upstream.as_mut().ok_or("no upstream")?;
            if let Err(e) = up.stream.write_all(&upout).await {
                self.upstream = None;
                return self.answer_lost(entries, &e.to_string());
            }
        }
        let mut entries = entries.into_iter();
        while let Some(e) = entries.next() {
            match e {
                Entry::Local(bytes) => self.out.extend_from_slice(&bytes),
                Entry::Forward | Entry::Swallow | Entry::Subscribe => {
                    let keep = !matches!(e, Entry::Swallow);
                    // In RESP3 a SUBSCRIBE is answered with a push.
                    let push_answers = matches!(e, Entry::Subscribe);
                    match self.pass_reply(keep, push_answers).await {
                        Err(why) => {
                            self.upstream = None;
                            let rest: Vec<Entry> = std::iter::once(e).chain(entries).collect();
                            return self.answer_lost(rest, &why);
                        }
                        Ok(error) => {
                            if matches!(e, Entry::Subscribe) && !error {
                                self.subscribed = true;
                            }
                        }
                    }
                }
            }
            if self.out.len() >= FLUSH {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// The upstream connection broke: every command still waiting for a
    /// reply gets an error (it may or may not have run).
    fn answer_lost(&mut self, entries: Vec<Entry>, why: &str) -> Result<(), End> {
        let msg = resp::error(&format!(
            "TRYAGAIN the connection to the master was lost ({}); the command may or may not have run",
            crate::text::clean(why, 200)
        ));
        for e in entries {
            match e {
                Entry::Local(bytes) => self.out.extend_from_slice(&bytes),
                Entry::Forward | Entry::Subscribe => self.out.extend_from_slice(&msg),
                Entry::Swallow => {}
            }
        }
        Ok(())
    }

    /// Streams one reply from Redis to the client (or drops it); push
    /// frames that come first are passed on as they are.
    /// `Ok(true)` when the reply was an error.
    async fn pass_reply(&mut self, keep: bool, push_answers: bool) -> Result<bool, String> {
        let mut up = self.upstream.take().ok_or("no upstream")?;
        let r = self.pass_reply_from(&mut up, keep, push_answers).await;
        if r.is_ok() {
            self.upstream = Some(up);
        }
        r
    }

    async fn pass_reply_from(&mut self, up: &mut Link, keep: bool, push_answers: bool) -> Result<bool, String> {
        let tenant = self.tenant.clone();
        let mut scanner = Scanner::default();
        let mut first = true;
        let mut error = false;
        loop {
            if up.pos == up.buf.len() {
                up.buf.clear();
                up.pos = 0;
                if up.buf.capacity() < 16 << 10 {
                    up.buf.reserve(64 << 10);
                }
                let n = up.stream.read_buf(&mut up.buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the master closed the connection".into());
                }
            }
            let data = &up.buf[up.pos..];
            if first {
                error = data.starts_with(b"-");
                if data.starts_with(b"-READONLY") {
                    up.stale = true;
                }
            }
            first = false;
            let (used, done) = scanner.feed(data)?;
            if keep || done == Some(Frame::Push) {
                self.out.extend_from_slice(&data[..used]);
                if let Some(t) = &tenant {
                    t.bytes_out.fetch_add(used as u64, Ordering::Relaxed);
                }
            }
            up.pos += used;
            match done {
                Some(Frame::Reply) => return Ok(error),
                Some(Frame::Push) if push_answers => return Ok(error),
                Some(Frame::Push) => {
                    scanner = Scanner::default();
                    first = true;
                }
                None => {}
            }
            if self.out.len() >= FLUSH {
                self.flush().await?;
            }
        }
    }

    async fn write_client(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(self.shared.options.write_timeout, self.client.write_all(bytes)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("the client read no reply for {:?}", self.shared.options.write_timeout)),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        let out = std::mem::take(&mut self.out);
        let r = self.write_client(&out).await;
        self.out = out;
        self.out.clear();
        r
    }

    /// An upstream connection to the current master, authenticated as the
    /// tenant (reopened after a failover, following Sentinel).
    async fn ensure_upstream(&mut self) -> Result<(), String> {
        let generation = self.shared.upstream.generation();
        if let Some(up) = &self.upstream
            && !up.stale
            && up.generation == generation
        {
            return Ok(());
        }
        if self.upstream.as_ref().is_some_and(|u| u.stale) {
            self.shared.upstream.refresh().await;
        }
        self.upstream = None;
        let (user, password) = self.credentials.clone().ok_or("not authenticated")?;
        let deadline = Instant::now() + self.shared.options.failover_wait;
        let mut last;
        loop {
            match link::open(&self.shared, self.proto.as_deref(), &user, &password).await {
                Ok(Ok(up)) => {
                    self.upstream = Some(up);
                    return Ok(());
                }
                Ok(Err(refused)) => return Err(refused),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.shared.upstream.refresh().await;
        }
    }

    /// Authenticates as `user`: the tenant's connection slot, then Redis's
    /// answer to AUTH on a new upstream connection. A failed AUTH keeps the
    /// connection's identity as it was, as in Redis.
    async fn authenticate(&mut self, user: Vec<u8>, password: Vec<u8>) -> Result<(), Vec<u8>> {
        let tenant = {
            let tenants = self.shared.tenants.read().unwrap_or_else(|p| p.into_inner());
            std::str::from_utf8(&user).ok().and_then(|u| tenants.get(u).cloned())
        };
        let Some(tenant) = tenant else { return Err(resp::error(WRONGPASS)) };
        let same = self.tenant.as_ref().is_some_and(|t| Arc::ptr_eq(t, &tenant));
        if !same && !tenant.connect() {
            // Refused, and left unauthenticated (closed after the auth
            // timeout): the client reads the error as AUTH's answer.
            tenant.rejected(Reason::Connections);
            return Err(resp::error(&format!(
                "ERR max number of clients reached: tenant '{}' has {} connections open, its quota; close one first",
                tenant.id,
                tenant.limits().connections
            )));
        }
        let old_credentials = self.credentials.replace((user, password));
        let old_upstream = self.upstream.take();
        let old_tenant = if same { None } else { self.tenant.replace(Arc::clone(&tenant)) };
        match self.ensure_upstream().await {
            Ok(()) => {
                if let Some((user, password)) = &self.credentials
                    && let Ok(user) = std::str::from_utf8(user)
                {
                    self.shared.pools.verified(user, password);
                }
                if !self.pinned {
                    // It proved the password; the session's commands go
                    // over the shared connections until it needs one of its own.
                    self.upstream = None;
                }
                if let Some(old) = old_tenant {
                    old.disconnect();
                }
                Ok(())
            }
            Err(why) => {
                if !same {
                    tenant.disconnect();
                    self.tenant = old_tenant;
                }
                self.credentials = old_credentials;
                self.upstream = old_upstream;
                if why.starts_with("WRONGPASS") || why.starts_with("NOPERM") || why.starts_with("ERR") {
                    Err(resp::error(&why))
                } else {
                    Err(resp::error(&format!(
                        "TRYAGAIN the master cannot be reached: {}",
                        crate::text::clean(&why, 200)
                    )))
                }
            }
        }
    }

    async fn barrier(&mut self, b: Barrier) -> Result<(), End> {
        match b {
            Barrier::EndBatch => {}
            Barrier::Quit => {
                self.out.extend_from_slice(b"+OK\r\n");
                self.closing = true;
            }
            Barrier::Reset => {
                self.upstream = None;
                self.pinned = self.shared.options.shared_upstreams == 0;
                self.in_multi = false;
                self.proto = None;
                self.out.extend_from_slice(b"+RESET\r\n");
            }
            Barrier::Auth { user, password } => match self.authenticate(user, password).await {
                Ok(()) => self.out.extend_from_slice(b"+OK\r\n"),
                Err(e) => self.out.extend_from_slice(&e),
            },
            Barrier::Hello { proto, auth, setname } => {
                if let Some((user, password)) = auth {
                    let before = self.proto.clone();
                    if let Err(e) = self.authenticate(user, password).await {
                        self.out.extend_from_slice(&e);
                        self.proto = before;
                        return Ok(());
                    }
                }
                if let Some(p) = &proto {
                    self.proto = Some(p.clone());
                }
                let mut args: Vec<&[u8]> = vec![b"HELLO"];
                if let Some(p) = &proto {
                    args.push(p);
                }
                if let Some(n) = &setname {
                    args.push(b"SETNAME");
                    args.push(n);
                }
                let mut upout = Vec::new();
                resp::encode(&mut upout, &args);
                if setname.is_some() {
                    self.pinned = true;
                }
                // A pinned session's own connection follows the client's
                // protocol; otherwise the shared connections of the new
                // protocol answer (they are per protocol).
                let dedicated = self.pinned;
                self.execute(vec![Entry::Forward], upout, dedicated).await?;
            }
            Barrier::Scan(args) => {
                let reply = self.scan(&args).await;
                self.out.extend_from_slice(&reply);
            }
            Barrier::Keys(pattern) => {
                let reply = self.keys(&pattern).await;
                self.out.extend_from_slice(&reply);
            }
        }
        Ok(())
    }

    /// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` over the tenant's keys only:
    /// redplate's connection scans with `MATCH <prefix>*`, and the tenant's
    /// own pattern filters what that finds.
    async fn scan(&mut self, args: &[Vec<u8>]) -> Vec<u8> {
        let Some(tenant) = self.tenant.clone() else { return resp::error("NOAUTH Authentication required.") };
        let Some(cursor) = args.first() else {
            return resp::error("ERR wrong number of arguments for 'scan' command");
        };
        if !cursor.iter().all(u8::is_ascii_digit) || cursor.is_empty() {
            return resp::error("ERR invalid cursor");
        }
        let (mut pattern, mut count, mut kind) = (None, b"10".to_vec(), None);
        let mut i = 1;
        while i < args.len() {
            let opt = args[i].to_ascii_lowercase();
            let Some(value) = args.get(i + 1) else { return resp::error("ERR syntax error") };
            match opt.as_slice() {
                b"match" => pattern = Some(value.clone()),
                b"count" if value.iter().all(u8::is_ascii_digit) && !value.is_empty() => count = value.clone(),
                b"count" => return resp::error("ERR value is not an integer or out of range"),
                b"type" => kind = Some(value.clone()),
                _ => return resp::error("ERR syntax error"),
            }
            i += 2;
        }
        let own = crate::ops::tenant::match_pattern(&tenant.prefix);
        let mut command: Vec<&[u8]> = vec![b"SCAN", cursor, b"MATCH", own.as_bytes(), b"COUNT", &count];
        if let Some(k) = &kind {
            command.push(b"TYPE");
            command.push(k);
        }
        let found: Result<(Vec<u8>, Vec<Vec<u8>>), String> = async {
            let admin = self.shared.upstream.admin().await.map_err(|e| e.to_string())?;
            admin.query(&command).await.map_err(|e| e.to_string())
        }
        .await;
        let (next, keys) = match found {
            Ok(f) => f,
            Err(e) => {
                self.shared.upstream.drop_admin().await;
                return resp::error(&format!("ERR the gateway could not scan: {}", crate::text::clean(&e, 200)));
            }
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| k.starts_with(tenant.prefix.as_bytes()))
            .filter(|k| pattern.as_ref().is_none_or(|p| crate::ops::warm::glob(p, k)))
            .collect();
        let mut out = Vec::new();
        resp::array(&mut out, 2);
        resp::bulk(&mut out, &next);
        resp::array(&mut out, keys.len());
        for k in &keys {
            resp::bulk(&mut out, k);
        }
        out
    }

    /// `KEYS pattern` over the tenant's keys only (a whole SCAN).
    async fn keys(&mut self, pattern: &[u8]) -> Vec<u8> {
        let Some(tenant) = self.tenant.clone() else { return resp::error("NOAUTH Authentication required.") };
        let own = crate::ops::tenant::match_pattern(&tenant.prefix);
        let mut all = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let step: Result<(Vec<u8>, Vec<Vec<u8>>), String> = async {
                let admin = self.shared.upstream.admin().await.map_err(|e| e.to_string())?;
                let command: [&[u8]; 6] = [b"SCAN", &cursor, b"MATCH", own.as_bytes(), b"COUNT", b"1000"];
                admin.query(&command).await.map_err(|e| e.to_string())
            }
            .await;
            match step {
                Ok((next, keys)) => {
                    all.extend(
                        keys.into_iter()
                            .filter(|k| k.starts_with(tenant.prefix.as_bytes()) && crate::ops::warm::glob(pattern, k)),
                    );
                    if next == b"0" {
                        break;
                    }
                    cursor = next;
                }
                Err(e) => {
                    self.shared.upstream.drop_admin().await;
                    return resp::error(&format!(
                        "ERR the gateway could not list keys: {}",
                        crate::text::clean(&e, 200)
                    ));
                }
            }
        }
        all.sort();
        all.dedup();
        let mut out = Vec::new();
        resp::array(&mut out, all.len());
        for k in &all {
            resp::bulk(&mut out, k);
        }
        out
    }

    /// After a `SUBSCRIBE`: messages come when they come, so both
    /// directions flow at once. Commands are still counted and rate
    /// limited, and forwarded as they are.
    async fn relay(&mut self) -> Result<(), End> {
        let Some(up) = self.upstream.take() else { return Err("no upstream".into()) };
        let tenant = self.tenant.clone().ok_or("not authenticated")?;
        let client = std::mem::replace(&mut self.client, Box::new(tokio::io::duplex(1).0));
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut ur, mut uw) = tokio::io::split(up.stream);
        // What was read from Redis but not yet passed on.
        if up.pos < up.buf.len() {
            cw.write_all(&up.buf[up.pos..]).await.map_err(|e| e.to_string())?;
        }
        let shared = Arc::clone(&self.shared);
        let t = Arc::clone(&tenant);
        let down = async move {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = ur.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err::<(), String>("the master closed the connection".into());
                }
                t.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                match tokio::time::timeout(shared.options.write_timeout, cw.write_all(&buf[..n])).await {
                    Ok(r) => r.map_err(|e| e.to_string())?,
                    Err(_) => return Err("the client read no message in time".into()),
                }
            }
        };
        let limits = self.shared.limits;
        let max_request = self.shared.max_request;
        let shared_up = Arc::clone(&self.shared);
        let commands = &shared_up.commands;
        let mut inbuf = std::mem::take(&mut self.inbuf);
        let mut start = self.start;
        let up_ = async move {
            loop {
                let mut out = Vec::new();
                loop {
                    match resp::parse(&inbuf, start, &limits) {
                        Parsed::Command(cmd) => {
                            start = cmd.raw.end;
                            tenant.bytes_in.fetch_add((cmd.raw.end - cmd.raw.start) as u64, Ordering::Relaxed);
                            // No reply of the gateway's can be slotted in
                            // while subscribed: over the ops/s quota a command
                            // waits its turn; a write past the memory quota
                            // closes the connection.
                            let Some(wait) = tenant.take_token(Instant::now(), RELAY_MAX_WAIT) else {
                                tenant.rejected(Reason::Ops);
                                return Err("over the ops/s quota while subscribed".into());
                            };
                            if !wait.is_zero() {
                                tokio::time::sleep(wait).await;
                            }
                            let name = inbuf[cmd.args[0].clone()].to_vec();
                            if commands.get(&name).is_some_and(|i| i.denyoom) {
                                let bytes: u64 =
                                    cmd.args[1..].iter().map(|r| size_class(r.len() as u64 + 5) + 80).sum();
                                if !tenant.reserve_memory(bytes) {
                                    tenant.rejected(Reason::Memory);
                                    return Err("a write past the memory quota while subscribed".into());
                                }
                            }
                            tenant.commands.fetch_add(1, Ordering::Relaxed);
                            out.extend_from_slice(&inbuf[cmd.raw.clone()]);
                        }
                        Parsed::Empty(n) => start += n,
                        Parsed::Incomplete { at_least } => {
                            if at_least.saturating_sub(start) > max_request {
                                return Err::<(), String>("a command over the size limit".into());
                            }
                            break;
                        }
                        Parsed::Error(e) => return Err(e),
                    }
                }
                if !out.is_empty() {
                    uw.write_all(&out).await.map_err(|e| e.to_string())?;
                }
                if start == inbuf.len() {
                    inbuf.clear();
                    start = 0;
                }
                inbuf.reserve(16 << 10);
                let n = cr.read_buf(&mut inbuf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the client closed the connection".into());
                }
            }
        };
        tokio::select! {
            r = down => r,
            r = up_ => r,
        }
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello(args: &[&[u8]], authenticated: bool, entries: &mut Vec<Entry>) -> Option<Barrier> {
    let mut proto = None;
    let mut auth = None;
    let mut setname = None;
    let mut i = 1;
    if let Some(p) = args.get(1) {
        proto = Some(p.to_vec());
        i = 2;
    }
    while i < args.len() {
        let opt = args[i].to_ascii_lowercase();
        match (opt.as_slice(), args.len() - i) {
            (b"auth", n) if n >= 3 => {
                auth = Some((args[i + 1].to_vec(), args[i + 2].to_vec()));
                i += 3;
            }
            (b"setname", n) if n >= 2 => {
                setname = Some(args[i + 1].to_vec());
                i += 2;
            }
            _ => {
                entries.push(Entry::Local(resp::error("ERR Syntax error in HELLO option")));
                return None;
            }
        }
    }
    if let Some(p) = &proto
        && !matches!(p.as_slice(), b"2" | b"3")
    {
        entries.push(Entry::Local(resp::error("NOPROTO unsupported protocol version")));
        return None;
    }
    if auth.is_none() && !authenticated {
        entries.push(Entry::Local(resp::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> \
             AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
             version at the same time",
        )));
        return None;
    }
    Some(Barrier::Hello { proto, auth, setname })
}

impl Drop for Session {
    fn drop(&mut self) {
        self.release();
    }
}

/// `PEXPIRE key ttl NX`: a TTL only where the key has none.
fn pexpire(key: &[u8], ttl: u64) -> Vec<u8> {
    let mut out = Vec::new();
    resp::encode(&mut out, &[b"PEXPIRE", key, ttl.to_string().as_bytes(), b"NX"]);
    out
}

/// `1.5 MiB`: a size for a message.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The size class jemalloc (Redis's allocator) serves `n` bytes from:
/// 8, then steps of 16 up to 128, then four classes per doubling.
fn size_class(n: u64) -> u64 {
    match n {
        0..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let step = n.next_power_of_two() / 8;
            n.div_ceil(step) * step
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_round_up_to_jemalloc_classes() {
        let classes: Vec<u64> =
            [1, 8, 9, 20, 129, 1029, 1280, 1281, 5000].iter().map(|n| super::size_class(*n)).collect();
        assert_eq!(classes, [8, 8, 16, 32, 160, 1280, 1280, 1536, 5120]);
    }
}
