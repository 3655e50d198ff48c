//! Where nodes listen, per target: local processes on loopback only, with
//! the template's `protected-mode`; containers (Compose) on every interface
//! of their own network, with `protected-mode` off when the `default` user
//! has no password — else Redis refuses every client outside its container.
//! Proved with a real `redis-server` reached over a non-loopback address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use redplate_config::model::Environment;
use redplate_config::{Format, Role, Target, Topology};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{build_input, passwords_for, render, tools_present};

/// The rendered config files of a preset with `sets`, for a target: (path, text).
fn rendered(preset: Environment, sets: &[String], target: Target, t: &str) -> Vec<(String, String)> {
    let config = redplate_config::load_str("", Format::Yaml, "t.yaml", Some(preset), sets).expect("loads").config;
    let topology = Topology::derive(&config, target);
    let tls = config.security.tls.enabled.then(|| support::tls::Files {
        ca: "/etc/redis/tls/ca.crt".into(),
        cert: "/etc/redis/tls/tls.crt".into(),
        key: "/etc/redis/tls/tls.key".into(),
    });
    let input = build_input(&config, &topology, t, &passwords_for(&config), tls.as_ref());
    let files = render(&input).into_iter().filter(|a| a.path.ends_with(".conf"));
    let files: Vec<_> = files.map(|a| (a.path, String::from_utf8_lossy(&a.content).into_owned())).collect();
    assert_eq!(files.len(), topology.nodes.len(), "{preset} {sets:?} {t}");
    assert!(topology.nodes.iter().any(|n| n.role == Role::Master));
    files
}

fn directive<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
}

#[test]
fn containers_listen_on_their_network_and_local_processes_on_loopback() {
    for preset in Environment::ALL {
        for mode in ["standalone", "replication", "sentinel", "cluster"] {
            let sets = [format!("deployment.mode={mode}")];
            for (path, text) in rendered(preset, &sets, Target::Compose, "compose") {
                let no_password = preset == Environment::Development;
                assert_eq!(directive(&text, "bind"), Some("0.0.0.0"), "{preset} {mode} compose {path}");
                let protected = if no_password { "no" } else { "yes" };
                assert_eq!(directive(&text, "protected-mode"), Some(protected), "{preset} {mode} compose {path}");
            }
            for (path, text) in rendered(preset, &sets, Target::Local, "local") {
                assert_eq!(directive(&text, "bind"), Some("127.0.0.1"), "{preset} {mode} local {path}");
                assert_eq!(directive(&text, "protected-mode"), Some("yes"), "{preset} {mode} local {path}");
            }
        }
    }
    // With `ipv6`, containers listen on both families (IPv6 when the container has it).
    let sets = ["deployment.mode=sentinel".to_owned(), "network.ipv6=true".to_owned()];
    for (path, text) in rendered(Environment::Staging, &sets, Target::Compose, "compose") {
        assert_eq!(directive(&text, "bind"), Some("* -::*"), "{path}");
    }
}

/// This machine's address on its default route, if it has one besides loopback.
fn outside_address() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the source address.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Boots the rendered `redis.conf` with this machine's paths and a free
/// port, and PINGs it from `from`. The other directives are as rendered.
fn ping_from(conf: &str, from: IpAddr) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("0.0.0.0:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let local = ["port ", "dir ", "logfile ", "pidfile ", "daemonize ", "aclfile ", "unixsocket"];
    let mut text: String =
        conf.lines().filter(|l| !local.iter().any(|p| l.starts_with(p))).map(|l| format!("{l}\n")).collect();
    text.push_str(&format!("port {port}\ndir {}\ndaemonize no\nlogfile \"\"\n", dir.path().display()));
    let file = dir.path().join("redis.conf");
    std::fs::write(&file, text).expect("write");
    let mut server =
        Command::new("redis-server").arg(&file).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let ping = |host: &str| {
        let out = Command::new("redis-cli").args(["-h", host, "-p", &port.to_string(), "PING"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
    };
    let started = Instant::now();
    while ping("127.0.0.1") != "PONG" {
        assert!(started.elapsed() < Duration::from_secs(20), "redis-server did not start from:\n{conf}");
        assert!(server.try_wait().ok().flatten().is_none(), "redis-server exited; config:\n{conf}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = ping(&from.to_string());
    let _ = server.kill();
    let _ = server.wait();
    reply
}

#[test]
fn another_container_reaches_the_development_preset_without_a_password() {
    if !tools_present("another_container_reaches_the_development_preset_without_a_password") {
        return;
    }
    let Some(outside) = outside_address() else {
        eprintln!("SKIPPED the connection check: this machine has no address but loopback");
        return;
    };
    let files = rendered(Environment::Development, &[], Target::Compose, "compose");
    let conf = &files[0].1;
    // Another container connects from outside the server's loopback.
    assert_eq!(ping_from(conf, outside), "PONG", "{conf}");
    // The check can fail: protected mode on refuses that client.
    let protected = conf.replace("protected-mode no", "protected-mode yes");
    assert!(ping_from(&protected, outside).starts_with("DENIED"), "{protected}");
}
