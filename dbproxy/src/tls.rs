//! Upstream TLS (rustls, ring provider): certificate chain and host-name verification
//! against the target's CA bundle; the server certificate's SHA-256 is recorded.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::event::{sha256_hex, Obj};
use crate::relay::RelayError;

/// What the `upstream.tls` object of `db.open` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: String,
    /// Cipher suite name.
    pub cipher: String,
    /// Lowercase hex SHA-256 of the server's end-entity certificate (DER).
    pub cert_sha256: String,
}

impl TlsInfo {
    /// As the `tls` object (SPEC §11).
    pub fn obj(&self) -> Obj {
        let mut o = Obj::new();
        o.str("version", &self.version)
            .str("cipher", &self.cipher)
            .str("cert_sha256", &self.cert_sha256)
            .bool("verified", true);
        o
    }
}

/// A client configuration trusting only the CA certificates in `ca_file` (PEM).
///
/// # Errors
/// [`RelayError::Tls`] naming the file when it cannot be read or holds no certificate.
pub fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, RelayError> {
    let bad = |m: String| RelayError::Tls(format!("{}: {m}", ca_file.display()));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))?;
    for c in certs {
        let c = c.map_err(|e| bad(e.to_string()))?;
        roots.add(c).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no CA certificate".into()));
    }
    let cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| RelayError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// TLS handshake over `tcp` verifying `server_name`.
///
/// # Errors
/// [`RelayError::Tls`] with rustls' reason (unknown CA, name mismatch, …).
pub async fn connect(
    cfg: Arc<ClientConfig>,
    server_name: &str,
    tcp: TcpStream,
) -> Result<(TlsStream<TcpStream>, TlsInfo), RelayError> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| RelayError::Tls(format!("server name {server_name:?}: {e}")))?;
    let s = TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| RelayError::Tls(e.to_string()))?;
    let (_, c) = s.get_ref();
    let info = TlsInfo {
        version: c
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher: c
            .negotiated_cipher_suite()
            .map(|v| format!("{:?}", v.suite()))
            .unwrap_or_default(),
        cert_sha256: c
            .peer_certificates()
            .and_then(|v| v.first())
            .map(|d| sha256_hex(d.as_ref()))
            .unwrap_or_default(),
    };
    Ok((s, info))
}
