//! Time for backups and point-in-time restores: backup ids
//! (`20261204T101500Z`), RFC 3339 UTC seconds (`2026-12-04T10:15:00Z`), and
//! the span an AOF copy covers — from its base's creation (the RDB
//! preamble's `ctime`, or the first `#TS:` annotation) to the backup.

use std::path::Path;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn utc(unix: u64) -> OffsetDateTime {
    i64::try_from(unix)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-12-04T10:15:00Z`.
pub fn rfc3339(unix: u64) -> String {
    let t = utc(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A backup id: `20261204T101500Z`.
pub fn id(unix: u64) -> String {
    rfc3339(unix).replace(['-', ':'], "")
}

/// Whether `s` looks like a backup id.
pub fn is_id(s: &str) -> bool {
    s.len() == 16
        && s.as_bytes()[8] == b'T'
        && s.ends_with('Z')
        && s.chars().filter(|c| c.is_ascii_digit()).count() == 14
}

/// Parses an RFC 3339 time in UTC to the second (`2026-12-04T10:15:00Z`,
/// `+00:00` accepted for `Z`); the error says what is expected.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let wrong = || format!("`{}` is not a UTC time like `2026-12-04T10:15:00Z`", crate::text::clean(text, 60));
    let t = text.trim();
    let body = t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00")).ok_or_else(wrong)?;
    let (date, clock) = body.split_once(['T', 't', ' ']).ok_or_else(wrong)?;
    let num = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| wrong())
        } else {
            Err(wrong())
        }
    };
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    let ([y, mo, da], [h, mi, s]) = (d.as_slice(), c.as_slice()) else { return Err(wrong()) };
    let month = Month::try_from(num(mo, 2)? as u8).map_err(|_| wrong())?;
    let year = i32::try_from(num(y, 4)?).map_err(|_| wrong())?;
    let date = Date::from_calendar_date(year, month, num(da, 2)? as u8).map_err(|_| wrong())?;
    let time = Time::from_hms(num(h, 2)? as u8, num(mi, 2)? as u8, num(s, 2)? as u8).map_err(|_| wrong())?;
    let unix = PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp();
    u64::try_from(unix).map_err(|_| wrong())
}

/// The first second an AOF folder can be cut at: its first `#TS:`
/// annotation (`redis-check-aof` refuses to cut before it), else — no write
/// since the base — the base RDB's `ctime`. `None` when neither is there,
/// or when it holds writes without annotations.
pub fn aof_start(aof_dir: &Path) -> Option<u64> {
    let manifest = std::fs::read_dir(aof_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))?;
    let text = std::fs::read_to_string(manifest).ok()?;
    let files: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let name = w.iter().position(|x| *x == "file").and_then(|i| w.get(i + 1))?;
            let kind = w.iter().position(|x| *x == "type").and_then(|i| w.get(i + 1))?;
            Some((*name, *kind))
        })
        .collect();
    let incr: Vec<Vec<u8>> =
        files.iter().filter(|(_, k)| *k == "i").filter_map(|(f, _)| std::fs::read(aof_dir.join(f)).ok()).collect();
    let first = incr.iter().find_map(|a| first_timestamp(a));
    // Writes without annotations (`aof-timestamp-enabled` was off): no second can be told.
    if first.is_none() && incr.iter().any(|a| !a.is_empty()) {
        return None;
    }
    first.or_else(|| {
        let base = files.iter().find(|(_, k)| *k == "b").and_then(|(f, _)| std::fs::read(aof_dir.join(f)).ok())?;
        rdb_ctime(&base)
    })
}

/// The first `#TS:<seconds>` annotation of an AOF.
pub fn first_timestamp(aof: &[u8]) -> Option<u64> {
    let at = aof.windows(4).position(|w| w == b"#TS:")?;
    let digits: String = aof[at + 4..].iter().take_while(|b| b.is_ascii_digit()).map(|b| char::from(*b)).collect();
    digits.parse().ok()
}

/// The `ctime` auxiliary field of an RDB (`REDIS0010`, then `0xFA key value`
/// pairs before the data).
pub fn rdb_ctime(rdb: &[u8]) -> Option<u64> {
    if !rdb.starts_with(b"REDIS") || rdb.len() < 9 {
        return None;
    }
    let mut at = 9;
    while rdb.get(at) == Some(&0xFA) {
        at += 1;
        let key = rdb_string(rdb, &mut at)?;
        let value = rdb_string(rdb, &mut at)?;
        if key == "ctime" {
            return value.parse().ok();
        }
    }
    None
}

/// One RDB string (length-prefixed or an integer encoding), as text.
fn rdb_string(rdb: &[u8], at: &mut usize) -> Option<String> {
    let first = *rdb.get(*at)?;
    *at += 1;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = rdb.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let len = match first >> 6 {
        0 => usize::from(first & 0x3F),
        1 => (usize::from(first & 0x3F) << 8) | usize::from(*take(1)?.first()?),
        2 if first == 0x80 => u32::from_be_bytes(take(4)?.try_into().ok()?) as usize,
        2 => usize::try_from(u64::from_be_bytes(take(8)?.try_into().ok()?)).ok()?,
        _ => {
            return match first & 0x3F {
                0 => Some((take(1)?[0] as i8).to_string()),
                1 => Some(i16::from_le_bytes(take(2)?.try_into().ok()?).to_string()),
                2 => Some(i32::from_le_bytes(take(4)?.try_into().ok()?).to_string()),
                _ => None, // LZF-compressed: not used for aux fields
            };
        }
    };
    Some(String::from_utf8_lossy(take(len)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip_and_bad_ones_are_refused() {
        let t = parse_rfc3339("2026-12-04T10:15:00Z").expect("parses");
        assert_eq!(rfc3339(t), "2026-12-04T10:15:00Z");
        assert_eq!(parse_rfc3339("2026-12-04T10:15:00+00:00"), Ok(t));
        assert_eq!(id(t), "20261204T101500Z");
        assert!(is_id(&id(t)));
        for bad in [
            "2026-12-04T10:15:00",
            "2026-13-04T10:15:00Z",
            "2026-12-04T10:15Z",
            "tomorrow",
            "2026-12-04T10:15:00+01:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ctime_of_an_rdb_preamble_is_read() {
        // REDIS0010, aux redis-ver "7.0.15", aux ctime as a 32-bit integer.
        let mut rdb = b"REDIS0010".to_vec();
        rdb.extend([0xFA, 9]);
        rdb.extend(b"redis-ver");
        rdb.extend([6]);
        rdb.extend(b"7.0.15");
        rdb.extend([0xFA, 5]);
        rdb.extend(b"ctime");
        rdb.push(0xC2);
        rdb.extend(1_796_426_547_u32.to_le_bytes());
        rdb.push(0xFF);
        assert_eq!(rdb_ctime(&rdb), Some(1_796_426_547));
        assert_eq!(rdb_ctime(b"REDIS0010\xff"), None);
        assert_eq!(first_timestamp(b"*1\r\n#TS:1796426548\r\n*3"), Some(1_796_426_548));
    }

    #[test]
    fn an_aof_without_annotations_has_no_start_and_one_with_them_starts_at_the_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let manifest = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        std::fs::write(dir.path().join("appendonly.aof.manifest"), manifest).expect("manifest");
        std::fs::write(dir.path().join("appendonly.aof.1.base.rdb"), b"REDIS0010\xff").expect("base");
        let incr = dir.path().join("appendonly.aof.1.incr.aof");
        std::fs::write(&incr, b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n").expect("incr");
        assert_eq!(aof_start(dir.path()), None, "writes without #TS: no start");
        std::fs::write(&incr, b"#TS:1796426547\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n").expect("incr");
        assert_eq!(aof_start(dir.path()), Some(1_796_426_547));
    }
}
