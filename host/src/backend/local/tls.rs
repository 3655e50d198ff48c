//! A local certificate authority and one node certificate (for 127.0.0.1 and
//! `localhost`, server and client use) made with `openssl`, so templates that
//! ask for TLS deploy locally as they are. Local use only: the CA key stays
//! in the state folder with mode 0600.

use super::cli::run_with_deadline;
use crate::backend::BackendError;
use crate::registry::TlsFiles;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Makes (or reuses) `dir/{ca.crt,tls.crt,tls.key}`.
pub fn ensure(dir: &Path) -> Result<TlsFiles, BackendError> {
    let files = TlsFiles { cert_file: dir.join("tls.crt"), key_file: dir.join("tls.key"), ca_file: dir.join("ca.crt") };
    if files.cert_file.exists() && files.key_file.exists() && files.ca_file.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(BackendError::io("create", dir))?;
    let ext = dir.join("node.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(BackendError::io("write", &ext))?;
    let serial = format!("0x{}", &super::files::random_password()?[..16]);
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "825",
            "-subj",
            "/CN=redplate local CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-out",
            "tls.crt",
            "-days",
            "825",
            "-extfile",
            "node.ext",
        ],
    ];
    for args in steps {
        let mut cmd = Command::new("openssl");
        cmd.args(args).current_dir(dir);
        let out = run_with_deadline(cmd, Duration::from_secs(30))?;
        let output = args.iter().position(|a| *a == "-out").and_then(|i| args.get(i + 1)).unwrap_or(&"");
        if !dir.join(output).is_file() {
            return Err(BackendError::Command {
                node: "openssl".into(),
                command: format!("openssl {}", args[0]),
                message: out.trim().to_owned(),
            });
        }
    }
    #[cfg(unix)]
    for key in ["ca.key", "tls.key"] {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(BackendError::io("chmod", &path))?;
    }
    Ok(files)
}
