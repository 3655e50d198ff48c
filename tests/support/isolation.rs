//! The cross-tenant isolation suite (REFERENCE.md §4): what a tenant
//! (`acme`) might try against another (`beta`) or the server, and what an
//! application does with its own keys. Run on direct connections
//! (tests/tenants.rs) and through the tenant gateway (tests/gateway.rs).

/// Commands a tenant might try against another (`beta`) or the server; each
/// must be refused. Grouped as REFERENCE.md §4 lists them.
pub const ATTACKS: &[&[&str]] = &[
    // Other tenants' key names and counts.
    &["KEYS", "*"],
    &["SCAN", "0"],
    &["SCAN", "0", "MATCH", "tenant:beta:*"],
    &["RANDOMKEY"],
    &["DBSIZE"],
    &["INFO"],
    &["INFO", "keyspace"],
    // Other tenants' keys.
    &["GET", "tenant:beta:s"],
    &["SET", "tenant:beta:s", "pwned"],
    &["DEL", "tenant:beta:s"],
    &["EXISTS", "tenant:beta:s"],
    &["TYPE", "tenant:beta:s"],
    &["TTL", "tenant:beta:s"],
    &["TOUCH", "tenant:beta:s"],
    &["GETDEL", "tenant:beta:s"],
    &["HGETALL", "tenant:beta:h"],
    &["LRANGE", "tenant:beta:l", "0", "-1"],
    &["SMEMBERS", "tenant:beta:set"],
    &["ZRANGE", "tenant:beta:z", "0", "-1"],
    &["XRANGE", "tenant:beta:x", "-", "+"],
    &["XREAD", "COUNT", "1", "STREAMS", "tenant:beta:x", "0"],
    &["DUMP", "tenant:beta:s"],
    &["OBJECT", "ENCODING", "tenant:beta:s"],
    &["OBJECT", "FREQ", "tenant:beta:s"],
    &["MEMORY", "USAGE", "tenant:beta:s"],
    &["MGET", "tenant:acme:s", "tenant:beta:s"],
    &["RENAME", "tenant:acme:s", "tenant:beta:s"],
    &["COPY", "tenant:beta:s", "tenant:acme:stolen"],
    &["SUNIONSTORE", "tenant:acme:u", "tenant:beta:set"],
    &["LMOVE", "tenant:beta:l", "tenant:acme:l", "LEFT", "LEFT"],
    &["BITOP", "OR", "tenant:acme:b", "tenant:beta:s"],
    &["SORT", "tenant:acme:l", "BY", "tenant:beta:*"],
    &["RESTORE", "tenant:beta:new", "0", "x"],
    // A prefix without its terminator is another tenant's (`acmex`), or nobody's.
    &["SET", "tenant:acmex:k", "v"],
    &["SET", "tenant:acme", "v"],
    // Server-wide information.
    &["SLOWLOG", "GET"],
    &["CLIENT", "LIST"],
    &["CLIENT", "KILL", "ID", "1"],
    &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "tenant:beta:"],
    &["ACL", "LIST"],
    &["ACL", "GETUSER", "tenant-beta"],
    &["ACL", "LOG"],
    &["ACL", "USERS"],
    &["MEMORY", "STATS"],
    &["CONFIG", "GET", "*"],
    &["LATENCY", "LATEST"],
    &["MONITOR"],
    &["PUBSUB", "CHANNELS"],
    &["PUBSUB", "NUMSUB", "tenant:beta:news"],
    // Global state.
    &["FLUSHALL"],
    &["FLUSHDB"],
    &["CONFIG", "SET", "maxmemory", "1"],
    &["SELECT", "1"],
    &["SWAPDB", "0", "1"],
    &["MOVE", "tenant:acme:s", "1"],
    &["REPLICAOF", "127.0.0.1", "1"],
    &["SHUTDOWN", "NOSAVE"],
    &["BGSAVE"],
    &["SAVE"],
    &["BGREWRITEAOF"],
    &["DEBUG", "SLEEP", "0"],
    &["MODULE", "LIST"],
    &["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)"],
    &["FUNCTION", "FLUSH"],
    &["FUNCTION", "LIST"],
    &["SCRIPT", "FLUSH"],
    &["SCRIPT", "KILL"],
    &["MIGRATE", "127.0.0.1", "1", "tenant:acme:s", "0", "100"],
    &["CLIENT", "PAUSE", "10"],
    &["CLIENT", "NO-EVICT", "on"],
    &["ACL", "SETUSER", "tenant-acme", "~*"],
    &["ACL", "DELUSER", "tenant-beta"],
    // Other tenants' channels.
    &["PUBLISH", "tenant:beta:news", "hi"],
    &["SUBSCRIBE", "tenant:beta:news"],
    &["PSUBSCRIBE", "tenant:*"],
    &["SSUBSCRIBE", "tenant:beta:news"],
    &["SPUBLISH", "tenant:beta:news", "hi"],
    // Scripts touching keys they did not declare, or the server.
    &["EVAL", "return redis.call('get','tenant:beta:s')", "0"],
    &["EVAL", "return redis.call('set','tenant:beta:s','pwned')", "0"],
    &["EVAL", "return redis.call('get', KEYS[1])", "1", "tenant:beta:s"],
    &["EVAL", "return redis.call('get','tenant:beta:s')", "1", "tenant:acme:s"],
    &["EVAL", "return redis.call('keys','*')", "0"],
    &["EVAL", "return redis.call('scan','0')", "0"],
    &["EVAL", "return redis.call('flushall')", "0"],
    &["EVAL", "return redis.call('config','get','*')", "0"],
    &["EVAL", "return redis.call('publish','tenant:beta:news','x')", "0"],
    &["EVAL", "return redis.pcall('info')", "0"],
    &["EVAL_RO", "return redis.call('get','tenant:beta:s')", "0"],
    // Other identities.
    &["AUTH", "default", "not-the-password"],
    &["AUTH", "tenant-beta", "not-the-password"],
];

/// Everything an application does with its own keys; `$SHA` is a script
/// the tenant loaded itself.
pub const OWN: &[&[&str]] = &[
    &["PING"],
    &["SET", "tenant:acme:n", "1", "EX", "100"],
    &["INCR", "tenant:acme:n"],
    &["GET", "tenant:acme:n"],
    &["APPEND", "tenant:acme:s", "+"],
    &["GETRANGE", "tenant:acme:s", "0", "1"],
    &["MSET", "tenant:acme:m1", "a", "tenant:acme:m2", "b"],
    &["MGET", "tenant:acme:m1", "tenant:acme:m2"],
    &["HSET", "tenant:acme:h", "f", "1"],
    &["HINCRBY", "tenant:acme:h", "f", "2"],
    &["HGETALL", "tenant:acme:h"],
    &["LPUSH", "tenant:acme:l", "y"],
    &["LRANGE", "tenant:acme:l", "0", "-1"],
    &["LMOVE", "tenant:acme:l", "tenant:acme:l2", "LEFT", "RIGHT"],
    &["BLPOP", "tenant:acme:l", "1"],
    &["SADD", "tenant:acme:set", "a", "b"],
    &["SINTERSTORE", "tenant:acme:set2", "tenant:acme:set"],
    &["SMEMBERS", "tenant:acme:set2"],
    &["ZADD", "tenant:acme:z", "1", "a", "2", "b"],
    &["ZINCRBY", "tenant:acme:z", "3", "a"],
    &["ZRANGE", "tenant:acme:z", "0", "-1", "WITHSCORES"],
    &["XADD", "tenant:acme:x", "*", "f", "v"],
    &["XGROUP", "CREATE", "tenant:acme:x", "g", "0"],
    &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "tenant:acme:x", ">"],
    &["XRANGE", "tenant:acme:x", "-", "+"],
    &["SETBIT", "tenant:acme:bits", "7", "1"],
    &["BITCOUNT", "tenant:acme:bits"],
    &["PFADD", "tenant:acme:hll", "a", "b"],
    &["PFCOUNT", "tenant:acme:hll"],
    &["GEOADD", "tenant:acme:geo", "13.4", "52.5", "berlin", "2.35", "48.85", "paris"],
    &["GEODIST", "tenant:acme:geo", "berlin", "paris", "km"],
    &["EXPIRE", "tenant:acme:m1", "100"],
    &["TTL", "tenant:acme:m1"],
    &["PERSIST", "tenant:acme:m1"],
    &["TYPE", "tenant:acme:h"],
    &["EXISTS", "tenant:acme:h", "tenant:acme:z"],
    &["RENAME", "tenant:acme:m2", "tenant:acme:m3"],
    &["COPY", "tenant:acme:m3", "tenant:acme:m4"],
    &["OBJECT", "ENCODING", "tenant:acme:h"],
    &["MEMORY", "USAGE", "tenant:acme:h"],
    &["UNLINK", "tenant:acme:m4"],
    &["DEL", "tenant:acme:m3"],
    &["PUBLISH", "tenant:acme:news", "hello"],
    &["EVAL", "return redis.call('incr', KEYS[1])", "1", "tenant:acme:n"],
    &["EVAL", "redis.call('set', KEYS[1], ARGV[1]); return redis.call('get', KEYS[1])", "1", "tenant:acme:e", "v"],
    &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "tenant:acme:e"],
    &["SCRIPT", "EXISTS", "$SHA"],
];

/// Runs everything an application does with its own keys as `acme` (the
/// `OWN` commands, its own scripts by hash, a transaction with WATCH, a
/// pipeline of 100, pub/sub on its own channel with `subscriber`, a second
/// connection of its own); how many operations ran and which were refused.
/// `sha` is a script `acme` loaded itself.
pub fn own_work(acme: &mut redis::Connection, mut subscriber: redis::Connection, sha: &str) -> (usize, Vec<String>) {
    let run = |con: &mut redis::Connection, args: &[&str]| -> redis::RedisResult<redis::Value> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(con)
    };
    let own: Vec<Vec<&str>> =
        OWN.iter().map(|c| c.iter().map(|a| if *a == "$SHA" { sha } else { *a }).collect()).collect();
    let mut refused = Vec::new();
    for c in &own {
        if let Err(e) = run(acme, c) {
            refused.push(format!("{c:?}: {e}"));
        }
    }
    let mut legit = own.len();
    // Scripts loaded once and run by their hash, on declared keys.
    let own_sha: String =
        redis::cmd("SCRIPT").arg("LOAD").arg("return redis.call('get', KEYS[1])").query(acme).expect("load");
    for c in [["EVALSHA", &own_sha, "1", "tenant:acme:e"], ["EVALSHA_RO", &own_sha, "1", "tenant:acme:e"]] {
        legit += 1;
        if let Err(e) = run(acme, &c) {
            refused.push(format!("{c:?}: {e}"));
        }
    }
    // A transaction, with WATCH.
    legit += 1;
    let _: () = redis::cmd("WATCH").arg("tenant:acme:n").query(acme).expect("WATCH");
    let tx: redis::RedisResult<(i64, String)> =
        redis::pipe().atomic().incr("tenant:acme:n", 1).get("tenant:acme:s").query(acme);
    if let Err(e) = tx {
        refused.push(format!("MULTI/EXEC: {e}"));
    }
    // A pipeline of 100 commands.
    legit += 1;
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.set(format!("tenant:acme:p{i}"), i).ignore();
    }
    if let Err(e) = pipe.query::<()>(acme) {
        refused.push(format!("pipeline: {e}"));
    }
    // Pub/sub on its own channel: a message from another connection arrives.
    legit += 1;
    let mut sub = subscriber.as_pubsub();
    match sub.subscribe("tenant:acme:news") {
        Err(e) => refused.push(format!("SUBSCRIBE own channel: {e}")),
        Ok(()) => {
            run(acme, &["PUBLISH", "tenant:acme:news", "hello"]).expect("publish");
            sub.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
            let msg = sub.get_message().expect("a message on its own channel");
            assert_eq!(msg.get_payload::<String>().ok().as_deref(), Some("hello"));
        }
    }
    (legit, refused)
}
