//! Slot moves on a live cluster, as `redis-cli --cluster reshard` makes
//! them: `CLUSTER SETSLOT <slot> IMPORTING` on the target, `MIGRATING` on
//! the source, the keys moved with `MIGRATE … KEYS k1 k2 …` in batches
//! (as redplate's admin user with `AUTH2`, over TLS when the cluster bus
//! uses it: the source opens the connection, to the address the cluster
//! announces), then `SETSLOT <slot> NODE <target>` on the target, the
//! source and every other master. Clients keep working throughout: a key
//! not on the source any more is answered with `ASK`, a finished slot
//! with `MOVED`.
//!
//! Slots left open by an interrupted run are closed before anything else:
//! finished when one node imports the slot, rolled back to its owner
//! otherwise (the keys already moved are moved back).

use super::Progress;
use super::view::{self, Move, Myself, SLOTS};
use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::{data_endpoints, unreachable};
use crate::registry::Record;
use redplate_config::Diagnostic;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Keys per `MIGRATE`: one round trip moves the keys of a typical slot.
const BATCH: usize = 500;

/// How long one `MIGRATE` may take: generous, for big keys (Redis's own
/// limit is per read or write of the move; ours is for the whole batch).
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(60);

/// One data node: its name, what it says of itself, a connection.
pub struct Member {
    pub name: String,
    pub me: Myself,
    pub node: Node,
}

/// Every data node of `record`, each asked for its own `CLUSTER NODES` line.
pub async fn members(record: &Record) -> Result<Vec<Member>, Failure> {
    let mut out = Vec::new();
    for (n, ep) in data_endpoints(record) {
        let node = Node::connect_with(&ep, MIGRATE_TIMEOUT + Duration::from_secs(10)).await.map_err(unreachable)?;
        let text: String = node.query(&["CLUSTER", "NODES"]).await.map_err(unreachable)?;
        let me = view::myself(&text).map_err(|e| {
            Failure::could_not_run(Diagnostic::error(
                "scale.cluster-nodes",
                "",
                format!("`{}` answered `CLUSTER NODES` unreadably: {}", n.name, crate::text::clean(&e, 200)),
            ))
        })?;
        out.push(Member { name: n.name.clone(), me, node });
    }
    Ok(out)
}

fn by_id<'m>(members: &'m [Member], id: &str) -> Option<&'m Member> {
    members.iter().find(|m| m.me.id == id)
}

fn failed(code: &'static str, message: String, hint: &str) -> Failure {
    Failure::could_not_run(Diagnostic::error(code, "", message).with_hint(hint.to_owned()))
}

fn redis(e: ClientError) -> Failure {
    failed(
        "scale.redis",
        e.to_string(),
        "run the same `redplate scale` again: it closes the slot it was moving (finishing or undoing the move) \
         and goes on",
    )
}

/// Refuses a cluster whose masters do not serve all 16384 slots exactly
/// once, or that some node does not report as `cluster_state:ok` (asked
/// for up to 15 s: a cluster just changed needs a moment to agree).
pub async fn check_healthy(record: &Record) -> Result<(), Failure> {
    let members = members(record).await?;
    let mut owner: BTreeMap<u16, &str> = BTreeMap::new();
    for m in members.iter().filter(|m| m.me.master) {
        for s in &m.me.slots {
            if let Some(other) = owner.insert(*s, &m.name) {
                return Err(failed(
                    "scale.slots-conflict",
                    format!("slot {s} is claimed by both `{other}` and `{}`", m.name),
                    "fix the cluster by hand (`redis-cli --cluster fix`) before scaling",
                ));
            }
        }
    }
    if owner.len() != usize::from(SLOTS) {
        return Err(failed(
            "scale.slots-uncovered",
            format!("the masters serve {} of the {SLOTS} slots", owner.len()),
            "scaling refuses a cluster that cannot serve every key; `redplate status` shows the nodes and their \
             slots",
        ));
    }
    let started = Instant::now();
    for m in &members {
        loop {
            let info: String = m.node.query(&["CLUSTER", "INFO"]).await.map_err(redis)?;
            let state = crate::client::parse_info(&info).get("cluster_state").unwrap_or_default().to_owned();
            if state == "ok" {
                break;
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err(failed(
                    "scale.cluster-not-ok",
                    format!("`{}` reports `cluster_state:{}`", m.name, crate::text::clean(&state, 40)),
                    "scaling starts only on a healthy cluster; `redplate status` shows what is wrong",
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Closes every slot left `MIGRATING` or `IMPORTING`; returns one line per
/// slot saying what was done.
pub async fn close_open_slots(record: &Record, progress: &dyn Progress) -> Result<Vec<String>, Failure> {
    let members = members(record).await?;
    let mut open: BTreeMap<u16, ()> = BTreeMap::new();
    for m in members.iter().filter(|m| m.me.master) {
        open.extend(m.me.migrating.iter().chain(&m.me.importing).map(|(s, _)| (*s, ())));
    }
    let mut done = Vec::new();
    if !open.is_empty() {
        progress.step(&format!("closing {} slots an interrupted run left open", open.len()));
    }
    for slot in open.into_keys() {
        done.push(close(&members, slot).await?);
    }
    Ok(done)
}

/// Closes one open slot: finishes the move when exactly one node imports
/// it, else rolls it back to its owner.
async fn close(members: &[Member], slot: u16) -> Result<String, Failure> {
    let masters: Vec<&Member> = members.iter().filter(|m| m.me.master).collect();
    let Some(owner) = masters.iter().find(|m| m.me.slots.contains(&slot)) else {
        return Err(failed(
            "scale.open-slot-unowned",
            format!("slot {slot} is open and no master serves it"),
            "fix the cluster by hand (`redis-cli --cluster fix`) before scaling",
        ));
    };
    let importers: Vec<&&Member> =
        masters.iter().filter(|m| m.me.importing.iter().any(|(s, _)| *s == slot) && m.me.id != owner.me.id).collect();
    if let [target] = importers.as_slice() {
        let keys = move_slot(members, owner, target, slot).await?;
        return Ok(format!(
            "slot {slot}: finished its move from `{}` to `{}` ({})",
            owner.name,
            target.name,
            keys_n(keys)
        ));
    }
    // No single target: back to the owner, with any key already moved.
    for m in &masters {
        if m.me.migrating.iter().chain(&m.me.importing).any(|(s, _)| *s == slot) {
            m.node.call(&["CLUSTER", "SETSLOT", &slot.to_string(), "STABLE"]).await.map_err(redis)?;
        }
    }
    let mut back = 0;
    for m in masters.iter().filter(|m| m.me.id != owner.me.id) {
        back += migrate_all(m, owner, slot).await?;
        m.node.call(&["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &owner.me.id]).await.map_err(redis)?;
    }
    Ok(format!("slot {slot}: rolled back to `{}` ({} moved back)", owner.name, keys_n(back)))
}

fn keys_n(n: u64) -> String {
    if n == 1 { "1 key".into() } else { format!("{n} keys") }
}

/// Moves every key of `slot` from `from` to `to` with `MIGRATE`, in
/// batches; returns how many.
async fn migrate_all(from: &Member, to: &Member, slot: u16) -> Result<u64, Failure> {
    let ep = to.node.endpoint();
    let (timeout, slot_arg) = (MIGRATE_TIMEOUT.as_millis().to_string(), slot.to_string());
    let port = to.me.port.to_string();
    // A node that never met another does not know its own address yet.
    let host = if to.me.host.is_empty() { ep.host.clone() } else { to.me.host.clone() };
    let mut moved = 0u64;
    loop {
        let keys: Vec<Vec<u8>> = from
            .node
            .query(&["CLUSTER".as_bytes(), b"GETKEYSINSLOT", slot_arg.as_bytes(), BATCH.to_string().as_bytes()])
            .await
            .map_err(redis)?;
        if keys.is_empty() {
            return Ok(moved);
        }
        let mut args: Vec<Vec<u8>> =
            ["MIGRATE", &host, &port, "", "0", &timeout].iter().map(|a| a.as_bytes().to_vec()).collect();
        match (&ep.user, &ep.password) {
            (Some(u), Some(p)) => args.extend([b"AUTH2".to_vec(), u.clone().into_bytes(), p.clone().into_bytes()]),
            (None, Some(p)) => args.extend([b"AUTH".to_vec(), p.clone().into_bytes()]),
            _ => {}
        }
        args.push(b"KEYS".to_vec());
        let count = keys.len() as u64;
        args.extend(keys);
        match from.node.call_within(&args, MIGRATE_TIMEOUT + Duration::from_secs(5)).await {
            Ok(_) => moved += count,
            Err(e) => return Err(migrate_failed(e, from, to, slot)),
        }
    }
}

/// A `MIGRATE` that failed, with what to do about it.
fn migrate_failed(e: ClientError, from: &Member, to: &Member, slot: u16) -> Failure {
    let reply = e.reply().unwrap_or_default().to_owned();
    let (code, hint) = if reply.starts_with("BUSYKEY") {
        (
            "scale.busy-key",
            format!(
                "a key of slot {slot} exists on both `{}` and `{}`; compare the two copies (`redplate exec … -- \
                 CLUSTER GETKEYSINSLOT {slot} 10` on each), delete the one that is wrong on `{}`, then run the \
                 same `redplate scale` again",
                from.name, to.name, to.name
            ),
        )
    } else if matches!(e, ClientError::Timeout { .. }) || reply.starts_with("IOERR") {
        (
            "scale.migrate-timeout",
            format!(
                "moving keys of slot {slot} took longer than {} s (a very big key, or a slow network); the slot \
                 stays open and the run can be repeated: `redplate scale` finishes the slot first",
                MIGRATE_TIMEOUT.as_secs()
            ),
        )
    } else {
        ("scale.migrate", "run the same `redplate scale` again: it finishes the open slot first".to_owned())
    };
    failed(code, format!("moving slot {slot} from `{}` to `{}`: {e}", from.name, to.name), &hint)
}

/// Moves `slot` from `from` to `to` (see the module comment); returns the
/// number of keys moved.
pub async fn move_slot(members: &[Member], from: &Member, to: &Member, slot: u16) -> Result<u64, Failure> {
    let s = slot.to_string();
    to.node.call(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.me.id]).await.map_err(redis)?;
    from.node.call(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &to.me.id]).await.map_err(redis)?;
    let keys = migrate_all(from, to, slot).await?;
    // The target's word decides (it bumps its epoch and tells the others);
    // the rest may fail in one way: a master that gave its last slot away
    // becomes a replica of the node that took it (as `redis-cli` allows too).
    let args = ["CLUSTER", "SETSLOT", &s, "NODE", &to.me.id];
    to.node.call(&args).await.map_err(redis)?;
    let others = members.iter().filter(|m| m.me.master && m.me.id != to.me.id);
    let told = futures_util::future::join_all(others.map(|m| m.node.call_within(&args, Duration::from_secs(10)))).await;
    for t in told {
        match t {
            Err(e) if e.reply().is_some_and(|r| r.contains("only with masters")) => {}
            other => {
                other.map_err(redis)?;
            }
        }
    }
    Ok(keys)
}

/// What the slot moves did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Moved {
    pub slots: u64,
    pub keys: u64,
}

/// Evens the slots out over the masters of the first `shards` shards
/// (`targets`: each shard's deployed master, by name) and empties every
/// other master.
pub async fn rebalance(record: &Record, targets: &[String], progress: &dyn Progress) -> Result<Moved, Failure> {
    let members = members(record).await?;
    let mut ids = Vec::new();
    for name in targets {
        let Some(m) = members.iter().find(|m| &m.name == name) else {
            return Err(failed(
                "scale.no-shard-master",
                format!("the cluster has no node `{name}`"),
                "`redplate status` shows the nodes",
            ));
        };
        // After a failover, the shard's master is the node it follows.
        let id = if m.me.master { Some(m.me.id.clone()) } else { m.me.master_of.clone() };
        ids.push(id.unwrap_or_default());
    }
    let owners: BTreeMap<String, Vec<u16>> =
        members.iter().filter(|m| m.me.master).map(|m| (m.me.id.clone(), m.me.slots.clone())).collect();
    let moves: Vec<Move> = view::plan(&owners, &ids);
    progress.slots(moves.len() as u64);
    let mut done = Moved::default();
    for mv in &moves {
        let (Some(from), Some(to)) = (by_id(&members, &mv.from), by_id(&members, &mv.to)) else {
            return Err(failed(
                "scale.unknown-node",
                format!("slot {} should move between nodes the deployment does not list", mv.slot),
                "`redplate status` shows the nodes",
            ));
        };
        done.keys += move_slot(&members, from, to, mv.slot).await?;
        done.slots += 1;
        progress.moved(1);
    }
    Ok(done)
}

/// Each master's number of slots, by node name.
pub async fn slot_counts(record: &Record) -> Result<BTreeMap<String, usize>, Failure> {
    Ok(members(record).await?.iter().filter(|m| m.me.master).map(|m| (m.name.clone(), m.me.slots.len())).collect())
}
