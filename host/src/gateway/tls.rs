//! TLS for the gateway: its listening side with the deployment's server
//! certificate (clients must present a certificate from the deployment's CA
//! when the deployment asks Redis to check them), and its connections to
//! TLS-only nodes with the deployment's CA and client certificate.

use crate::client::TlsFiles;
use redplate_config::model::ClientAuth;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let all: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from `{}`: {e}", path.display()))?
        .collect();
    let all = all.map_err(|e| format!("cannot read certificates from `{}`: {e}", path.display()))?;
    if all.is_empty() {
        return Err(format!("`{}` holds no certificate", path.display()));
    }
    Ok(all)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("cannot read the private key `{}`: {e}", path.display()))
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| format!("the CA `{}` is not usable: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// The listening side; client certificates as the deployment asks Redis
/// to check them (`tls-auth-clients`).
pub fn acceptor(files: &TlsFiles, clients: ClientAuth) -> Result<TlsAcceptor, String> {
    let builder = rustls::ServerConfig::builder();
    let builder = if clients == ClientAuth::None {
        builder.with_no_client_auth()
    } else {
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots(&files.ca_file)?));
        let verifier = if clients == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
        let verifier = verifier.build().map_err(|e| format!("cannot check client certificates: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(certs(&files.cert_file)?, key(&files.key_file)?)
        .map_err(|e| format!("the certificate `{}` is not usable: {e}", files.cert_file.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts one TLS connection.
pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream) -> std::io::Result<server::TlsStream<TcpStream>> {
    acceptor.accept(tcp).await
}

/// The connecting side (to TLS-only Redis nodes).
pub struct Client {
    connector: TlsConnector,
}

impl Client {
    pub fn new(files: &TlsFiles) -> Result<Client, String> {
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots(&files.ca_file)?)
            .with_client_auth_cert(certs(&files.cert_file)?, key(&files.key_file)?)
            .map_err(|e| format!("the client certificate `{}` is not usable: {e}", files.cert_file.display()))?;
        Ok(Client { connector: TlsConnector::from(Arc::new(config)) })
    }

    pub async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        self.connector.connect(name, tcp).await
    }
}
