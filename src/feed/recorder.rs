//! Writing recordings: one line per message, `<recv_ts_ns> <raw JSON>`
//! (DESIGN.md), frames exactly as received and REST snapshot bodies as they
//! came, gzip when the name ends in `.gz`.
//!
//! A recorder can be killed at any moment, so the gzip stream is a series of
//! members, each closed (with its CRC and length) at least every
//! `flush_every` and always at a line boundary: a reader (which reads
//! multi-member gzip) gets every line up to the last closed member, and the
//! torn tail of an unfinished member is reported as truncated, never
//! misread. Plain files are flushed on the same schedule.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::feed::connector::Reason;
use crate::feed::live::FeedHandler;
use crate::hot::market::{BookSizes, Event, MarketData};
use crate::hot::msg::Symbol;

enum Sink {
    Plain(BufWriter<File>),
    /// `None` only between members.
    Gzip(Option<Box<GzEncoder<BufWriter<File>>>>),
}

/// The error for a gzip stream whose member could not be finished earlier.
fn closed() -> io::Error {
    io::Error::other("the recording was closed after an earlier write error")
}

/// A recording being written.
pub struct RecordingWriter {
    path: PathBuf,
    sink: Sink,
    pub(crate) flush_every: Duration,
    pub(crate) last_flush: Instant,
    lines: u64,
    bytes: u64,
    members: u64,
}

impl RecordingWriter {
    /// Creates (truncates) `path`; gzip if it ends in `.gz`.
    pub fn create(path: &Path, flush_every: Duration) -> io::Result<Self> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        let sink = if path.extension().is_some_and(|e| e == "gz") {
            Sink::Gzip(Some(Box::new(GzEncoder::new(file, Compression::fast()))))
        } else {
            Sink::Plain(file)
        };
        Ok(Self {
            path: path.to_path_buf(),
            sink,
            flush_every,
            last_flush: Instant::now(),
            lines: 0,
            bytes: 0,
            members: 0,
        })
    }

    /// Appends one line. Newlines inside `json` would split the line, so
    /// they are refused (Binance frames never contain one).
    pub fn write_line(&mut self, recv_ns: i64, json: &[u8]) -> io::Result<()> {
        if memchr::memchr(b'\n', json).is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "message contains a newline"));
        }
        let mut ts = itoa::Buffer::new();
        let ts = ts.format(recv_ns);
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Plain(f) => f,
            Sink::Gzip(g) => match g.as_mut() {
                Some(e) => e,
                None => return Err(closed()),
            },
        };
        w.write_all(ts.as_bytes())?;
        w.write_all(b" ")?;
        w.write_all(json)?;
        w.write_all(b"\n")?;
        self.lines += 1;
        self.bytes += (ts.len() + json.len() + 2) as u64;
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable as whole lines: closes the
    /// current gzip member and starts the next one.
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        match &mut self.sink {
            Sink::Plain(f) => f.flush(),
            Sink::Gzip(g) => {
                // Taken out to finish the member; left out (and every later
                // call refused) if finishing fails.
                let enc = g.take().ok_or_else(closed)?;
                let mut file = enc.finish()?;
                file.flush()?;
                self.members += 1;
                *g = Some(Box::new(GzEncoder::new(file, Compression::fast())));
                Ok(())
            }
        }
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(f) => f.flush(),
            Sink::Gzip(g) => {
                let enc = g.take().ok_or_else(closed)?;
                enc.finish()?.flush()
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Uncompressed bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The live feed's handler that records: every frame and snapshot to the
/// file, and a book per symbol (parsed exactly as the bot would) so that
/// snapshots are asked for exactly when the bot would ask for them.
pub struct Recorder {
    md: MarketData,
    writer: RecordingWriter,
    pub frames: u64,
    pub snapshots: u64,
    pub disconnects: u64,
    /// The first write error; the caller stops recording when set.
    pub error: Option<io::Error>,
    observer: Option<Observer>,
    /// Snapshot bodies waiting to be written right after their symbol's
    /// next depth line (see [`Recorder::on_snapshot`]).
    held: Vec<(Symbol, Vec<u8>)>,
    /// Receive time of the last line written (lines stay in time order).
    last_ns: i64,
}

/// Sees every book event as the recorder applied it live (tests compare
/// this with a replay of the file).
pub type Observer = Box<dyn FnMut(&Event<'_>) + Send>;

impl Recorder {
    pub fn new(writer: RecordingWriter, symbols: &[Symbol]) -> Self {
        Self {
            md: MarketData::with_symbols(BookSizes::default(), symbols),
            writer,
            frames: 0,
            snapshots: 0,
            disconnects: 0,
            error: None,
            observer: None,
            held: Vec::new(),
            last_ns: 0,
        }
    }

    /// Calls `f` with every market event as it is applied.
    pub fn observe(&mut self, f: Observer) {
        self.observer = Some(f);
    }

    pub fn writer(&self) -> &RecordingWriter {
        &self.writer
    }

    pub fn market(&self) -> &MarketData {
        &self.md
    }

    /// Closes the file (flushing the last gzip member); snapshots still
    /// waiting for a depth line are written first.
    pub fn finish(mut self) -> io::Result<()> {
        for (_, body) in std::mem::take(&mut self.held) {
            let ts = self.last_ns;
            self.write(ts, &body);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer.finish()
    }

    fn write(&mut self, recv_ns: i64, json: &[u8]) {
        let ts = recv_ns.max(self.last_ns);
        self.last_ns = ts;
        if self.error.is_none() {
            if let Err(e) = self.writer.write_line(ts, json) {
                self.error = Some(e);
            }
        }
    }

    /// Writes the held snapshot of `symbol`, if any.
    fn release(&mut self, symbol: Symbol, recv_ns: i64) {
        if let Some(i) = self.held.iter().position(|(s, _)| *s == symbol) {
            let (_, body) = self.held.swap_remove(i);
            self.write(recv_ns, &body);
        }
    }
}

/// The stream-name symbol of a combined frame, upper-cased, if it is depth.
fn depth_symbol(frame: &[u8]) -> Option<Symbol> {
    let rest = frame.strip_prefix(b"{\"stream\":\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let (kind, sym) = crate::hot::parse::classify_stream(&rest[..end]);
    matches!(kind, crate::hot::parse::StreamKind::Diff | crate::hot::parse::StreamKind::Partial)
        .then(|| Symbol::new(sym.to_ascii_uppercase().as_slice()))
}

/// The line a recorder writes where its connection was replaced.
pub fn reconnect_marker(now_ns: i64) -> String {
    format!(r#"{{"stream":"!mmbotReconnect","data":{{"e":"mmbotReconnect","E":{}}}}}"#, now_ns / 1_000_000)
}

impl FeedHandler for Recorder {
    fn on_frame(&mut self, frame: &[u8], recv_ns: i64, _t_ready: u64, _wire_ns: u64) -> bool {
        self.frames += 1;
        self.write(recv_ns, frame);
        if !self.held.is_empty() {
            if let Some(sym) = depth_symbol(frame) {
                self.release(sym, recv_ns);
            }
        }
        let before = self.md.stats().server_shutdowns;
        match self.observer.as_mut() {
            Some(f) => self.md.on_frame(frame, &mut |ev| f(&ev)),
            None => self.md.on_frame(frame, &mut |_| {}),
        }
        self.md.stats().server_shutdowns != before
    }

    /// The body is applied now but written after the symbol's next depth
    /// line: a replay gives a bare snapshot line to the book that last
    /// buffered a diff, and on USD-M (update ids shared across symbols)
    /// nothing else can tell whose snapshot it is. The book's result is the
    /// same either way: that diff is buffered in the replay and applied
    /// from the buffer, as live applies it right after the snapshot.
    fn on_snapshot(&mut self, symbol: Symbol, body: &[u8], recv_ns: i64) {
        self.snapshots += 1;
        let _ = recv_ns;
        match self.held.iter_mut().find(|(s, _)| *s == symbol) {
            Some((_, b)) => {
                b.clear();
                b.extend_from_slice(body);
            }
            None => self.held.push((symbol, body.to_vec())),
        }
        let _ = match self.observer.as_mut() {
            Some(f) => self.md.on_snapshot_for(symbol, body, &mut |ev| f(&ev)),
            None => self.md.on_snapshot_for(symbol, body, &mut |_| {}),
        };
    }

    fn on_disconnected(&mut self, _reason: Reason, now_ns: i64) {
        self.disconnects += 1;
        // Snapshots not yet placed belong to the ended connection's sync.
        self.held.clear();
        for i in 0..self.md.symbols().count() {
            self.md.invalidate_nth(i);
        }
        // A replay must reset its books here too, gap or no gap.
        let marker = reconnect_marker(now_ns);
        self.write(now_ns, marker.as_bytes());
    }

    /// The end of a recording is not a reconnect: no marker, books kept.
    fn on_shutdown(&mut self, _now_ns: i64) {}

    /// A planned renewal switches once the old connection has applied what
    /// the new one delivered: the recording then has no gap to replay.
    fn synced_update_id(&self, symbol: Symbol) -> Option<u64> {
        self.md.book(symbol).filter(|b| b.is_synced()).map(|b| b.update_id())
    }

    fn on_idle(&mut self, _now_ns: i64) {
        // Lines written before a quiet spell still reach the disk in time.
        if self.error.is_none() && self.writer.last_flush.elapsed() >= self.writer.flush_every {
            if let Err(e) = self.writer.flush() {
                self.error = Some(e);
            }
        }
    }

    fn wants_snapshot(&self, symbol: Symbol) -> bool {
        self.md.book(symbol).is_some_and(|b| b.wants_snapshot() && b.buffered_len() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_torn_gzip_tail_loses_only_the_unflushed_lines() {
        let dir = std::env::temp_dir().join(format!("mmbot-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gz");
        let mut w = RecordingWriter::create(&path, Duration::from_secs(3600)).unwrap();
        for i in 0..100 {
            w.write_line(i, format!("{{\"n\":{i}}}").as_bytes()).unwrap();
        }
        w.flush().unwrap();
        for i in 100..150 {
            w.write_line(i, format!("{{\"n\":{i}}}").as_bytes()).unwrap();
        }
        // Simulate a kill: the second member is never finished. Whatever
        // the encoder had pushed to the file so far stays there.
        std::mem::forget(w);
        let bytes = std::fs::read(&path).unwrap();
        let mut text = String::new();
        let mut dec = flate2::read::MultiGzDecoder::new(&bytes[..]);
        let _ = dec.read_to_string(&mut text); // the torn tail errors
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 100, "{}", lines.len());
        for (i, l) in lines.iter().take(100).enumerate() {
            assert_eq!(*l, format!("{i} {{\"n\":{i}}}"));
        }
        assert!(RecordingWriter::create(&dir.join("x.gz"), Duration::ZERO).unwrap().write_line(1, b"a\nb").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
