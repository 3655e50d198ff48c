//! The three environment presets, embedded in the binary. Each is a full
//! template with the same keys and values chosen for its environment; a
//! template layers over one of them (`extends:` or `--preset`).

use crate::diagnostic::Diagnostic;
use crate::model::Environment;
use crate::source::{Format, Tree, parse};
use std::sync::OnceLock;

const DEVELOPMENT: &str = include_str!("../../presets/development.yaml");
const STAGING: &str = include_str!("../../presets/staging.yaml");
const PRODUCTION: &str = include_str!("../../presets/production.yaml");

/// A preset's name and a one-line summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresetInfo {
    /// The environment (also the preset's name).
    pub environment: Environment,
    /// The first line of the preset's header comment after its title.
    pub summary: String,
}

/// Every preset, in environment order.
pub fn list() -> Vec<PresetInfo> {
    Environment::ALL
        .iter()
        .map(|&environment| PresetInfo { environment, summary: summary(show(environment)) })
        .collect()
}

fn summary(text: &str) -> String {
    text.lines()
        .skip(1)
        .map(|l| l.trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .trim_end_matches(':')
        .to_string()
}

/// The preset's YAML text, comments included.
pub fn show(environment: Environment) -> &'static str {
    match environment {
        Environment::Development => DEVELOPMENT,
        Environment::Staging => STAGING,
        Environment::Production => PRODUCTION,
    }
}

/// How a preset is named in locations: `<preset:production>`.
pub fn file_name(environment: Environment) -> String {
    format!("<preset:{environment}>")
}

/// The preset parsed, with positions (parsed once per process).
pub fn tree(environment: Environment) -> Result<Tree, Diagnostic> {
    static TREES: [OnceLock<Result<Tree, Diagnostic>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match environment {
        Environment::Development => &TREES[0],
        Environment::Staging => &TREES[1],
        Environment::Production => &TREES[2],
    };
    slot.get_or_init(|| parse(show(environment), Format::Yaml, &file_name(environment))).clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn keys(v: &Value, p: String, out: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                let q = format!("{p}/{k}");
                out.insert(q.clone());
                keys(v, q, out);
            }
        }
    }

    #[test]
    fn presets_load_and_share_keys() {
        let mut sets = Vec::new();
        for env in Environment::ALL {
            let r = load_str("", Format::Yaml, "t", Some(env), &[]);
            let r = match r {
                Ok(r) => r,
                Err(e) => panic!("{env}: {e}"),
            };
            assert_eq!(r.config.deployment.environment, env);
            let mut k = BTreeSet::new();
            keys(&r.value, String::new(), &mut k);
            sets.push(k);
        }
        assert_eq!(sets[0], sets[1]);
        assert_eq!(sets[1], sets[2]);
        assert_eq!(list().len(), 3);
        assert!(list()[2].summary.contains("production") || !list()[2].summary.is_empty());
    }
}
