//! Rules about the deployment, its mode, replication, Sentinel and Cluster.

use super::{err, warn};
use crate::diagnostic::Diagnostic;
use crate::load::Resolved;
use crate::model::{Config, Environment, Mode};
use crate::units::Duration;

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    deployment(c, out);
    replication_limits(c, out);
    match c.deployment.mode {
        Mode::Cluster => cluster(c, out),
        Mode::Sentinel => {
            sentinel(c, out);
            replication(c, out);
        }
        Mode::Replication => replication(c, out),
        Mode::Standalone => {
            if c.replication.replicas > 0 {
                out.push(warn(
                    "replication.ignored",
                    "/replication/replicas",
                    format!(
                        "`replication.replicas` is {} but mode `standalone` runs no replicas",
                        c.replication.replicas
                    ),
                    "set `deployment.mode: replication` or `sentinel`, or `replication.replicas: 0`",
                ));
            }
        }
    }
}

/// Whether `name` is an RFC 1123 DNS label.
pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn deployment(c: &Config, out: &mut Vec<Diagnostic>) {
    let d = &c.deployment;
    if !is_dns_label(&d.name) || d.name.len() > 40 || d.name.starts_with(|ch: char| ch.is_ascii_digit()) {
        out.push(err(
            "deployment.invalid-name",
            "/deployment/name",
            format!("deployment name `{}` is not a lowercase DNS label of at most 40 characters", d.name),
            "use lowercase letters, digits and `-`, starting with a letter, e.g. `orders-cache`",
        ));
    }
    let parts: Vec<Option<u32>> = d.redis_version.split('.').map(|p| p.parse().ok()).collect();
    let ok = match parts.as_slice() {
        [Some(major), Some(minor)] | [Some(major), Some(minor), Some(_)] => (*major, *minor) >= (6, 2),
        _ => false,
    };
    if !ok {
        out.push(err(
            "deployment.unsupported-version",
            "/deployment/redis_version",
            format!("redis version `{}` is not supported", d.redis_version),
            "use 6.2 or later as `major.minor` or `major.minor.patch`, e.g. `7.4`",
        ));
    }
    if d.image_tag == "latest" || d.image.ends_with(":latest") {
        out.push(warn(
            "deployment.unpinned-image",
            if d.image_tag == "latest" { "/deployment/image_tag" } else { "/deployment/image" },
            "the redis image is not pinned (`latest`)".to_string(),
            "leave `image_tag` empty to use the Redis version, or pin a tag",
        ));
    }
    images(c, out);
}

/// Whether `s` is `sha256:` and 64 lowercase hex digits.
fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Digests are well formed; production images are pinned by one.
fn images(c: &Config, out: &mut Vec<Diagnostic>) {
    let d = &c.deployment;
    let m = &c.monitoring;
    let tag = if d.image_tag.is_empty() { &d.redis_version } else { &d.image_tag };
    let redis = if d.image.contains('@') { d.image.clone() } else { format!("{}:{tag}", d.image) };
    let images = [
        ("redis", &redis, "/deployment/image_digest", &d.image_digest, true),
        ("exporter", &m.exporter_image, "/monitoring/exporter_image_digest", &m.exporter_image_digest, m.exporter),
    ];
    for (what, image, digest_ptr, digest, used) in images {
        if !digest.is_empty() && !is_digest(digest) {
            out.push(err(
                "deployment.invalid-image-digest",
                digest_ptr,
                format!("the {what} image digest `{}` is not `sha256:` and 64 hex digits", digest.escape_debug()),
                "copy the digest from `docker buildx imagetools inspect <image>:<tag>`",
            ));
        } else if !digest.is_empty() && image.contains('@') {
            out.push(err(
                "deployment.invalid-image-digest",
                digest_ptr,
                format!("the {what} image `{image}` already names a digest, and a second one is given"),
                "keep the digest in one place: remove it from the image, or leave the digest field empty",
            ));
        }
        if used && c.deployment.environment == Environment::Production && digest.is_empty() && !image.contains('@') {
            out.push(warn(
                "deployment.image-not-digest-pinned",
                digest_ptr,
                format!(
                    "the production {what} image `{image}` is pinned by tag only: a tag can be moved to other content"
                ),
                format!(
                    "set `{}` to the image's digest (`sha256:…`); the production preset shows how",
                    digest_ptr.trim_start_matches('/').replace('/', ".")
                ),
            ));
        }
    }
}

/// A digest pins one image. When the image (version, repository or tag) is
/// chosen in another layer than its digest — a template over the preset's
/// digest, a `--set` over the file's — the digest would silently pull the
/// image it was written for.
pub(super) fn stale_digests(resolved: &Resolved, out: &mut Vec<Diagnostic>) {
    let preset = resolved.preset.and_then(|env| crate::presets::tree(env).ok());
    let pairs: [(&str, &[&str]); 2] = [
        ("/deployment/image_digest", &["/deployment/redis_version", "/deployment/image", "/deployment/image_tag"]),
        ("/monitoring/exporter_image_digest", &["/monitoring/exporter_image"]),
    ];
    let field = |p: &str| p.trim_start_matches('/').replace('/', ".");
    for (digest, images) in pairs {
        let pinned = resolved.value.pointer(digest).and_then(serde_json::Value::as_str).is_some_and(|d| !d.is_empty());
        let Some(digest_at) = resolved.sources.get(digest).filter(|_| pinned) else { continue };
        for image in images {
            let Some(image_at) = resolved.sources.get(image) else { continue };
            let kept_from_preset =
                preset.as_ref().is_some_and(|t| t.value.pointer(image) == resolved.value.pointer(image));
            if image_at.file == digest_at.file || kept_from_preset {
                continue;
            }
            out.push(warn(
                "deployment.stale-image-digest",
                image,
                format!(
                    "`{}` is chosen in {}, but `{}` comes from {} and pins the image chosen there",
                    field(image),
                    image_at.file,
                    field(digest),
                    digest_at.file
                ),
                "set the digest of the image you chose next to it, or `\"\"` to pin it by tag only",
            ));
            break;
        }
    }
}

fn cluster(c: &Config, out: &mut Vec<Diagnostic>) {
    let k = &c.cluster;
    if k.shards < 3 {
        out.push(err(
            "cluster.too-few-masters",
            "/cluster/shards",
            format!("a redis cluster needs at least 3 masters, `cluster.shards` is {}", k.shards),
            "set `cluster.shards` to 3 or more, or use `deployment.mode: sentinel`",
        ));
    }
    if k.shards > 16 {
        out.push(err(
            "cluster.too-many-shards",
            "/cluster/shards",
            format!("`cluster.shards` is {}, more than the 16 supported", k.shards),
            "use at most 16 shards, or split the data over several deployments",
        ));
    }
    if k.replicas_per_shard > 3 {
        out.push(err(
            "cluster.too-many-replicas",
            "/cluster/replicas_per_shard",
            format!("`cluster.replicas_per_shard` is {}, more than 3", k.replicas_per_shard),
            "use 0 to 3 replicas per shard",
        ));
    }
    if k.replicas_per_shard == 0 && c.deployment.environment == Environment::Production {
        out.push(warn(
            "cluster.no-replicas",
            "/cluster/replicas_per_shard",
            "production cluster shards have no replicas: losing a node loses its slots".to_string(),
            "set `cluster.replicas_per_shard: 1` or more",
        ));
    }
    if k.require_full_coverage && c.deployment.environment == Environment::Production {
        out.push(warn(
            "cluster.full-coverage",
            "/cluster/require_full_coverage",
            "`cluster.require_full_coverage` stops the whole cluster when one shard is down".to_string(),
            "set `cluster.require_full_coverage: false` so healthy shards keep serving",
        ));
    }
    if k.node_timeout < Duration::secs(1) {
        // Redis accepts 0 and then marks every node failed at once.
        out.push(err(
            "cluster.node-timeout-too-short",
            "/cluster/node_timeout",
            format!("`cluster.node_timeout` is {}: nodes would be marked failed between two pings", k.node_timeout),
            "use about `15s`, and never under `1s`",
        ));
    } else if k.node_timeout > Duration::secs(120) {
        out.push(warn(
            "cluster.node-timeout",
            "/cluster/node_timeout",
            format!("`cluster.node_timeout` is {}, above 120s", k.node_timeout),
            "use about `15s`: shorter fails over on blips, longer leaves slots down",
        ));
    }
    if k.allow_replica_migration
        && k.replicas_per_shard > 0
        && k.migration_barrier >= k.replicas_per_shard.saturating_add(1)
    {
        out.push(warn(
            "cluster.migration-barrier",
            "/cluster/migration_barrier",
            format!(
                "`cluster.migration_barrier` {} is not below the replicas per shard + 1 ({}): replicas never migrate",
                k.migration_barrier,
                k.replicas_per_shard + 1
            ),
            "use `migration_barrier: 1`",
        ));
    }
    if c.replication.min_replicas_to_write > k.replicas_per_shard {
        out.push(err(
            "replication.min-replicas-too-high",
            "/replication/min_replicas_to_write",
            format!(
                "`replication.min_replicas_to_write` is {} but each shard has {} replica(s): writes would be refused",
                c.replication.min_replicas_to_write, k.replicas_per_shard
            ),
            "lower `min_replicas_to_write` or raise `cluster.replicas_per_shard`",
        ));
    }
}

fn sentinel(c: &Config, out: &mut Vec<Diagnostic>) {
    let s = &c.sentinel;
    if s.sentinels < 3 {
        out.push(err(
            "sentinel.too-few",
            "/sentinel/sentinels",
            format!("`sentinel.sentinels` is {}: fewer than 3 sentinels cannot elect a leader safely", s.sentinels),
            "run 3 (or 5) sentinels",
        ));
    }
    if s.sentinels.is_multiple_of(2) {
        out.push(err(
            "sentinel.even-count",
            "/sentinel/sentinels",
            format!("`sentinel.sentinels` is {}, an even number: a split can leave no majority", s.sentinels),
            format!("use an odd number, e.g. {}", s.sentinels.saturating_add(1)),
        ));
    }
    let majority = s.sentinels / 2 + 1;
    if s.quorum > s.sentinels {
        out.push(err(
            "sentinel.quorum-too-high",
            "/sentinel/quorum",
            format!("`sentinel.quorum` {} exceeds the {} sentinels: no failover can ever start", s.quorum, s.sentinels),
            format!("set `sentinel.quorum: {majority}`"),
        ));
    } else if s.quorum < majority {
        out.push(warn(
            "sentinel.quorum-low",
            "/sentinel/quorum",
            format!("`sentinel.quorum` {} is below a majority of {} sentinels ({majority})", s.quorum, s.sentinels),
            format!("set `sentinel.quorum: {majority}` so a minority cannot declare the master down"),
        ));
    }
    if c.replication.replicas == 0 {
        out.push(err(
            "sentinel.no-replicas",
            "/replication/replicas",
            "mode `sentinel` with `replication.replicas: 0` has nothing to fail over to".to_string(),
            "set `replication.replicas: 2`",
        ));
    }
    for (value, pointer, key) in [
        (s.down_after, "/sentinel/down_after", "down_after"),
        (s.failover_timeout, "/sentinel/failover_timeout", "failover_timeout"),
    ] {
        if value.as_millis() == 0 {
            out.push(err(
                "sentinel.zero-timeout",
                pointer,
                format!("`sentinel.{key}` is 0: Sentinel refuses to start (\"negative or zero time parameter\")"),
                "use `down_after: 10s` and `failover_timeout: 180s`",
            ));
        }
    }
    if s.failover_timeout <= s.down_after {
        out.push(warn(
            "sentinel.failover-timeout",
            "/sentinel/failover_timeout",
            format!(
                "`sentinel.failover_timeout` ({}) is not longer than `down_after` ({})",
                s.failover_timeout, s.down_after
            ),
            "use a failover timeout of 60s to 180s",
        ));
    }
    if s.down_after < Duration::secs(1) && s.down_after.as_millis() > 0 {
        out.push(warn(
            "sentinel.down-after",
            "/sentinel/down_after",
            format!("`sentinel.down_after` is {}: any blip triggers a failover", s.down_after),
            "use 10s to 30s",
        ));
    }
    if s.parallel_syncs > c.replication.replicas.max(1) {
        out.push(warn(
            "replication.parallel-syncs",
            "/sentinel/parallel_syncs",
            format!("`sentinel.parallel_syncs` {} exceeds the {} replica(s)", s.parallel_syncs, c.replication.replicas),
            "use `parallel_syncs: 1` so replicas resync one at a time",
        ));
    }
}

/// Replication settings every Redis node reads, whatever the mode.
fn replication_limits(c: &Config, out: &mut Vec<Diagnostic>) {
    let r = &c.replication;
    if r.timeout < Duration::secs(1) {
        out.push(err(
            "replication.timeout-too-short",
            "/replication/timeout",
            format!("`replication.timeout` is {}: Redis refuses a `repl-timeout` under one second", r.timeout),
            "use about `60s` (above the 10s between pings to replicas)",
        ));
    }
    if r.backlog_size.0 == 0 {
        out.push(err(
            "replication.zero-backlog",
            "/replication/backlog_size",
            "`replication.backlog_size` is 0: Redis refuses to start with `repl-backlog-size 0`".to_string(),
            "use at least `1mb` (Redis raises anything under 16kb to 16kb)",
        ));
    }
}

fn replication(c: &Config, out: &mut Vec<Diagnostic>) {
    let r = &c.replication;
    if c.deployment.mode == Mode::Replication && r.replicas == 0 {
        out.push(err(
            "replication.no-replicas",
            "/replication/replicas",
            "mode `replication` with `replication.replicas: 0` runs no replicas".to_string(),
            "set `replication.replicas` to 1 or more, or use `deployment.mode: standalone`",
        ));
    }
    if r.min_replicas_to_write > r.replicas {
        out.push(err(
            "replication.min-replicas-too-high",
            "/replication/min_replicas_to_write",
            format!(
                "`replication.min_replicas_to_write` is {} but there are {} replica(s): the master would refuse every write",
                r.min_replicas_to_write, r.replicas
            ),
            format!("set `min_replicas_to_write` to at most {}", r.replicas),
        ));
    }
    if r.min_replicas_to_write > 0 && r.min_replicas_max_lag.as_millis() < 1000 {
        out.push(err(
            "replication.no-max-lag",
            "/replication/min_replicas_max_lag",
            format!("`replication.min_replicas_max_lag` is {}, under one second", r.min_replicas_max_lag),
            "use about `10s`",
        ));
    }
}
