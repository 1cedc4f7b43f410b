//! TLS for the gateway: a given certificate, or one generated and kept in the data directory.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.display().to_string(), source }
}

/// Writes a self-signed certificate for localhost (and this machine's loopback addresses) with
/// its key (mode 0600), unless both files exist already.
pub fn ensure_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    if cert_path.exists() && key_path.exists() {
        return Ok(());
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Invalid(format!("generating a certificate: {e}")))?;
    write_private(key_path, certified.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(io(cert_path))?;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).and_then(|mut f| f.write_all(data)).map_err(io(path))
}

pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert_path).map_err(io(cert_path))?))
            .collect::<Result<_, _>>()
            .map_err(io(cert_path))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(format!("{} holds no PEM certificate", cert_path.display())));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key_path).map_err(io(key_path))?))
            .map_err(io(key_path))?
            .ok_or_else(|| TlsError::Invalid(format!("{} holds no PEM private key", key_path.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Invalid(format!("certificate and key do not fit together: {e}")))?;
    Ok(Arc::new(config))
}
