//! A TLS client stream for the live feed whose read path allocates nothing.
//!
//! Why it exists: the hot thread reads Binance market data over `wss://` and
//! must not allocate after warm-up. rustls's usual stream (`ClientConnection`
//! inside `StreamOwned`) copies the plaintext of every received record into a
//! fresh `Vec` (`CommonState::take_received_plaintext`), and in rustls 0.23 the
//! unbuffered API does the same: `ReadTraffic::next_record` pops that `Vec`
//! (in-place decryption there is still a TODO).
//!
//! So [`TlsStream`] splits the work. rustls does what it is good at: the
//! handshake, certificate verification and the key schedule, driven through
//! [`UnbufferedClientConnection`]. Once the handshake is done the connection
//! is turned into a [`KernelConnection`] (rustls's API for kTLS, made for
//! exactly this: someone else runs the record layer, rustls keeps the
//! secrets), and this module runs the record layer itself:
//!
//! - Incoming bytes land in one fixed buffer ([`IN_CAP`], room for two of the
//!   largest records); each complete record is decrypted **in place** by the
//!   provider's [`MessageDecrypter`] and its plaintext is copied straight into
//!   the caller's buffer, keeping an offset into a partly consumed record.
//! - Post-handshake messages are parsed as a byte stream without buffering:
//!   TLS 1.3 NewSessionTicket is skipped (tickets are not stored, so TLS 1.3
//!   sessions are not resumed), KeyUpdate installs the next key (answering
//!   with our own KeyUpdate when asked), a TLS 1.2 HelloRequest is ignored.
//! - Writes are encrypted into a fixed outgoing buffer and sent as the socket
//!   accepts them; what a non-blocking socket refuses stays queued and goes
//!   out on the next write, flush or read.
//!
//! What allocates: the handshake ([`TlsStream::connect`]), a KeyUpdate (rustls
//! derives the next secret and the provider builds a boxed cipher; servers
//! send one after millions of records, if ever), every write (the provider's
//! `MessageEncrypter` returns an owned record, copied into the outgoing
//! buffer), and errors. Reading application data, alerts and tickets does not.

use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::kernel::KernelConnection;
use rustls::pki_types::{InvalidDnsNameError, ServerName};
use rustls::unbuffered::{ConnectionState, EncodeError, InsufficientSizeError, UnbufferedStatus};
use rustls::{
    AlertDescription, ClientConfig, ConnectionTrafficSecrets, ContentType, ProtocolVersion, RootCertStore,
    SupportedCipherSuite,
};

/// Bytes in a TLS record header: type, version, length.
const HEADER_LEN: usize = 5;
/// Largest plaintext in one record (RFC 8446 5.1, RFC 5246 6.2.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest TLS 1.3 record body: plaintext, content type, padding and tag (RFC 8446 5.2).
const MAX_CIPHERTEXT_TLS13: usize = MAX_PLAINTEXT + 256;
/// Largest TLS 1.2 record body (RFC 5246 6.2.3).
const MAX_CIPHERTEXT_TLS12: usize = MAX_PLAINTEXT + 2048;
/// Largest record on the wire, header included.
const MAX_RECORD: usize = HEADER_LEN + MAX_CIPHERTEXT_TLS12;
/// Incoming buffer: two of the largest records, so one socket read can bring
/// a whole record plus the start of the next and many small ones at once.
pub const IN_CAP: usize = 2 * MAX_RECORD;
/// Outgoing buffer: two of the largest records. Client writes are small
/// (subscriptions, pongs); a full buffer makes `write` return `WouldBlock`.
pub const OUT_CAP: usize = 2 * MAX_RECORD;
/// The handshake buffer may grow to this for a long certificate chain.
const MAX_HANDSHAKE_BUF: usize = 1 << 20;

/// Record content types (RFC 8446 5.1).
const CT_CHANGE_CIPHER_SPEC: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
/// Handshake message types seen after the handshake (RFC 8446 4, RFC 5246 7.4).
const HT_HELLO_REQUEST: u8 = 0;
const HT_NEW_SESSION_TICKET: u8 = 4;
const HT_KEY_UPDATE: u8 = 24;
/// The only record version allowed once TLS 1.2 or 1.3 is negotiated.
const RECORD_VERSION: u16 = 0x0303;

/// Why a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The host name given to [`TlsStream::connect`] is not a DNS name.
    #[error(
        "{name:?} is not a valid TLS server name ({source}); pass the bare host name, such as \"stream.binance.com\""
    )]
    ServerName {
        name: String,
        #[source]
        source: InvalidDnsNameError,
    },
    /// The config does not let rustls hand the session keys over.
    #[error(
        "the ClientConfig has enable_secret_extraction off, which TlsStream needs to run the record layer itself; \
         build the config with feed::tls::client_config()"
    )]
    SecretExtractionOff,
    /// rustls refused the handshake (certificate, protocol or alert).
    #[error(
        "TLS handshake failed: {0}; a certificate error usually means a wrong host name, a missing root \
         certificate or a wrong system clock"
    )]
    Handshake(#[source] rustls::Error),
    /// The socket timed out (or was non-blocking) during the handshake.
    #[error(
        "the TLS handshake timed out ({0}); the server did not answer within the socket timeout, or the socket \
         was non-blocking: connect needs a blocking socket with read/write timeouts"
    )]
    HandshakeTimeout(#[source] io::Error),
    /// The socket failed during the handshake.
    #[error("socket error during the TLS handshake: {0}; check the network and reconnect")]
    HandshakeIo(#[source] io::Error),
    /// The server hung up before the handshake finished.
    #[error(
        "the server closed the connection during the TLS handshake; check the host and port (is it a TLS server?)"
    )]
    ClosedDuringHandshake,
    /// The server answered with something that is not TLS.
    #[error(
        "the server did not answer with TLS (first bytes {0:02x?}); check the host and port, and that the \
         server speaks TLS there"
    )]
    NotTls([u8; 4]),
    /// A handshake message did not fit the largest buffer allowed.
    #[error(
        "a TLS handshake message needs more than {0} bytes of buffer; the server sent an absurd certificate chain"
    )]
    HandshakeTooLarge(usize),
    /// rustls could not hand the session over after the handshake.
    #[error("rustls could not hand the TLS session over after the handshake: {0}")]
    Takeover(#[source] rustls::Error),
    /// The negotiated cipher is one this record layer does not know.
    #[error(
        "the negotiated cipher suite {0:?} is not supported by TlsStream; restrict the ClientConfig to AES-GCM \
         and ChaCha20-Poly1305 suites"
    )]
    UnsupportedCipher(rustls::CipherSuite),
    /// A record broke the protocol; the connection cannot go on.
    #[error("bad TLS record from the server: {0}; the connection cannot continue, reconnect")]
    BadRecord(&'static str),
    /// A record did not decrypt: corrupted or tampered with.
    #[error("a TLS record from the server failed to decrypt ({0}): corrupted or tampered with; reconnect")]
    Decrypt(#[source] rustls::Error),
    /// The server sent a fatal alert.
    #[error("the server sent the TLS alert {0:?} and ended the session; reconnect")]
    Alert(AlertDescription),
    /// Deriving the next key after a KeyUpdate failed.
    #[error("TLS key update failed: {0}; reconnect")]
    KeyUpdate(#[source] rustls::Error),
    /// Encrypting an outgoing record failed.
    #[error("TLS encryption failed: {0}; reconnect")]
    Encrypt(#[source] rustls::Error),
    /// A TLS 1.2 connection used up its key (no key updates in TLS 1.2).
    #[error("the TLS 1.2 connection sent as many records as its key may protect; reconnect")]
    KeyExhausted,
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> Self {
        let kind = match &e {
            TlsError::HandshakeTimeout(_) => io::ErrorKind::TimedOut,
            TlsError::HandshakeIo(inner) => inner.kind(),
            TlsError::ClosedDuringHandshake => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A client config for Binance: webpki roots, the ring provider, TLS 1.3 and 1.2.
pub fn client_config() -> Arc<ClientConfig> {
    let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    client_config_with_roots(roots)
}

/// [`client_config`] trusting `roots` instead (tests trust a self-signed cert).
/// Secret extraction is on: [`TlsStream`] needs the keys for its record layer.
pub fn client_config_with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        // Only fails when the provider has no suite for a version; ring has both.
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_secret_extraction = true;
    Arc::new(config)
}

/// What the record layer has done, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounters {
    /// Records decrypted after the handshake.
    pub records_in: u64,
    /// Records encrypted after the handshake.
    pub records_out: u64,
    /// Socket reads that returned bytes.
    pub socket_reads: u64,
    /// TLS 1.3 NewSessionTicket messages skipped.
    pub tickets_skipped: u64,
    /// KeyUpdate messages received.
    pub key_updates_in: u64,
    /// KeyUpdate messages sent.
    pub key_updates_out: u64,
}

/// A TLS client over any `Read + Write` socket, with an allocation-free read path.
pub struct TlsStream<S> {
    sock: S,
    rx: Rx,
    tx: Tx,
    /// rustls's half after the handshake: derives the next secrets on KeyUpdate.
    kernel: KernelConnection<ClientConnectionData>,
    suite: SupportedCipherSuite,
    tls13: bool,
    /// Application data rustls decrypted during the handshake, handed out
    /// before any record. A safety net: rustls is shown one record at a time
    /// and stops at the end of the handshake, so this stayed empty in every
    /// test (TLS 1.2 and 1.3, servers writing before the handshake ended).
    early: Vec<u8>,
    /// Bytes of `early` already handed out.
    early_pos: usize,
    counters: TlsCounters,
}

/// Incoming half of the record layer.
struct Rx {
    /// Raw bytes from the socket. `start..end` is not yet decrypted; `plain`
    /// (decrypted in place, not yet handed out) lies before `start`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Decrypted application data not yet copied out. Invariant: empty, or
    /// `plain.end <= start`; the buffer is only compacted or refilled when it
    /// is empty, so it never points at overwritten bytes.
    plain: Range<usize>,
    /// Sequence number of the next record (the AEAD nonce depends on it).
    seq: u64,
    decrypter: Box<dyn MessageDecrypter>,
    hs: HandshakeParser,
    state: RxState,
    /// The error behind `Failed`, kept when a read returned data first.
    error: Option<io::Error>,
}

/// Whether the incoming side can still produce data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RxState {
    Open,
    /// The server sent close_notify: reads return `Ok(0)` from now on.
    Closed,
    /// A fatal error happened: reads return an error of this kind from now on.
    Failed(io::ErrorKind),
}

/// Outgoing half of the record layer.
struct Tx {
    /// Encrypted records; `start..end` not yet accepted by the socket.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    seq: u64,
    encrypter: Box<dyn MessageEncrypter>,
    /// Records one key may protect (the suite's confidentiality limit).
    limit: u64,
    /// The server asked for a KeyUpdate (or the key is worn out): send one
    /// before the next application data.
    key_update_owed: bool,
}

/// What one record held.
enum Event {
    /// Application data, now in `Rx::plain` (may be empty).
    Data,
    /// A warning alert: nothing for the caller.
    Nothing,
    /// Post-handshake messages; a KeyUpdate means: install the next receive key.
    Handshake(HandshakeOutcome),
    /// The server's close_notify.
    CloseNotify,
}

/// Parses post-handshake messages as a byte stream across records, keeping
/// only the 4-byte header: tickets are skipped, so nothing is buffered.
#[derive(Default)]
struct HandshakeParser {
    header: [u8; 4],
    /// Header bytes seen of the current message (4 = in the body).
    header_len: usize,
    /// Body bytes of the current message still to come.
    remaining: usize,
}

/// What a handshake record held.
#[derive(Debug, Default, PartialEq, Eq)]
struct HandshakeOutcome {
    tickets: u64,
    /// A KeyUpdate ended the record; `true` when the peer asked for ours.
    key_update: Option<bool>,
}

impl HandshakeParser {
    /// True between the first and last byte of a message.
    fn in_message(&self) -> bool {
        self.header_len > 0
    }

    /// Takes the decrypted payload of one handshake record.
    fn feed(&mut self, mut data: &[u8], tls13: bool) -> Result<HandshakeOutcome, TlsError> {
        let mut out = HandshakeOutcome::default();
        if data.is_empty() {
            return Err(TlsError::BadRecord("empty handshake record"));
        }
        while !data.is_empty() {
            if out.key_update.is_some() {
                // RFC 8446 5.1: a key change must fall on a record boundary.
                return Err(TlsError::BadRecord("data after a KeyUpdate in the same record"));
            }
            if self.header_len < 4 {
                let take = (4 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < 4 {
                    break;
                }
                let [typ, a, b, c] = self.header;
                self.remaining = u32::from_be_bytes([0, a, b, c]) as usize;
                match (typ, tls13) {
                    (HT_NEW_SESSION_TICKET, true) => out.tickets += 1,
                    (HT_KEY_UPDATE, true) if self.remaining == 1 => {}
                    (HT_KEY_UPDATE, true) => return Err(TlsError::BadRecord("KeyUpdate of the wrong length")),
                    (HT_HELLO_REQUEST, false) if self.remaining == 0 => {}
                    (HT_HELLO_REQUEST, false) => return Err(TlsError::BadRecord("HelloRequest with a body")),
                    _ => return Err(TlsError::BadRecord("unexpected handshake message after the handshake")),
                }
            } else {
                let take = self.remaining.min(data.len());
                if self.header[0] == HT_KEY_UPDATE {
                    // remaining == 1, so `take` is the request byte itself.
                    out.key_update = Some(match data[0] {
                        0 => false,
                        1 => true,
                        _ => return Err(TlsError::BadRecord("KeyUpdate with an invalid request value")),
                    });
                }
                self.remaining -= take;
                data = &data[take..];
            }
            if self.header_len == 4 && self.remaining == 0 {
                self.header_len = 0;
            }
        }
        Ok(out)
    }
}

impl Rx {
    /// Decrypts the next complete record in the buffer; `None` when the
    /// buffer holds only part of one. Call only when `plain` is empty.
    fn next_record(&mut self, tls13: bool) -> Result<Option<Event>, TlsError> {
        debug_assert!(self.plain.is_empty());
        let avail = &self.buf[self.start..self.end];
        let Some(&[typ, v0, v1, l0, l1]) = avail.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let version = u16::from_be_bytes([v0, v1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        // Check the header before waiting for the body, so garbage fails at once.
        let max = if tls13 { MAX_CIPHERTEXT_TLS13 } else { MAX_CIPHERTEXT_TLS12 };
        if len > max {
            return Err(TlsError::BadRecord("record longer than the protocol allows"));
        }
        if version != RECORD_VERSION {
            return Err(TlsError::BadRecord("record with a wrong protocol version (not TLS at all?)"));
        }
        match typ {
            CT_APPLICATION_DATA => {}
            CT_ALERT | CT_HANDSHAKE if !tls13 => {}
            CT_CHANGE_CIPHER_SPEC => return Err(TlsError::BadRecord("ChangeCipherSpec after the handshake")),
            _ => return Err(TlsError::BadRecord("unexpected record type")),
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.start + HEADER_LEN..self.start + HEADER_LEN + len;
        // The record is consumed whatever happens: any error below is fatal.
        self.start = body.end;
        let seq = self.seq;
        self.seq = seq.checked_add(1).ok_or(TlsError::BadRecord("record sequence number exhausted"))?;

        let base = self.buf.as_ptr() as usize;
        let msg =
            InboundOpaqueMessage::new(ContentType::from(typ), ProtocolVersion::from(version), &mut self.buf[body]);
        let plain = self.decrypter.decrypt(msg, seq).map_err(TlsError::Decrypt)?;
        // The plaintext is a sub-slice of the record; find where.
        let len = plain.payload.len();
        let payload = match (plain.payload.as_ptr() as usize).checked_sub(base) {
            Some(offset) if offset + len <= self.start => offset..offset + len,
            _ if len == 0 => 0..0,
            _ => return Err(TlsError::BadRecord("the decrypter returned plaintext outside the record")),
        };
        let inner = plain.typ;

        if self.hs.in_message() && inner != ContentType::Handshake {
            return Err(TlsError::BadRecord("handshake message interleaved with other records"));
        }
        match inner {
            ContentType::ApplicationData => {
                self.plain = payload;
                Ok(Some(Event::Data))
            }
            ContentType::Alert => match self.buf[payload] {
                [_, 0] => Ok(Some(Event::CloseNotify)),
                // TLS 1.3 user_canceled precedes close_notify; TLS 1.2 warnings are not fatal.
                [_, 90] if tls13 => Ok(Some(Event::Nothing)),
                [1, _] if !tls13 => Ok(Some(Event::Nothing)),
                [_, desc] => Err(TlsError::Alert(AlertDescription::from(desc))),
                _ => Err(TlsError::BadRecord("alert record of the wrong length")),
            },
            ContentType::Handshake => Ok(Some(Event::Handshake(self.hs.feed(&self.buf[payload], tls13)?))),
            _ => Err(TlsError::BadRecord("unexpected content type inside a record")),
        }
    }

    /// Reads from the socket into the free end of the buffer, first moving
    /// the undecrypted tail to the front. Call only when `plain` is empty.
    fn fill<S: Read>(&mut self, sock: &mut S) -> io::Result<usize> {
        debug_assert!(self.plain.is_empty());
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // A record never exceeds MAX_RECORD and the buffer holds two, so a
        // partial record always leaves room; a full buffer is a bug.
        if self.end == self.buf.len() {
            return Err(TlsError::BadRecord("incoming buffer full without a complete record").into());
        }
        loop {
            match sock.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Tx {
    /// Free bytes at the end of the buffer, after moving pending bytes to the front.
    fn room(&mut self) -> usize {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.len() - self.end
    }

    /// Bytes a record with `len` bytes of plaintext takes on the wire.
    fn record_len(&self, len: usize) -> usize {
        HEADER_LEN + self.encrypter.encrypted_payload_len(len)
    }

    fn pending(&self) -> bool {
        self.start < self.end
    }

    /// Encrypts one record into the buffer; the caller checked the room.
    fn seal(&mut self, typ: ContentType, data: &[u8]) -> Result<(), TlsError> {
        debug_assert!(data.len() <= MAX_PLAINTEXT);
        let next = self.seq.checked_add(1).ok_or(TlsError::KeyExhausted)?;
        let msg = OutboundPlainMessage {
            typ,
            // The legacy record version for both TLS 1.2 and 1.3 (RFC 8446 5.1).
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(data),
        };
        let record = self.encrypter.encrypt(msg, self.seq).map_err(TlsError::Encrypt)?.encode();
        let end = self.end + record.len();
        let dst = self.buf.get_mut(self.end..end).ok_or(TlsError::BadRecord("outgoing buffer overflow"))?;
        dst.copy_from_slice(&record);
        self.end = end;
        self.seq = next;
        Ok(())
    }

    /// Hands pending bytes to the socket until it takes them all or refuses.
    fn send<S: Write>(&mut self, sock: &mut S) -> io::Result<()> {
        while self.start < self.end {
            match sock.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(())
    }
}

/// Splits extracted secrets into key and IV.
fn key_iv(secrets: ConnectionTrafficSecrets, suite: SupportedCipherSuite) -> Result<(AeadKey, Iv), TlsError> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(TlsError::UnsupportedCipher(suite.suite())),
    }
}

/// Builds the provider's decrypter for one direction's secrets.
fn decrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Result<Box<dyn MessageDecrypter>, TlsError> {
    let (key, iv) = key_iv(secrets, suite)?;
    match suite {
        SupportedCipherSuite::Tls13(s) => Ok(s.aead_alg.decrypter(key, iv)),
        SupportedCipherSuite::Tls12(s) => {
            // TLS 1.2 decrypters take the fixed (implicit) part of the IV only;
            // the extracted IV is that part followed by the explicit nonce.
            let fixed = s.aead_alg.key_block_shape().fixed_iv_len;
            let iv = iv.as_ref().get(..fixed).ok_or(TlsError::UnsupportedCipher(suite.suite()))?;
            Ok(s.aead_alg.decrypter(key, iv))
        }
    }
}

/// Builds the provider's encrypter for one direction's secrets.
fn encrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Result<Box<dyn MessageEncrypter>, TlsError> {
    let (key, iv) = key_iv(secrets, suite)?;
    match suite {
        SupportedCipherSuite::Tls13(s) => Ok(s.aead_alg.encrypter(key, iv)),
        SupportedCipherSuite::Tls12(s) => {
            let shape = s.aead_alg.key_block_shape();
            let (fixed, explicit) = (shape.fixed_iv_len, shape.explicit_nonce_len);
            let (Some(write_iv), Some(nonce)) = (iv.as_ref().get(..fixed), iv.as_ref().get(fixed..fixed + explicit))
            else {
                return Err(TlsError::UnsupportedCipher(suite.suite()));
            };
            Ok(s.aead_alg.encrypter(key, write_iv, nonce))
        }
    }
}

/// Maps a socket error during the handshake to the variant that says what to do.
fn handshake_io(e: io::Error) -> TlsError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsError::HandshakeTimeout(e),
        io::ErrorKind::UnexpectedEof => TlsError::ClosedDuringHandshake,
        _ => TlsError::HandshakeIo(e),
    }
}

/// Makes sure `inb[from..]` starts with a complete record, reading and growing
/// the buffer as needed, and returns its length.
fn next_handshake_record<S: Read>(
    sock: &mut S,
    inb: &mut Vec<u8>,
    from: usize,
    in_end: &mut usize,
) -> Result<usize, TlsError> {
    loop {
        if let Some(&[typ, major, _, l0, l1]) = inb.get(from..*in_end).and_then(|rest| rest.get(..HEADER_LEN)) {
            let len = HEADER_LEN + usize::from(u16::from_be_bytes([l0, l1]));
            if !(CT_CHANGE_CIPHER_SPEC..=CT_APPLICATION_DATA).contains(&typ) || major != 3 || len > MAX_RECORD {
                return Err(TlsError::NotTls([typ, major, l0, l1]));
            }
            if *in_end - from >= len {
                return Ok(len);
            }
            if from + len > inb.len() {
                inb.resize(from + len, 0);
            }
        }
        if *in_end == inb.len() {
            if inb.len() >= MAX_HANDSHAKE_BUF {
                return Err(TlsError::HandshakeTooLarge(MAX_HANDSHAKE_BUF));
            }
            inb.resize(inb.len() * 2, 0);
        }
        let n = loop {
            match sock.read(&mut inb[*in_end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(handshake_io(e)),
            }
        };
        if n == 0 {
            return Err(TlsError::ClosedDuringHandshake);
        }
        *in_end += n;
    }
}

/// What the handshake loop does after handling a state and discarding bytes.
enum Step {
    Again,
    Read,
    Done,
}

impl<S: Read + Write> TlsStream<S> {
    /// Runs the handshake to completion. The caller passes a socket in
    /// blocking mode with read/write timeouts, and may switch it to
    /// non-blocking afterwards via [`get_ref`](Self::get_ref).
    pub fn connect(server_name: &str, mut sock: S, config: Arc<ClientConfig>) -> Result<Self, TlsError> {
        if !config.enable_secret_extraction {
            return Err(TlsError::SecretExtractionOff);
        }
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|source| TlsError::ServerName { name: server_name.to_owned(), source })?;
        let mut conn = UnbufferedClientConnection::new(config, name).map_err(TlsError::Handshake)?;

        // The incoming buffer becomes the record layer's afterwards, with any
        // bytes that arrived behind the handshake still in it. rustls is shown
        // one record more each time it blocks (`shown`), never the whole
        // buffer: otherwise it would go on past its last handshake record and
        // consume application data, alerts or close_notify meant for the
        // record layer.
        let mut inb = vec![0u8; IN_CAP];
        let mut in_end = 0;
        let mut shown = 0;
        let mut outb = vec![0u8; OUT_CAP];
        let mut out_end = 0;
        let mut early = Vec::new();
        loop {
            let UnbufferedStatus { mut discard, state } = conn.process_tls_records(&mut inb[..shown]);
            let step = match state.map_err(TlsError::Handshake)? {
                ConnectionState::ReadTraffic(mut data) => {
                    while let Some(record) = data.next_record() {
                        let record = record.map_err(TlsError::Handshake)?;
                        discard += record.discard;
                        early.extend_from_slice(record.payload);
                    }
                    Step::Again
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    loop {
                        match encode.encode(&mut outb[out_end..]) {
                            Ok(n) => {
                                out_end += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                                outb.resize(out_end + required_size, 0);
                            }
                            Err(EncodeError::AlreadyEncoded) => break,
                        }
                    }
                    Step::Again
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    sock.write_all(&outb[..out_end]).map_err(handshake_io)?;
                    sock.flush().map_err(handshake_io)?;
                    out_end = 0;
                    transmit.done();
                    Step::Again
                }
                ConnectionState::BlockedHandshake => Step::Read,
                ConnectionState::WriteTraffic(_) => Step::Done,
                ConnectionState::PeerClosed | ConnectionState::Closed => return Err(TlsError::ClosedDuringHandshake),
                _ => return Err(TlsError::Handshake(rustls::Error::General("unexpected handshake state".into()))),
            };
            if discard > 0 {
                inb.copy_within(discard..in_end, 0);
                in_end -= discard;
                shown -= discard;
            }
            match step {
                Step::Again => {}
                Step::Done => break,
                Step::Read => shown += next_handshake_record(&mut sock, &mut inb, shown, &mut in_end)?,
            }
        }
        if shown != 0 {
            // rustls holds part of a message it was shown: a post-handshake
            // message shared a record with the end of the handshake and was
            // cut. The record layer cannot take over mid-message.
            return Err(TlsError::Takeover(rustls::Error::General(
                "a handshake message was still incomplete when the handshake ended".into(),
            )));
        }

        let (secrets, kernel) = conn.dangerous_into_kernel_connection().map_err(TlsError::Takeover)?;
        let suite = kernel.negotiated_cipher_suite();
        let tls13 = kernel.protocol_version() == ProtocolVersion::TLSv1_3;
        let (rx_seq, rx_secrets) = secrets.rx;
        let (tx_seq, tx_secrets) = secrets.tx;
        if outb.len() < OUT_CAP {
            outb.resize(OUT_CAP, 0);
        }
        Ok(Self {
            sock,
            rx: Rx {
                buf: inb.into_boxed_slice(),
                start: 0,
                end: in_end,
                plain: 0..0,
                seq: rx_seq,
                decrypter: decrypter(suite, rx_secrets)?,
                hs: HandshakeParser::default(),
                state: RxState::Open,
                error: None,
            },
            tx: Tx {
                buf: outb.into_boxed_slice(),
                start: 0,
                end: 0,
                seq: tx_seq,
                encrypter: encrypter(suite, tx_secrets)?,
                limit: match suite {
                    SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
                    SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
                },
                key_update_owed: false,
            },
            kernel,
            suite,
            tls13,
            early,
            early_pos: 0,
            counters: TlsCounters::default(),
        })
    }

    /// The socket, e.g. to switch it to non-blocking after [`connect`](Self::connect).
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// The socket, mutably. Reading or writing it directly corrupts the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// The negotiated protocol version (TLS 1.2 or 1.3).
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.kernel.protocol_version()
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> SupportedCipherSuite {
        self.suite
    }

    /// What the record layer has done so far.
    pub fn counters(&self) -> TlsCounters {
        self.counters
    }

    /// True while encrypted bytes wait for the socket to accept them.
    pub fn has_pending_writes(&self) -> bool {
        self.tx.pending()
    }

    /// Queues close_notify and tries to send it; later writes are refused by
    /// the server. Returns `WouldBlock` if the socket did not take it all
    /// (`flush` sends the rest).
    pub fn send_close_notify(&mut self) -> io::Result<()> {
        self.make_room(self.tx.record_len(2))?;
        // close_notify is a warning-level alert (RFC 8446 6.1).
        self.tx.seal(ContentType::Alert, &[1, 0])?;
        self.counters.records_out += 1;
        self.tx.send(&mut self.sock)
    }

    /// Sends what the socket takes until `need` bytes are free in the outgoing
    /// buffer; `WouldBlock` if the socket is full before that.
    fn make_room(&mut self, need: usize) -> io::Result<()> {
        if self.tx.room() >= need {
            return Ok(());
        }
        match self.tx.send(&mut self.sock) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if self.tx.room() >= need {
            Ok(())
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// Sends our KeyUpdate under the current key, then switches to the next.
    fn send_key_update(&mut self) -> io::Result<()> {
        self.make_room(self.tx.record_len(5))?;
        // key_update, length 1, update_not_requested (RFC 8446 4.6.3).
        self.tx.seal(ContentType::Handshake, &[HT_KEY_UPDATE, 0, 0, 1, 0])?;
        let (seq, secrets) = self.kernel.update_tx_secret().map_err(TlsError::KeyUpdate)?;
        self.tx.encrypter = encrypter(self.suite, secrets)?;
        self.tx.seq = seq;
        self.tx.key_update_owed = false;
        self.counters.records_out += 1;
        self.counters.key_updates_out += 1;
        Ok(())
    }

    /// Handles one decrypted record's event; `Ok(true)` at close_notify.
    fn on_event(&mut self, event: Event) -> Result<bool, TlsError> {
        self.counters.records_in += 1;
        match event {
            Event::Data | Event::Nothing => Ok(false),
            Event::CloseNotify => Ok(true),
            Event::Handshake(HandshakeOutcome { tickets, key_update }) => {
                self.counters.tickets_skipped += tickets;
                let Some(requested) = key_update else {
                    return Ok(false);
                };
                let (seq, secrets) = self.kernel.update_rx_secret().map_err(TlsError::KeyUpdate)?;
                self.rx.decrypter = decrypter(self.suite, secrets)?;
                self.rx.seq = seq;
                self.counters.key_updates_in += 1;
                if requested {
                    self.tx.key_update_owed = true;
                }
                Ok(false)
            }
        }
    }

    /// Sends queued bytes and an owed KeyUpdate if the socket takes them;
    /// errors surface on the next write or flush instead, so a read never
    /// loses incoming data to an outgoing failure.
    fn push_best_effort(&mut self) {
        if self.tx.key_update_owed {
            let _ = self.send_key_update();
        }
        if self.tx.pending() {
            let _ = self.tx.send(&mut self.sock);
        }
    }

    /// Marks the stream failed. With `n` bytes already copied out the read
    /// returns them and the error waits for the next call.
    fn fail(&mut self, e: io::Error, n: usize) -> io::Result<usize> {
        self.rx.state = RxState::Failed(e.kind());
        if n > 0 {
            self.rx.error = Some(e);
            Ok(n)
        } else {
            Err(e)
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    /// Copies decrypted application data into `out`. With a non-blocking
    /// socket: `WouldBlock` when no complete record is available (partial
    /// records stay buffered), `Ok(0)` after close_notify, an error on a
    /// corrupt record and on every read after it.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.early_pos < self.early.len() {
            let n = (self.early.len() - self.early_pos).min(out.len());
            out[..n].copy_from_slice(&self.early[self.early_pos..self.early_pos + n]);
            self.early_pos += n;
            return Ok(n);
        }
        if self.tx.pending() || self.tx.key_update_owed {
            self.push_best_effort();
        }
        let mut n = 0;
        loop {
            if !self.rx.plain.is_empty() {
                let take = self.rx.plain.len().min(out.len() - n);
                let from = self.rx.plain.start;
                out[n..n + take].copy_from_slice(&self.rx.buf[from..from + take]);
                self.rx.plain.start += take;
                n += take;
                if n == out.len() {
                    return Ok(n);
                }
            }
            self.rx.plain = 0..0;
            match self.rx.state {
                RxState::Open => {}
                RxState::Closed => return Ok(n),
                RxState::Failed(_) if n > 0 => return Ok(n),
                RxState::Failed(kind) => {
                    let e = self.rx.error.take();
                    return Err(e.unwrap_or_else(|| io::Error::new(kind, "the TLS stream failed or ended earlier")));
                }
            }
            let event = match self.rx.next_record(self.tls13) {
                Ok(event) => event,
                Err(e) => return self.fail(e.into(), n),
            };
            match event {
                Some(event) => match self.on_event(event) {
                    Ok(false) => {
                        if self.tx.key_update_owed {
                            self.push_best_effort();
                        }
                    }
                    Ok(true) => {
                        self.rx.state = RxState::Closed;
                        return Ok(n);
                    }
                    Err(e) => return self.fail(e.into(), n),
                },
                None if n > 0 => return Ok(n),
                None => match self.rx.fill(&mut self.sock) {
                    Ok(0) => {
                        let e = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed TCP without a TLS close_notify; data may be truncated, reconnect",
                        );
                        return self.fail(e, n);
                    }
                    Ok(_) => self.counters.socket_reads += 1,
                    // WouldBlock, timeouts: nothing lost, call again later.
                    Err(e) => return Err(e),
                },
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    /// Encrypts up to one record of `data` into the outgoing buffer and sends
    /// what the socket accepts. Bytes reported written stay queued until the
    /// socket takes them (on a later write, flush or read). `WouldBlock` only
    /// when the buffer is full and the socket refuses more: nothing was taken.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.tx.seq >= self.tx.limit {
            if !self.tls13 {
                return Err(TlsError::KeyExhausted.into());
            }
            self.tx.key_update_owed = true;
        }
        if self.tx.key_update_owed {
            self.send_key_update()?;
        }
        let overhead = self.tx.record_len(0);
        if self.tx.room() <= overhead {
            self.make_room(overhead + 1)?;
        }
        let n = data.len().min(MAX_PLAINTEXT).min(self.tx.room() - overhead);
        // record_len is linear in the plaintext for every AEAD suite, so
        // `overhead + n` bytes are free.
        self.tx.seal(ContentType::ApplicationData, &data[..n])?;
        self.counters.records_out += 1;
        // Errors other than WouldBlock repeat on flush; the bytes are queued.
        let _ = self.tx.send(&mut self.sock);
        Ok(n)
    }

    /// Sends everything queued; `WouldBlock` if the socket is full (call again).
    fn flush(&mut self) -> io::Result<()> {
        if self.tx.key_update_owed {
            self.send_key_update()?;
        }
        self.tx.send(&mut self.sock)?;
        self.sock.flush()
    }
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("version", &self.kernel.protocol_version())
            .field("suite", &self.suite.suite())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
