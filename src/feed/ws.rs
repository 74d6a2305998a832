//! Opening a market-data WebSocket: DNS, TCP, TLS and the WebSocket
//! handshake, all blocking with timeouts, on the connector thread. The hot
//! thread only ever gets a connected socket, already switched to
//! non-blocking, and reads it through tungstenite.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use crate::feed::endpoint::Url;
use crate::feed::tls::{TlsError, TlsStream};

/// The socket under the WebSocket: plain TCP for `ws://`, TLS for `wss://`.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket, to register with `mio` and switch modes.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connected market-data WebSocket.
pub type Ws = WebSocket<Stream>;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}; check the host name and DNS")]
    Resolve { host: String, source: io::Error },
    #[error("TCP connect to {addr} failed: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("TLS with {host} failed: {source}")]
    Tls { host: String, source: TlsError },
    #[error("WebSocket handshake with {url} refused: HTTP {status}{}", retry_after.map(|s| format!(" (Retry-After {s} s)")).unwrap_or_default())]
    Refused { url: String, status: u16, retry_after: Option<u64> },
    #[error("WebSocket handshake with {url} failed: {message}")]
    Handshake { url: String, message: String },
    #[error("cannot switch the socket to non-blocking: {0}")]
    Mode(io::Error),
}

impl ConnectError {
    /// Seconds the server asked us to wait (HTTP 418/429 `Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ConnectError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Frames up to 8 MiB: a 5000-level snapshot-sized message fits with room.
///
/// Reads of 16 KiB. tungstenite zero-fills its read window before every
/// `read` call, and the hot thread calls `read` every turn, so the window
/// is a per-turn cost (the 128 KiB default would be a 128 KiB memset per
/// turn; 16 KiB is a few hundred ns). The window is also the read buffer's
/// starting size: Binance diff frames are 1-10 KiB, so it is allocated once;
/// a bigger frame doubles the buffer once (one allocation) and it stays that
/// size, since each frame's payload is dropped before the next read and the
/// buffer reclaims its space.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20))
        .read_buffer_size(16 << 10)
        .write_buffer_size(0)
}

/// Connects to `url` (ws or wss) and returns a non-blocking WebSocket.
/// `timeout` bounds TCP, TLS and the handshake together (one deadline);
/// DNS resolution uses the system resolver's own timeouts.
pub fn connect(url: &Url, timeout: Duration, tls: &Arc<rustls::ClientConfig>) -> Result<Ws, ConnectError> {
    let deadline = std::time::Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(std::time::Instant::now()).max(Duration::from_millis(1));
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|source| ConnectError::Resolve { host: url.host.clone(), source })?;
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        if std::time::Instant::now() >= deadline {
            break;
        }
        match TcpStream::connect_timeout(&addr, left()) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(source) => last = Some(ConnectError::Tcp { addr: addr.to_string(), source }),
        }
    }
    let tcp = match tcp {
        Some(t) => t,
        None => {
            return Err(last.unwrap_or_else(|| ConnectError::Resolve {
                host: url.host.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
            }))
        }
    };
    // Small frames must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(left())).map_err(ConnectError::Mode)?;
    tcp.set_write_timeout(Some(left())).map_err(ConnectError::Mode)?;
    let stream = if url.tls {
        let s = TlsStream::connect(&url.host, tcp, tls.clone())
            .map_err(|source| ConnectError::Tls { host: url.host.clone(), source })?;
        Stream::Tls(Box::new(s))
    } else {
        Stream::Plain(tcp)
    };
    let request = url.to_string();
    stream.tcp().set_read_timeout(Some(left())).map_err(ConnectError::Mode)?;
    stream.tcp().set_write_timeout(Some(left())).map_err(ConnectError::Mode)?;
    let (ws, _response) = tungstenite::client::client_with_config(request.as_str(), stream, Some(ws_config()))
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => ConnectError::Refused {
                url: request.clone(),
                status: resp.status().as_u16(),
                retry_after: resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
            },
            tungstenite::HandshakeError::Failure(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                ConnectError::Handshake {
                    url: request.clone(),
                    message: format!("no answer within {:.1} s (connect_timeout_ms)", timeout.as_secs_f64()),
                }
            }
            tungstenite::HandshakeError::Interrupted(_) => ConnectError::Handshake {
                url: request.clone(),
                message: format!("no answer within {:.1} s (connect_timeout_ms)", timeout.as_secs_f64()),
            },
            other => ConnectError::Handshake { url: request.clone(), message: other.to_string() },
        })?;
    let tcp = ws.get_ref().tcp();
    tcp.set_read_timeout(None).map_err(ConnectError::Mode)?;
    tcp.set_write_timeout(None).map_err(ConnectError::Mode)?;
    tcp.set_nonblocking(true).map_err(ConnectError::Mode)?;
    Ok(ws)
}
