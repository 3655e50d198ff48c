//! The ConfigMaps' contents checked by the programs that run them:
//! shellcheck for every script; real `redis-server` and `redis-sentinel`
//! processes (sentinel and cluster modes, without TLS) booted from the
//! rendered files after the rendered init scripts ran — the same steps a pod
//! takes, with the pod's absolute paths mapped into a temporary folder.
//! TLS is covered by `tls.rs`.

mod common;

use common::sandbox::{
    cli, cli_on, cli_with, edit, free_bus_port, free_port, make_certs, pod_root, run_script, start_on, start_with,
    wait_for,
};
use common::{all_cases, config_map_data, input_for, render, system_tool, tempdir, tool};
use redplate_config::model::Environment;
use std::process::Command;

#[test]
fn every_script_passes_shellcheck() {
    let (Some(shellcheck), Some(python)) = (system_tool("shellcheck"), tool("python")) else { return };
    let tmp = tempdir();
    let mut scripts = Vec::new();
    for (case, config) in all_cases() {
        let out = render(&input_for(&config, false));
        for (name, text) in config_map_data(&python, &out, &format!("{}-scripts", config.deployment.name)) {
            let path = tmp.path().join(format!("{case}--{name}"));
            std::fs::write(&path, text).expect("write script");
            scripts.push(path);
        }
    }
    assert!(scripts.len() > 40, "{} scripts", scripts.len());
    let out = Command::new(&shellcheck).args(["-s", "sh", "-f", "gcc"]).args(&scripts).output().expect("shellcheck");
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}

/// Sentinel mode, with and without TLS: a master and a replica booted from
/// the rendered files (the replica authenticates with `masteruser`/
/// `masterauth` written by init.sh), and a Sentinel from the rendered
/// sentinel.conf that logs in with the sentinel user, sees the master and its
/// replica, and answers the rendered probe.
fn sentinel_case(tls: bool) {
    let tools = (system_tool("redis-server"), system_tool("redis-sentinel"), system_tool("openssl"), tool("python"));
    let (Some(_), Some(_), Some(openssl), Some(python)) = tools else { return };
    let mut sets = vec!["deployment.name=sbt".to_owned(), "memory.active_defrag=false".to_owned()];
    if !tls {
        sets.push("security.tls.enabled=false".into());
    }
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    assert_eq!(config.security.tls.enabled, tls);
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "sbt-config");
    let scripts = config_map_data(&python, &out, "sbt-scripts");
    let root = tempdir();
    let certs = root.path().join("certs");
    if tls {
        make_certs(&openssl, &certs);
    }
    let pod = |name: &str| {
        let r = pod_root(root.path(), name, &conf, &scripts);
        if tls {
            std::fs::create_dir_all(r.join("tls")).expect("mkdir");
            for f in ["ca.crt", "tls.crt", "tls.key"] {
                std::fs::copy(certs.join(f), r.join("tls").join(f)).expect("copy cert");
            }
        }
        r
    };
    let redis_port = if tls { "6380" } else { "6379" };
    let master_fqdn = "sbt-0.sbt-headless.redis.svc.cluster.local";
    let (pm, pr, ps) = (free_port(), free_port(), free_port());
    let tls_dir = tls.then(|| certs.clone());
    let q = |port: u16, user: Option<(&str, &str)>, args: &[&str]| {
        cli_with("127.0.0.1", port, user, tls_dir.as_deref(), args)
    };

    // The master: its own name is the first pod's, so init.sh adds no `replicaof`.
    let m = pod("sbt-0");
    run_script(&m, "init.sh");
    let mconf = std::fs::read_to_string(m.join("run/redis.conf")).expect("conf");
    assert!(!mconf.contains("\nreplicaof "), "{mconf}");
    assert!(mconf.contains("masterauth \""), "{mconf}");
    let _master = start_with("redis-server", &m.join("run/redis.conf"), pm, tls);

    // The replica: the first pod's name resolves here to 127.0.0.1.
    let r = pod("sbt-1");
    edit(&r.join("scripts/init.sh"), &format!("MASTER={master_fqdn}"), "MASTER=127.0.0.1");
    edit(&r.join("scripts/init.sh"), &format!("\"$MASTER\" {redis_port}"), &format!("\"$MASTER\" {pm}"));
    run_script(&r, "init.sh");
    let _replica = start_with("redis-server", &r.join("run/redis.conf"), pr, tls);

    let exporter = ("exporter", common::fake_password("exporter"));
    wait_for("the replica to sync", || {
        q(pm, Some((exporter.0, &exporter.1)), &["info", "replication"]).contains("connected_slaves:1")
    });

    // The sentinel.
    let s = pod("sbt-sentinel-0");
    edit(&s.join("scripts/sentinel-init.sh"), &format!("MASTER={master_fqdn}"), "MASTER=127.0.0.1");
    edit(
        &s.join("templates/sentinel.conf"),
        &format!("@@MASTER_HOST@@ {redis_port}"),
        &format!("@@MASTER_HOST@@ {pm}"),
    );
    run_script(&s, "sentinel-init.sh");
    let sconf = std::fs::read_to_string(s.join("run/sentinel.conf")).expect("sentinel.conf");
    assert!(sconf.contains("sentinel auth-user mymaster sentinel\n"), "{sconf}");
    let _sentinel = start_with("redis-sentinel", &s.join("run/sentinel.conf"), ps, tls);
    wait_for("the sentinel to see the master and its replica", || {
        let info = q(ps, None, &["sentinel", "master", "mymaster"]);
        let lines: Vec<&str> = info.lines().collect();
        let field = |k: &str| lines.iter().position(|l| *l == k).and_then(|i| lines.get(i + 1)).copied();
        field("flags") == Some("master") && field("num-slaves") == Some("1")
    });
    edit(&s.join("scripts/probe.sh"), "-p 26379", &format!("-p {ps}"));
    let st = Command::new("sh").arg(s.join("scripts/probe.sh")).args(["sentinel", "ready"]).status().expect("probe");
    assert!(st.success(), "probe.sh sentinel ready");
}

#[test]
fn a_master_replica_and_sentinel_boot_from_the_rendered_files() {
    sentinel_case(false);
}

#[test]
fn the_same_with_tls_everywhere() {
    sentinel_case(true);
}

/// Cluster mode without TLS: three nodes (on 127.0.0.1–3, one port) booted
/// from the rendered files, joined by the rendered cluster-init script as the
/// replication user; a second run finds the cluster formed and succeeds.
#[test]
fn the_cluster_init_script_forms_the_cluster_once() {
    let (Some(_), Some(_), Some(python)) = (system_tool("redis-server"), system_tool("redis-cli"), tool("python"))
    else {
        return;
    };
    let sets = [
        "deployment.name=cbt",
        "deployment.mode=cluster",
        "cluster.replicas_per_shard=0",
        "security.tls.enabled=false",
        "memory.active_defrag=false",
    ]
    .map(String::from);
    let config =
        redplate_config::load_str("", redplate_config::Format::Yaml, "<t>", Some(Environment::Production), &sets)
            .expect("loads")
            .config;
    let out = render(&input_for(&config, false));
    let conf = config_map_data(&python, &out, "cbt-config");
    let scripts = config_map_data(&python, &out, "cbt-scripts");
    let root = tempdir();
    let port = free_bus_port();
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let mut servers = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let r = pod_root(root.path(), &format!("cbt-{i}"), &conf, &scripts);
        run_script(&r, "init.sh");
        let c = std::fs::read_to_string(r.join("run/redis.conf")).expect("conf");
        assert!(c.contains("\ncluster-enabled yes\n") && c.contains("\ncluster-announce-hostname cbt-"), "{c}");
        servers.push(start_on("redis-server", &r.join("run/redis.conf"), ip, port));
    }
    let probe = ("probe", common::fake_password("probe"));
    for (ip, server) in ips.iter().zip(servers.iter_mut()) {
        wait_for(&format!("the node on {ip}"), || {
            assert!(server.0.try_wait().ok().flatten().is_none(), "the node on {ip} exited");
            cli_on(ip, port, Some((probe.0, &probe.1)), &["ping"]) == "PONG"
        });
    }
    // The Job's pod: node names stand for the three addresses.
    let j = pod_root(root.path(), "cbt-cluster-init", &conf, &scripts);
    let script = j.join("scripts/cluster-init.sh");
    for (i, ip) in ips.iter().enumerate() {
        edit(&script, &format!("cbt-{i}.cbt-headless.redis.svc.cluster.local"), ip);
    }
    edit(&script, "-p 6379", &format!("-p {port}"));
    edit(&script, ":6379\"", &format!(":{port}\""));
    edit(&script, "ip=\"$(getent hosts \"$host\" | cut -d' ' -f1 | head -n 1)\"", "ip=\"$host\"");
    run_script(&j, "cluster-init.sh");
    let exporter = ("exporter", common::fake_password("exporter"));
    wait_for("the cluster to be ok", || {
        cli(port, Some((exporter.0, &exporter.1)), &["cluster", "info"]).contains("cluster_state:ok")
    });
    // Idempotent: a second run (a Job retry, a re-apply) changes nothing.
    run_script(&j, "cluster-init.sh");
    let info = cli(port, Some((exporter.0, &exporter.1)), &["cluster", "info"]);
    assert!(info.contains("cluster_slots_assigned:16384") && info.contains("cluster_known_nodes:3"), "{info}");

    // Every pod restarts at once with a new IP: init.sh points nodes.conf at
    // the current address of each announced host name (a `getent` shim
    // stands for the cluster DNS), and the cluster finds itself again.
    drop(servers);
    let mut servers = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let r = root.path().join(format!("cbt-{i}"));
        let nodes = r.join("data/nodes.conf");
        let text = std::fs::read_to_string(&nodes).expect("nodes.conf");
        assert!(text.contains(",cbt-0.cbt-headless.redis.svc.cluster.local"), "{text}");
        std::fs::write(&nodes, text.replace("127.0.0.", "10.255.0.")).expect("write nodes.conf");
        let mut shim = String::from("#!/bin/sh\ncase \"$2\" in\n");
        for (j, ip) in ips.iter().enumerate() {
            shim.push_str(&format!("  cbt-{j}.cbt-headless.redis.svc.cluster.local) echo \"{ip}       $2\" ;;\n"));
        }
        shim.push_str("  *) exit 2 ;;\nesac\n");
        std::fs::write(r.join("bin/getent"), shim).expect("shim");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(r.join("bin/getent"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        run_script(&r, "init.sh");
        let fixed = std::fs::read_to_string(&nodes).expect("nodes.conf");
        assert!(!fixed.contains("10.255.0."), "{fixed}");
        servers.push(start_on("redis-server", &r.join("run/redis.conf"), ip, port));
    }
    for ip in ips {
        wait_for(&format!("the restarted node on {ip} to reach every node at its new address"), || {
            let repl = ("replication", common::fake_password("replication"));
            let nodes = cli_on(ip, port, Some((repl.0, &repl.1)), &["cluster", "nodes"]);
            let lines: Vec<&str> = nodes.lines().collect();
            lines.len() == 3
                && lines.iter().all(|l| l.contains(" 127.0.0.") && l.contains(" connected") && !l.contains("fail"))
                && cli_on(ip, port, Some((exporter.0, &exporter.1)), &["cluster", "info"]).contains("cluster_state:ok")
        });
    }
    drop(servers);
}
