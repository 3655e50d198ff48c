//! The Compose backend against real containers (podman and podman-compose,
//! the local image `scripts/compose-image.sh` builds): `deploy --backend
//! compose` until ready, the rendered hardening checked on the running
//! containers (user, read-only root, secrets, network), status, operations,
//! a failover after the master's container is killed, stop/start, scale,
//! logs, destroy leaving nothing behind — and a machine without an engine.
//!
//! Each test gets its own `REDPLATE_HOME` and base port; a guard removes
//! the project's containers, volumes and network when the test ends, on a
//! failure too.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Home, report, root, template, text};

/// The image the test templates name (`deployment.image` + `image_tag`).
const IMAGE: &str = "localhost/redplate-redis:test";

/// `PATH` with the virtualenv's `podman-compose` first.
fn path() -> String {
    format!("{}:{}", root().join(".venv/bin").display(), std::env::var("PATH").unwrap_or_default())
}

/// Whether podman, podman-compose and the image are here; in CI their absence fails the test.
fn engine_present() -> bool {
    let podman = Command::new("podman").args(["image", "exists", IMAGE]).status().is_ok_and(|s| s.success());
    let compose = root().join(".venv/bin/podman-compose").is_file();
    if !(podman && compose) {
        assert!(
            std::env::var_os("CI").is_none(),
            "podman, podman-compose and the image {IMAGE} are needed in CI (scripts/setup.sh installs them)"
        );
        report("SKIPPED: podman, podman-compose or the image is missing (run scripts/setup.sh)");
    }
    podman && compose
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).stdin(Stdio::null()).output().expect("run podman")
}

/// Runs redplate with the engine on `PATH`.
fn run(home: &Home, args: &[&str]) -> Output {
    let p = path();
    home.run_env(args, &[("PATH", p.as_str())])
}

fn ok(home: &Home, args: &[&str]) -> String {
    ok_env(home, args, &[])
}

/// [`ok`] with more environment variables.
fn ok_env(home: &Home, args: &[&str], env: &[(&str, &str)]) -> String {
    let p = path();
    let mut all = vec![("PATH", p.as_str())];
    all.extend_from_slice(env);
    let out = home.run_env(args, &all);
    assert!(
        out.status.success(),
        "redplate {args:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(home: &Home, args: &[&str]) -> Value {
    serde_json::from_str(&ok(home, args)).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

/// A Compose deployment; on drop it is destroyed with `--purge`, and whatever
/// of its project is left (containers, volumes, network) removed.
struct Project<'h> {
    home: &'h Home,
    name: String,
    record: Value,
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = run(self.home, &["destroy", &self.name, "--purge", "--quiet"]);
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let ids = text(&podman(&["ps", "-a", "-q", "--filter", &filter]).stdout);
        for id in ids.split_whitespace() {
            let _ = podman(&["rm", "-f", "-t", "0", id]);
        }
        let volumes = text(&podman(&["volume", "ls", "-q", "--filter", &filter]).stdout);
        for v in volumes.split_whitespace() {
            let _ = podman(&["volume", "rm", "-f", v]);
        }
        let _ = podman(&["network", "rm", "-f", &format!("{}_default", self.name)]);
    }
}

impl Project<'_> {
    fn deploy<'h>(home: &'h Home, template: &std::path::Path, name: &str) -> (Project<'h>, Duration) {
        Self::deploy_with(home, template, name, &[])
    }

    /// Deploys `template` with `--set`s.
    fn deploy_with<'h>(
        home: &'h Home,
        template: &std::path::Path,
        name: &str,
        sets: &[&str],
    ) -> (Project<'h>, Duration) {
        let t = template.display().to_string();
        let started = Instant::now();
        let mut args = vec!["deploy", &t, "--backend", "compose", "--format", "json", "--quiet"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = run(home, &args);
        let took = started.elapsed();
        let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let p = Project { home, name: name.to_owned(), record };
        assert!(out.status.success(), "deploy failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        report(&format!("compose: deployed `{name}` ({}) to ready in {:.1} s", p.record["mode"], took.as_secs_f64()));
        (p, took)
    }

    fn status(&self) -> Value {
        json(self.home, &["status", &self.name, "--format", "json"])
    }

    /// The container of `service`, by compose's labels.
    fn container(&self, service: &str) -> String {
        let out = podman(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        let id = text(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned();
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    /// The data nodes' and sentinels' containers of the project (not the one-shot ones).
    fn container_names(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let out = podman(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
        text(&out.stdout).split_whitespace().filter(|n| !n.contains("cluster-init")).map(str::to_owned).collect()
    }

    /// What `args` print run in `service`'s container.
    fn exec_in(&self, service: &str, args: &[&str]) -> String {
        let mut all = vec!["exec", ""];
        let id = self.container(service);
        all[1] = &id;
        all.extend_from_slice(args);
        text(&podman(&all).stdout)
    }

    fn inspect(&self, service: &str, format: &str) -> String {
        text(&podman(&["inspect", "--format", format, &self.container(service)]).stdout).trim().to_owned()
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.record["state_dir"].as_str().expect("state_dir"))
    }

    /// Polls `status` until `done` holds; how long it took.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let s = self.status();
            if done(&s) {
                return started.elapsed();
            }
            if started.elapsed() >= limit {
                // What the sentinels said, for the failure message.
                let logs: Vec<String> = ["sentinel-0", "sentinel-1", "sentinel-2"]
                    .iter()
                    .map(|n| format!("{}-{n}", self.name))
                    .filter(|service| {
                        self.record["nodes"].as_array().into_iter().flatten().any(|x| x["name"] == *service)
                    })
                    .map(|service| {
                        let out = podman(&["logs", "--tail", "60", &self.container(&service)]);
                        format!("--- {service}:\n{}{}", text(&out.stdout), text(&out.stderr))
                    })
                    .collect();
                panic!("{what}: not within {limit:?}; last status {s}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn node<'v>(status: &'v Value, name: &str) -> &'v Value {
    status["nodes"].as_array().into_iter().flatten().find(|n| n["name"] == name).unwrap_or(&Value::Null)
}

fn roles(status: &Value) -> Vec<(String, String, bool)> {
    status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (n["name"].as_str().unwrap_or("").to_owned(), n["role"].as_str().unwrap_or("").to_owned(), n["up"] == true)
        })
        .collect()
}

/// Nothing of project `name` is left on the engine.
fn nothing_left(name: &str) {
    let filter = format!("label=com.docker.compose.project={name}");
    assert_eq!(text(&podman(&["ps", "-a", "-q", "--filter", &filter]).stdout).trim(), "", "containers left");
    let volumes = text(&podman(&["volume", "ls", "-q"]).stdout);
    assert!(!volumes.lines().any(|v| v.starts_with(&format!("{name}_"))), "volumes left: {volumes}");
    assert!(!podman(&["network", "exists", &format!("{name}_default")]).status.success(), "network left");
}

#[test]
fn sentinel_on_compose_is_hardened_ready_fails_over_scales_stops_starts_and_is_destroyed() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    // The staging preset: ACL users, the `default` user off, passwords as
    // Compose secrets, persistence; TLS off here (the production example
    // test runs it over TLS).
    let t = template(
        home.dir.path(),
        "cmp-sen",
        "extends: staging\n\
             deployment: { name: cmp-sen, redis_version: \"7.0\", image: localhost/redplate-redis, image_tag: test }\n\
             replication: { replicas: 1 }\n\
             sentinel: { down_after: 2s, failover_timeout: 10s }\n\
             security: { tls: { enabled: false } }\n\
             monitoring: { exporter: false, service_monitor: false }\n\
             network: { local_base_port: 23100 }\n",
    );
    let (d, _) = Project::deploy(&home, &t, "cmp-sen");
    assert_eq!(d.record["backend"], "compose", "the backend is recorded");
    assert_eq!(d.record["nodes"].as_array().map(Vec::len), Some(5));

    // The rendered hardening, on the running containers.
    assert_eq!(d.inspect("cmp-sen-0", "{{.Config.User}}"), "999:999");
    assert_eq!(d.inspect("cmp-sen-0", "{{.HostConfig.ReadonlyRootfs}}"), "true");
    let id = d.container("cmp-sen-0");
    assert_eq!(text(&podman(&["exec", &id, "id", "-u"]).stdout).trim(), "999", "Redis runs as uid 999");
    let write_root = podman(&["exec", &id, "sh", "-c", "echo x > /etc/x"]);
    assert!(!write_root.status.success(), "the root filesystem is read-only");
    let secrets = text(&podman(&["exec", &id, "ls", "/run/secrets"]).stdout);
    assert!(secrets.contains("probe-password"), "the probe's password is a secret: {secrets}");
    // A secret file stays 0600 on the host, owned by the containers' user.
    let probe = d.state_dir().join("secrets/probe.password");
    let meta = std::fs::metadata(&probe).expect("probe password");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 999), "{}", probe.display());
    // The health check the compose file renders passes (podman runs it on demand here: no systemd).
    assert!(podman(&["healthcheck", "run", &id]).status.success(), "the rendered health check passes");
    // The nodes find each other by service name on the project's network.
    let net = d.inspect("cmp-sen-1", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}");
    assert_eq!(net, "cmp-sen_default");

    // Status: one master, one replica in sync, the sentinels agreeing.
    let s = d.status();
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(node(&s, "cmp-sen-0")["role"], "master");
    assert_eq!(node(&s, "cmp-sen-1")["role"], "replica");
    let views: Vec<&str> =
        s["sentinel_views"].as_array().into_iter().flatten().filter_map(|v| v["master"].as_str()).collect();
    assert_eq!(views.len(), 3, "{s}");
    assert!(views.iter().all(|v| v.starts_with("cmp-sen-0:")), "{views:?}");

    // Operations through the published ports.
    assert_eq!(ok(&home, &["exec", "cmp-sen", "--", "SET", "order:1", "kept"]).trim(), "\"OK\"");
    let health = json(&home, &["health", "cmp-sen", "--format", "json"]);
    assert_eq!(health["verdict"], "healthy", "{health}");
    let stats = json(&home, &["stats", "cmp-sen", "--format", "json"]);
    assert_eq!(stats["nodes"].as_array().map(Vec::len), Some(2), "{stats}");
    let metrics = ok(&home, &["metrics", "cmp-sen"]);
    assert!(metrics.contains("redis_up"), "{metrics}");
    let logs = ok(&home, &["logs", "cmp-sen", "--node", "cmp-sen-0", "-n", "200"]);
    assert!(logs.contains("Ready to accept connections"), "{logs}");

    // Failover: the master's container is killed; the sentinels promote the replica.
    assert!(podman(&["kill", &d.container("cmp-sen-0")]).status.success());
    // The killed master's name still resolves in the sentinels' containers
    // (the backend pins the addresses; the engine's DNS forgets a stopped
    // container, and Sentinel 7.0 then may never fail over).
    let sentinel = d.container("cmp-sen-sentinel-0");
    let resolved = text(&podman(&["exec", &sentinel, "getent", "hosts", "cmp-sen-0"]).stdout);
    assert!(resolved.starts_with("172.30."), "the stopped master's pinned address: {resolved:?}");
    // Generous: under load Sentinel may enter TILT mode (30 s without acting).
    let took = d.wait_for("the replica promoted", Duration::from_secs(90), |s| {
        node(s, "cmp-sen-1")["role"] == "master"
            && s["sentinel_views"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|v| v["master"].as_str().is_some_and(|m| m.starts_with("cmp-sen-1:")))
    });
    report(&format!("compose: master container killed -> replica promoted in {:.1} s", took.as_secs_f64()));
    let s = d.status();
    assert_eq!(s["state"], "degraded", "{s}");
    assert_eq!(node(&s, "cmp-sen-0")["up"], false);
    assert_eq!(
        ok(&home, &["exec", "cmp-sen", "--", "GET", "order:1"]).trim(),
        "\"kept\"",
        "the new master has the data"
    );

    // `start` brings the old master back, as a replica of the new one.
    ok(&home, &["start", "cmp-sen", "--quiet"]);
    let s = d.status();
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(node(&s, "cmp-sen-0")["role"], "replica", "{s}");

    // Scale to 2 replicas and back.
    ok(&home, &["scale", "cmp-sen", "--replicas", "2", "--quiet"]);
    let s = d.status();
    assert_eq!(roles(&s).iter().filter(|r| r.1 != "sentinel" && r.2).count(), 3, "{s}");
    assert_eq!(node(&s, "cmp-sen-2")["role"], "replica", "{s}");
    let views = json(&home, &["health", "cmp-sen", "--format", "json"]);
    assert_eq!(views["verdict"], "healthy", "{views}");
    ok(&home, &["scale", "cmp-sen", "--replicas", "1", "--quiet"]);
    let s = d.status();
    assert_eq!(roles(&s).iter().filter(|r| r.1 != "sentinel").count(), 2, "{s}");
    assert!(
        !podman(&["volume", "exists", "cmp-sen_cmp-sen-2-data"]).status.success(),
        "the removed replica's volume is gone"
    );

    // Stop keeps the data (AOF on a named volume); start brings it back.
    ok(&home, &["stop", "cmp-sen", "--quiet"]);
    assert_eq!(d.status()["state"], "stopped");
    let started = Instant::now();
    ok(&home, &["start", "cmp-sen", "--quiet"]);
    report(&format!("compose: start after stop to ready in {:.1} s", started.elapsed().as_secs_f64()));
    assert_eq!(ok(&home, &["exec", "cmp-sen", "--", "GET", "order:1"]).trim(), "\"kept\"");

    // The template as deployed, applied again after the scales: nothing to do.
    let apply = ok(&home, &["apply", "cmp-sen", &t.display().to_string()]);
    assert!(apply.contains("no change"), "{apply}");

    ok(&home, &["destroy", "cmp-sen", "--purge", "--quiet"]);
    nothing_left("cmp-sen");
    assert!(!d.state_dir().exists(), "the state folder is removed");
}

#[test]
fn cluster_on_compose_is_formed_by_the_rendered_init_service_and_serves_every_slot() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "cmp-cl",
        "extends: development\n\
         deployment: { name: cmp-cl, mode: cluster, redis_version: \"7.0\", image: localhost/redplate-redis, image_tag: test }\n\
         cluster: { shards: 3, replicas_per_shard: 1 }\n\
         network: { local_base_port: 23300 }\n",
    );
    let (d, _) = Project::deploy(&home, &t, "cmp-cl");
    let s = d.status();
    assert_eq!(s["cluster_state"], "ok", "{s}");
    assert_eq!(s["state"], "running", "{s}");
    let init = d.inspect("cmp-cl-cluster-init", "{{.State.Status}} {{.State.ExitCode}}");
    assert_eq!(init, "exited 0", "the rendered cluster-init service formed the cluster");
    let slots: Vec<&str> =
        s["nodes"].as_array().into_iter().flatten().filter_map(|n| n["slots"].as_str()).filter(|s| *s != "-").collect();
    assert_eq!(slots, ["0-5460", "5461-10921", "10922-16383"], "{s}");
    // `exec` reaches the master serving each key's slot.
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(ok(&home, &["exec", "cmp-cl", "--", "SET", key, "1"]).trim(), "\"OK\"", "{key}");
    }
    let health = json(&home, &["health", "cmp-cl", "--format", "json"]);
    assert_eq!(health["verdict"], "healthy", "{health}");
    // `apply` of a setting Redis cannot change live, on nodes that persist
    // nothing (development): replicas restart first and resync, each master
    // after `CLUSTER FAILOVER` to its replica; no key is lost.
    let started = Instant::now();
    let applied = ok(&home, &["apply", "cmp-cl", &t.display().to_string(), "--set", "performance.tcp_backlog=1024"]);
    report(&format!(
        "compose: apply of an immutable setting on a 3 x 1 cluster, 6 nodes restarted one by one, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(applied.matches("new container").count(), 6, "{applied}");
    assert_eq!(applied.matches("failed over, now a replica").count(), 3, "{applied}");
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(ok(&home, &["exec", "cmp-cl", "--", "GET", key]).trim(), "\"1\"", "{key} kept");
    }
    assert_eq!(d.status()["cluster_state"], "ok");

    // Shards: the new nodes' containers join at their pinned addresses and
    // slots move to them (MIGRATE between containers); back to 3, the
    // nodes that go are removed with their volumes. Replicas the same way.
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for k in &keys {
        ok(&home, &["exec", "cmp-cl", "--", "SET", k, k]);
    }
    let kept = |home: &Home| {
        keys.iter().filter(|k| ok(home, &["exec", "cmp-cl", "--", "GET", k]).trim() == format!("\"{k}\"")).count()
    };
    let slots = |s: &Value| -> Vec<String> {
        s["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["slots"].as_str())
            .filter(|s| *s != "-")
            .map(str::to_owned)
            .collect()
    };
    let started = Instant::now();
    let out = ok(&home, &["scale", "cmp-cl", "--shards", "4"]);
    report(&format!(
        "compose: scale --shards 3 -> 4 (5 containers made, slots moved) in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert!(out.contains("cmp-cl-3 4096"), "{out}");
    let s = d.status();
    assert_eq!(s["cluster_state"], "ok", "{s}");
    assert_eq!(slots(&s).len(), 4, "4 masters serve slots: {s}");
    assert_eq!(d.container_names().len(), 8, "4 masters, 4 replicas");
    assert_eq!(kept(&home), keys.len(), "every key kept");
    ok(&home, &["scale", "cmp-cl", "--replicas", "2"]);
    assert_eq!(d.container_names().len(), 12, "4 masters with 2 replicas each");
    assert_eq!(d.status()["cluster_state"], "ok");
    ok(&home, &["scale", "cmp-cl", "--replicas", "1"]);
    assert_eq!(d.container_names().len(), 8);
    let started = Instant::now();
    ok(&home, &["scale", "cmp-cl", "--shards", "3"]);
    report(&format!("compose: scale --shards 4 -> 3 in {:.1} s", started.elapsed().as_secs_f64()));
    let s = d.status();
    assert_eq!(s["cluster_state"], "ok", "{s}");
    assert_eq!(slots(&s).len(), 3, "{s}");
    assert_eq!(d.container_names().len(), 6, "3 masters, 3 replicas");
    assert_eq!(kept(&home), keys.len(), "every key kept");
    let volumes = text(&podman(&["volume", "ls", "-q", "--filter", "label=com.docker.compose.project=cmp-cl"]).stdout);
    assert_eq!(volumes.split_whitespace().count(), 6, "the removed nodes' volumes are gone: {volumes}");

    ok(&home, &["destroy", "cmp-cl", "--purge", "--quiet"]);
    nothing_left("cmp-cl");
}

#[test]
fn without_an_engine_deploy_names_what_to_install_and_render_still_works() {
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "no-engine",
        "extends: development\ndeployment: { name: no-engine }\nnetwork: { local_base_port: 23500 }\n",
    );
    let t = t.display().to_string();
    // A `PATH` with neither docker nor podman.
    let empty = tempfile::tempdir().expect("tempdir");
    let bare = empty.path().display().to_string();
    let out = home.run_env(&["deploy", &t, "--backend", "compose"], &[("PATH", bare.as_str())]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no container engine found"), "{err}");
    assert!(err.contains("`docker compose`") && err.contains("`podman-compose`"), "names what it tried: {err}");
    assert!(err.contains("apt-get install podman runc") && err.contains("pip install podman-compose"), "{err}");
    assert!(home.records().is_empty(), "nothing registered");
    assert!(!home.dir.path().join("deployments/no-engine").exists(), "no state folder left");
    // The render needs no engine.
    let out_dir = home.dir.path().join("out");
    let o = out_dir.display().to_string();
    let r = home.run_env(&["render", &t, "--target", "compose", "--out", &o], &[("PATH", bare.as_str())]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(out_dir.join("compose/compose.yaml").is_file(), "the compose file is rendered");
}

/// An image the engine cannot pull (no registry is reachable here) stops
/// the deploy before any container is made, naming the image and the keys
/// that choose it.
#[test]
fn an_image_that_cannot_be_pulled_is_named_before_anything_is_created() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    let t = template(
        home.dir.path(),
        "cmp-img",
        "extends: development
\
         deployment: { name: cmp-img, redis_version: \"7.0\", image: localhost/redplate-redis, image_tag: test }
\
         monitoring: { exporter: true, exporter_image: \"localhost/no-such-exporter:v0\" }
\
         network: { local_base_port: 23800 }
",
    );
    let started = Instant::now();
    let out = run(&home, &["deploy", &t.display().to_string(), "--backend", "compose"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error[deploy.image-unavailable]"), "{err}");
    assert!(err.contains("image `localhost/no-such-exporter:v0` is not on this machine"), "{err}");
    assert!(err.contains("monitoring.exporter_image"), "the hint names the key: {err}");
    report(&format!("an unpullable image refused in {:.1} s", started.elapsed().as_secs_f64()));
    assert!(started.elapsed() < Duration::from_secs(60), "told at once, not after a wait");
    assert!(home.records().is_empty(), "nothing registered");
    nothing_left("cmp-img");
}

/// Tenants on Compose: from the template, and made at run time (`ACL
/// SAVE` into each data node's copy of `users.acl` on its volume) — kept
/// across a restart, updated, removed; `apply` of a setting Redis changes
/// live, and a change it refuses with nothing changed.
#[test]
fn tenants_made_at_run_time_work_on_compose_survive_a_restart_and_apply_changes_settings_live() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    let body = "extends: staging\n\
         deployment: { name: cmp-ten, mode: standalone, redis_version: \"7.0\", image: localhost/redplate-redis, image_tag: test }\n\
         resources: { memory: 1gb }\n\
         security: { tls: { enabled: false } }\n\
         monitoring: { exporter: false, service_monitor: false }\n\
         network: { local_base_port: 23700 }\n\
         tenancy: { enabled: true, isolation: key_prefix, max_tenants: 4, memory_per_tenant: 64mb, \
         connections_per_tenant: 20, ops_per_second_per_tenant: 1000, \
         tenants: [{ id: acme, password: { generate: true } }] }\n";
    let t = template(home.dir.path(), "cmp-ten", body);
    let (d, _) = Project::deploy(&home, &t, "cmp-ten");
    // The tenant's ACL user from the rendered users.acl, bound to its prefix.
    assert_eq!(ok(&home, &["tenant", "exec", "cmp-ten", "acme", "--", "SET", "tenant:acme:k", "v"]).trim(), "\"OK\"");
    let other = run(&home, &["tenant", "exec", "cmp-ten", "acme", "--", "GET", "tenant:globex:k"]);
    assert!(text(&other.stderr).contains("NOPERM"), "{}", text(&other.stderr));
    let stats = ok(&home, &["tenant", "stats", "cmp-ten", "acme"]);
    assert!(stats.contains("1 keys"), "{stats}");

    // A tenant made at run time: saved into the node's own copy of users.acl.
    let created = json(&home, &["tenant", "create", "cmp-ten", "globex", "--format", "json"]);
    assert_eq!(created["persisted"], serde_json::json!(["cmp-ten-0"]), "{created}");
    assert_eq!(
        ok(&home, &["tenant", "exec", "cmp-ten", "globex", "--", "SET", "tenant:globex:k", "g"]).trim(),
        "\"OK\""
    );
    let cross = run(&home, &["tenant", "exec", "cmp-ten", "globex", "--", "GET", "tenant:acme:k"]);
    assert!(text(&cross.stderr).contains("NOPERM"), "{}", text(&cross.stderr));
    let saved = d.exec_in("cmp-ten-0", &["grep", "-c", "^user tenant-globex ", "/data/users.acl"]);
    assert_eq!(saved.trim(), "1", "ACL SAVE wrote the volume's copy");
    ok(&home, &["tenant", "update", "cmp-ten", "globex", "--memory", "32mb"]);

    // `apply`: a setting Redis changes at run time, no new container; the
    // run-time tenant kept.
    let t2 = template(home.dir.path(), "cmp-ten-2", &format!("{body}memory: {{ hash_max_listpack_entries: 256 }}\n"));
    let before = containers_of("cmp-ten");
    let applied = ok(&home, &["apply", "cmp-ten", &t2.display().to_string()]);
    assert!(applied.contains("CONFIG SET hash-max-listpack-entries 256"), "{applied}");
    assert!(applied.contains("kept 1 tenant made at run time"), "{applied}");
    assert_eq!(containers_of("cmp-ten"), before, "no container made anew: {applied}");
    let value = ok(&home, &["exec", "cmp-ten", "--", "CONFIG", "GET", "hash-max-listpack-entries"]);
    assert!(value.contains("256"), "{value}");
    // A change the running project cannot take is refused before anything changes.
    let t3 = template(
        home.dir.path(),
        "cmp-ten-3",
        &format!("{}memory: {{ hash_max_listpack_entries: 512 }}\n", body.replace("exporter: false", "exporter: true")),
    );
    let refused = run(&home, &["apply", "cmp-ten", &t3.display().to_string()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("services change (added: cmp-ten-0-exporter"), "{}", text(&refused.stderr));
    let value = ok(&home, &["exec", "cmp-ten", "--", "CONFIG", "GET", "hash-max-listpack-entries"]);
    assert!(value.contains("256"), "nothing applied: {value}");

    // Restarted, the node keeps the tenant it saved and the setting it rewrote.
    ok(&home, &["stop", "cmp-ten"]);
    ok(&home, &["start", "cmp-ten"]);
    assert_eq!(ok(&home, &["tenant", "exec", "cmp-ten", "globex", "--", "GET", "tenant:globex:k"]).trim(), "\"g\"");
    let value = ok(&home, &["exec", "cmp-ten", "--", "CONFIG", "GET", "hash-max-listpack-entries"]);
    assert!(value.contains("256"), "{value}");
    let removed = ok(&home, &["tenant", "remove", "cmp-ten", "globex"]);
    report(&format!("compose: run-time tenant removed: {}", removed.lines().next().unwrap_or_default()));
    let gone = run(&home, &["tenant", "exec", "cmp-ten", "globex", "--", "PING"]);
    assert!(!gone.status.success(), "the tenant is gone");

    // Flush takes its confirmation token as on any backend.
    let first = run(&home, &["flush", "cmp-ten"]);
    let token = text(&first.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "--confirm")
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a token: {}{}", text(&first.stdout), text(&first.stderr)));
    ok(&home, &["flush", "cmp-ten", "--confirm", &token]);
    assert_eq!(ok(&home, &["exec", "cmp-ten", "--", "DBSIZE"]).trim(), "(integer) 0");

    // A registry entry damaged by hand: `destroy --purge` still finds the
    // project by the rendered file in its folder and takes it down.
    std::fs::write(d.state_dir().join("deployment.json"), "{broken").expect("damage the entry");
    ok(&home, &["destroy", "cmp-ten", "--purge", "--quiet"]);
    nothing_left("cmp-ten");
    assert!(!d.state_dir().exists());
}

/// The ids of project `name`'s containers, sorted.
fn containers_of(name: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={name}");
    let mut ids: Vec<String> =
        text(&podman(&["ps", "-a", "-q", "--filter", &filter]).stdout).split_whitespace().map(str::to_owned).collect();
    ids.sort();
    ids
}

/// The `--set`s that run an example here as it is, but for what this
/// machine lacks (no registry: the local image of Redis 7.0, no exporter
/// image; Debian's Redis has no active defragmentation), under `name` from
/// `base`, with `more`.
fn example_sets(name: &str, base: u16, more: &[&str]) -> Vec<String> {
    let mut sets = vec![format!("deployment.name={name}"), format!("network.local_base_port={base}")];
    sets.extend(
        [
            "deployment.redis_version=7.0",
            "deployment.image=localhost/redplate-redis",
            "deployment.image_tag=test",
            "deployment.image_digest=",
            "resources.memory=1gb",
            "memory.active_defrag=false",
            "monitoring.exporter=false",
            "monitoring.service_monitor=false",
            "monitoring.alerts.enabled=false",
        ]
        .iter()
        .chain(more)
        .map(|s| (*s).to_owned()),
    );
    sets
}

/// `examples/sentinel-production.yaml` with [`example_sets`] and a short `down_after`.
#[test]
fn the_sentinel_production_example_runs_on_compose_with_tls_backs_up_restores_and_keeps_roles_across_restarts() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/sentinel-production.yaml");
    let sets = example_sets("cmp-prod", 23900, &["sentinel.down_after=2s"]);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let (d, _) = Project::deploy_with(&home, &example, "cmp-prod", &sets);
    let nodes = d.record["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 6, "3 data nodes, 3 sentinels");
    assert!(nodes.iter().all(|n| n["tls"] == true), "every node is reached over TLS only: {nodes:?}");
    // The certificates the backend made name the services, and the
    // containers' user reads the key: the rendered TLS health checks pass.
    for service in ["cmp-prod-0", "cmp-prod-1", "cmp-prod-sentinel-0"] {
        assert!(podman(&["healthcheck", "run", &d.container(service)]).status.success(), "{service} is healthy");
    }
    let s = d.status();
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(node(&s, "cmp-prod-0")["role"], "master");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "SET", "order:1", "v1"]).trim(), "\"OK\"");

    // Backup through the rendered script: encrypted (the example's key file
    // is a Kubernetes secret path; the caller names one here), from a replica.
    let key = home.dir.path().join("backup.key");
    std::fs::write(&key, "a-test-backup-key-of-enough-length-0123456789\n").expect("key");
    let key = key.display().to_string();
    let env = [("BACKUP_KEY_FILE", key.as_str())];
    let id = ok_env(&home, &["backup", "cmp-prod"], &env).trim().to_owned();
    let listing = json(&home, &["backups", "cmp-prod", "--format", "json"]);
    let backup = &listing["backups"][0];
    assert_eq!(backup["id"], id.as_str(), "{listing}");
    let source = backup["parts"][0]["source"].as_str().unwrap_or_default();
    assert!(["cmp-prod-1", "cmp-prod-2"].contains(&source), "from a replica: {listing}");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "SET", "order:1", "v2"]).trim(), "\"OK\"");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "SET", "order:9", "later"]).trim(), "\"OK\"");

    // Restore: the token first, then the data of the backup on every node.
    let first = ok_env(&home, &["restore", "cmp-prod", &id], &env);
    let token = first
        .split_whitespace()
        .skip_while(|w| *w != "--confirm")
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a token: {first}"));
    ok_env(&home, &["restore", "cmp-prod", &id, "--confirm", &token], &env);
    let s = d.status();
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(node(&s, "cmp-prod-0")["role"], "master", "the restart kept the roles: {s}");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "GET", "order:1"]).trim(), "\"v1\"");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "GET", "order:9"]).trim(), "(nil)");

    // Failover over TLS, then a restart of the whole project: the promoted
    // node stays the master (its seeded config took Sentinel's rewrite).
    assert!(podman(&["kill", &d.container("cmp-prod-0")]).status.success());
    let new_master = |s: &Value| {
        ["cmp-prod-1", "cmp-prod-2"].into_iter().find(|n| {
            node(s, n)["role"] == "master"
                && s["sentinel_views"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|v| v["master"].as_str().is_some_and(|m| m.starts_with(&format!("{n}:"))))
        })
    };
    let took = d.wait_for("a replica promoted", Duration::from_secs(90), |s| new_master(s).is_some());
    report(&format!("compose (TLS): master container killed -> replica promoted in {:.1} s", took.as_secs_f64()));
    let promoted = new_master(&d.status()).unwrap_or_default();
    ok(&home, &["stop", "cmp-prod", "--quiet"]);
    ok(&home, &["start", "cmp-prod", "--quiet"]);
    let s = d.status();
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(new_master(&s), Some(promoted), "the promoted master is kept across a restart: {s}");
    assert_eq!(node(&s, "cmp-prod-0")["role"], "replica", "{s}");
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "GET", "order:1"]).trim(), "\"v1\"");

    // Vertical scale: `maxmemory` set live, and every data node's container
    // made anew with the new memory limit — replicas first, the master after
    // a failover; the data and the sentinels' agreement stay.
    let data = ["cmp-prod-0", "cmp-prod-1", "cmp-prod-2"];
    let agreed = |s: &Value| {
        data.into_iter().find(|n| {
            node(s, n)["role"] == "master"
                && s["sentinel_views"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|v| v["master"].as_str().is_some_and(|m| m.starts_with(&format!("{n}:"))))
        })
    };
    let started = Instant::now();
    let scaled = ok(&home, &["scale", "cmp-prod", "--memory", "2gb"]);
    report(&format!(
        "compose (TLS): scale --memory 1gb -> 2gb, 3 data containers made anew, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(scaled.matches("CONFIG SET maxmemory").count(), 3, "{scaled}");
    assert_eq!(scaled.matches("new container").count(), 3, "{scaled}");
    assert!(scaled.contains("failed over, now a replica"), "{scaled}");
    for n in data {
        assert_eq!(d.inspect(n, "{{.HostConfig.Memory}}"), "2147483648", "{n}'s container limit");
    }
    d.wait_for("the sentinels agree after the scale", Duration::from_secs(30), |s| agreed(s).is_some());
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "GET", "order:1"]).trim(), "\"v1\"");

    // A setting Redis cannot change live: each node restarted with it, in
    // the role it has now; kept across a restart of the whole project.
    let started = Instant::now();
    let t = example.display().to_string();
    let applied = ok(&home, &["apply", "cmp-prod", &t, "--set", "performance.tcp_backlog=1024"]);
    report(&format!(
        "compose (TLS): apply of an immutable setting, 3 data nodes restarted one by one, in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(applied.matches("restart needed").count(), 3, "{applied}");
    assert_eq!(applied.matches("new container").count(), 3, "{applied}");
    let backlog = |n: &str| ok(&home, &["exec", "cmp-prod", "--node", n, "--", "CONFIG", "GET", "tcp-backlog"]);
    for n in data {
        assert!(backlog(n).contains("1024"), "{n}: {}", backlog(n));
    }
    d.wait_for("the sentinels agree after the apply", Duration::from_secs(30), |s| agreed(s).is_some());
    let master = agreed(&d.status()).unwrap_or_default();
    ok(&home, &["stop", "cmp-prod", "--quiet"]);
    ok(&home, &["start", "cmp-prod", "--quiet"]);
    let s = d.status();
    assert_eq!(agreed(&s), Some(master), "the master is kept across a restart: {s}");
    for n in data {
        assert!(backlog(n).contains("1024"), "{n} after a restart: {}", backlog(n));
    }
    assert_eq!(ok(&home, &["exec", "cmp-prod", "--", "GET", "order:1"]).trim(), "\"v1\"");

    ok(&home, &["destroy", "cmp-prod", "--purge", "--quiet"]);
    nothing_left("cmp-prod");
}

/// `examples/cluster-production.yaml`: TLS everywhere and no admin user in
/// the template, so the rendered file has no cluster-init service (it would
/// have no credentials); redplate forms the cluster as its own admin user,
/// the nodes meeting at their pinned addresses.
#[test]
fn the_cluster_production_example_is_formed_over_tls_on_compose_and_fails_over() {
    if !engine_present() {
        return;
    }
    let home = Home::new();
    let example = root().join("examples/cluster-production.yaml");
    let sets = example_sets("cmp-cprod", 24100, &["cluster.node_timeout=2s"]);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let (d, _) = Project::deploy_with(&home, &example, "cmp-cprod", &sets);
    let s = d.status();
    assert_eq!((s["state"].as_str(), s["cluster_state"].as_str()), (Some("running"), Some("ok")), "{s}");
    assert!(d.record["nodes"].as_array().into_iter().flatten().all(|n| n["tls"] == true), "{}", d.record);
    let slots: Vec<&str> =
        s["nodes"].as_array().into_iter().flatten().filter_map(|n| n["slots"].as_str()).filter(|s| *s != "-").collect();
    assert_eq!(slots.len(), 3, "three masters serve the slots: {s}");
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(ok(&home, &["exec", "cmp-cprod", "--", "SET", key, "1"]).trim(), "\"OK\"", "{key}");
    }
    assert!(podman(&["healthcheck", "run", &d.container("cmp-cprod-0")]).status.success(), "TLS health check");
    let health = json(&home, &["health", "cmp-cprod", "--format", "json"]);
    assert_eq!(health["verdict"], "healthy", "{health}");

    // The first master's container killed: its replica takes its slots.
    let first_slots = node(&s, "cmp-cprod-0")["slots"].as_str().unwrap_or_default().to_owned();
    assert!(podman(&["kill", &d.container("cmp-cprod-0")]).status.success());
    let took = d.wait_for("a replica serving the killed master's slots", Duration::from_secs(90), |s| {
        s["cluster_state"] == "ok"
            && s["nodes"].as_array().into_iter().flatten().any(|n| {
                n["name"] != "cmp-cprod-0" && n["role"] == "master" && n["slots"].as_str() == Some(first_slots.as_str())
            })
    });
    report(&format!(
        "compose cluster (TLS): master container killed -> replica promoted in {:.1} s",
        took.as_secs_f64()
    ));
    for key in ["a", "b", "c", "d", "e"] {
        assert_eq!(ok(&home, &["exec", "cmp-cprod", "--", "GET", key]).trim(), "\"1\"", "{key}");
    }
    ok(&home, &["destroy", "cmp-cprod", "--purge", "--quiet"]);
    nothing_left("cmp-cprod");
}
