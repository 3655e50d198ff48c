//! `redplate exec` and `redplate flush` against real Redis: destructive and
//! streaming commands are refused, everything is audited, a cluster command
//! reaches the master serving its key, and a flush happens only with the
//! token the first call gave for this deployment.

mod support;

use support::{Home, redis_present, text};

fn audit_lines(d: &support::Deployed<'_>) -> Vec<serde_json::Value> {
    std::fs::read_to_string(d.state_dir().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

#[test]
fn exec_refuses_what_destroys_or_streams_and_audits_every_call() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy("examples/standalone-development.yaml", &[]);
    let name = d.name.as_str();
    assert_eq!(home.ok(&["exec", name, "--", "SET", "k", "v"]).trim(), "\"OK\"");
    assert_eq!(home.ok(&["exec", name, "--", "GET", "k"]).trim(), "\"v\"");

    for refused in [
        vec!["FLUSHALL"],
        vec!["config", "set", "maxmemory", "1"],
        vec!["KEYS", "*"],
        vec!["ACL", "SETUSER", "x", "on"],
    ] {
        let mut args = vec!["exec", name, "--"];
        args.extend(&refused);
        let o = home.run(&args);
        assert_eq!(o.status.code(), Some(1), "{refused:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("exec.dangerous"), "{}", text(&o.stderr));
    }
    assert_eq!(home.ok(&["exec", name, "--", "GET", "k"]).trim(), "\"v\"", "nothing refused ran");
    for streaming in ["MONITOR", "SUBSCRIBE"] {
        let o = home.run(&["exec", name, "--allow-dangerous", "--", streaming, "ch"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o.stderr).contains("exec.unsuitable"), "{}", text(&o.stderr));
    }
    let o = home.run(&["exec", name, "--", "BLPOP", "q", "0"]);
    assert!(text(&o.stderr).contains("exec.blocks-forever"), "{}", text(&o.stderr));

    // A value with escape sequences is shown escaped.
    home.ok(&["exec", name, "--", "SET", "evil", "\x1b[2J\x1b]0;x\x07"]);
    let shown = home.ok(&["exec", name, "--", "GET", "evil"]);
    assert!(!shown.contains('\x1b') && shown.contains("\\u{1b}[2J"), "{shown:?}");

    let o = home.run(&["exec", name, "--allow-dangerous", "--", "FLUSHDB"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(home.ok(&["exec", name, "--", "DBSIZE"]).trim(), "(integer) 0");

    let audit = audit_lines(&d);
    let outcome = |cmd: &str, prefix: &str| {
        audit.iter().any(|e| e["command"] == cmd && e["outcome"].as_str().is_some_and(|o| o.starts_with(prefix)))
    };
    assert!(
        outcome("SET", "ok")
            && outcome("FLUSHALL", "refused")
            && outcome("MONITOR", "refused")
            && outcome("FLUSHDB", "ok"),
        "{audit:#?}"
    );
    let log = std::fs::read_to_string(d.state_dir().join("audit.log")).expect("audit");
    assert!(!log.contains("\"v\"") && !log.contains("maxmemory"), "arguments never reach the audit log: {log}");
}

#[test]
fn flush_needs_the_token_of_this_deployment() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy("examples/standalone-development.yaml", &[]);
    let other = home.deploy("examples/standalone-development.yaml", &["--name", "other"]);
    let name = d.name.as_str();
    for i in 0..5 {
        home.ok(&["exec", name, "--", "SET", &format!("k{i}"), "v"]);
    }
    let first = home.run(&["flush", name]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("5 keys"), "{}", text(&first.stderr));
    let line = text(&first.stdout);
    let token = line.split_whitespace().last().expect("a token").to_owned();
    assert_eq!(home.ok(&["exec", name, "--", "DBSIZE"]).trim(), "(integer) 5", "the first call changes nothing");

    // Another deployment's token, a made-up one: refused, nothing deleted.
    let other_first = home.run(&["flush", &other.name]);
    let other_token = text(&other_first.stdout).split_whitespace().last().expect("token").to_owned();
    for wrong in [other_token.as_str(), "1999999999-00000000000000000000000000000000", "nonsense"] {
        let o = home.run(&["flush", name, "--confirm", wrong]);
        assert_eq!(o.status.code(), Some(1), "{wrong}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("confirm.rejected"), "{}", text(&o.stderr));
    }
    assert_eq!(home.ok(&["exec", name, "--", "DBSIZE"]).trim(), "(integer) 5");

    let o = home.run(&["flush", name, "--confirm", &token]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // FLUSHALL ASYNC: the keyspace is empty at once, memory is freed in the background.
    assert_eq!(home.ok(&["exec", name, "--", "DBSIZE"]).trim(), "(integer) 0");
    assert!(audit_lines(&d).iter().any(|e| e["operation"] == "flush" && e["outcome"] == "ok"));
}

#[test]
fn exec_in_a_cluster_reaches_the_master_of_each_key() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let d = home.deploy(
        "examples/standalone-development.yaml",
        &["--set", "deployment.mode=cluster", "--set", "cluster.shards=3", "--set", "cluster.replicas_per_shard=0"],
    );
    // Keys in many slots: each must land on its own master (no MOVED).
    for i in 0..30 {
        let key = format!("key-{i}");
        let o = home.run(&["exec", &d.name, "--", "SET", &key, "v"]);
        assert!(o.status.success(), "{key}: {}{}", text(&o.stdout), text(&o.stderr));
    }
    let mut total = 0;
    for (node, _) in d.data_nodes() {
        let n = home.ok(&["exec", &d.name, "--node", &node, "--", "DBSIZE"]);
        total += n.trim().trim_start_matches("(integer) ").parse::<u64>().expect("a count");
    }
    assert_eq!(total, 30);
}
