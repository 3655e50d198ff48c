//! What `scale --shards` reads of a cluster — each node's own `CLUSTER
//! NODES` line (`myself`: its id, role, slots, and the slots it has open
//! as `[slot->-id]` migrating or `[slot-<-id]` importing) — and the plan
//! of slot moves that evens the slots out over the masters that stay.
//! Pure: no connections, so every rule here is tested without Redis.

use std::collections::BTreeMap;

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// One node as its own `CLUSTER NODES` line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Myself {
    pub id: String,
    /// The address other nodes and clients use (`MIGRATE` connects there).
    pub host: String,
    pub port: u16,
    pub master: bool,
    /// The id of the master a replica follows.
    pub master_of: Option<String>,
    /// The slots it serves.
    pub slots: Vec<u16>,
    /// Slots it is moving away: (slot, id of the node it moves them to).
    pub migrating: Vec<(u16, String)>,
    /// Slots it is receiving: (slot, id of the node they come from).
    pub importing: Vec<(u16, String)>,
}

impl Myself {
    /// Whether a slot of this node is open (`MIGRATING` or `IMPORTING`).
    pub fn open(&self) -> bool {
        !self.migrating.is_empty() || !self.importing.is_empty()
    }
}

/// The `myself` line of a `CLUSTER NODES` reply, or why it cannot be read
/// (naming the line).
pub fn myself(text: &str) -> Result<Myself, String> {
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let flags: Vec<&str> = f.get(2).map(|x| x.split(',').collect()).unwrap_or_default();
        if !flags.contains(&"myself") {
            continue;
        }
        let bad = |what: &str| format!("line {} of `CLUSTER NODES`: {what}", i + 1);
        if f.len() < 8 {
            return Err(bad("fewer than 8 fields"));
        }
        let addr = f[1].split(['@', ',']).next().unwrap_or_default();
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no `host:port` address"))?;
        let port = port.parse::<u16>().map_err(|_| bad("the port is not a number"))?;
        let mut me = Myself {
            id: f[0].to_owned(),
            host: host.to_owned(),
            port,
            master: flags.contains(&"master"),
            master_of: Some(f[3]).filter(|m| *m != "-").map(str::to_owned),
            slots: Vec::new(),
            migrating: Vec::new(),
            importing: Vec::new(),
        };
        for token in &f[8..] {
            slot_token(token, &mut me).ok_or_else(|| bad(&format!("unreadable slot entry `{token}`")))?;
        }
        return Ok(me);
    }
    Err("`CLUSTER NODES` has no `myself` line".into())
}

/// Adds one slot entry (`5`, `0-5460`, `[5->-id]`, `[5-<-id]`) to `me`.
fn slot_token(token: &str, me: &mut Myself) -> Option<()> {
    let slot = |s: &str| s.parse::<u16>().ok().filter(|s| *s < SLOTS);
    if let Some(open) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if let Some((s, id)) = open.split_once("->-") {
            me.migrating.push((slot(s)?, id.to_owned()));
        } else {
            let (s, id) = open.split_once("-<-")?;
            me.importing.push((slot(s)?, id.to_owned()));
        }
        return Some(());
    }
    match token.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (slot(a)?, slot(b)?);
            if a > b {
                return None;
            }
            me.slots.extend(a..=b);
        }
        None => me.slots.push(slot(token)?),
    }
    Some(())
}

/// One slot to move.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Move {
    pub slot: u16,
    /// Node ids.
    pub from: String,
    pub to: String,
}

/// The moves that leave `targets` (master ids, in shard order) with the
/// slots shared out evenly (the first `16384 % n` one slot more) and every
/// other master of `owners` (master id → its slots) with none. A master
/// with too many gives its highest slots away; the targets missing slots
/// take them in runs of what each misses, so the slots of a master that
/// leaves spread over every master that stays (not onto one) and every
/// master keeps few, contiguous ranges.
pub fn plan(owners: &BTreeMap<String, Vec<u16>>, targets: &[String]) -> Vec<Move> {
    let n = targets.len().max(1);
    let share = |i: usize| usize::from(SLOTS) / n + usize::from(i < usize::from(SLOTS) % n);
    let mut missing: Vec<(String, usize)> = Vec::new();
    let mut surplus: Vec<(String, u16)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let mut have = owners.get(t).cloned().unwrap_or_default();
        have.sort_unstable();
        let want = share(i);
        if have.len() > want {
            surplus.extend(have[want..].iter().map(|s| (t.clone(), *s)));
        } else {
            missing.push((t.clone(), want - have.len()));
        }
    }
    for (id, slots) in owners.iter().filter(|(id, _)| !targets.contains(id)) {
        surplus.extend(slots.iter().map(|s| (id.clone(), *s)));
    }
    // In order, each target taking the next run of what it misses: the
    // slots of one source go to every target, in contiguous ranges.
    let mut wanting = missing.into_iter().filter(|(_, m)| *m > 0);
    let mut current = wanting.next();
    let mut moves = Vec::new();
    for (from, slot) in surplus {
        let Some((to, left)) = current.as_mut() else { break };
        moves.push(Move { slot, from, to: to.clone() });
        *left -= 1;
        if *left == 0 {
            current = wanting.next();
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(split: &[(&str, std::ops::Range<u16>)]) -> BTreeMap<String, Vec<u16>> {
        split.iter().map(|(id, r)| ((*id).to_owned(), r.clone().collect())).collect()
    }

    fn after(owners: &BTreeMap<String, Vec<u16>>, moves: &[Move]) -> BTreeMap<String, usize> {
        let mut count: BTreeMap<String, usize> = owners.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        for m in moves {
            *count.entry(m.from.clone()).or_default() -= 1;
            *count.entry(m.to.clone()).or_default() += 1;
        }
        count
    }

    #[test]
    fn the_myself_line_gives_slots_and_open_slots() {
        let text = "aaa 127.0.0.1:7001@17001 master - 0 0 2 connected 100-102\n\
                    bbb 127.0.0.1:7000@17000,host myself,master - 0 0 1 connected 0-2 7 [8->-aaa] [9-<-ccc]\n";
        let me = myself(text).expect("readable");
        assert_eq!((me.id.as_str(), me.host.as_str(), me.port, me.master), ("bbb", "127.0.0.1", 7000, true));
        assert_eq!(me.slots, [0, 1, 2, 7]);
        assert_eq!(me.migrating, [(8, "aaa".to_owned())]);
        assert_eq!(me.importing, [(9, "ccc".to_owned())]);
        assert!(me.open());
        let e = myself("ccc 127.0.0.1:7002@17002 myself,master - 0 0 1 connected 5-3\n").expect_err("bad range");
        assert!(e.contains("line 1") && e.contains("5-3"), "{e}");
        assert!(myself("").is_err());
    }

    #[test]
    fn adding_a_shard_takes_an_even_share_from_each_master() {
        let o = owners(&[("a", 0..5461), ("b", 5461..10923), ("c", 10923..16384), ("d", 0..0)]);
        let targets: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let moves = plan(&o, &targets);
        let count = after(&o, &moves);
        assert_eq!(count.values().copied().collect::<Vec<_>>(), [4096, 4096, 4096, 4096]);
        assert!(moves.iter().all(|m| m.to == "d"));
        let from_each = |id: &str| moves.iter().filter(|m| m.from == id).count();
        assert_eq!((from_each("a"), from_each("b"), from_each("c")), (1365, 1366, 1365));
    }

    #[test]
    fn a_leaving_shard_spreads_its_slots_over_all_that_stay() {
        let o = owners(&[("a", 0..4096), ("b", 4096..8192), ("c", 8192..12288), ("d", 12288..16384)]);
        let targets: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let moves = plan(&o, &targets);
        let count = after(&o, &moves);
        assert_eq!(count.get("d"), Some(&0));
        let stay: Vec<usize> = ["a", "b", "c"].iter().map(|k| count[*k]).collect();
        assert_eq!(stay, [5462, 5461, 5461]);
        let to_each: Vec<usize> = ["a", "b", "c"].iter().map(|k| moves.iter().filter(|m| m.to == *k).count()).collect();
        assert_eq!(to_each, [1366, 1365, 1365], "not all onto one");
        let ranges = moves.windows(2).filter(|w| w[0].to != w[1].to || w[0].slot + 1 != w[1].slot).count() + 1;
        assert_eq!(ranges, 3, "one contiguous range to each");
    }

    #[test]
    fn an_even_cluster_needs_no_move() {
        let o = owners(&[("a", 0..5462), ("b", 5462..10923), ("c", 10923..16384)]);
        assert!(plan(&o, &["a", "b", "c"].map(String::from)).is_empty());
    }
}
