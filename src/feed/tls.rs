//! TLS client stream for `wss://` (temporary buffered rustls version; the
//! allocation-free one replaces it).

use std::io::{self, Read, Write};
use std::sync::Arc;

/// Why a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("TLS I/O error during the handshake: {0}")]
    Io(#[from] io::Error),
}

/// webpki roots, ring provider, TLS 1.2 + 1.3.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS client over any Read + Write socket.
pub struct TlsStream<S: Read + Write> {
    inner: rustls::StreamOwned<rustls::ClientConnection, S>,
}

impl<S: Read + Write> TlsStream<S> {
    pub fn connect(server_name: &str, mut sock: S, config: Arc<rustls::ClientConfig>) -> Result<Self, TlsError> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| TlsError::Handshake(e.to_string()))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(Self { inner: rustls::StreamOwned::new(conn, sock) })
    }

    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
