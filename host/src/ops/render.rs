//! `redplate render`: config → strategy plan → topology → generators (in
//! parallel) → one checked artifact set, written atomically or streamed.

use crate::artifact::{Artifact, ArtifactSet, Rejected};
use crate::exit::Failure;
use crate::plugin::{CallReport, Plugin, PluginError, PluginHost, PluginKind, StrategyPlan};
use crate::secrets::SecretStore;
use redplate_config::{Config, Diagnostic, Resolved, Target, Topology};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Which built-in generator serves which target.
fn builtin_serves(name: &str, target: Target) -> bool {
    match name {
        "redis-conf" | "backup" => matches!(target, Target::Local | Target::Compose),
        "compose" => target == Target::Compose,
        "kubernetes" => target == Target::Kubernetes,
        _ => false,
    }
}

/// Built-ins serve the targets above; third-party generators serve every target.
fn serves(plugin: &Plugin, target: Target) -> bool {
    match plugin.source {
        crate::plugin::PluginSource::Builtin => builtin_serves(&plugin.info.name, target),
        crate::plugin::PluginSource::File(_) => true,
    }
}

/// The plugins a render uses, loaded once (and reused by `--batch`).
pub struct PluginSet {
    pub generators: Vec<Plugin>,
    pub strategies: Vec<Plugin>,
}

impl PluginSet {
    /// The built-in generators serving `targets`, the built-in strategy
    /// named by `strategy` (if it is one), and every third-party plugin in
    /// `paths` (files) and `dirs`. Loads run in parallel: each is a cache
    /// read and a pre-link.
    pub fn load(
        host: &PluginHost,
        targets: &[Target],
        strategy: Option<&str>,
        paths: &[PathBuf],
        dirs: &[PathBuf],
    ) -> Result<Self, Failure> {
        let builtins: Vec<&str> = crate::plugin::builtin_names()
            .filter(|n| targets.iter().any(|t| builtin_serves(n, *t)) || Some(*n) == strategy)
            .collect();
        let mut loaded: Vec<Result<Plugin, PluginError>> = std::thread::scope(|s| {
            let handles: Vec<_> = builtins.iter().map(|n| (*n, s.spawn(move || host.load_builtin(n)))).collect();
            handles
                .into_iter()
                .map(|(name, h)| {
                    h.join().map_err(|payload| Failure::panicked(&format!("loading the plugin `{name}`"), &*payload))
                })
                .collect::<Result<Vec<_>, Failure>>()
        })?;
        loaded.extend(paths.iter().map(|p| host.load_file(p)));
        for dir in dirs {
            loaded.extend(host.load_dir(dir)?);
        }
        let mut set = PluginSet { generators: Vec::new(), strategies: Vec::new() };
        for plugin in loaded {
            let plugin = plugin?;
            match plugin.info.kind {
                PluginKind::Generator => set.generators.push(plugin),
                PluginKind::CacheStrategy => set.strategies.push(plugin),
            }
        }
        Ok(set)
    }

    /// Every built-in plus the plugins in `dirs` (for `--batch`, where
    /// templates differ in targets and strategies).
    pub fn load_all(host: &PluginHost, dirs: &[PathBuf]) -> Result<Self, Failure> {
        let all = [Target::Local, Target::Compose, Target::Kubernetes];
        let mut set = Self::load(host, &all, None, &[], dirs)?;
        for name in crate::plugin::builtin_names() {
            if !set.strategies.iter().any(|p| p.info.name == name)
                && !set.generators.iter().any(|p| p.info.name == name)
            {
                let plugin = host.load_builtin(name)?;
                match plugin.info.kind {
                    PluginKind::Generator => set.generators.push(plugin),
                    PluginKind::CacheStrategy => set.strategies.push(plugin),
                }
            }
        }
        Ok(set)
    }

    /// The strategy plugin providing `name`.
    pub fn strategy(&self, name: &str) -> Option<&Plugin> {
        self.strategies.iter().find(|p| p.info.name == name || p.info.outputs.iter().any(|o| o == name))
    }
}

/// Third-party plugin paths from the template's `plugins:`, relative to the
/// template's folder.
pub fn template_plugins(config: &Config, template: Option<&Path>) -> Vec<PathBuf> {
    let base = template.and_then(Path::parent).unwrap_or(Path::new("."));
    config.plugins.iter().map(|p| base.join(p)).collect()
}

/// What a render produced.
pub struct Rendered {
    pub artifacts: ArtifactSet,
    /// Warnings and notes from the host and the plugins.
    pub diagnostics: Vec<Diagnostic>,
    /// Each plugin call's cost: (plugin, target, report).
    pub reports: Vec<(String, Target, CallReport)>,
}

/// Renders `resolved` for `targets`. With more than one target, each
/// target's artifacts go under `<target>/`.
pub fn render(
    host: &PluginHost,
    plugins: &PluginSet,
    resolved: &Resolved,
    targets: &[Target],
    store: &SecretStore,
    parallel: bool,
) -> Result<Rendered, Failure> {
    let config = &resolved.config;
    let mut diagnostics = host_rules(resolved)?;
    let config_value = serde_json::to_value(config).map_err(internal)?;
    let strategy = plan_strategy(host, plugins, resolved, &config_value, &mut diagnostics)?;

    let prefix = |target: Target| if targets.len() > 1 { format!("{}/", target_name(target)) } else { String::new() };
    let mut jobs = Vec::new();
    let mut passwords = Vec::new();
    let mut secret_files = Vec::new();
    for &target in targets {
        let secrets = crate::secrets::resolve(config, target, store).map_err(|mut ds| {
            resolved.attach_locations(&mut ds);
            Failure::invalid(ds)
        })?;
        passwords.extend(crate::secrets::passwords(&secrets));
        if target != Target::Kubernetes {
            secret_files.extend(password_files(&secrets).into_iter().map(|mut a| {
                a.path = format!("{}{}", prefix(target), a.path);
                a
            }));
        }
        let input = input_document(host, config, target, strategy.as_ref().map(|(n, p)| (n.as_str(), p)), secrets)?;
        for plugin in plugins.generators.iter().filter(|p| serves(p, target)) {
            jobs.push((target, plugin, input.clone()));
        }
    }
    // Each generator's `validate` runs before its `generate`, as the WIT
    // contract says: a plugin that refuses the input stops the render with
    // the same diagnostics `redplate validate` shows, and nothing is written.
    // Generators run in parallel, except inside `--batch`, which already
    // keeps every core busy with whole templates.
    // The built-ins' `generate` starts with the very checks their `validate`
    // runs (the same function) and refuses with the same diagnostics, so for
    // them the separate call is skipped: it doubled redis-conf's cost
    // (2.1 M fuel, about as much as its `generate`). Third-party plugins
    // promise nothing of the kind and get both calls.
    let run = |target: Target, plugin: &Plugin, input: &str| -> Result<Job, PluginError> {
        if plugin.source == crate::plugin::PluginSource::Builtin {
            let generated = host.generate(plugin, input)?;
            return Ok(Job {
                target,
                checks: Vec::new(),
                generated: Some(generated.value),
                reports: vec![generated.report],
            });
        }
        let checked = host.validate(plugin, input)?;
        if checked.value.iter().any(Diagnostic::is_error) {
            return Ok(Job { target, checks: checked.value, generated: None, reports: vec![checked.report] });
        }
        let generated = host.generate(plugin, input)?;
        Ok(Job {
            target,
            checks: checked.value,
            generated: Some(generated.value),
            reports: vec![checked.report, generated.report],
        })
    };
    let results: Vec<(&Plugin, Result<Job, PluginError>)> = if parallel && jobs.len() > 1 {
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(target, plugin, input)| (*target, *plugin, s.spawn(move || run(*target, plugin, input))))
                .collect();
            handles
                .into_iter()
                .map(|(target, plugin, h)| {
                    let what =
                        format!("the `{}` plugin's call for the {} target", plugin.info.name, target_name(target));
                    h.join().map(|r| (plugin, r)).map_err(|payload| Failure::panicked(&what, &*payload))
                })
                .collect::<Result<_, Failure>>()
        })?
    } else {
        jobs.iter().map(|(target, plugin, input)| (*plugin, run(*target, plugin, input))).collect()
    };

    let mut set = ArtifactSet::new();
    let mut refusals = Vec::new();
    let mut reports = Vec::new();
    for (plugin, result) in results {
        let job = result?;
        let target = job.target;
        reports.extend(job.reports.into_iter().map(|r| (plugin.info.name.clone(), target, r)));
        let (errors, warnings): (Vec<_>, Vec<_>) = job.checks.into_iter().partition(Diagnostic::is_error);
        refusals.extend(errors);
        diagnostics.extend(warnings);
        match job.generated {
            None => {}
            Some(Err(ds)) => refusals.extend(ds),
            Some(Ok(generated)) => {
                diagnostics.extend(generated.diagnostics);
                for mut artifact in generated.artifacts {
                    artifact.path = format!("{}{}", prefix(target), artifact.path);
                    insert(&mut set, artifact)?;
                }
            }
        }
    }
    if let Some((name, plan)) = &strategy {
        for artifact in &plan.artifacts {
            for &target in targets {
                let mut a = artifact.clone();
                a.path = format!("{}{}", prefix(target), a.path);
                a.plugin.clone_from(name);
                insert(&mut set, a)?;
            }
        }
    }
    for artifact in secret_files {
        insert(&mut set, artifact)?;
    }
    set.mark_secret_holders(&passwords);
    // The same finding from one plugin for several targets is shown once.
    dedup(&mut diagnostics);
    locate_plugin_diagnostics(resolved, &mut diagnostics);
    if !refusals.is_empty() {
        dedup(&mut refusals);
        locate_plugin_diagnostics(resolved, &mut refusals);
        refusals.extend(diagnostics);
        return Err(Failure::invalid(refusals));
    }
    Ok(Rendered { artifacts: set, diagnostics, reports })
}

/// One generator call: its `validate` findings, then (when it accepted the
/// input) what `generate` returned.
struct Job {
    target: Target,
    checks: Vec<Diagnostic>,
    generated: Option<Result<crate::plugin::Generated, Vec<Diagnostic>>>,
    reports: Vec<CallReport>,
}

fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.code.clone(), d.pointer.clone(), d.message.clone(), d.source.clone())));
}

/// The document generators receive for `target`, as `render` builds it.
pub fn emit_input(
    host: &PluginHost,
    plugins: &PluginSet,
    resolved: &Resolved,
    target: Target,
    store: &SecretStore,
) -> Result<String, Failure> {
    let config_value = serde_json::to_value(&resolved.config).map_err(internal)?;
    let mut ignored = Vec::new();
    let strategy = plan_strategy(host, plugins, resolved, &config_value, &mut ignored)?;
    let secrets = crate::secrets::resolve(&resolved.config, target, store).map_err(Failure::invalid)?;
    input_document(host, &resolved.config, target, strategy.as_ref().map(|(n, p)| (n.as_str(), p)), secrets)
}

/// Points plugin diagnostics at the template: a plugin's pointer is into its
/// input document (`/config/memory/…`), the template's into the config.
pub fn locate_plugin_diagnostics(resolved: &Resolved, diagnostics: &mut [Diagnostic]) {
    for d in diagnostics.iter_mut().filter(|d| d.location.is_none()) {
        if let Some(rest) = d.pointer.strip_prefix("/config").filter(|r| r.is_empty() || r.starts_with('/')) {
            d.location = resolved.locate(rest);
        }
    }
}

/// Host validation: errors stop the render; warnings travel along.
pub fn host_rules(resolved: &Resolved) -> Result<Vec<Diagnostic>, Failure> {
    let diagnostics = redplate_config::validate(resolved);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Failure::invalid(diagnostics));
    }
    Ok(diagnostics)
}

fn insert(set: &mut ArtifactSet, artifact: Artifact) -> Result<(), Failure> {
    let (path, plugin) = (artifact.path.clone(), artifact.plugin.clone());
    set.insert(artifact).map_err(|rejected| {
        let e = match rejected {
            Rejected::UnsafePath(reason) => PluginError::UnsafePath { plugin, path, reason },
            Rejected::Duplicate { first_plugin } => {
                PluginError::DuplicatePath { plugin: format!("{plugin}` (and `{first_plugin}"), path }
            }
        };
        Failure::from(e)
    })
}

/// The JSON document every generator receives (see wit/INPUT.md),
/// serialized straight from the typed config (no intermediate `Value`).
pub fn input_document(
    host: &PluginHost,
    config: &Config,
    target: Target,
    strategy: Option<(&str, &StrategyPlan)>,
    secrets: Value,
) -> Result<String, Failure> {
    #[derive(serde::Serialize)]
    struct Strategy<'a> {
        name: &'a str,
        directives: &'a [crate::plugin::Directive],
        key_rules: &'a [crate::plugin::KeyRule],
    }
    #[derive(serde::Serialize)]
    struct Input<'a> {
        contract: &'a str,
        name: &'a str,
        target: Target,
        config: &'a Config,
        topology: Topology,
        strategy: Option<Strategy<'a>>,
        template_overrides: Vec<&'a str>,
        secrets: Value,
    }
    let input = Input {
        contract: crate::plugin::HOST_CONTRACT,
        name: &config.deployment.name,
        target,
        config,
        topology: Topology::derive(config, target),
        strategy: strategy.map(|(name, plan)| Strategy {
            name,
            directives: &plan.directives,
            key_rules: &plan.key_rules,
        }),
        template_overrides: host.template_overrides(),
        secrets,
    };
    serde_json::to_string(&input).map_err(internal)
}

/// Runs the selected strategy's `plan` and checks its directives against
/// what the user set explicitly: a conflict is an error naming both.
pub(crate) fn plan_strategy(
    host: &PluginHost,
    plugins: &PluginSet,
    resolved: &Resolved,
    config_value: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Option<(String, StrategyPlan)>, Failure> {
    let name = resolved.config.cache.strategy.as_str();
    if name.is_empty() || name == "none" {
        return Ok(None);
    }
    let Some(plugin) = plugins.strategy(name) else {
        let known: Vec<&str> = plugins.strategies.iter().map(|p| p.info.name.as_str()).collect();
        let mut d = Diagnostic::error(
            "cache.unknown-strategy",
            "/cache/strategy",
            format!("no cache-strategy plugin provides `{name}`"),
        )
        .with_hint(format!("known strategies: {}; add a plugin with `plugins:` or `--plugin-dir`", known.join(", ")));
        d.location = resolved.locate("/cache/strategy");
        return Err(Failure::invalid(vec![d]));
    };
    let secrets = crate::secrets::placeholders(&resolved.config, Target::Local);
    let input = input_document(host, &resolved.config, Target::Local, None, secrets)?;
    let mut checks = host.validate(plugin, &input)?.value;
    let plan = match host.plan(plugin, &input)?.value {
        Ok(plan) => plan,
        Err(ds) => {
            checks.extend(ds);
            locate_plugin_diagnostics(resolved, &mut checks);
            return Err(Failure::invalid(checks));
        }
    };
    locate_plugin_diagnostics(resolved, &mut checks);
    let mut conflicts: Vec<Diagnostic> = checks.into_iter().filter(Diagnostic::is_error).collect();
    for directive in &plan.directives {
        let Some((pointer, current)) = setting_for(&directive.name, config_value) else { continue };
        // Only a value the user wrote at exactly this place counts, not a
        // preset's value nor the section around it.
        let explicit = resolved.sources.get(pointer).filter(|loc| !loc.file.starts_with("<preset:")).cloned();
        if let Some(loc) = explicit
            && current != directive.value
        {
            conflicts.push(
                Diagnostic::error(
                    "cache.strategy-conflict",
                    pointer,
                    format!(
                        "the `{}` strategy needs `{} {}` ({}), but `{}` is set to `{current}`",
                        plugin.info.name,
                        directive.name,
                        directive.value,
                        directive.reason,
                        pointer.trim_start_matches('/').replace('/', ".")
                    ),
                )
                .with_hint("remove your setting to let the strategy choose, or pick another strategy")
                .with_location(loc),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(Failure::invalid(conflicts));
    }
    diagnostics.extend(plan.diagnostics.iter().cloned());
    Ok(Some((plugin.info.name.clone(), plan)))
}

/// The config setting behind a redis.conf directive, and its value as
/// redis.conf would spell it.
fn setting_for<'a>(directive: &str, config: &Value) -> Option<(&'a str, String)> {
    let text = |ptr: &str| config.pointer(ptr).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    match directive {
        "maxmemory-policy" => Some(("/memory/maxmemory_policy", text("/memory/maxmemory_policy")?.replace('_', "-"))),
        "notify-keyspace-events" => Some(("/cache/keyspace_events", text("/cache/keyspace_events")?)),
        "appendfsync" => Some(("/persistence/appendfsync", text("/persistence/appendfsync")?)),
        "appendonly" => {
            let mode = text("/persistence/mode")?;
            Some((
                "/persistence/mode",
                if matches!(mode.as_str(), "aof" | "mixed") { "yes".into() } else { "no".into() },
            ))
        }
        _ => None,
    }
}

/// `secrets/<user>.password` files (mode 0600) for local and compose, from
/// the target's resolved secrets.
fn password_files(secrets: &Value) -> Vec<Artifact> {
    let Some(users) = secrets.get("users").and_then(Value::as_object) else { return Vec::new() };
    users
        .iter()
        .filter_map(|(user, entry)| {
            let password = entry.get("password").and_then(Value::as_str)?;
            Some(Artifact {
                path: format!("secrets/{user}.password"),
                content: password.as_bytes().to_vec(),
                media_type: "text/plain".into(),
                executable: false,
                secret: true,
                plugin: "redplate".into(),
            })
        })
        .collect()
}

/// A warning for each `--templates` file that no plugin used in the
/// renders so far: a misspelt name would otherwise render the built-in
/// template silently.
pub fn unused_overrides(host: &PluginHost) -> Vec<Diagnostic> {
    host.unused_template_overrides()
        .into_iter()
        .map(|name| {
            Diagnostic::warning(
                "templates.unused-override",
                "",
                format!(
                    "`--templates`: `{name}.hbs` replaced no template in this render",
                    name = crate::text::clean(&name, 256)
                ),
            )
            .with_hint(
                "templates are named after the file they make (`redis.conf.hbs`, `sentinel.conf.hbs`, `users.acl.hbs`, \
                 `compose.yaml.hbs`, `backup.sh.hbs`, …); check the name, or the target it is for",
            )
        })
        .collect()
}

/// The target's name as used in paths and flags.
pub fn target_name(target: Target) -> &'static str {
    match target {
        Target::Local => "local",
        Target::Compose => "compose",
        Target::Kubernetes => "kubernetes",
    }
}

/// The artifacts as one multi-document YAML stream, like `helm template`:
/// YAML files as they are, other files as `{path, content}` documents.
pub fn yaml_stream(set: &ArtifactSet) -> String {
    let mut out = String::new();
    for a in set.iter() {
        out.push_str("---\n# Source: ");
        out.push_str(&a.path);
        out.push('\n');
        let text = String::from_utf8_lossy(&a.content);
        if a.media_type.contains("yaml") {
            out.push_str(&text);
        } else {
            out.push_str(&format!("path: {}\nmedia_type: {}\ncontent: |2\n", json!(a.path), json!(a.media_type)));
            for line in text.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn internal(e: serde_json::Error) -> Failure {
    Failure::could_not_run(Diagnostic::error("internal.serialize", "", format!("cannot serialize the config: {e}")))
}
