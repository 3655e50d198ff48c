//! A local certificate authority and one node certificate (for 127.0.0.1 and
//! `localhost`, server and client use), made with `rcgen` in the process, so
//! templates that ask for TLS deploy locally as they are. Local use only:
//! the keys stay in the state folder with mode 0600.

use crate::backend::BackendError;
use crate::registry::{TlsFiles, write_atomic};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use std::path::Path;

/// How long the certificates are valid (what browsers accept for a server
/// certificate; a deployment that lives longer gets new ones by a redeploy).
const VALID_DAYS: i64 = 825;

/// Makes (or reuses) `dir/{ca.crt,ca.key,tls.crt,tls.key}`; keys are 0600.
pub fn ensure(dir: &Path) -> Result<TlsFiles, BackendError> {
    ensure_for(dir, &[])
}

/// [`ensure`], with the node certificate also naming `hosts` (the Compose
/// backend's service names, which the containers reach each other by).
pub fn ensure_for(dir: &Path, hosts: &[String]) -> Result<TlsFiles, BackendError> {
    let files = TlsFiles { cert_file: dir.join("tls.crt"), key_file: dir.join("tls.key"), ca_file: dir.join("ca.crt") };
    if files.cert_file.exists() && files.key_file.exists() && files.ca_file.exists() {
        return Ok(files);
    }
    let certificate = |source| BackendError::Certificate { source };
    let now = time::OffsetDateTime::now_utc();
    let validity = |params: &mut CertificateParams| -> Result<(), BackendError> {
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(VALID_DAYS);
        params.serial_number = Some(serial()?);
        Ok(())
    };

    let ca_key = KeyPair::generate().map_err(certificate)?;
    let mut ca = CertificateParams::new(Vec::new()).map_err(certificate)?;
    ca.distinguished_name.push(DnType::CommonName, "redplate local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(certificate)?;
    let issuer = Issuer::new(ca, ca_key);

    let node_key = KeyPair::generate().map_err(certificate)?;
    // SAN IP:127.0.0.1 and DNS:localhost (and the hosts asked for).
    let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    names.extend(hosts.iter().cloned());
    let mut node = CertificateParams::new(names).map_err(certificate)?;
    node.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    node.is_ca = IsCa::ExplicitNoCa;
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    node.use_authority_key_identifier_extension = true;
    validity(&mut node)?;
    let node_cert = node.signed_by(&node_key, &issuer).map_err(certificate)?;

    // Keys first, the CA certificate last: `ensure` reuses the set only when all three exist.
    write_atomic(&dir.join("ca.key"), issuer.key().serialize_pem().as_bytes(), true)?;
    write_atomic(&files.key_file, node_key.serialize_pem().as_bytes(), true)?;
    write_atomic(&files.cert_file, node_cert.pem().as_bytes(), false)?;
    write_atomic(&files.ca_file, ca_cert.pem().as_bytes(), false)?;
    Ok(files)
}

/// A random positive 64-bit serial number.
fn serial() -> Result<SerialNumber, BackendError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| BackendError::Io {
        action: "draw random bytes for",
        path: "a certificate serial number".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificates_are_made_once_with_private_keys() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = ensure(tmp.path()).expect("certificates");
        let cert = std::fs::read_to_string(&files.cert_file).expect("cert");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        #[cfg(unix)]
        for key in [tmp.path().join("ca.key"), files.key_file.clone()] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        ensure(tmp.path()).expect("again");
        assert_eq!(std::fs::read_to_string(&files.cert_file).expect("cert"), cert, "kept, not made again");
    }
}
