//! A session's batches over its tenant's shared upstream connections
//! (`mux`), and which commands pin a session to a connection of its own.

use super::{End, Entry, FLUSH, Session};
use crate::gateway::mux::{self, Done, Lost, Request};
use crate::gateway::resp::{self, Command};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Commands that set or read the state of the connection they run on: a
/// session that sends one moves to an upstream connection of its own, for
/// good. Beside these, a command Redis's `COMMAND` flags `blocking`
/// (`BLPOP`, `BLMOVE`, `BZPOPMIN`…, and `XREAD`/`XREADGROUP` when they say
/// `BLOCK`) pins, since it would hold every other session's replies up, and
/// so does one flagged `no-multi` (`SYNC`, `PSYNC`: a replication stream);
/// `HELLO` pins when it names the connection (`SETNAME`); `CLIENT SETINFO`
/// does not. `AUTH`, `HELLO` without a name, `RESET`, `SCAN`, `KEYS` and
/// `QUIT` are the gateway's own.
const PINNING: &[&[u8]] = &[
    b"multi",
    b"exec",
    b"discard",
    b"watch",
    b"unwatch",
    b"select",
    b"readonly",
    b"readwrite",
    b"asking",
    b"client",
    b"wait",
    b"waitaof",
    b"replconf",
    b"monitor",
    b"subscribe",
    b"psubscribe",
    b"ssubscribe",
    b"unsubscribe",
    b"punsubscribe",
    b"sunsubscribe",
];

impl Session {
    /// Whether `cmd` needs the session's own upstream connection.
    pub(super) fn pins(&self, cmd: &Command) -> bool {
        let arg = |i: usize| cmd.args.get(i).map(|r| &self.inbuf[r.clone()]);
        let Some(name) = arg(0) else { return false };
        if name.eq_ignore_ascii_case(b"client") {
            // `CLIENT SETINFO` (client libraries send it when they connect)
            // only labels the connection: it is answered where it runs.
            return !arg(1).is_some_and(|a| a.eq_ignore_ascii_case(b"setinfo"));
        }
        if PINNING.iter().any(|p| name.eq_ignore_ascii_case(p)) {
            return true;
        }
        if name.eq_ignore_ascii_case(b"hello") {
            return (1..cmd.args.len()).any(|i| arg(i).is_some_and(|a| a.eq_ignore_ascii_case(b"setname")));
        }
        if name.eq_ignore_ascii_case(b"xread") || name.eq_ignore_ascii_case(b"xreadgroup") {
            return (1..cmd.args.len()).any(|i| arg(i).is_some_and(|a| a.eq_ignore_ascii_case(b"block")));
        }
        self.shared.commands.get(name).is_some_and(|i| i.own_connection)
    }

    /// The shared connections of the session's tenant and protocol.
    fn pool(&mut self) -> Result<Arc<mux::Pool>, End> {
        let user = self.credentials.as_ref().map(|(u, _)| u.as_slice()).ok_or("not authenticated")?;
        let user = std::str::from_utf8(user).map_err(|_| "not authenticated")?;
        let proto = if self.proto.as_deref() == Some(b"3") { 3 } else { 2 };
        if let Some((pool, u, p)) = &self.pool
            && u == user
            && *p == proto
        {
            return Ok(Arc::clone(pool));
        }
        let pool = self.shared.pools.get(&self.shared, user, proto);
        self.pool = Some((Arc::clone(&pool), user.to_owned(), proto));
        Ok(pool)
    }

    /// Sends the batch over a shared connection and answers every entry in
    /// order: the gateway's own answers in their places, and for replies
    /// that will not come (the connection broke or could not be opened),
    /// `TRYAGAIN` as on a connection of the session's own.
    pub(super) async fn execute_shared(&mut self, entries: Vec<Entry>, upout: Vec<u8>) -> Result<(), End> {
        let pool = self.pool()?;
        let mut keep = std::mem::take(&mut self.spare.1);
        keep.clear();
        keep.extend(entries.iter().filter_map(|e| match e {
            Entry::Local(_) => None,
            Entry::Swallow => Some(false),
            Entry::Forward | Entry::Subscribe => Some(true),
        }));
        let only_replies = keep.len() == entries.len() && self.out.is_empty();
        // With nothing else to answer, the replies land in `out` as they are.
        let data = if only_replies { std::mem::take(&mut self.out) } else { Vec::new() };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = match pool.send(self.mux_index, Request { bytes: upout, keep, data, done: tx }) {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        let Done { data, ends, lost, mut bytes, keep } = done.unwrap_or_else(|| Done {
            data: Vec::new(),
            ends: Vec::new(),
            lost: Some(Lost::Broken("the shared connection's task ended".into())),
            bytes: Vec::new(),
            keep: Vec::new(),
        });
        // Kept for the next batch unless a big one grew them.
        if bytes.capacity() <= 64 << 10 && keep.capacity() <= 4096 {
            bytes.clear();
            self.spare = (bytes, keep);
        }
        if let Some(t) = &self.tenant {
            t.bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        let lost = match lost {
            None if only_replies => {
                self.out = data;
                return Ok(());
            }
            None => None,
            Some(Lost::Budget) => return Err("the gateway's buffer budget is spent".into()),
            Some(Lost::Unreachable(why)) => {
                Some(resp::error(&format!("TRYAGAIN the master cannot be reached: {}", crate::text::clean(&why, 200))))
            }
            Some(Lost::Broken(why)) => Some(resp::error(&format!(
                "TRYAGAIN the connection to the master was lost ({}); the command may or may not have run",
                crate::text::clean(&why, 200)
            ))),
        };
        let mut replies = ends.iter();
        let mut from = 0;
        for e in entries {
            match e {
                Entry::Local(bytes) => self.out.extend_from_slice(&bytes),
                Entry::Swallow => {}
                Entry::Forward | Entry::Subscribe => match replies.next() {
                    Some(&end) => {
                        self.out.extend_from_slice(data.get(from..end).unwrap_or_default());
                        from = end;
                    }
                    None => self.out.extend_from_slice(lost.as_deref().unwrap_or_default()),
                },
            }
            if self.out.len() >= FLUSH {
                self.flush().await?;
            }
        }
        Ok(())
    }
}
