//! Shared upstream connections: the sessions of a tenant that hold no
//! connection state send their batches over a few connections per tenant
//! and protocol, authenticated as the tenant (Redis's ACL stays the
//! authority). One task owns each connection: it writes every batch that
//! has queued up in one write, reads the replies in one read, and hands
//! each session its replies by counting RESP reply frames, in the order
//! the batches were written. A session that needs connection state
//! (`MULTI`, `WATCH`, `SELECT`, blocking commands, `SUBSCRIBE`, `CLIENT`…)
//! moves to a connection of its own for good (`Session::pins`).
//!
//! Why: with a connection per client, every batch cost the gateway four
//! syscalls and Redis an event of its own; 50 clients sharing one
//! connection cost one write and one read for all of them (measured in the
//! README's benchmark table).

use super::Shared;
use super::link::{self, Link};
use super::resp::{Frame, Scanner};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};

/// Read from Redis in pieces of this size (the replies are copied out of it).
const READ_CHUNK: usize = 64 << 10;
/// No more batches are taken while this much waits to be written.
const WRITE_MAX: usize = 1 << 20;
/// A batch's replies past this size come out of the gateway's buffer budget.
const FREE_REPLY: usize = 1 << 20;

/// One session's batch.
pub struct Request {
    /// The commands, as they go to Redis.
    pub bytes: Vec<u8>,
    /// Per reply expected, in order: whether the client gets it (`false`:
    /// an injected `PEXPIRE` whose reply nobody asked for).
    pub keep: Vec<bool>,
    /// Where the kept replies are appended (a buffer the session reuses).
    pub data: Vec<u8>,
    pub done: oneshot::Sender<Done>,
}

/// The replies to one batch.
pub struct Done {
    /// The kept replies, one after another.
    pub data: Vec<u8>,
    /// Where each kept reply ends in `data`.
    pub ends: Vec<usize>,
    /// Why the replies after the last of `ends` will not come.
    pub lost: Option<Lost>,
    /// The request's buffers, given back for reuse.
    pub bytes: Vec<u8>,
    pub keep: Vec<bool>,
}

#[derive(Debug, Clone)]
pub enum Lost {
    /// No connection could be opened (the commands were not sent).
    Unreachable(String),
    /// The connection broke with the commands sent: they may or may not have run.
    Broken(String),
    /// The replies were more than the gateway's buffer budget holds.
    Budget,
}

/// A tenant's shared connections for one protocol; each is a task that
/// ends when the last session holding the pool is gone.
pub struct Pool {
    conns: Vec<mpsc::UnboundedSender<Request>>,
}

impl Pool {
    /// Queues a batch on connection `index` (of the pool's); `Err` gives
    /// the request back when the connection's task is gone.
    pub fn send(&self, index: usize, request: Request) -> Result<(), Request> {
        let Some(conn) = self.conns.get(index % self.conns.len().max(1)) else { return Err(request) };
        conn.send(request).map_err(|e| e.0)
    }
}

/// Every tenant's pools, and the password each tenant user last proved to
/// Redis (on a session's own connection): shared connections are opened
/// (and reopened after a failover) with it.
#[derive(Default)]
pub struct Pools {
    live: Mutex<HashMap<(String, u8), Weak<Pool>>>,
    passwords: Mutex<HashMap<String, Vec<u8>>>,
    next: AtomicUsize,
}

impl Pools {
    /// `user` just authenticated with `password` on a connection Redis
    /// accepted: shared connections open with it from now on.
    pub fn verified(&self, user: &str, password: &[u8]) {
        let mut p = self.passwords.lock().unwrap_or_else(|p| p.into_inner());
        if p.get(user).is_none_or(|old| old.as_slice() != password) {
            p.insert(user.to_owned(), password.to_vec());
        }
    }

    fn password(&self, user: &str) -> Option<Vec<u8>> {
        self.passwords.lock().unwrap_or_else(|p| p.into_inner()).get(user).cloned()
    }

    /// Which of a pool's connections a new session uses (round robin).
    pub fn next_index(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The pool of `user` for protocol `proto` (2 or 3), started when none is running.
    pub fn get(&self, shared: &Arc<Shared>, user: &str, proto: u8) -> Arc<Pool> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let key = (user.to_owned(), proto);
        if let Some(pool) = live.get(&key).and_then(Weak::upgrade) {
            return pool;
        }
        live.retain(|_, w| w.strong_count() > 0);
        let n = shared.options.shared_upstreams.max(1);
        let conns = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(Arc::clone(shared), user.to_owned(), proto, rx));
                tx
            })
            .collect();
        let pool = Arc::new(Pool { conns });
        live.insert(key, Arc::downgrade(&pool));
        pool
    }
}

/// Fails a request that was never sent or lost its connection.
fn fail(request: Request, lost: Lost) {
    let Request { bytes, keep, data, done } = request;
    let _ = done.send(Done { data, ends: Vec::new(), lost: Some(lost), bytes, keep });
}

/// One shared connection's task: connects when there is work, serves
/// until the connection breaks or the master moves, and again.
async fn run(shared: Arc<Shared>, user: String, proto: u8, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut queued: VecDeque<Request> = VecDeque::new();
    let mut closed = false;
    let mut refresh = false;
    loop {
        if queued.is_empty() {
            if closed {
                return;
            }
            match rx.recv().await {
                Some(r) => queued.push_back(r),
                None => return,
            }
        }
        if std::mem::take(&mut refresh) {
            shared.upstream.refresh().await;
        }
        let link = match connect(&shared, &user, proto).await {
            Ok(l) => l,
            Err(why) => {
                let lost = Lost::Unreachable(why);
                for r in queued.drain(..) {
                    fail(r, lost.clone());
                }
                while let Ok(r) = rx.try_recv() {
                    fail(r, lost.clone());
                }
                continue;
            }
        };
        let mut conn = Conn::new(link);
        match conn.serve(&shared, &mut queued, &mut rx, &mut closed).await {
            Ended::Moved { stale } => refresh = stale,
            Ended::Broken => refresh = true,
            Ended::Closed => return,
        }
    }
}

/// Opens the connection as `user`, waiting out a failover (up to
/// `failover_wait`, asking Sentinel again every 200 ms).
async fn connect(shared: &Shared, user: &str, proto: u8) -> Result<Link, String> {
    let deadline = Instant::now() + shared.options.failover_wait;
    loop {
        let password = shared.pools.password(user).ok_or("not authenticated")?;
        let p: Option<&[u8]> = (proto == 3).then_some(b"3");
        let last = match link::open(shared, p, user.as_bytes(), &password).await {
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(refused)) => return Err(refused),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        shared.upstream.refresh().await;
    }
}

enum Ended {
    /// The master moved (or the node said it is a replica: `stale`), with
    /// nothing in flight.
    Moved { stale: bool },
    /// The connection broke; what was in flight was answered with the loss.
    Broken,
    /// Every session is gone.
    Closed,
}

/// A batch written, waiting for its replies.
struct InFlight {
    request: Request,
    /// Replies received so far.
    at: usize,
    ends: Vec<usize>,
    /// Bytes of the budget its replies hold.
    charged: usize,
    over: bool,
}

struct Conn {
    link: Link,
    inflight: VecDeque<InFlight>,
    scanner: Scanner,
    /// The next byte read starts a reply.
    first: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
}

enum Event {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    Request(Option<Request>),
}

impl Conn {
    fn new(link: Link) -> Conn {
        Conn {
            link,
            inflight: VecDeque::new(),
            scanner: Scanner::default(),
            first: true,
            wbuf: Vec::with_capacity(16 << 10),
            wpos: 0,
            rbuf: vec![0; READ_CHUNK],
        }
    }

    async fn serve(
        &mut self,
        shared: &Shared,
        queued: &mut VecDeque<Request>,
        rx: &mut mpsc::UnboundedReceiver<Request>,
        closed: &mut bool,
    ) -> Ended {
        // Bytes the handshake read past its replies (none, from Redis).
        let early = self.link.buf.split_off(self.link.pos.min(self.link.buf.len()));
        if !early.is_empty()
            && let Err(why) = self.replies(shared, &early)
        {
            return self.broken(shared, &why);
        }
        loop {
            let moved = self.link.stale || shared.upstream.generation() != self.link.generation;
            if !moved {
                // Everything queued goes out in the next write.
                while self.wbuf.len() - self.wpos < WRITE_MAX
                    && let Some(r) = queued.pop_front()
                {
                    let f = InFlight { request: r, at: 0, ends: Vec::new(), charged: 0, over: false };
                    if f.request.keep.is_empty() {
                        finish(shared, f, None);
                        continue;
                    }
                    self.wbuf.extend_from_slice(&f.request.bytes);
                    self.inflight.push_back(f);
                }
            }
            let idle = self.inflight.is_empty() && self.wpos == self.wbuf.len();
            if moved && idle {
                return Ended::Moved { stale: self.link.stale };
            }
            if *closed && idle && queued.is_empty() {
                return Ended::Closed;
            }
            let want = !*closed && !moved && queued.is_empty() && self.wbuf.len() - self.wpos < WRITE_MAX;
            let event = std::future::poll_fn(|cx| {
                // Writing first: Redis starts on the next batches while
                // the replies to the last ones are read.
                if self.wpos < self.wbuf.len()
                    && let Poll::Ready(r) = Pin::new(&mut self.link.stream).poll_write(cx, &self.wbuf[self.wpos..])
                {
                    return Poll::Ready(Event::Wrote(r));
                }
                let mut rb = ReadBuf::new(&mut self.rbuf);
                if let Poll::Ready(r) = Pin::new(&mut self.link.stream).poll_read(cx, &mut rb) {
                    return Poll::Ready(Event::Read(r.map(|()| rb.filled().len())));
                }
                if want && let Poll::Ready(r) = rx.poll_recv(cx) {
                    return Poll::Ready(Event::Request(r));
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Read(Ok(0)) => return self.broken(shared, "the master closed the connection"),
                Event::Read(Err(e)) | Event::Wrote(Err(e)) => return self.broken(shared, &e.to_string()),
                Event::Read(Ok(n)) => {
                    let chunk = std::mem::take(&mut self.rbuf);
                    let r = self.replies(shared, &chunk[..n]);
                    self.rbuf = chunk;
                    if let Err(why) = r {
                        return self.broken(shared, &why);
                    }
                }
                Event::Wrote(Ok(0)) => return self.broken(shared, "the master took no more bytes"),
                Event::Wrote(Ok(n)) => {
                    self.wpos += n;
                    if self.wpos == self.wbuf.len() {
                        self.wbuf.clear();
                        self.wpos = 0;
                        if self.wbuf.capacity() > 4 * WRITE_MAX {
                            self.wbuf = Vec::with_capacity(16 << 10);
                        }
                    }
                }
                Event::Request(Some(r)) => {
                    queued.push_back(r);
                    // Under load (replies still to come), the sessions that
                    // are ready to run add their batches first: one write
                    // carries them all (without this, a write went out for
                    // every one or two batches). A lone client is not made
                    // to wait for that (the yield cost it ~20 µs).
                    if !self.inflight.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    while let Ok(r) = rx.try_recv() {
                        queued.push_back(r);
                    }
                }
                Event::Request(None) => *closed = true,
            }
        }
    }

    /// Hands out the replies in `data` to the batches in flight, in order.
    fn replies(&mut self, shared: &Shared, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let Some(head) = self.inflight.front_mut() else {
                return Err("the master sent a reply no command asked for".into());
            };
            if self.first && data.starts_with(b"-READONLY") {
                self.link.stale = true;
            }
            self.first = false;
            let (used, done) = self.scanner.feed(data)?;
            let keep = head.request.keep.get(head.at).copied().unwrap_or(false);
            if keep && !head.over {
                head.request.data.extend_from_slice(&data[..used]);
                let over = head.request.data.len().saturating_sub(FREE_REPLY);
                if over > head.charged {
                    let more = over - head.charged;
                    head.charged = over;
                    let total = shared.buffered.fetch_add(more, Ordering::AcqRel) + more;
                    if total > shared.options.buffer_budget {
                        head.over = true;
                        head.request.data = Vec::new();
                    }
                }
            }
            data = &data[used..];
            match done {
                None => {}
                // A push (none are expected on a shared connection) goes
                // with the reply it came before.
                Some(Frame::Push) => self.first = true,
                Some(Frame::Reply) => {
                    self.first = true;
                    if keep {
                        head.ends.push(head.request.data.len());
                    }
                    head.at += 1;
                    if head.at >= head.request.keep.len()
                        && let Some(done) = self.inflight.pop_front()
                    {
                        finish(shared, done, None);
                    }
                }
            }
        }
        Ok(())
    }

    /// The connection broke: every batch in flight learns which of its
    /// replies came, and that the rest may or may not have run.
    fn broken(&mut self, shared: &Shared, why: &str) -> Ended {
        for f in self.inflight.drain(..) {
            finish(shared, f, Some(Lost::Broken(why.to_owned())));
        }
        Ended::Broken
    }
}

fn finish(shared: &Shared, f: InFlight, lost: Option<Lost>) {
    if f.charged > 0 {
        shared.buffered.fetch_sub(f.charged, Ordering::AcqRel);
    }
    let lost = if f.over { Some(Lost::Budget) } else { lost };
    let Request { bytes, keep, data, done } = f.request;
    let _ = done.send(Done { data, ends: f.ends, lost, bytes, keep });
}
