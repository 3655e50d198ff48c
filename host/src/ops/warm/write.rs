//! Turning keys into commands and sending them: one pipeline per master
//! per batch (in a cluster each key goes to the master serving its slot,
//! computed here with CRC16 as Redis does), every reply checked, so one
//! refused key is counted with its reason and the rest still load.

use super::source::{Bad, Data};
use super::ttl::TtlFrom;
use crate::client::{ClientError, ClusterMaster, Node};
use std::time::Duration;

/// One key ready to send.
#[derive(Debug, Clone)]
pub struct Entry {
    pub position: u64,
    pub key: Vec<u8>,
    pub commands: Vec<Vec<Vec<u8>>>,
    pub ttl: TtlFrom,
}

/// How long one batch's pipeline may take.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The commands that store `data` under `key` with `ttl_ms`. Collections
/// are deleted first, so a load run again (after an interruption) leaves
/// the same key, not a merge.
pub fn commands(key: Vec<u8>, data: Data, ttl_ms: Option<u64>) -> Vec<Vec<Vec<u8>>> {
    let ttl = ttl_ms.map(|t| t.to_string().into_bytes());
    let mut out = Vec::with_capacity(3);
    let collection = |out: &mut Vec<Vec<Vec<u8>>>, name: &[u8], args: Vec<Vec<u8>>| {
        out.push(vec![b"DEL".to_vec(), key.clone()]);
        let mut c = Vec::with_capacity(args.len() + 2);
        c.push(name.to_vec());
        c.push(key.clone());
        c.extend(args);
        out.push(c);
    };
    match data {
        Data::String(v) => {
            let mut c = vec![b"SET".to_vec(), key.clone(), v];
            if let Some(t) = &ttl {
                c.push(b"PX".to_vec());
                c.push(t.clone());
            }
            return vec![c];
        }
        Data::Dump(payload) => {
            let t = ttl.clone().unwrap_or_else(|| b"0".to_vec());
            return vec![vec![b"RESTORE".to_vec(), key, t, payload, b"REPLACE".to_vec()]];
        }
        Data::Hash(fields) => collection(&mut out, b"HSET", fields.into_iter().flat_map(|(f, v)| [f, v]).collect()),
        Data::Set(members) => collection(&mut out, b"SADD", members),
        Data::List(items) => collection(&mut out, b"RPUSH", items),
        Data::Zset(pairs) => collection(
            &mut out,
            b"ZADD",
            pairs.into_iter().flat_map(|(m, s)| [s.to_string().into_bytes(), m]).collect(),
        ),
    }
    if let Some(t) = ttl {
        out.push(vec![b"PEXPIRE".to_vec(), key.clone(), t]);
    }
    out
}

/// Which master serves each of the 16384 slots.
pub struct Router {
    owner: Vec<u16>,
}

impl Router {
    /// From the cluster's masters, and the index in `ports` of each.
    pub fn new(masters: &[ClusterMaster], ports: &[u16]) -> Router {
        let mut owner = vec![0u16; 16384];
        for m in masters {
            let Some(index) = ports.iter().position(|p| *p == m.port) else { continue };
            for (a, b) in &m.slots {
                for slot in *a..=(*b).min(16383) {
                    owner[usize::from(slot)] = index as u16;
                }
            }
        }
        Router { owner }
    }

    fn route(&self, key: &[u8]) -> usize {
        usize::from(self.owner[usize::from(slot(key))])
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of the key, or of its hash tag
/// (`{…}`, when non-empty), modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| key[open + 1..].iter().position(|b| *b == b'}').map(|len| &key[open + 1..open + 1 + len]))
        .filter(|tag| !tag.is_empty());
    crc16(tagged.unwrap_or(key)) % 16384
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for b in bytes {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: Vec<TtlFrom>,
    pub failed: Vec<Bad>,
}

/// Sends `entries` (one pipeline per master, all masters at once).
pub async fn send(masters: &[Node], router: Option<&Router>, entries: Vec<Entry>) -> Result<Outcome, ClientError> {
    let mut groups: Vec<Vec<Entry>> = (0..masters.len()).map(|_| Vec::new()).collect();
    for e in entries {
        let i = router.map(|r| r.route(&e.key)).unwrap_or(0).min(masters.len().saturating_sub(1));
        groups[i].push(e);
    }
    let sends = masters.iter().zip(groups).filter(|(_, g)| !g.is_empty()).map(|(node, mut group)| async move {
        // The commands move into the pipeline; each entry keeps its count.
        let counts: Vec<usize> = group.iter().map(|e| e.commands.len()).collect();
        let commands: Vec<Vec<Vec<u8>>> = group.iter_mut().flat_map(|e| std::mem::take(&mut e.commands)).collect();
        let replies = node.pipeline_each(&commands, BATCH_TIMEOUT).await?;
        Ok::<_, ClientError>((group, counts, replies))
    });
    let mut outcome = Outcome::default();
    for (group, counts, replies) in futures_util::future::try_join_all(sends).await? {
        let mut at = 0;
        for (e, n) in group.into_iter().zip(counts) {
            let mine = replies.get(at..at + n).unwrap_or_default();
            at += n;
            let refused = mine.iter().find_map(|r| match r {
                redis::Value::ServerError(err) => {
                    Some(format!("redis refused it: {} {}", err.code(), err.details().unwrap_or_default()))
                }
                _ => None,
            });
            match refused {
                None if mine.len() == n => outcome.written.push(e.ttl),
                None => outcome.failed.push(failure(&e, "redis sent fewer replies than commands".into())),
                Some(reason) => outcome.failed.push(failure(&e, reason)),
            }
        }
    }
    Ok(outcome)
}

fn failure(e: &Entry, reason: String) -> Bad {
    Bad {
        line: e.position,
        key: Some(crate::text::clean(&String::from_utf8_lossy(&e.key), 200)),
        reason: crate::text::clean(&reason, 500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_crc16_with_hash_tags() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
    }

    #[test]
    fn collections_are_replaced_and_expire() {
        let c = commands(b"h".to_vec(), Data::Hash(vec![(b"f".to_vec(), b"v".to_vec())]), Some(5000));
        let words: Vec<Vec<String>> =
            c.iter().map(|c| c.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()).collect();
        assert_eq!(words, [vec!["DEL", "h"], vec!["HSET", "h", "f", "v"], vec!["PEXPIRE", "h", "5000"]]);
        let s = commands(b"s".to_vec(), Data::String(b"v".to_vec()), None);
        assert_eq!(s, [vec![b"SET".to_vec(), b"s".to_vec(), b"v".to_vec()]]);
    }
}
