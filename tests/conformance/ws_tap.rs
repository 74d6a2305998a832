//! A WebSocket tap between mmbot and the Binance double: it forwards bytes both ways unchanged
//! and, between the server's frames, slips in frames the test queues (garbage, unknown events).
//!
//! Why: the double pushes only well-formed events, and a client must survive whatever arrives
//! on the wire (a bad frame must never panic it). Server-to-client frames are unmasked
//! (RFC 6455 §5.1), so a queued frame is just bytes written at a frame boundary.
//!
//! Every thread is bounded: it ends when either side closes, when the tap is dropped, or after
//! two minutes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any tap thread lives.
const LIFETIME: Duration = Duration::from_secs(120);

/// The running tap; dropping it stops it.
pub struct WsTap {
    addr: SocketAddr,
    /// Frames queued so far (every connection sends those queued after it connected).
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    listener: Option<JoinHandle<()>>,
}

/// One unmasked server frame: FIN + `opcode`, then the length as RFC 6455 §5.2 encodes it.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | (opcode & 0x0f)];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n < 65_536 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

impl WsTap {
    /// Listens on 127.0.0.1:0 and forwards each connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> WsTap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f2, s2) = (frames.clone(), stop.clone());
        let h = std::thread::spawn(move || {
            let end = Instant::now() + LIFETIME;
            while !s2.load(Ordering::SeqCst) && Instant::now() < end {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (f3, s3) = (f2.clone(), s2.clone());
                        std::thread::spawn(move || relay(client, upstream, &f3, &s3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        WsTap { addr, frames, stop, listener: Some(h) }
    }

    /// `ws://127.0.0.1:PORT/ws-api/v3`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.addr)
    }

    /// Queues a text frame (any bytes: invalid UTF-8 too).
    pub fn text(&self, payload: &[u8]) {
        self.raw(frame(0x1, payload));
    }

    /// Queues raw bytes, sent at the next frame boundary.
    pub fn raw(&self, bytes: Vec<u8>) {
        self.frames.lock().unwrap().push(bytes);
    }
}

impl Drop for WsTap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
    }
}

/// One connection: client bytes go up unchanged; the server's come down frame by frame with
/// queued frames in between.
fn relay(client: TcpStream, upstream: SocketAddr, frames: &Mutex<Vec<Vec<u8>>>, stop: &AtomicBool) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else { return };
    let (mut c_write, mut s_read) = (client, server);
    let _ = c_read.set_read_timeout(Some(Duration::from_millis(5)));
    let _ = s_read.set_read_timeout(Some(Duration::from_millis(5)));
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let up = std::thread::spawn(move || {
        let end = Instant::now() + LIFETIME;
        let mut buf = [0u8; 8192];
        while !d2.load(Ordering::SeqCst) && Instant::now() < end {
            match c_read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        d2.store(true, Ordering::SeqCst);
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let mut cursor = frames.lock().unwrap().len();
    let mut pending: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut buf = [0u8; 8192];
    let end = Instant::now() + LIFETIME;
    while !done.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) && Instant::now() < end {
        match s_read.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        // The HTTP upgrade answer first, as it came.
        if !head_done {
            let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head: Vec<u8> = pending.drain(..at + 4).collect();
            if c_write.write_all(&head).is_err() {
                break;
            }
            head_done = true;
        }
        // Whole frames only, so queued ones land between them.
        while let Some(len) = frame_len(&pending) {
            let f: Vec<u8> = pending.drain(..len).collect();
            if c_write.write_all(&f).is_err() {
                done.store(true, Ordering::SeqCst);
                break;
            }
        }
        if pending.is_empty() {
            let queued: Vec<Vec<u8>> = {
                let all = frames.lock().unwrap();
                let out = all[cursor.min(all.len())..].to_vec();
                cursor = all.len();
                out
            };
            for f in queued {
                if c_write.write_all(&f).is_err() {
                    done.store(true, Ordering::SeqCst);
                }
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Length of the complete frame at the start of `b`, if all of it is there (RFC 6455 §5.2).
fn frame_len(b: &[u8]) -> Option<usize> {
    if b.len() < 2 {
        return None;
    }
    let masked = b[1] & 0x80 != 0;
    let (len, mut at): (usize, usize) = match b[1] & 0x7f {
        126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
        127 => {
            let mut l = [0u8; 8];
            l.copy_from_slice(b.get(2..10)?);
            (usize::try_from(u64::from_be_bytes(l)).ok()?, 10)
        }
        n => (n as usize, 2),
    };
    if masked {
        at += 4;
    }
    let total = at.checked_add(len)?;
    (b.len() >= total).then_some(total)
}
