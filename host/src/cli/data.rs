//! `redplate analyze` and `redplate optimize`: clap structs, the `ops`
//! calls on a tokio runtime, and how their results look. Names from Redis
//! arrive cleaned by the operations; they are cleaned again on the way out.

use super::Format;
use super::print::json;
use super::print::outln;
use super::runtime;
use crate::exit::{ExitStatus, Failure};
use crate::ops::analyze::{self, Analysis, AnalyzeRequest};
use crate::ops::optimize::{self, Optimization, OptimizeRequest};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Key patterns of a deployment: keys, memory, TTLs, types and
    /// encodings per pattern (`user:1234:profile` → `user:*:profile`), the
    /// biggest keys, and recommendations. Reads every master, paced.
    Analyze {
        /// The deployment.
        name: String,
        /// Only this tenant's keys (its prefix is stripped from the patterns).
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// Keys read per master; counts are extrapolated with `DBSIZE`.
        #[arg(long, value_name = "N", default_value_t = analyze::DEFAULT_SAMPLE, conflicts_with = "full")]
        sample: u64,
        /// Read every key (no extrapolation).
        #[arg(long)]
        full: bool,
        /// The characters that cut key names into segments.
        #[arg(long, value_name = "CHARS", default_value = analyze::DEFAULT_SEPARATORS)]
        separators: String,
        /// Patterns kept; the rest are summed as `(other)`.
        #[arg(long, value_name = "N", default_value_t = 500)]
        max_patterns: usize,
        /// The biggest keys listed.
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
        /// The share of the server's time the scan may take (0–1]; 1 for a
        /// server nobody else uses.
        #[arg(long, value_name = "SHARE", default_value_t = 0.5)]
        duty: f64,
        /// How long one `SCAN` should hold the server, in microseconds
        /// (its `COUNT` grows and shrinks to fit).
        #[arg(long, value_name = "US", default_value_t = 500)]
        budget_us: u64,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Memory recommendations with their numbers: `MEMORY DOCTOR`,
    /// fragmentation, encoding limits against sampled key sizes, keys
    /// without TTL in a cache, big keys, `maxmemory` against the peak.
    Optimize {
        /// The deployment.
        name: String,
        /// Make the safe changes (`CONFIG SET` on every data node, and in
        /// the stored template); without it nothing changes.
        #[arg(long)]
        apply: bool,
        /// Keys sampled per master.
        #[arg(long, value_name = "N", default_value_t = analyze::DEFAULT_SAMPLE)]
        sample: u64,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

fn clean(text: &str) -> String {
    crate::text::clean(text, 512)
}

/// Runs `analyze` or `optimize`.
pub fn run(command: &DataCommand) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    match command {
        DataCommand::Analyze { name, tenant, sample, full, separators, max_patterns, top, duty, budget_us, format } => {
            let request = AnalyzeRequest {
                tenant: tenant.clone(),
                sample: if *full { None } else { Some(*sample) },
                separators: separators.clone(),
                max_patterns: *max_patterns,
                top_keys: *top,
                duty: *duty,
                budget: std::time::Duration::from_micros(*budget_us),
            };
            let a = runtime()?.block_on(analyze::analyze(&home, name, &request))?;
            match format {
                Format::Json => json(&a),
                Format::Human => print_analysis(&a),
            }
        }
        DataCommand::Optimize { name, apply, sample, format } => {
            let request = OptimizeRequest { apply: *apply, sample: *sample, ..OptimizeRequest::default() };
            let o = runtime()?.block_on(optimize::optimize(&home, name, &request))?;
            match format {
                Format::Json => json(&o),
                Format::Human => print_optimization(&o),
            }
        }
    }
    Ok(ExitStatus::Ok)
}

fn ttl(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 120_000 => format!("{} s", ms / 1000),
        Some(ms) if ms < 7_200_000 => format!("{} min", ms / 60_000),
        Some(ms) if ms < 172_800_000 => format!("{} h", ms / 3_600_000),
        Some(ms) => format!("{} d", ms / 86_400_000),
    }
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter().map(|(k, v)| format!("{} {v}", clean(k))).collect::<Vec<_>>().join(", ")
}

fn print_analysis(a: &Analysis) {
    let scope = match (&a.tenant, a.sample_per_master) {
        (Some(t), _) => format!("tenant `{t}` (prefix `{}`), ", clean(&a.prefix)),
        _ => String::new(),
    };
    let how = match a.sample_per_master {
        None => "every key".to_owned(),
        Some(n) => format!("a sample of up to {n} keys per master"),
    };
    outln!(
        "`{}`: {scope}{} read ({how}) on {} in {:.2} s",
        a.deployment,
        super::print::count(a.keys_analyzed as usize, "key"),
        super::print::count(a.masters.len(), "master"),
        a.seconds
    );
    if a.extrapolated {
        outln!(
            "estimated for the whole keyspace: {} keys, {} bytes (extrapolated with DBSIZE; the TTL columns count the keys read)",
            a.estimated_keys,
            a.estimated_memory_bytes
        );
    }
    outln!(
        "{:40} {:>9} {:>12} {:>8} {:>7} {:>6} {:>6} {:>6} {:>6}  TYPES / ENCODINGS",
        "PATTERN",
        "KEYS",
        "MEMORY",
        "AVG",
        "NO-TTL",
        "<1m",
        "<1h",
        "<1d",
        ">1d"
    );
    for p in &a.patterns {
        let (keys, memory) = if a.extrapolated {
            (format!("~{}", p.estimated_keys), format!("~{}", p.estimated_memory_bytes))
        } else {
            (p.keys.to_string(), p.memory_bytes.to_string())
        };
        let avg = p.memory_bytes.checked_div(p.keys).unwrap_or(0);
        let t = &p.ttl;
        let elements = match (p.mean_elements, p.max_elements) {
            (Some(mean), Some(max)) => format!("; elements mean {mean:.0}, max {max}"),
            _ => String::new(),
        };
        outln!(
            "{:40} {:>9} {:>12} {:>8} {:>7} {:>6} {:>6} {:>6} {:>6}  {} / {}{elements}",
            clean(&p.pattern),
            keys,
            memory,
            avg,
            t.no_ttl,
            t.under_1m,
            t.under_1h,
            t.under_1d,
            t.over_1d,
            counts(&p.types),
            counts(&p.encodings)
        );
    }
    if !a.top_keys.is_empty() {
        outln!("biggest keys");
        for k in &a.top_keys {
            outln!(
                "  {:>12} B  {:40} {} {} {}, TTL {}, on {}",
                k.bytes,
                clean(&k.key),
                clean(&k.kind),
                clean(&k.encoding),
                k.elements.map(|e| format!("{e} elements")).unwrap_or_default(),
                ttl(k.ttl_ms),
                k.node
            );
        }
    }
    for r in &a.recommendations {
        outln!("{}: {}", r.code, clean(&r.message));
    }
}

fn print_optimization(o: &Optimization) {
    outln!("`{}`: {} sampled in {:.2} s", o.deployment, super::print::count(o.keys_sampled as usize, "key"), o.seconds);
    for d in &o.doctor {
        outln!("MEMORY DOCTOR on {}:", d.node);
        for line in crate::text::clean_lines(&d.text, 4096).lines() {
            outln!("  {line}");
        }
    }
    for a in &o.advice {
        let change = match &a.setting {
            Some(s) if a.applied => format!(" [applied: {} {} -> {}]", s.name, s.from, s.to),
            Some(s) if a.safe => format!(" [safe: {} {} -> {}; `--apply` makes it]", s.name, s.from, s.to),
            _ => String::new(),
        };
        outln!("{}: {}{change}", a.code, clean(&a.message));
        if let Some(note) = &a.note {
            outln!("  {}", clean(note));
        }
    }
    if o.apply {
        if o.changed.is_empty() {
            outln!("nothing changed: no safe change to make");
        } else {
            for s in &o.changed {
                let field = s.template_field.as_deref().unwrap_or("-");
                outln!(
                    "changed {} from {} to {} on every data node and `{field}` in the stored template",
                    s.name,
                    s.from,
                    s.to
                );
            }
        }
    } else if o.advice.iter().any(|a| a.safe) {
        outln!("nothing changed; `redplate optimize {} --apply` makes the safe changes", o.deployment);
    }
}
