//! The command names and ACL categories of Redis 7.0, and checks of ACL
//! rules against them: an unknown name in `users.acl` aborts Redis's startup
//! (docs/defaults.md, "Tenants"), so every rule is checked before it is written.
//!
//! `redis-7.0-commands.txt` is the output of, on Redis 7.0.15:
//! `EVAL "…for each COMMAND entry: its name and its subcommands' names…" 0 | sort`;
//! `redis-7.0-configs.txt` the names `CONFIG GET *` lists there (what a
//! `redis.conf` may set: an unknown directive aborts startup too).

const COMMANDS_TXT: &str = include_str!("redis-7.0-commands.txt");
const CONFIGS_TXT: &str = include_str!("redis-7.0-configs.txt");

/// The sorted lines of a table, split once per plugin instance (a linear
/// scan per rule made rendering a 9-node cluster cost ~40M instructions).
fn table(cell: &'static std::sync::OnceLock<Vec<&'static str>>, text: &'static str) -> &'static [&'static str] {
    cell.get_or_init(|| text.lines().collect())
}

fn commands() -> &'static [&'static str] {
    static CELL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    table(&CELL, COMMANDS_TXT)
}

/// Whether `name` is a `redis.conf` directive of Redis 7.0.
pub fn known_directive(name: &str) -> bool {
    static CELL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    table(&CELL, CONFIGS_TXT).binary_search(&name).is_ok()
}

/// ACL categories of Redis 7.0 (`ACL CAT`).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Whether `name` (`get`, `config|get`) is a Redis 7.0 command or subcommand.
pub fn known(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    commands().binary_search(&name.as_str()).is_ok()
}

fn is_container(name: &str) -> bool {
    let prefix = format!("{}|", name.to_ascii_lowercase());
    // The first line not below `prefix` starts with it if any line does.
    let table = commands();
    table.get(table.partition_point(|l| *l < prefix.as_str())).is_some_and(|l| l.starts_with(&prefix))
}

/// Why a command name (no `+`/`-`) would not be accepted by Redis 7.0.
pub fn check_command(name: &str) -> Result<(), String> {
    match name.split_once('|') {
        None if known(name) => Ok(()),
        None => Err(format!("`{name}` is not a redis 7.0 command")),
        Some((cmd, _)) if !known(cmd) => Err(format!("`{cmd}` is not a redis 7.0 command")),
        // `+select|0` (first-argument rules) is accepted for plain commands.
        Some((cmd, _)) if !is_container(cmd) => Ok(()),
        Some(_) if known(name) => Ok(()),
        Some((cmd, sub)) => Err(format!("`{sub}` is not a subcommand of `{cmd}` in redis 7.0")),
    }
}

/// Why a category name (no `@`) is unknown.
pub fn check_category(name: &str) -> Result<(), String> {
    if name == "all" || CATEGORIES.contains(&name.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(format!("`@{name}` is not a redis 7.0 acl category"))
    }
}

/// Checks one command rule of a user (`+@read`, `-flushall`, `+config|get`,
/// `allcommands`, `nocommands`).
pub fn check_rule(rule: &str) -> Result<(), String> {
    if rule.chars().any(char::is_whitespace) || rule.is_empty() {
        return Err(format!("acl rule `{rule}` is empty or holds whitespace"));
    }
    if matches!(rule.to_ascii_lowercase().as_str(), "allcommands" | "nocommands") {
        return Ok(());
    }
    let body = rule
        .strip_prefix('+')
        .or_else(|| rule.strip_prefix('-'))
        .ok_or_else(|| format!("acl rule `{rule}` must start with `+` or `-`"))?;
    match body.strip_prefix('@') {
        Some(cat) => check_category(cat),
        None => check_command(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_7_0_names() {
        assert!(check_command("get").is_ok());
        assert!(check_command("config|get").is_ok());
        assert!(check_command("select|0").is_ok());
        assert!(check_command("waitaof").is_err(), "waitaof is 7.2");
        assert!(check_command("config|nope").is_err());
        assert!(check_rule("+@read").is_ok());
        assert!(check_rule("-@dangerous").is_ok());
        assert!(check_rule("+@dangerzone").is_err());
        assert!(check_rule("flushall").is_err());
        assert!(check_rule("allcommands").is_ok());
    }

    #[test]
    fn the_table_is_sorted_and_complete() {
        let lines: Vec<&str> = COMMANDS_TXT.lines().collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
        assert!(lines.len() > 300, "{}", lines.len());
    }
}
