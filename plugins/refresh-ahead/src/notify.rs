//! `notify-keyspace-events` flags: the strategy's own (`Ex`: expired events
//! on the keyevent channel) merged with the template's, written in the order
//! Redis 7.0 reports them (`CONFIG GET` returns exactly this string).

/// Per-type and per-event flags, in Redis's display order.
const CLASSES: &str = "g$lshzxetdn";
/// What `A` stands for in Redis 7.0.
const ALL: &str = "g$lshzxetd";

/// Merges flag strings; unknown characters are dropped (the host's schema
/// check reports them).
pub fn merge(flags: &[&str]) -> String {
    let mut set: Vec<char> = Vec::new();
    for ch in flags.iter().flat_map(|f| f.chars()) {
        let expanded: Vec<char> = if ch == 'A' { ALL.chars().collect() } else { vec![ch] };
        for c in expanded {
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    let has = |c: char| set.contains(&c);
    let mut out = String::new();
    if ALL.chars().all(has) {
        out.push('A');
        if has('n') {
            out.push('n');
        }
    } else {
        out.extend(CLASSES.chars().filter(|c| has(*c)));
    }
    out.extend("KEm".chars().filter(|c| has(*c)));
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn flags_come_out_in_redis_order() {
        assert_eq!(merge(&["Ex"]), "xE");
        assert_eq!(merge(&["", "Ex"]), "xE");
        assert_eq!(merge(&["Kx", "Ex"]), "xKE");
        assert_eq!(merge(&["KEA", "Ex"]), "AKE");
        assert_eq!(merge(&["mE", "Ex"]), "xEm");
        assert_eq!(merge(&["g?", "Ex"]), "gxE");
    }
}
