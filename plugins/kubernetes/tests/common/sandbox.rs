//! Running the rendered files outside Kubernetes: each pod's absolute
//! paths mapped into a temporary folder, a `hostname` shim, real
//! `redis-server`/`redis-sentinel` processes on free loopback ports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Maps the pod's absolute paths into `root`.
pub fn relocate(text: &str, root: &Path) -> String {
    let r = root.display();
    text.replace("/opt/redplate/templates", &format!("{r}/templates"))
        .replace("/opt/redplate/scripts", &format!("{r}/scripts"))
        .replace("/var/run/redplate/conf", &format!("{r}/run"))
        .replace("/var/run/redplate/secrets", &format!("{r}/secrets"))
        .replace("/var/run/redplate/exporter", &format!("{r}/exporter"))
        .replace("/etc/redis/tls", &format!("{r}/tls"))
        .replace("DEST=/backups", &format!("DEST={r}/backups"))
        .replace("dir /data\n", &format!("dir {r}/data\n"))
        .replace("cluster-config-file /data/", &format!("cluster-config-file {r}/data/"))
        .replace("NODES_CONF=/data/", &format!("NODES_CONF={r}/data/"))
}

pub struct Server(pub Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A port below 55536 whose cluster bus port (+10000) is free too.
pub fn free_bus_port() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let seed = u16::try_from(std::process::id() % 20000).unwrap_or(0);
    (0..20000u16).map(|i| 20000 + (seed + i) % 20000).find(|p| free(*p) && free(p + 10000)).expect("a free port pair")
}

pub fn cli(port: u16, user: Option<(&str, &str)>, args: &[&str]) -> String {
    cli_on("127.0.0.1", port, user, args)
}

pub fn cli_on(ip: &str, port: u16, user: Option<(&str, &str)>, args: &[&str]) -> String {
    cli_with(ip, port, user, None, args)
}

/// `redis-cli`, over TLS with the certificates in `tls` when given.
pub fn cli_with(ip: &str, port: u16, user: Option<(&str, &str)>, tls: Option<&Path>, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["--no-auth-warning", "-h", ip, "-p", &port.to_string()]);
    if let Some(t) = tls {
        c.arg("--tls").arg("--cacert").arg(t.join("ca.crt")).arg("--cert").arg(t.join("tls.crt"));
        c.arg("--key").arg(t.join("tls.key"));
    }
    if let Some((u, pw)) = user {
        c.args(["--user", u]).env("REDISCLI_AUTH", pw);
    }
    let out = c.args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One pod's folders under `root/<pod>`, with a `hostname` shim so the
/// scripts see the pod's name.
pub fn pod_root(
    root: &Path,
    pod: &str,
    conf: &BTreeMap<String, String>,
    scripts: &BTreeMap<String, String>,
) -> PathBuf {
    let r = root.join(pod);
    for d in ["templates", "scripts", "run", "secrets", "exporter", "data", "bin", "backups"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    for (name, text) in conf {
        std::fs::write(r.join("templates").join(name), relocate(text, &r)).expect("write");
    }
    for (name, text) in scripts {
        std::fs::write(r.join("scripts").join(name), relocate(text, &r)).expect("write");
    }
    for u in ["replication", "sentinel", "exporter", "probe", "backup"] {
        std::fs::write(r.join("secrets").join(u), super::fake_password(u)).expect("secret");
    }
    let shim = r.join("bin/hostname");
    std::fs::write(&shim, format!("#!/bin/sh\necho {pod}\n")).expect("shim");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    r
}

pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).expect("write");
}

pub fn run_script(r: &Path, script: &str) {
    let path = format!("{}:{}", r.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh").arg(r.join("scripts").join(script)).env("PATH", path).output().expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn start(program: &str, conf: &Path, port: u16) -> Server {
    let child = Command::new(program)
        .arg(conf)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    Server(child)
}

pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn start_on(program: &str, conf: &Path, ip: &str, port: u16) -> Server {
    let child = Command::new(program)
        .arg(conf)
        // One machine stands for three pods: outgoing bus links must leave
        // from the node's own address for the others to tell them apart.
        .args(["--port", &port.to_string(), "--bind", ip, "--bind-source-addr", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    Server(child)
}

/// A CA and a server/client certificate for `localhost`/`127.0.0.1` in `dir`
/// (`ca.crt`, `tls.crt`, `tls.key`), as the TLS Secret would hold them.
pub fn make_certs(openssl: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let run = |args: &[&str]| {
        let out = Command::new(openssl).current_dir(dir).args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=redplate-test-ca"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// Starts a server on 127.0.0.1: on `port` as its TLS port (plain port off)
/// when `tls`, else as its plain port.
pub fn start_with(program: &str, conf: &Path, port: u16, tls: bool) -> Server {
    let p = port.to_string();
    let args: Vec<&str> = if tls {
        vec!["--port", "0", "--tls-port", &p, "--bind", "127.0.0.1"]
    } else {
        vec!["--port", &p, "--bind", "127.0.0.1"]
    };
    let child =
        Command::new(program).arg(conf).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start");
    Server(child)
}
