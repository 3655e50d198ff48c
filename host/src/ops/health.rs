//! `redplate health`: one verdict — healthy, degraded or down — with its
//! reasons, judged from a [`stats`](super::stats) snapshot: every node up,
//! replicas linked and within the lag bound, Sentinel reachable, agreeing
//! and able to reach its quorum, `cluster_state:ok` with every slot served
//! and none open, the last RDB save and AOF write fine, memory below 90 % of
//! `maxmemory`. Down means clients cannot be served (no master, a majority
//! of the nodes gone, slots without a master); degraded means they are
//! served but something needs a look.

use super::stats::{NodeStats, Stats, StatsOptions};
use crate::registry::Record;
use redplate_config::model::Mode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Memory use, as a share of `maxmemory`, from which a node is degraded.
pub const MEMORY_LIMIT: f64 = 0.9;

/// What `health` checks against.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// The most a replica may be behind its master.
    pub max_lag: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions { max_lag: Duration::from_millis(100) }
    }
}

/// The verdict, worst last (so the worst reason decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Healthy,
    Degraded,
    Down,
}

impl Verdict {
    /// The exit code `redplate health` ends with: 0, 1 or 2.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
        }
    }
}

/// Why the verdict is not `healthy`.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    /// The check that failed (see [`Health::checks`]).
    pub check: &'static str,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The verdict on a deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub deployment: String,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    /// Every check that applies to the deployment's mode, and whether it passed.
    pub checks: BTreeMap<&'static str, bool>,
    pub took_ms: f64,
}

/// Takes a snapshot of `record` and judges it.
pub async fn health(record: &Record, opts: &HealthOptions) -> Health {
    let stats = super::stats::stats(record, &StatsOptions { slowlog_entries: 0, lag_bound: Some(opts.max_lag) }).await;
    judge(&stats, record.mode, opts)
}

/// The verdict on a snapshot.
pub fn judge(stats: &Stats, mode: Mode, opts: &HealthOptions) -> Health {
    let mut j = Judge::default();
    nodes(&mut j, stats, mode);
    match mode {
        Mode::Standalone | Mode::Replication => masters(&mut j, stats, mode),
        Mode::Sentinel => sentinels(&mut j, stats),
        Mode::Cluster => cluster(&mut j, stats),
    }
    if mode != Mode::Standalone {
        replicas(&mut j, stats, opts.max_lag);
    }
    persistence_and_memory(&mut j, stats);
    for r in &mut j.reasons {
        r.hint = Some(hint(r.check, &stats.deployment, r.node.as_deref()));
    }
    let verdict = j.reasons.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Healthy);
    Health {
        deployment: stats.deployment.clone(),
        verdict,
        reasons: j.reasons,
        checks: j.checks,
        took_ms: stats.took_ms,
    }
}

#[derive(Default)]
struct Judge {
    reasons: Vec<Reason>,
    checks: BTreeMap<&'static str, bool>,
}

impl Judge {
    /// Declares a check (passed until a reason says otherwise).
    fn check(&mut self, check: &'static str) {
        self.checks.entry(check).or_insert(true);
    }

    fn fail(&mut self, check: &'static str, verdict: Verdict, node: Option<&str>, message: String) {
        self.checks.insert(check, false);
        self.reasons.push(Reason { check, verdict, node: node.map(str::to_owned), message, hint: None });
    }
}

/// What to do when `check` fails.
/// The node a sentinel or a replica names as `host:port`: by name where
/// nodes announce their name (containers, which all listen on one port),
/// else by port (local nodes, on loopback).
pub(super) fn named<'s>(nodes: &'s [NodeStats], addr: &str) -> Option<&'s NodeStats> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse::<u16>().ok();
    // A container's address (its IP on the project's network) names no node:
    // the port in it is the container's, not the one redplate connects to.
    let local = matches!(host, "127.0.0.1" | "localhost" | "::1");
    nodes.iter().find(|n| n.name == host).or_else(|| nodes.iter().find(|n| local && Some(n.port) == port))
}

fn hint(check: &str, d: &str, node: Option<&str>) -> String {
    let logs = match node {
        Some(n) => format!("`redplate logs {d} --node {n}`"),
        None => format!("`redplate logs {d}`"),
    };
    match check {
        "nodes_up" | "master" => {
            format!("see why in {logs}; `redplate start {d}` starts the nodes that are not running")
        }
        "sentinels_up" | "sentinels_agree" | "sentinel_quorum" => {
            format!("`redplate status {d}` shows each sentinel's view; see {logs}")
        }
        "replica_link" | "replica_lag" => {
            format!(
                "`redplate stats {d}` shows the offsets; a replica resyncing or under write load catches up, see {logs}"
            )
        }
        "cluster_state" | "cluster_open_slots" => format!("`redplate status {d}` shows the slots; see {logs}"),
        "rdb_save" | "aof_write" => format!("see {logs} (usually a full disk or a permission)"),
        _ => {
            format!("raise `memory.maxmemory` or check `memory.maxmemory_policy`, then `redplate apply {d} <template>`")
        }
    }
}

fn live_nodes(stats: &Stats) -> impl Iterator<Item = (&NodeStats, &super::stats::Live)> {
    stats.nodes.iter().filter_map(|n| n.live.as_ref().map(|l| (n, l)))
}

fn nodes(j: &mut Judge, stats: &Stats, mode: Mode) {
    j.check("nodes_up");
    let down: Vec<&NodeStats> = stats.nodes.iter().filter(|n| !n.up).collect();
    for n in &down {
        let why = n.error.as_deref().unwrap_or("no answer");
        j.fail("nodes_up", Verdict::Degraded, Some(&n.name), format!("`{}` does not answer: {why}", n.name));
    }
    if down.len() * 2 > stats.nodes.len() && mode != Mode::Standalone {
        let names: Vec<&str> = down.iter().map(|n| n.name.as_str()).collect();
        j.fail(
            "nodes_up",
            Verdict::Down,
            None,
            format!("{} of {} data nodes are down ({})", down.len(), stats.nodes.len(), names.join(", ")),
        );
    }
}

/// Standalone and replication: exactly one node answers as the master.
fn masters(j: &mut Judge, stats: &Stats, mode: Mode) {
    j.check("master");
    let masters: Vec<&str> =
        live_nodes(stats).filter(|(_, l)| l.role == "master").map(|(n, _)| n.name.as_str()).collect();
    match masters.len() {
        0 => j.fail("master", Verdict::Down, None, "no node answers as a master: clients cannot write".into()),
        1 => {}
        _ if mode == Mode::Replication => j.fail(
            "master",
            Verdict::Degraded,
            None,
            format!("{} nodes answer as masters ({}): writes may go to either", masters.len(), masters.join(", ")),
        ),
        _ => {}
    }
}

/// Sentinel: reachable, agreeing on one master that is up, able to reach quorum.
fn sentinels(j: &mut Judge, stats: &Stats) {
    for c in ["sentinels_up", "sentinels_agree", "sentinel_quorum", "master"] {
        j.check(c);
    }
    let up: Vec<_> = stats.sentinels.iter().filter(|s| s.up).collect();
    for s in stats.sentinels.iter().filter(|s| !s.up) {
        let why = s.error.as_deref().unwrap_or("no answer");
        j.fail(
            "sentinels_up",
            Verdict::Degraded,
            Some(&s.name),
            format!("sentinel `{}` does not answer: {why}", s.name),
        );
    }
    if up.is_empty() {
        j.fail(
            "sentinels_up",
            Verdict::Down,
            None,
            "no sentinel answers: clients cannot find the master and nothing can fail over".into(),
        );
        return;
    }
    let mut views: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &up {
        views.entry(s.master.as_deref().unwrap_or("(none)")).or_default().push(&s.name);
    }
    if views.len() > 1 {
        let text: Vec<String> = views.iter().map(|(m, ss)| format!("{} → {m}", ss.join(", "))).collect();
        j.fail(
            "sentinels_agree",
            Verdict::Degraded,
            None,
            format!("sentinels disagree on the master: {}", text.join("; ")),
        );
    }
    if !up.iter().any(|s| s.quorum_ok == Some(true)) {
        let why = up.iter().find_map(|s| s.quorum_message.as_deref()).unwrap_or("no answer");
        j.fail(
            "sentinel_quorum",
            Verdict::Degraded,
            None,
            format!("the sentinels cannot reach their quorum, so no failover can happen: {why}"),
        );
    }
    // The master most sentinels name must be up and answer as a master.
    let Some((addr, _)) = views.iter().filter(|(m, _)| **m != "(none)").max_by_key(|(_, ss)| ss.len()) else {
        j.fail("master", Verdict::Down, None, "no sentinel knows a master".into());
        return;
    };
    match named(&stats.nodes, addr) {
        Some(n) if n.live.as_ref().is_some_and(|l| l.role == "master") => {}
        Some(n) if n.up => j.fail(
            "master",
            Verdict::Down,
            Some(&n.name),
            format!("the sentinels name `{}` ({addr}) as the master, but it answers as a replica", n.name),
        ),
        Some(n) => j.fail(
            "master",
            Verdict::Down,
            Some(&n.name),
            format!("the master `{}` ({addr}) is down and the sentinels have not failed over yet", n.name),
        ),
        None => j.fail(
            "master",
            Verdict::Down,
            None,
            format!("the sentinels name {addr}, which is no node of this deployment"),
        ),
    }
}

/// Cluster: `cluster_state:ok`, all 16384 slots served by a master that is up, no open slots.
fn cluster(j: &mut Judge, stats: &Stats) {
    j.check("cluster_state");
    j.check("cluster_open_slots");
    let views: Vec<_> = live_nodes(stats).filter_map(|(n, l)| l.cluster.as_ref().map(|c| (n, c))).collect();
    if views.is_empty() {
        j.fail("cluster_state", Verdict::Down, None, "no node answers `CLUSTER INFO`".into());
        return;
    }
    for (n, c) in &views {
        if c.state != "ok" {
            j.fail(
                "cluster_state",
                Verdict::Down,
                Some(&n.name),
                format!("`{}` reports cluster_state:{}", n.name, c.state),
            );
        }
        if !c.open_slots.is_empty() {
            j.fail(
                "cluster_open_slots",
                Verdict::Degraded,
                Some(&n.name),
                format!(
                    "`{}` has open slots {}: a slot migration was left unfinished (finish it with `redis-cli --cluster fix`)",
                    n.name,
                    c.open_slots.join(" ")
                ),
            );
        }
    }
    let (_, first) = views[0];
    if first.slots_assigned < 16384 {
        j.fail(
            "cluster_state",
            Verdict::Down,
            None,
            format!("only {} of 16384 slots are assigned", first.slots_assigned),
        );
    }
    // Slots whose master is down (before the cluster notices or fails over).
    for line in first.nodes.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].split(',').any(|x| x == "master") {
            continue;
        }
        // `ip:port@bus[,hostname]`: containers announce their service name.
        let addr = f[1].split('@').next().unwrap_or_default();
        let hostname = f[1].split_once(',').map(|(_, h)| h).filter(|h| !h.is_empty());
        let node =
            hostname.and_then(|h| stats.nodes.iter().find(|n| n.name == h)).or_else(|| named(&stats.nodes, addr));
        if node.is_some_and(|n| !n.up) || f[2].split(',').any(|x| x == "fail") {
            let name = node.map_or(f[1], |n| n.name.as_str());
            let slots: Vec<&str> = f[8..].iter().filter(|s| !s.starts_with('[')).copied().collect();
            j.fail(
                "cluster_state",
                Verdict::Down,
                node.map(|n| n.name.as_str()),
                format!(
                    "slots {} have no master: `{}` is down",
                    crate::text::clean(&slots.join(","), 256),
                    crate::text::clean(name, 128)
                ),
            );
        }
    }
}

fn replicas(j: &mut Judge, stats: &Stats, bound: Duration) {
    j.check("replica_link");
    j.check("replica_lag");
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    for (n, l) in live_nodes(stats).filter(|(_, l)| l.role == "replica") {
        let r = &l.replication;
        if r.master_link_up == Some(false) {
            let master = r.master.as_deref().unwrap_or("its master");
            j.fail(
                "replica_link",
                Verdict::Degraded,
                Some(&n.name),
                format!("`{}` has no link to {master} (master_link_status:down)", n.name),
            );
        } else if let Some(lag) = r.lag_ms.filter(|lag| *lag >= bound_ms) {
            j.fail(
                "replica_lag",
                Verdict::Degraded,
                Some(&n.name),
                format!(
                    "`{}` is {lag} ms or more behind its master ({} bytes; the bound is {bound_ms} ms, `--max-lag-ms`)",
                    n.name,
                    r.lag_bytes.unwrap_or(0)
                ),
            );
        }
    }
}

fn persistence_and_memory(j: &mut Judge, stats: &Stats) {
    for c in ["rdb_save", "aof_write", "memory"] {
        j.check(c);
    }
    for (n, l) in live_nodes(stats) {
        let p = &l.persistence;
        if !p.rdb_last_bgsave_ok {
            j.fail(
                "rdb_save",
                Verdict::Degraded,
                Some(&n.name),
                format!("`{}`'s last RDB save failed (rdb_last_bgsave_status:err): check its log and disk", n.name),
            );
        }
        if p.aof_enabled && (!p.aof_last_write_ok || !p.aof_last_bgrewrite_ok) {
            let what = if p.aof_last_write_ok {
                "rewrite (aof_last_bgrewrite_status:err)"
            } else {
                "write (aof_last_write_status:err)"
            };
            j.fail(
                "aof_write",
                Verdict::Degraded,
                Some(&n.name),
                format!("`{}`'s last AOF {what} failed: check its log and disk", n.name),
            );
        }
        let m = &l.memory;
        if m.max_bytes > 0 && m.used_bytes as f64 >= MEMORY_LIMIT * m.max_bytes as f64 {
            j.fail(
                "memory",
                Verdict::Degraded,
                Some(&n.name),
                format!(
                    "`{}` uses {:.0} % of its maxmemory ({} of {} bytes; policy {})",
                    n.name,
                    100.0 * m.used_bytes as f64 / m.max_bytes as f64,
                    m.used_bytes,
                    m.max_bytes,
                    m.policy
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_info;
    use crate::ops::stats::{SentinelStats, Slowlog, Totals};

    fn node(name: &str, port: u16, info: &str) -> NodeStats {
        let live = super::super::probe::live(parse_info(info), Slowlog::default(), Vec::new(), None);
        NodeStats { name: name.into(), port, up: true, error: None, live: Some(live) }
    }

    fn down(name: &str, port: u16) -> NodeStats {
        NodeStats { name: name.into(), port, up: false, error: Some("connection refused".into()), live: None }
    }

    fn sentinel(name: &str, master: &str) -> SentinelStats {
        SentinelStats {
            name: name.into(),
            port: 1,
            up: true,
            error: None,
            master_name: "m".into(),
            master: Some(master.into()),
            master_status: Some("ok".into()),
            quorum_ok: Some(true),
            quorum_message: Some("OK 3 usable Sentinels".into()),
            known_replicas: 2,
            known_sentinels: 3,
            tilt: false,
        }
    }

    fn stats(nodes: Vec<NodeStats>, sentinels: Vec<SentinelStats>) -> Stats {
        Stats {
            deployment: "d".into(),
            mode: String::new(),
            unix_ms: 0,
            took_ms: 0.0,
            nodes,
            sentinels,
            total: Totals::default(),
        }
    }

    const MASTER: &str =
        "role:master\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\nused_memory:100\r\nmaxmemory:1000\r\n";
    const REPLICA: &str = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nrdb_last_bgsave_status:ok\r\n";

    fn reasons(h: &Health) -> Vec<(&str, Verdict)> {
        h.reasons.iter().map(|r| (r.check, r.verdict)).collect()
    }

    #[test]
    fn a_healthy_replication_passes_every_check() {
        let s = stats(vec![node("a", 7000, MASTER), node("b", 7001, REPLICA)], Vec::new());
        let h = judge(&s, Mode::Replication, &HealthOptions::default());
        assert_eq!(h.verdict, Verdict::Healthy, "{:?}", h.reasons);
        assert!(h.checks.values().all(|ok| *ok) && h.checks.contains_key("replica_lag"));
    }

    #[test]
    fn a_standalone_without_its_node_is_down_and_a_lost_replica_degrades() {
        let h = judge(&stats(vec![down("a", 7000)], Vec::new()), Mode::Standalone, &HealthOptions::default());
        assert_eq!(h.verdict, Verdict::Down);
        assert!(reasons(&h).contains(&("master", Verdict::Down)));
        let s = stats(vec![node("a", 7000, MASTER), down("b", 7001), node("c", 7002, REPLICA)], Vec::new());
        let h = judge(&s, Mode::Replication, &HealthOptions::default());
        assert_eq!((h.verdict, reasons(&h)), (Verdict::Degraded, vec![("nodes_up", Verdict::Degraded)]));
        let s = stats(vec![node("a", 7000, MASTER), down("b", 7001), down("c", 7002)], Vec::new());
        assert_eq!(
            judge(&s, Mode::Replication, &HealthOptions::default()).verdict,
            Verdict::Down,
            "a majority is down"
        );
    }

    #[test]
    fn lag_memory_and_persistence_degrade() {
        let mut lagging = node("b", 7001, REPLICA);
        if let Some(l) = lagging.live.as_mut() {
            l.replication.lag_ms = Some(250);
            l.replication.lag_bytes = Some(4096);
        }
        let full = "role:master\r\nrdb_last_bgsave_status:err\r\naof_enabled:1\r\naof_last_write_status:err\r\nused_memory:950\r\nmaxmemory:1000\r\n";
        let s = stats(vec![node("a", 7000, full), lagging], Vec::new());
        let h = judge(&s, Mode::Replication, &HealthOptions { max_lag: Duration::from_millis(100) });
        assert_eq!(h.verdict, Verdict::Degraded);
        let mut got: Vec<&str> = h.reasons.iter().map(|r| r.check).collect();
        got.sort_unstable();
        assert_eq!(got, ["aof_write", "memory", "rdb_save", "replica_lag"]);
        assert!(h.reasons.iter().any(|r| r.message.contains("95 %")), "{:?}", h.reasons);
        let h = judge(&s, Mode::Replication, &HealthOptions { max_lag: Duration::from_millis(500) });
        assert!(!reasons(&h).iter().any(|(c, _)| *c == "replica_lag"), "within a wider bound");
    }

    #[test]
    fn sentinels_must_agree_on_a_master_that_is_up() {
        let nodes = || vec![node("a", 7000, MASTER), node("b", 7001, REPLICA)];
        let s = stats(nodes(), vec![sentinel("s0", "127.0.0.1:7000"), sentinel("s1", "127.0.0.1:7001")]);
        let h = judge(&s, Mode::Sentinel, &HealthOptions::default());
        assert!(reasons(&h).contains(&("sentinels_agree", Verdict::Degraded)), "{:?}", h.reasons);
        let s = stats(vec![down("a", 7000), node("b", 7001, REPLICA)], vec![sentinel("s0", "127.0.0.1:7000")]);
        let h = judge(&s, Mode::Sentinel, &HealthOptions::default());
        assert_eq!(h.verdict, Verdict::Down);
        assert!(reasons(&h).contains(&("master", Verdict::Down)));
        let mut lost = sentinel("s0", "127.0.0.1:7000");
        lost.quorum_ok = Some(false);
        let h = judge(&stats(nodes(), vec![lost]), Mode::Sentinel, &HealthOptions::default());
        assert_eq!(reasons(&h), [("sentinel_quorum", Verdict::Degraded)]);
    }
}
