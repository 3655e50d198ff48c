//! A native stand-in for the host, for plugin unit tests: the same
//! Handlebars engine in strict mode, and log lines kept in memory.

use crate::{Host, Severity};
use std::cell::RefCell;

/// Runs plugin logic natively, as the real host would.
#[derive(Default)]
pub struct NativeHost {
    /// Log lines the plugin wrote.
    pub logs: RefCell<Vec<(Severity, String)>>,
    /// The names of the templates the plugin had the host render.
    pub rendered: RefCell<Vec<String>>,
}

impl Host for NativeHost {
    fn log(&self, level: Severity, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    fn render(&self, name: &str, template: &str, data_json: &str) -> Result<String, String> {
        self.rendered.borrow_mut().push(name.to_owned());
        let data: serde_json::Value =
            serde_json::from_str(data_json).map_err(|e| format!("template `{name}`: the data is not JSON: {e}"))?;
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.render_template(template, &data).map_err(|e| format!("template `{name}`: {e}"))
    }
}
