//! The host's Handlebars renderer behind the plugins' `render` import:
//! strict mode, no HTML escaping (these are config files), templates
//! compiled once per process, and user overrides by name
//! (`--templates DIR` holds `NAME` or `NAME.hbs`). Output is capped so a
//! runaway template ends in an error, not in the host running out of memory.

use handlebars::Handlebars;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

/// The most text one `render` call may produce.
pub const DEFAULT_RENDER_CAP: usize = 16 * 1024 * 1024;

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The output passed the cap.
    #[error("template `{name}` produced more than {cap} bytes")]
    TooLarge { name: String, cap: usize },
    /// Anything Handlebars or the JSON data reports.
    #[error("template `{name}`{origin}: {message}")]
    Template { name: String, origin: &'static str, message: String },
}

/// Renders named templates; shared by every plugin call of one run.
pub struct Renderer {
    registry: RwLock<Registry>,
    overrides: HashMap<String, String>,
    /// The overrides some plugin asked for: the others are probably typos.
    used: Mutex<std::collections::BTreeSet<String>>,
    cap: usize,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

impl Renderer {
    /// A renderer with user overrides (template name → template text).
    pub fn new(overrides: HashMap<String, String>) -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        Renderer {
            registry: RwLock::new(Registry { handlebars: hb, by_name: HashMap::new() }),
            overrides,
            used: Mutex::default(),
            cap: DEFAULT_RENDER_CAP,
        }
    }

    /// Loads overrides from a folder: each file `NAME.hbs` (or `NAME`)
    /// overrides the template named `NAME`.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut overrides = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let name = file_name.strip_suffix(".hbs").unwrap_or(&file_name).to_owned();
            overrides.insert(name, std::fs::read_to_string(entry.path())?);
        }
        Ok(Self::new(overrides))
    }

    /// The names the user overrides.
    pub fn override_names(&self) -> impl Iterator<Item = &str> {
        self.overrides.keys().map(String::as_str)
    }

    /// The overrides no render has asked for so far, sorted.
    pub fn unused_overrides(&self) -> Vec<String> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        let mut unused: Vec<String> = self.overrides.keys().filter(|n| !used.contains(*n)).cloned().collect();
        unused.sort();
        unused
    }

    /// Sets the output cap.
    pub fn with_cap(mut self, cap: usize) -> Self {
        self.cap = cap;
        self
    }

    /// Renders `template` (or the user's override of `name`) against the
    /// JSON document `data_json`.
    pub fn render(&self, name: &str, template: &str, data_json: &str) -> Result<String, RenderError> {
        let (text, origin) = match self.overrides.get(name) {
            Some(user) => {
                if let Ok(mut used) = self.used.lock() {
                    used.insert(name.to_owned());
                }
                (user.as_str(), " (your override)")
            }
            None => (template, ""),
        };
        let err = |message: String| RenderError::Template { name: name.to_owned(), origin, message };
        let data: serde_json::Value =
            serde_json::from_str(data_json).map_err(|e| err(format!("the data is not JSON: {e}")))?;
        let poisoned = || err("the template registry is poisoned".into());
        let found = self.registry.read().map_err(|_| poisoned())?.key(name, text);
        let key = match found {
            Some(key) => key,
            None => {
                let mut registry = self.registry.write().map_err(|_| poisoned())?;
                match registry.key(name, text) {
                    Some(key) => key,
                    None => registry.register(name, text).map_err(|e| err(e.to_string()))?,
                }
            }
        };
        let registry = self.registry.read().map_err(|_| poisoned())?;
        let hb = &registry.handlebars;
        let mut out = CappedWriter { buf: Vec::new(), cap: self.cap, overflow: false };
        match hb.render_to_write(&key, &data, &mut out) {
            Ok(()) => String::from_utf8(out.buf).map_err(|e| err(e.to_string())),
            Err(_) if out.overflow => Err(RenderError::TooLarge { name: name.to_owned(), cap: self.cap }),
            Err(e) => Err(err(e.reason().to_string())),
        }
    }
}

/// Compiled templates. Each is registered under its name plus a number, and
/// found again by name and then by comparing its text (a plugin sends its
/// template with every call; comparing is cheaper than hashing it), so two
/// plugins using one name for different templates never collide.
struct Registry {
    handlebars: Handlebars<'static>,
    by_name: HashMap<String, Vec<(String, String)>>,
}

impl Registry {
    fn key(&self, name: &str, text: &str) -> Option<String> {
        self.by_name.get(name)?.iter().find(|(t, _)| t == text).map(|(_, key)| key.clone())
    }

    fn register(&mut self, name: &str, text: &str) -> Result<String, handlebars::TemplateError> {
        let versions = self.by_name.entry(name.to_owned()).or_default();
        let key = format!("{name}#{}", versions.len());
        self.handlebars.register_template_string(&key, text)?;
        versions.push((text.to_owned(), key.clone()));
        Ok(key)
    }
}

struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflow: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.overflow = true;
            return Err(std::io::Error::other("render output cap reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_refuses_missing_fields_and_does_not_escape() {
        let r = Renderer::default();
        assert_eq!(r.render("t", "{{a}}", r#"{"a":"<x&y>"}"#).expect("renders"), "<x&y>");
        let e = r.render("t", "{{missing}}", "{}").unwrap_err().to_string();
        assert!(e.contains("template `t`"), "{e}");
    }

    #[test]
    fn a_user_override_wins_by_name() {
        let r = Renderer::new(HashMap::from([("t".to_string(), "mine {{a}}".to_string())]));
        assert_eq!(r.render("t", "theirs {{a}}", r#"{"a":1}"#).expect("renders"), "mine 1");
        assert_eq!(r.render("u", "theirs {{a}}", r#"{"a":1}"#).expect("renders"), "theirs 1");
    }

    #[test]
    fn runaway_output_stops_at_the_cap() {
        let r = Renderer::default().with_cap(1024);
        let data = format!("{{\"xs\":[{}]}}", vec!["1"; 1000].join(","));
        let e = r.render("bomb", "{{#each xs}}{{#each ../xs}}xxxx{{/each}}{{/each}}", &data).unwrap_err();
        assert!(matches!(e, RenderError::TooLarge { cap: 1024, .. }), "{e}");
    }
}
