//! Rules about what a Kubernetes API server checks and `kubernetes-validate`
//! does not: the syntax and lengths of label keys and values, annotation
//! keys and their total size, and the names of objects the manifests refer
//! to (Secrets, claims, classes, issuers). Also Prometheus' alert label names.
//! Values are shown escaped, so a control or right-to-left character is
//! visible in the message.

use super::err;
use crate::diagnostic::Diagnostic;
use crate::model::{BackupDestination, Config, SecretSource};
use crate::source::child_pointer;
use std::collections::BTreeMap;

/// The API server's limit on the keys and values of one object's annotations.
const ANNOTATIONS_MAX: usize = 256 * 1024;

const LABEL_HINT: &str = "use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit";
const KEY_HINT: &str =
    "use `name` or `prefix/name`: a name as a label value (not empty), a prefix as a lowercase DNS name";
const NAME_HINT: &str =
    "use lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters";

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    labels(c, out);
    annotations(c, out);
    names(c, out);
    alert_labels(c, out);
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label value: empty, or a label name.
pub(crate) fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// A DNS-1123 subdomain: what most Kubernetes object names must be.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A label or annotation key: `name` or `prefix/name`.
pub(crate) fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

/// A key of a Secret or ConfigMap.
fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && !s.starts_with("..")
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

fn bad_label(pointer: String, message: String, hint: &str, out: &mut Vec<Diagnostic>) {
    out.push(err("kubernetes.invalid-label", &pointer, message, hint));
}

fn labels(c: &Config, out: &mut Vec<Diagnostic>) {
    let d = &c.deployment;
    let k = &c.kubernetes;
    if !is_label_value(&d.owner) {
        bad_label(
            "/deployment/owner".into(),
            format!(
                "`deployment.owner` `{}` is not a Kubernetes label value (it labels every object)",
                shown(&d.owner)
            ),
            LABEL_HINT,
            out,
        );
    }
    let maps: [(&BTreeMap<String, String>, &str); 3] = [
        (&d.labels, "/deployment/labels"),
        (&k.labels, "/kubernetes/labels"),
        (&k.node_selector, "/kubernetes/node_selector"),
    ];
    for (map, parent) in maps {
        let field = parent.trim_start_matches('/').replace('/', ".");
        for (key, value) in map {
            let pointer = child_pointer(parent, key);
            if !is_qualified_name(key) {
                bad_label(pointer.clone(), format!("`{field}` key `{}` is not a label key", shown(key)), KEY_HINT, out);
            }
            if !is_label_value(value) {
                bad_label(
                    pointer,
                    format!("`{field}` value `{}` of `{}` is not a label value", shown(value), shown(key)),
                    LABEL_HINT,
                    out,
                );
            }
        }
    }
    if !is_qualified_name(&k.topology_key) {
        bad_label(
            "/kubernetes/topology_key".into(),
            format!("`kubernetes.topology_key` `{}` is not a label key", shown(&k.topology_key)),
            "use a node label such as `kubernetes.io/hostname` or `topology.kubernetes.io/zone`",
            out,
        );
    }
}

fn annotations(c: &Config, out: &mut Vec<Diagnostic>) {
    let k = &c.kubernetes;
    for key in k.annotations.keys() {
        if !is_qualified_name(key) {
            out.push(err(
                "kubernetes.invalid-annotation",
                &child_pointer("/kubernetes/annotations", key),
                format!("`kubernetes.annotations` key `{}` is not an annotation key", shown(key)),
                KEY_HINT,
            ));
        }
    }
    // `deployment.description` is copied into an annotation of every object.
    let description = if c.deployment.description.is_empty() { 0 } else { 23 + c.deployment.description.len() };
    let size = description + k.annotations.iter().map(|(a, b)| a.len() + b.len()).sum::<usize>();
    if size > ANNOTATIONS_MAX {
        out.push(err(
            "kubernetes.invalid-annotation",
            if k.annotations.is_empty() { "/deployment/description" } else { "/kubernetes/annotations" },
            format!("the annotations of every object would hold {size} bytes, more than the API server's 262144"),
            "shorten `kubernetes.annotations` and `deployment.description`",
        ));
    }
}

fn bad_name(pointer: &str, what: &str, value: &str, out: &mut Vec<Diagnostic>) {
    out.push(err(
        "kubernetes.invalid-name",
        pointer,
        format!("{what} `{}` is not a Kubernetes object name", shown(value)),
        NAME_HINT,
    ));
}

fn secret_ref(source: Option<&SecretSource>, pointer: &str, out: &mut Vec<Diagnostic>) {
    let Some(SecretSource::Secret(r)) = source else { return };
    let pointer = child_pointer(pointer, "secret");
    if !is_dns_subdomain(&r.name) {
        bad_name(&child_pointer(&pointer, "name"), "secret", &r.name, out);
    }
    if !is_secret_key(&r.key) {
        out.push(err(
            "kubernetes.invalid-name",
            &child_pointer(&pointer, "key"),
            format!("secret key `{}` is not a key a Secret can hold", shown(&r.key)),
            "use letters, digits, `-`, `_` and `.`, at most 253 characters",
        ));
    }
}

fn names(c: &Config, out: &mut Vec<Diagnostic>) {
    let k = &c.kubernetes;
    let tls = &c.security.tls;
    let optional = [
        (&k.service_account, "/kubernetes/service_account", "service account"),
        (&k.priority_class, "/kubernetes/priority_class", "priority class"),
        (&k.storage_class, "/kubernetes/storage_class", "storage class"),
        (&tls.secret_name, "/security/tls/secret_name", "TLS secret"),
        (&tls.issuer, "/security/tls/issuer", "cert-manager issuer"),
    ];
    for (value, pointer, what) in optional {
        if !value.is_empty() && !is_dns_subdomain(value) {
            bad_name(pointer, what, value, out);
        }
    }
    if !is_dns_subdomain(&k.cluster_domain) {
        bad_name("/kubernetes/cluster_domain", "cluster domain", &k.cluster_domain, out);
    }
    for (i, s) in k.image_pull_secrets.iter().enumerate() {
        if !is_dns_subdomain(s) {
            bad_name(&format!("/kubernetes/image_pull_secrets/{i}"), "image pull secret", s, out);
        }
    }
    if let BackupDestination::Pvc(claim) = &c.backup.destination
        && !is_dns_subdomain(claim)
    {
        bad_name("/backup/destination/pvc", "volume claim", claim, out);
    }
    secret_ref(c.security.password.as_ref(), "/security/password", out);
    for (i, u) in c.security.users.iter().enumerate() {
        secret_ref(u.password.as_ref(), &format!("/security/users/{i}/password"), out);
    }
    secret_ref(c.backup.encryption.key.as_ref(), "/backup/encryption/key", out);
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, `__` reserved.
fn alert_labels(c: &Config, out: &mut Vec<Diagnostic>) {
    for key in c.monitoring.alerts.labels.keys() {
        let ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !key.starts_with("__");
        if !ok {
            out.push(err(
                "monitoring.invalid-alert-label",
                &child_pointer("/monitoring/alerts/labels", key),
                format!("alert label `{}` is not a Prometheus label name", shown(key)),
                "use letters, digits and `_`, not starting with a digit or `__`",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_syntax() {
        for ok in ["", "a", "team-payments", "A.b_c-9", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "tëam", "team\u{202e}x", "a\tb", &"x".repeat(64)] {
            assert!(!is_label_value(bad), "{bad}");
        }
        for ok in ["app", "redplate.io/owner", "kubernetes.io/hostname", "topology.kubernetes.io/zone"] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "Example.com/a", "a/b/c", "a..b/c"] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
        for ok in ["redis-auth", "a.b-c", "1abc"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["", "Redis", "a_b", "-a", "a.", &"a".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
        assert!(is_secret_key("tls.crt") && is_secret_key("PASSWORD_1"));
        assert!(!is_secret_key("..data") && !is_secret_key("a/b") && !is_secret_key("."));
    }
}
