//! The TTL each loaded key gets: the source's own when it has one, else
//! what the deployment's cache strategy decides — the first key rule whose
//! pattern matches the key (as stored, tenant prefix included) gives the
//! base TTL, and the strategy plugin's `decide` adds its jitter. A rule
//! without a TTL (or no strategy) leaves the key without one.

use crate::exit::Failure;
use crate::plugin::{Decider, KeyRule, PluginError, PluginHost};
use redplate_config::Diagnostic;

/// Where a key's TTL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlFrom {
    /// The source gave it.
    Source,
    /// The strategy decided it.
    Strategy,
    /// No rule gives one: the key does not expire.
    None,
}

/// Decides TTLs for one load.
pub struct Ttls {
    rules: Vec<KeyRule>,
    decider: Option<Decider>,
    tenant: Option<String>,
    seed: u64,
}

impl Ttls {
    /// `rules` from the strategy's plan, first match wins; `decider` the
    /// strategy's instance (`None`: no strategy).
    pub fn new(rules: Vec<KeyRule>, decider: Option<Decider>, tenant: Option<String>, seed: u64) -> Ttls {
        Ttls { rules, decider, tenant, seed }
    }

    /// The TTL for `key` (as stored), given the source's own.
    pub fn ttl(&mut self, key: &[u8], explicit: Option<u64>) -> Result<(Option<u64>, TtlFrom), PluginError> {
        if let Some(t) = explicit {
            return Ok((Some(t), TtlFrom::Source));
        }
        let Some(base) = self.rules.iter().find(|r| glob(r.pattern.as_bytes(), key)).and_then(|r| r.ttl_ms) else {
            return Ok((None, TtlFrom::None));
        };
        let Some(decider) = self.decider.as_mut() else {
            return Ok((Some(base), TtlFrom::Strategy));
        };
        let name = String::from_utf8_lossy(key);
        let decision = decider.decide(&name, self.tenant.as_deref(), base, self.seed)?;
        Ok(match decision.ttl_ms {
            Some(t) => (Some(t), TtlFrom::Strategy),
            None => (None, TtlFrom::None),
        })
    }
}

/// The strategy's name and TTL decider (key rules from its `plan`, one
/// reused plugin instance for `decide`).
pub(super) fn for_deployment(
    host: &PluginHost,
    record: &crate::registry::Record,
    resolved: &redplate_config::Resolved,
    request: &super::WarmRequest,
) -> Result<(Option<String>, Ttls), Failure> {
    let seed = getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    match strategy_of(host, record, resolved, &request.plugin_dirs, 1)? {
        None => Ok((None, Ttls::new(Vec::new(), None, request.tenant.clone(), seed))),
        Some(mut s) => Ok((Some(s.plugin), Ttls::new(s.rules, s.deciders.pop(), request.tenant.clone(), seed))),
    }
}

/// A deployment's cache strategy, ready to decide TTLs.
pub struct Strategy {
    /// Its plugin's name.
    pub plugin: String,
    /// Its key rules (from its `plan`; the first that matches decides).
    pub rules: Vec<KeyRule>,
    /// Reused instances for `decide` (none when the strategy is not a plugin).
    pub deciders: Vec<Decider>,
}

/// The deployment's cache strategy with `instances` instances for `decide`;
/// `None`: no strategy.
pub fn strategy_of(
    host: &PluginHost,
    record: &crate::registry::Record,
    resolved: &redplate_config::Resolved,
    plugin_dirs: &[std::path::PathBuf],
    instances: usize,
) -> Result<Option<Strategy>, Failure> {
    let name = resolved.config.cache.strategy.as_str();
    if name.is_empty() || name == "none" {
        return Ok(None);
    }
    let extra = crate::ops::render::template_plugins(&resolved.config, Some(&record.template));
    let plugins = crate::ops::render::PluginSet::load(host, &[], Some(name), &extra, plugin_dirs)?;
    let Some(plugin) = plugins.strategy(name) else {
        return Err(Failure::could_not_run(
            Diagnostic::error(
                "cache.unknown-strategy",
                "/cache/strategy",
                format!("no cache-strategy plugin provides `{name}`"),
            )
            .with_hint("the deployment was made with a plugin that is not here now: add it with `--plugin-dir`"),
        ));
    };
    // The stored template was checked when it was deployed (its every value
    // is explicit now, so the render's check of the strategy's directives
    // against the user's settings does not apply): only the rules are needed.
    let secrets = crate::secrets::placeholders(&resolved.config, redplate_config::Target::Local);
    let input =
        crate::ops::render::input_document(host, &resolved.config, redplate_config::Target::Local, None, secrets)?;
    let plan = match host.plan(plugin, &input)?.value {
        Ok(plan) => plan,
        Err(diagnostics) => return Err(Failure::invalid(diagnostics)),
    };
    let mut deciders = Vec::new();
    for _ in 0..instances {
        deciders.push(host.decider(plugin)?);
    }
    let plugin_name = plugin.info.name.clone();
    Ok(Some(Strategy { plugin: plugin_name, rules: plan.key_rules, deciders }))
}

/// Redis's glob (`KEYS`/`SCAN MATCH`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has eaten up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(c) => (*c == text[t]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == '['`; the
/// position after the class when it matches.
fn class(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    let mut i = p + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            hit |= pattern[i + 1] == c;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (a, b) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
            hit |= (a..=b).contains(&c);
            i += 3;
        } else {
            hit |= pattern[i] == c;
            i += 1;
        }
    }
    (hit != negate).then_some((i + 1).min(pattern.len()))
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_redis_does() {
        assert!(glob(b"*", b""));
        assert!(glob(b"session:*", b"session:42"));
        assert!(!glob(b"session:*", b"sessions:42"));
        assert!(glob(b"tenant:*:feed:*", b"tenant:acme:feed:7"));
        assert!(!glob(b"tenant:*:feed:*", b"tenant:acme:profile:7"));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"h[a-c]llo", b"hbllo"));
        assert!(glob(b"a\\*b", b"a*b"));
        assert!(!glob(b"a\\*b", b"axb"));
        assert!(glob(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob(b"*a*b", b"xxaxxbxxc"));
    }
}
