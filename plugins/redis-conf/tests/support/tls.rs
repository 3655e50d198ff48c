//! A throwaway CA and one node certificate (for 127.0.0.1 and localhost,
//! server and client use) made with `openssl`.

use std::path::Path;
use std::process::Command;

/// Absolute paths of the PEM files.
#[derive(Debug, Clone)]
pub struct Files {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

const CNF: &str = "[req]
distinguished_name = dn
prompt = no
[dn]
CN = redplate-test
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_node]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn generate(dir: &Path) -> Files {
    std::fs::create_dir_all(dir).expect("mkdir tls");
    std::fs::write(dir.join("openssl.cnf"), CNF).expect("write openssl.cnf");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "v3_ca", "-days", "2"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=redplate test ca"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-config", "openssl.cnf"];
    csr.extend(ec);
    csr.extend(["-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=localhost"]);
    openssl(dir, &csr);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "v3_node",
            "-out",
            "node.crt",
        ],
    );
    let abs = |f: &str| dir.join(f).to_string_lossy().into_owned();
    Files { ca: abs("ca.crt"), cert: abs("node.crt"), key: abs("node.key") }
}
