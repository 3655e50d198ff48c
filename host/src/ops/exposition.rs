//! The Prometheus text exposition format (version 0.0.4): metric families
//! in the order first added, each with its `HELP` and `TYPE` lines and its
//! samples together, label values escaped. Serializable as it is, for the
//! REST API; [`Metrics::render`] gives the text `redplate metrics` prints.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Gauge,
    Counter,
}

/// One sample: its labels and value.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, Serialize)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// Every family, in the order first added.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    pub families: Vec<Family>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Metrics {
    /// Adds a sample to the family `name` (created, with `help` and `kind`, on first use).
    pub fn add(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, String)], value: f64) {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.families.push(Family { name: name.into(), help: help.into(), kind, samples: Vec::new() });
                self.index.insert(name.into(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        self.families[i].samples.push(Sample { labels, value });
    }

    /// The text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for s in &f.samples {
                out.push_str(&f.name);
                if !s.labels.is_empty() {
                    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                    let _ = write!(out, "{{{}}}", labels.join(","));
                }
                let _ = writeln!(out, " {}", number(s.value));
            }
        }
        out
    }
}

/// A label value: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_contiguous_and_labels_escaped() {
        let mut m = Metrics::default();
        m.add("redis_up", "Up.", Kind::Gauge, &[("node", "a".into())], 1.0);
        m.add("redis_keyspace_hits_total", "Hits.", Kind::Counter, &[("node", "a".into())], 3.0);
        m.add("redis_up", "Up.", Kind::Gauge, &[("node", "b\"\n\\".into())], 0.0);
        let text = m.render();
        assert_eq!(
            text,
            "# HELP redis_up Up.\n# TYPE redis_up gauge\nredis_up{node=\"a\"} 1\nredis_up{node=\"b\\\"\\n\\\\\"} 0\n\
             # HELP redis_keyspace_hits_total Hits.\n# TYPE redis_keyspace_hits_total counter\n\
             redis_keyspace_hits_total{node=\"a\"} 3\n"
        );
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
