//! Reading keys from another Redis: `redis://[user:password@]host:port[/db]`,
//! `SCAN` in batches, then `DUMP` + `PTTL` of each key pipelined; the keys
//! are loaded with `RESTORE … REPLACE`, so every type comes across exactly
//! (the payload carries the encoding; the target must be the same Redis
//! version or newer). A key with no TTL there gets the strategy's.

use super::source::{Bad, Data, Item};
use crate::client::{ClientError, Endpoint, Node};
use std::time::Duration;

/// A parsed `redis://` address.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Address {
    /// Parses `redis://[user[:password]@]host[:port][/db]`; the reason when it is not one.
    pub fn parse(url: &str) -> Result<Address, String> {
        if url.starts_with("rediss://") {
            return Err("`rediss://` (TLS) sources are not supported yet: warm from a plain `redis://` address, \
                        or export the keys to a JSONL file"
                .into());
        }
        let rest = url.strip_prefix("redis://").ok_or("a Redis source starts with `redis://`")?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse::<u32>()
                    .map_err(|_| format!("the database `{}` is not a number", crate::text::clean(d, 32)))?,
            ),
            None => (rest, 0),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>().map_err(|_| format!("the port `{}` is not a number", crate::text::clean(p, 32)))?,
            ),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return Err("no host in the address".into());
        }
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some(("", p)) => (None, Some(p.to_owned())),
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (None, Some(a.to_owned())),
            },
        };
        Ok(Address { host: host.to_owned(), port, db, user, password })
    }

    /// The address without its password, for messages and the checkpoint.
    pub fn shown(&self) -> String {
        let user = self.user.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
        crate::text::clean(&format!("redis://{user}{}:{}/{}", self.host, self.port, self.db), 300)
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: self.shown(),
            host: self.host.clone(),
            port: self.port,
            tls: None,
            user: self.user.clone(),
            password: self.password.clone(),
        }
    }
}

/// A scan of the source Redis.
pub struct Remote {
    node: Node,
    /// The cursor after the last batch read (`"0"` at the start).
    pub cursor: String,
    /// Keys read so far (positions).
    pub read: u64,
    done: bool,
}

impl Remote {
    /// Connects and selects the database; resumes at `cursor`.
    pub async fn open(address: &Address, cursor: Option<String>, read: u64) -> Result<Remote, ClientError> {
        let node = Node::connect(&address.endpoint()).await?;
        if address.db != 0 {
            node.call(&["SELECT", &address.db.to_string()]).await?;
        }
        // A checkpoint at cursor 0 after some keys: the scan had ended.
        let done = read > 0 && cursor.as_deref() == Some("0");
        let cursor = cursor.unwrap_or_else(|| "0".into());
        Ok(Remote { node, done, cursor, read })
    }

    /// How many keys the source holds (for the progress bar).
    pub async fn size(&self) -> Result<u64, ClientError> {
        self.node.query(&["DBSIZE"]).await
    }

    /// The next batch of keys (about `count`), and the keys that vanished
    /// between `SCAN` and `DUMP` (skipped); `None` once the scan is over.
    pub async fn next(&mut self, count: usize) -> Result<Option<(Vec<Item>, Vec<Bad>, u64)>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let count = count.to_string();
        let (cursor, keys): (String, Vec<Vec<u8>>) =
            self.node.query(&["SCAN", self.cursor.as_str(), "COUNT", count.as_str()]).await?;
        let mut commands = Vec::with_capacity(keys.len() * 2);
        for k in &keys {
            commands.push(vec![b"DUMP".to_vec(), k.clone()]);
            commands.push(vec![b"PTTL".to_vec(), k.clone()]);
        }
        let replies = self.node.pipeline_each(&commands, Duration::from_secs(60)).await?;
        let (mut items, mut bad, mut gone) = (Vec::with_capacity(keys.len()), Vec::new(), 0);
        for (key, pair) in keys.into_iter().zip(replies.chunks(2)) {
            self.read += 1;
            let position = self.read;
            match pair {
                [redis::Value::BulkString(payload), redis::Value::Int(ttl)] => {
                    let ttl_ms = if *ttl > 0 { Some(*ttl as u64) } else { None };
                    if *ttl == -2 || *ttl == 0 {
                        gone += 1;
                        continue;
                    }
                    items.push(Item { position, key, data: Data::Dump(payload.clone()), ttl_ms });
                }
                [redis::Value::Nil, _] => gone += 1,
                other => bad.push(Bad {
                    line: position,
                    key: Some(crate::text::clean(&String::from_utf8_lossy(&key), 200)),
                    reason: format!(
                        "the source answered `DUMP`/`PTTL` with {}",
                        crate::text::clean(&format!("{other:?}"), 200)
                    ),
                }),
            }
        }
        self.done = cursor == "0";
        self.cursor = cursor;
        Ok(Some((items, bad, gone)))
    }
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn addresses_parse_and_hide_their_password() {
        let a = Address::parse("redis://app:s3cret@10.0.0.5:6380/2").expect("parses");
        assert_eq!((a.host.as_str(), a.port, a.db, a.user.as_deref()), ("10.0.0.5", 6380, 2, Some("app")));
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert_eq!(a.shown(), "redis://app@10.0.0.5:6380/2");
        assert!(!format!("{a:?}").contains("s3cret"));
        let b = Address::parse("redis://localhost").expect("parses");
        assert_eq!((b.port, b.db), (6379, 0));
        assert!(Address::parse("redis://h:port").is_err());
        assert!(Address::parse("rediss://h:1").is_err());
    }
}
