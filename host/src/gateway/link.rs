//! One upstream connection to the current master, authenticated as a
//! tenant (so Redis's ACL decides what it may touch): opened for a session
//! of its own, or shared by a tenant's sessions (`mux`).

use super::Shared;
use super::resp::{self, Scanner};
use super::upstream::Stream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Link {
    pub stream: Stream,
    /// The master's generation it was opened in (a failover starts a new one).
    pub generation: u64,
    pub buf: Vec<u8>,
    pub pos: usize,
    /// A reply said the node is a replica now: reconnect before the next batch.
    pub stale: bool,
}

/// Opens and authenticates an upstream connection: `Err` when the
/// master cannot be reached (worth retrying), `Ok(Err)` when it
/// answered with an error (the error reply's text).
pub async fn open(
    shared: &Shared,
    proto: Option<&[u8]>,
    user: &[u8],
    password: &[u8],
) -> Result<Result<Link, String>, String> {
    let (addr, generation) = shared.upstream.current();
    let stream = shared.upstream.open(&addr).await.map_err(|e| format!("{}:{}: {e}", addr.0, addr.1))?;
    let mut up = Link { stream, generation, buf: Vec::with_capacity(16 << 10), pos: 0, stale: false };
    let mut hello = Vec::new();
    resp::encode(&mut hello, &[b"AUTH", user, password]);
    let mut expected = 1;
    if let Some(p) = proto {
        resp::encode(&mut hello, &[b"HELLO", p]);
        expected += 1;
    }
    up.stream.write_all(&hello).await.map_err(|e| e.to_string())?;
    let mut replies = Vec::new();
    for _ in 0..expected {
        replies.push(read_frame(&mut up).await?);
    }
    if let Some(err) = replies.iter().find(|r| r.starts_with(b"-")) {
        let text = String::from_utf8_lossy(&err[1..]).trim_end().to_owned();
        if text.starts_with("READONLY") || text.starts_with("LOADING") {
            return Err(text);
        }
        return Ok(Err(text));
    }
    Ok(Ok(up))
}

/// Reads one whole reply frame (a handshake's small replies).
async fn read_frame(up: &mut Link) -> Result<Vec<u8>, String> {
    let mut scanner = Scanner::default();
    let mut frame = Vec::new();
    loop {
        if up.pos == up.buf.len() {
            up.buf.clear();
            up.pos = 0;
            up.buf.reserve(16 << 10);
            let n = tokio::time::timeout(Duration::from_secs(5), up.stream.read_buf(&mut up.buf))
                .await
                .map_err(|_| "no answer from the master within 5 s".to_owned())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the master closed the connection".into());
            }
        }
        let (used, done) = scanner.feed(&up.buf[up.pos..])?;
        frame.extend_from_slice(&up.buf[up.pos..up.pos + used]);
        up.pos += used;
        if frame.len() > 1 << 20 {
            return Err("a handshake reply over 1 MiB".into());
        }
        if done.is_some() {
            return Ok(frame);
        }
    }
}
