//! The REST API, served for real (`redplate serve`) and driven over HTTP
//! against real Redis: every endpoint refuses a request without a token;
//! the deploy → tenant → execute → stats → remove → destroy story; a
//! tenant token reaches its own tenant only; a job is cancelled; a job
//! running when the server stops is found `failed: interrupted` after a
//! restart; and `schemathesis` fuzzes every operation from `/openapi.json`
//! with 0 failures.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Home, redis_present, root, text};

/// A running `redplate serve` on a free port; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(home: &Home) -> Server {
        Server::start_with(home, &[])
    }

    fn start_with(home: &Home, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = home
            .command(&args, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start redplate serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines.next().expect("the server says where it listens").expect("read stderr");
            if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                break rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok()).expect("port");
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server { child, port }
    }

    /// SIGTERM, then wait for it to exit.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().expect("wait for the server");
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`): status, headers, body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let payload = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{payload}", payload.len()));
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Calls and checks the status; the JSON body.
fn call(port: u16, method: &str, path: &str, token: &str, body: Option<Value>, want: u16) -> Value {
    let (status, _, text) = http(port, method, path, Some(token), body.as_ref());
    assert_eq!(status, want, "{method} {path}: {text}");
    if text.trim().is_empty() { Value::Null } else { json_of(&text) }
}

/// Polls operation `id` until it ends; its record.
fn wait_job(port: u16, token: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let op = call(port, "GET", &format!("/api/v1/operations/{id}"), token, None, 200);
        if !matches!(op["state"].as_str(), Some("running" | "queued")) {
            return op;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "operation {id} still running: {op}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn token(home: &Home, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    home.ok(&all).trim().to_owned()
}

fn template(name: &str, port: u16) -> Value {
    json!({ "template": format!(
        "extends: development\ndeployment: {{ name: {name} }}\n\
         security: {{ auth_enabled: true, password: {{ generate: true }} }}\n\
         network: {{ local_base_port: {port} }}\ntenancy: {{ enabled: true, max_tenants: 4 }}\n"
    ) })
}

#[test]
fn every_endpoint_needs_a_token_and_the_problem_shape_says_why() {
    let home = Home::new();
    let admin = token(&home, &["--admin"]);
    let server = Server::start(&home);
    let doc = call(server.port, "GET", "/openapi.json", &admin, None, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, methods) in paths {
        for method in methods.as_object().expect("methods").keys() {
            operations += 1;
            let concrete = path.replace("{name}", "x").replace("{id}", "y").replace("{environment}", "production");
            let (status, head, body) = http(server.port, &method.to_uppercase(), &concrete, None, Some(&json!({})));
            if path == "/healthz" || path == "/readyz" {
                assert_eq!(status, 200, "{path} is open");
                continue;
            }
            assert_eq!(status, 401, "{method} {path} without a token: {body}");
            assert!(head.contains("content-type: application/problem+json"), "{head}");
            assert_eq!(json_of(&body)["type"], "urn:redplate:auth.unauthorized");
            // A wrong token is the same answer.
            let (status, _, _) = http(server.port, &method.to_uppercase(), &concrete, Some("rpt_00000000_x"), None);
            assert_eq!(status, 401, "{method} {path} with a wrong token");
        }
    }
    assert!(operations >= 25, "at least 25 endpoints, found {operations}");
    // A revoked token stops working at once.
    let id = admin.split('_').nth(1).expect("token id").to_owned();
    home.ok(&["token", "revoke", &id]);
    let (status, _, _) = http(server.port, "GET", "/api/v1/deployments", Some(&admin), None);
    assert_eq!(status, 401, "revoked");
    let kept = std::fs::read_to_string(home.dir.path().join("tokens.json")).expect("token store");
    assert!(!kept.contains(&admin), "tokens are kept hashed");
}

#[test]
fn stalled_clients_are_cut_off_and_oversized_bodies_refused_while_the_server_keeps_answering() {
    let home = Home::new();
    let admin = token(&home, &["--admin"]);
    let server = Server::start_with(&home, &["--idle-timeout-s", "2", "--body-limit-kib", "64"]);
    // Half a request line, then nothing: closed after the idle timeout.
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            s.write_all(b"GET /healthz HT").expect("send a little");
            s
        })
        .collect();
    let (status, _, _) = http(server.port, "GET", "/healthz", None, None);
    assert_eq!(status, 200, "answers beside 50 stalled clients");
    std::thread::sleep(Duration::from_secs(4));
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "a stalled connection is closed: {}", String::from_utf8_lossy(&buf[..n]));
    }
    // A body over the limit is refused before it is buffered.
    let big = json!({ "template": "x".repeat(200 * 1024) });
    let (status, _, body) = http(server.port, "POST", "/api/v1/templates/validate", Some(&admin), Some(&big));
    assert_eq!(status, 413, "{body}");
    let (status, _, _) = http(server.port, "GET", "/healthz", None, None);
    assert_eq!(status, 200);
}

#[test]
fn deploy_tenant_stats_remove_destroy_over_http_and_a_tenant_token_reaches_only_its_tenant() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let admin = token(&home, &["--admin"]);
    let server = Server::start(&home);
    let p = server.port;

    let (status, head, body) = http(p, "POST", "/api/v1/deployments", Some(&admin), Some(&template("web", 27100)));
    assert_eq!(status, 202, "{body}");
    let op = json_of(&body);
    assert!(head.contains(&format!("location: /api/v1/operations/{}", op["id"].as_str().unwrap_or("?"))), "{head}");
    let second = http(p, "POST", "/api/v1/deployments", Some(&admin), Some(&template("web", 27100)));
    assert!(second.0 == 409 || second.0 == 202, "a second deploy of `web` conflicts or finds it exists: {}", second.2);
    let done = wait_job(p, &admin, op["id"].as_str().expect("id"));
    assert_eq!(done["state"], "succeeded", "{done}");
    if second.0 == 202 {
        let again = wait_job(p, &admin, json_of(&second.2)["id"].as_str().expect("id"));
        assert_eq!(again["error"]["type"], "urn:redplate:deploy.exists", "{again}");
    }
    let status_of = call(p, "GET", "/api/v1/deployments/web", &admin, None, 200);
    assert_eq!(status_of["status"]["state"], "running", "{status_of}");

    let created =
        call(p, "POST", "/api/v1/deployments/web/tenants", &admin, Some(json!({"id": "acme", "memory": "16mb"})), 201);
    assert_eq!(created["tenant"]["user"], "tenant-acme");
    call(p, "POST", "/api/v1/deployments/web/tenants", &admin, Some(json!({"id": "beta"})), 201);
    let dup = call(p, "POST", "/api/v1/deployments/web/tenants", &admin, Some(json!({"id": "acme"})), 409);
    assert_eq!(dup["type"], "urn:redplate:tenant.exists");
    let set = json!({"command": ["SET", "tenant:acme:k", "v"]});
    assert_eq!(call(p, "POST", "/api/v1/deployments/web/tenants/acme/execute", &admin, Some(set), 200)["reply"], "OK");
    let denied = json!({"command": ["GET", "tenant:beta:k"]});
    let problem = call(p, "POST", "/api/v1/deployments/web/tenants/acme/execute", &admin, Some(denied), 422);
    assert!(problem["detail"].as_str().unwrap_or_default().contains("NOPERM"), "{problem}");
    let stats = call(p, "GET", "/api/v1/deployments/web/tenants/acme/stats", &admin, None, 200);
    assert_eq!(stats["keys"], 1);
    let health = call(p, "GET", "/api/v1/deployments/web/health", &admin, None, 200);
    assert_eq!(health["verdict"], "healthy", "{health}");
    let (status, head, metrics) = http(p, "GET", "/api/v1/deployments/web/metrics", Some(&admin), None);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain") && metrics.contains("redis_up"), "{metrics}");
    let refused =
        call(p, "POST", "/api/v1/deployments/web/execute", &admin, Some(json!({"command": ["FLUSHALL"]})), 422);
    assert_eq!(refused["type"], "urn:redplate:exec.dangerous", "{refused}");
    let first = call(p, "POST", "/api/v1/deployments/web/flush", &admin, Some(json!({})), 200);
    assert!(first["token"].is_string() && first["flushed"] == false, "{first}");
    let wrong = call(p, "POST", "/api/v1/deployments/web/flush", &admin, Some(json!({"confirm": "1-00"})), 412);
    assert!(wrong["type"].as_str().unwrap_or_default().starts_with("urn:redplate:confirm."), "{wrong}");
    let rotated = call(
        p,
        "PATCH",
        "/api/v1/deployments/web/tenants/acme",
        &admin,
        Some(json!({"rotate_password": true, "connections": 7})),
        200,
    );
    assert_eq!(
        (rotated["password_rotated"].as_bool(), rotated["tenant"]["quotas"]["connections"].as_u64()),
        (Some(true), Some(7))
    );

    // A tenant token: its own tenant's show, stats and execute; nothing else.
    let tenant = token(&home, &["--deployment", "web", "--tenant", "acme"]);
    call(p, "GET", "/api/v1/deployments/web/tenants/acme/stats", &tenant, None, 200);
    call(p, "GET", "/api/v1/deployments/web/tenants/acme", &tenant, None, 200);
    let get = json!({"command": ["GET", "tenant:acme:k"]});
    assert_eq!(call(p, "POST", "/api/v1/deployments/web/tenants/acme/execute", &tenant, Some(get), 200)["reply"], "v");
    for (method, path) in [
        ("GET", "/api/v1/deployments/web/tenants/beta/stats"),
        ("POST", "/api/v1/deployments/web/tenants/beta/execute"),
        ("GET", "/api/v1/deployments/web/stats"),
        ("GET", "/api/v1/deployments"),
        ("DELETE", "/api/v1/deployments/web"),
        ("DELETE", "/api/v1/deployments/web/tenants/acme"),
        ("POST", "/api/v1/deployments/web/execute"),
        ("GET", "/api/v1/operations"),
    ] {
        let body = json!({"command": ["GET", "tenant:beta:k"]});
        let (status, _, text) = http(p, method, path, Some(&tenant), Some(&body));
        assert_eq!(status, 403, "{method} {path} with a tenant token: {text}");
        assert_eq!(json_of(&text)["type"], "urn:redplate:auth.forbidden");
    }

    // Warm from a file, analyze, optimize.
    let file = home.dir.path().join("keys.jsonl");
    let lines: Vec<String> = (0..200).map(|i| format!("{{\"key\":\"item:{i}:name\",\"value\":\"v{i}\"}}")).collect();
    std::fs::write(&file, lines.join("\n") + "\nnot json\n").expect("write keys");
    let warm = call(p, "POST", "/api/v1/deployments/web/warm-cache", &admin, Some(json!({"from": file})), 202);
    let warmed = wait_job(p, &admin, warm["id"].as_str().expect("id"));
    assert_eq!(warmed["result"]["written"], 200, "{warmed}");
    let analysis = call(p, "POST", "/api/v1/deployments/web/analyze", &admin, Some(json!({"full": true})), 202);
    let analysis = wait_job(p, &admin, analysis["id"].as_str().expect("id"));
    assert!(analysis["result"].to_string().contains("item:*:name"), "{analysis}");
    let advice = call(p, "POST", "/api/v1/deployments/web/optimize", &admin, Some(json!({})), 200);
    assert!(advice.is_object(), "{advice}");

    // Backup, list, restore (preview with a token, then the job) over HTTP.
    let taken = call(p, "POST", "/api/v1/deployments/web/backup", &admin, None, 202);
    let taken = wait_job(p, &admin, taken["id"].as_str().expect("id"));
    assert_eq!(taken["state"], "succeeded", "{taken}");
    let listing = call(p, "GET", "/api/v1/deployments/web/backups", &admin, None, 200);
    let id = listing["backups"][0]["id"].as_str().unwrap_or_else(|| panic!("a backup listed: {listing}")).to_owned();
    let preview = call(p, "POST", "/api/v1/deployments/web/restore", &admin, Some(json!({"backup": id})), 200);
    let confirm = preview["token"].as_str().unwrap_or_else(|| panic!("a token: {preview}")).to_owned();
    let restore = json!({"backup": id, "confirm": confirm});
    let restored = call(p, "POST", "/api/v1/deployments/web/restore", &admin, Some(restore), 202);
    let restored = wait_job(p, &admin, restored["id"].as_str().expect("id"));
    assert_eq!(restored["state"], "succeeded", "{restored}");

    let removal = call(p, "DELETE", "/api/v1/deployments/web/tenants/acme", &admin, None, 202);
    let removed = wait_job(p, &admin, removal["id"].as_str().expect("id"));
    assert_eq!(
        (removed["state"].as_str(), removed["result"]["deleted"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{removed}"
    );
    call(p, "GET", "/api/v1/deployments/web/tenants/acme", &admin, None, 404);
    let destroy = call(p, "DELETE", "/api/v1/deployments/web?purge=true", &admin, None, 202);
    assert_eq!(wait_job(p, &admin, destroy["id"].as_str().expect("id"))["state"], "succeeded");
    call(p, "GET", "/api/v1/deployments/web", &admin, None, 404);
    let audit_dir = home.dir.path().join("deployments/web");
    assert!(!audit_dir.exists(), "purged");
}

#[test]
fn a_cancelled_removal_stops_and_a_job_cut_by_a_restart_is_recorded_as_interrupted() {
    if !redis_present() {
        return;
    }
    let home = Home::new();
    let admin = token(&home, &["--admin"]);
    let d = home.deploy(
        root().join("examples/multi-tenant.yaml"),
        &["--name", "jobs", "--set", "network.local_base_port=27200", "--set", "tenancy.removal_batch_size=10"],
    );
    let port = d.data_nodes()[0].1;
    let tenants = json_of(&home.ok(&["tenant", "list", "jobs", "--format", "json"]));
    let id = tenants[0]["id"].as_str().expect("a declared tenant").to_owned();
    let prefix = tenants[0]["prefix"].as_str().expect("prefix").to_owned();
    let mut pipe = String::new();
    for i in 0..200_000 {
        let key = format!("{prefix}{i}");
        pipe.push_str(&format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len()));
    }
    let out = d.cli_with(port, &["--pipe"], Some(&pipe));
    assert!(out.contains("errors: 0"), "{out}");

    let server = Server::start(&home);
    let removal = call(server.port, "DELETE", &format!("/api/v1/deployments/jobs/tenants/{id}"), &admin, None, 202);
    let job = removal["id"].as_str().expect("id").to_owned();
    let busy = call(server.port, "POST", "/api/v1/deployments/jobs/scale", &admin, Some(json!({"replicas": 1})), 409);
    assert!(busy["detail"].as_str().unwrap_or_default().contains(&job), "the conflict names the running job: {busy}");
    let cancelled = call(server.port, "DELETE", &format!("/api/v1/operations/{job}"), &admin, None, 200);
    assert_eq!(cancelled["cancel_requested"], true);
    let ended = wait_job(server.port, &admin, &job);
    assert_eq!(ended["state"], "cancelled", "{ended}");
    let left = d.cli(port, &["DBSIZE"]);
    assert!(left.trim().parse::<u64>().unwrap_or(0) > 0, "stopped before the end: {left}");

    // A job running when the server stops is recorded as interrupted.
    let again = call(server.port, "DELETE", &format!("/api/v1/deployments/jobs/tenants/{id}"), &admin, None, 202);
    let cut = again["id"].as_str().expect("id").to_owned();
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
    let server = Server::start(&home);
    let after = call(server.port, "GET", &format!("/api/v1/operations/{cut}"), &admin, None, 200);
    assert_eq!(
        (after["state"].as_str(), after["error"]["type"].as_str()),
        (Some("failed"), Some("urn:redplate:operation.interrupted")),
        "{after}"
    );
    // Running the removal again finishes it.
    let last = call(server.port, "DELETE", &format!("/api/v1/deployments/jobs/tenants/{id}"), &admin, None, 202);
    let finished = wait_job(server.port, &admin, last["id"].as_str().expect("id"));
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(
        d.cli(port, &["--scan", "--pattern", &format!("{prefix}*")]).lines().filter(|l| !l.is_empty()).count(),
        0
    );
}

#[test]
fn schemathesis_finds_no_failure_in_any_operation() {
    let st = root().join(".venv/bin/schemathesis");
    if !st.exists() {
        assert!(std::env::var_os("CI").is_none(), "schemathesis is needed in CI (scripts/setup.sh installs it)");
        support::report("SKIPPED: schemathesis not installed (scripts/setup.sh)");
        return;
    }
    let home = Home::new();
    let admin = token(&home, &["--admin"]);
    let server = Server::start(&home);
    let (status, _, doc) = http(server.port, "GET", "/openapi.json", Some(&admin), None);
    assert_eq!(status, 200);
    let schema = home.dir.path().join("openapi.json");
    std::fs::write(&schema, doc).expect("write the schema");
    // `positive_data_acceptance` is left out: a schema-valid string is not
    // a valid template, and refusing it (422) is right.
    let out = Command::new(&st)
        .args(["run", &schema.display().to_string(), "--url", &format!("http://127.0.0.1:{}", server.port)])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--phases", "coverage,fuzzing", "--max-examples", "25", "--workers", "2", "--seed", "1"])
        .env("REDPLATE_HOME", home.dir.path())
        // Its own state folder (`.schemathesis/`) goes with the test's home.
        .current_dir(home.dir.path())
        .output()
        .expect("run schemathesis");
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let summary = log
        .lines()
        .filter(|l| l.contains("generated") || l.contains("passed") || l.contains("failures"))
        .collect::<Vec<_>>()
        .join("\n");
    support::report(&format!("schemathesis: {summary}"));
    // What its deploys started (a template without a name deploys `redis`
    // on the default ports) goes with the test, not after it.
    server.stop();
    let made: Vec<String> = home.records().iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect();
    for name in &made {
        home.ok(&["destroy", name, "--purge"]);
    }
    support::report(&format!("destroyed what schemathesis deployed: {made:?}"));
    let left = support::processes_in(home.dir.path());
    assert!(left.is_empty(), "processes left in the test's home: {left:?}");
    assert!(out.status.success(), "schemathesis found failures:\n{log}");
}
