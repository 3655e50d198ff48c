//! Key names folded into patterns: `user:1234:profile` → `user:*:profile`.
//! A key is cut at its separators (`:/|.` by default) and every segment
//! that looks like an id — a number, a UUID, a hex id (8 or more hex digits
//! with a digit among them), or any longer token with digits in it — becomes
//! `*`. Segments without digits stay, so `user:*:profile` and
//! `user:*:settings` remain two patterns.

/// The separators used when none are given.
pub const DEFAULT_SEPARATORS: &str = ":/|.";
/// The longest pattern kept, in bytes; the rest of a longer key is `…*`.
pub const MAX_PATTERN_BYTES: usize = 200;

/// How keys are cut into segments.
#[derive(Debug, Clone)]
pub struct Folder {
    separators: Vec<char>,
}

impl Default for Folder {
    fn default() -> Self {
        Folder::new(DEFAULT_SEPARATORS)
    }
}

impl Folder {
    /// A folder cutting at every character of `separators` (none: the
    /// whole key is one segment).
    pub fn new(separators: &str) -> Folder {
        Folder { separators: separators.chars().collect() }
    }

    /// The pattern of `key`.
    pub fn fold(&self, key: &str) -> String {
        let mut out = String::with_capacity(key.len().min(MAX_PATTERN_BYTES) + 2);
        let mut segment_start = 0;
        for (i, c) in key.char_indices() {
            if self.separators.contains(&c) {
                push_segment(&mut out, &key[segment_start..i]);
                out.push(c);
                segment_start = i + c.len_utf8();
            }
            if out.len() > MAX_PATTERN_BYTES {
                break;
            }
        }
        if out.len() <= MAX_PATTERN_BYTES {
            push_segment(&mut out, &key[segment_start..]);
        }
        if out.len() > MAX_PATTERN_BYTES {
            let mut cut = MAX_PATTERN_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("…*");
        }
        out
    }
}

fn push_segment(out: &mut String, segment: &str) {
    if is_id(segment) {
        // `a:1:2` and `a:*:*` alike, but `*` never doubled by folding `1*2`.
        out.push('*');
    } else {
        out.push_str(segment);
    }
}

/// Whether a segment is an id rather than a name.
pub fn is_id(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    if digits == segment.len() || is_uuid(segment) {
        return true;
    }
    if segment.len() >= 8 && digits > 0 && segment.chars().all(|c| c.is_ascii_hexdigit()) {
        return true;
    }
    // `order2024`, `a1b2c3`, `item-77`, but not a short tag like `v2` or `h3`.
    digits > 0 && segment.chars().count() > 3
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_any_segment_become_stars() {
        let f = Folder::default();
        assert_eq!(f.fold("user:1234:profile"), "user:*:profile");
        assert_eq!(f.fold("user:1234:settings"), "user:*:settings");
        assert_eq!(f.fold("session:3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"), "session:*");
        assert_eq!(f.fold("cache:item:deadbeef01"), "cache:item:*");
        assert_eq!(f.fold("order2024:lines:7"), "*:lines:*");
        assert_eq!(f.fold("42"), "*");
        assert_eq!(f.fold("api/v2/users/99"), "api/v2/users/*");
        assert_eq!(f.fold("img.cdn.example|77"), "img.cdn.example|*");
    }

    #[test]
    fn names_without_digits_stay_and_short_hex_words_are_names() {
        let f = Folder::default();
        assert_eq!(f.fold("config:features"), "config:features");
        // Hex letters only, no digit: a word, not an id.
        assert_eq!(f.fold("cache:facade:beaded"), "cache:facade:beaded");
        assert_eq!(f.fold("a:cafe1234"), "a:*");
        assert_eq!(f.fold(""), "");
        assert_eq!(f.fold("a::b:"), "a::b:");
    }

    #[test]
    fn separators_are_configurable() {
        assert_eq!(Folder::new("-").fold("user-1234-profile"), "user-*-profile");
        assert_eq!(Folder::new("-").fold("user:1234:profile"), "*", "one segment with digits");
        assert_eq!(Folder::new("").fold("plainkey"), "plainkey");
        // With `-` a separator, a UUID's parts are folded one by one.
        assert_eq!(Folder::new(":-").fold("s:3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"), "s:*-*-*-*-*");
    }

    #[test]
    fn long_keys_give_bounded_patterns() {
        let key = "seg:".repeat(200);
        let p = Folder::default().fold(&key);
        assert!(p.len() <= MAX_PATTERN_BYTES + "…*".len(), "{}", p.len());
        assert!(p.ends_with("…*"));
        let wide = "é".repeat(300);
        assert!(Folder::default().fold(&wide).ends_with("…*"));
    }
}
