//! Reading recordings: `<recv_ts_ns> <raw JSON>` per line, plain or gzip.
//!
//! The format is the hftbacktest collector's (see DESIGN.md), so its files
//! replay too. Files are read in the order given as one stream of lines.
//!
//! Why a reader thread: decompression is the floor of any replay. Inflating on
//! one thread while the caller parses on another hides parsing under
//! decompression on a 2-core machine. Chunks of about 1 MiB, cut at a line
//! end, go through a bounded channel and come back empty to be refilled, so
//! the steady state allocates nothing.
//!
//! A gzip file that ends early (a recorder killed mid-write) yields every
//! complete line before the damage and a warning, not an error: the recorder
//! flushes gzip members regularly for exactly this. A file that cannot be
//! opened is an error the caller reports (and `mmbot book` exits non-zero).
//!
//! Lines already in memory (the research event cache, shared by every sweep
//! worker) are handed out by the same [`LineChunks`] without a thread:
//! [`LineChunks::from_memory`] copies ~1 MiB whole-line chunks out of shared
//! buffers, so a backtest reads them exactly as it reads a file.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use flate2::bufread::MultiGzDecoder;

/// Target size of one chunk of decompressed lines.
const CHUNK: usize = 1 << 20;
/// Longest line kept whole: the parser's largest frame plus the timestamp.
const MAX_LINE: usize = crate::hot::parse::MAX_FRAME + 64;
/// Chunks in flight between the reader thread and the consumer.
const IN_FLIGHT: usize = 4;

/// Something the reader thread has to say.
pub enum Piece {
    /// Whole lines (the last may lack its newline at the end of a file).
    Lines(Vec<u8>),
    /// A file could not be opened or read at all.
    FileError { path: PathBuf, error: String },
    /// A file ended early or was corrupt after some good data.
    Truncated { path: PathBuf, error: String },
}

/// Splits a recording line into its receive timestamp and JSON.
/// Returns `None` when the line does not have the `<digits> <json>` shape.
#[inline]
pub fn split_line(line: &[u8]) -> Option<(u64, &[u8])> {
    let sp = memchr::memchr(b' ', line)?;
    let (ts, rest) = (&line[..sp], &line[sp + 1..]);
    if ts.is_empty() || ts.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in ts {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    // Times are i64 ns downstream: a larger value is a corrupt line.
    if v > i64::MAX as u64 {
        return None;
    }
    let json = rest.strip_suffix(b"\r").unwrap_or(rest);
    Some((v, json))
}

/// The lines of a chunk of recording text, cut at each `\n` by `memchr`
/// (SIMD, a few bytes a cycle) rather than a closure called per byte. The
/// last line may lack its newline; the empty piece after a final newline is
/// not yielded (an empty line between two is, and [`split_line`] refuses it).
#[inline]
pub fn lines(chunk: &[u8]) -> Lines<'_> {
    Lines { rest: chunk }
}

/// Iterator of [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let line = match memchr::memchr(b'\n', self.rest) {
            Some(end) => {
                let line = &self.rest[..end];
                self.rest = &self.rest[end + 1..];
                line
            }
            None => std::mem::take(&mut self.rest),
        };
        Some(line)
    }
}

/// Opens a recording, decompressing when it starts with the gzip magic
/// (whatever its name), so `.gz` files and plain files both work.
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let mut f = BufReader::with_capacity(256 << 10, File::open(path)?);
    let magic = {
        use std::io::BufRead;
        let buf = f.fill_buf()?;
        buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b
    };
    Ok(if magic { Box::new(MultiGzDecoder::new(f)) } else { Box::new(f) })
}

/// Recording lines already in memory: a shared buffer and the byte range of
/// it to replay (whole lines: the range starts at a line start and ends at a
/// line end or the buffer's end).
#[derive(Debug, Clone)]
pub struct MemoryLines {
    pub data: Arc<[u8]>,
    pub range: Range<usize>,
}

impl MemoryLines {
    /// All of `data`.
    pub fn whole(data: Arc<[u8]>) -> Self {
        let range = 0..data.len();
        Self { data, range }
    }
}

/// Yields chunks of whole recording lines: read from files on a background
/// thread ([`LineChunks::start`]) or copied out of memory
/// ([`LineChunks::from_memory`]).
pub struct LineChunks {
    source: Source,
}

enum Source {
    Files {
        rx: Receiver<Piece>,
        recycle: SyncSender<Vec<u8>>,
        thread: Option<JoinHandle<()>>,
    },
    /// `parts[part]` from byte `at`; `spare` is the last recycled chunk.
    Memory {
        parts: Vec<MemoryLines>,
        part: usize,
        at: usize,
        spare: Option<Vec<u8>>,
    },
}

impl LineChunks {
    pub fn start(paths: Vec<PathBuf>) -> Self {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (recycle, spare) = sync_channel(IN_FLIGHT + 2);
        let thread = std::thread::Builder::new()
            .name("mmbot-reader".into())
            .spawn(move || read_all(paths, tx, spare))
            .expect("spawning the reader thread");
        Self { source: Source::Files { rx, recycle, thread: Some(thread) } }
    }

    /// Lines already in memory, replayed part after part (each part's last
    /// line ends at its range's end, so lines of two parts never merge).
    /// No thread: copying a chunk costs far less than parsing it.
    pub fn from_memory(parts: Vec<MemoryLines>) -> Self {
        Self { source: Source::Memory { parts, part: 0, at: 0, spare: None } }
    }

    /// Next piece, or `None` when every file has been read.
    pub fn next_piece(&mut self) -> Option<Piece> {
        match &mut self.source {
            Source::Files { rx, .. } => rx.recv().ok(),
            Source::Memory { parts, part, at, spare } => loop {
                let p = parts.get(*part)?;
                let start = (*at).max(p.range.start);
                let end = p.range.end.min(p.data.len());
                if start >= end {
                    *part += 1;
                    *at = 0;
                    continue;
                }
                // Up to CHUNK bytes, cut after the last newline in them (a
                // line longer than a chunk goes whole).
                let hard = (start + CHUNK).min(end);
                let cut = if hard == end {
                    end
                } else {
                    match memchr::memrchr(b'\n', &p.data[start..hard]) {
                        Some(i) => start + i + 1,
                        None => memchr::memchr(b'\n', &p.data[hard..end]).map_or(end, |i| hard + i + 1),
                    }
                };
                let mut buf = spare.take().unwrap_or_else(|| Vec::with_capacity(CHUNK + (64 << 10)));
                buf.extend_from_slice(&p.data[start..cut]);
                *at = cut;
                return Some(Piece::Lines(buf));
            },
        }
    }

    /// Hands an emptied chunk back for reuse.
    pub fn recycle(&mut self, mut chunk: Vec<u8>) {
        chunk.clear();
        match &mut self.source {
            Source::Files { recycle, .. } => {
                let _ = recycle.try_send(chunk);
            }
            Source::Memory { spare, .. } => *spare = Some(chunk),
        }
    }
}

impl Drop for LineChunks {
    fn drop(&mut self) {
        if let Source::Files { rx, thread, .. } = &mut self.source {
            // Unblock the reader (it may be waiting to send) and let it finish.
            let (_tx, empty) = sync_channel(0);
            drop(std::mem::replace(rx, empty));
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn read_all(paths: Vec<PathBuf>, tx: SyncSender<Piece>, spare: Receiver<Vec<u8>>) {
    for path in paths {
        let mut input = match open(&path) {
            Ok(r) => r,
            Err(e) => {
                let error = e.to_string();
                if tx.send(Piece::FileError { path, error }).is_err() {
                    return;
                }
                continue;
            }
        };
        // Carry-over: bytes after the last newline of the previous chunk.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut buf = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK + (64 << 10)));
            buf.extend_from_slice(&carry);
            carry.clear();
            let (eof, err) = fill(&mut *input, &mut buf);
            let cut = if eof {
                buf.len()
            } else {
                match memchr::memrchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    // No line end yet: keep reading until the line ends (up
                    // to the largest frame the parser takes; past that the
                    // line is passed on as it is and rejected as too large).
                    None if buf.len() < MAX_LINE => {
                        carry.extend_from_slice(&buf);
                        buf.clear();
                        continue;
                    }
                    None => buf.len(),
                }
            };
            carry.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            if !buf.is_empty() && tx.send(Piece::Lines(buf)).is_err() {
                return;
            }
            if let Some(error) = err {
                if tx.send(Piece::Truncated { path: path.clone(), error }).is_err() {
                    return;
                }
            }
            if eof {
                break;
            }
        }
    }
}

/// Reads [`CHUNK`] more bytes into `buf` (fewer at the end of the input).
/// Returns (eof, error): a read error ends the file, keeping what was read
/// before it.
fn fill(input: &mut dyn Read, buf: &mut Vec<u8>) -> (bool, Option<String>) {
    let start = buf.len();
    let want = start + CHUNK;
    buf.resize(want, 0);
    let mut filled = start;
    let result = loop {
        if filled >= want {
            break (false, None);
        }
        match input.read(&mut buf[filled..]) {
            Ok(0) => break (true, None),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break (true, Some(e.to_string())),
        }
    };
    buf.truncate(filled);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_timestamp_and_json() {
        assert_eq!(split_line(b"123 {\"a\":1}"), Some((123, &b"{\"a\":1}"[..])));
        assert_eq!(split_line(b"123 {}\r"), Some((123, &b"{}"[..])));
        assert_eq!(split_line(b"x12 {}"), None);
        assert_eq!(split_line(b"{}"), None);
        assert_eq!(split_line(b" {}"), None);
        assert_eq!(split_line(b"99999999999999999999999 {}"), None);
        assert_eq!(split_line(b"9300000000000000000 {}"), None);
    }

    #[test]
    fn lines_split_like_a_byte_split() {
        for text in [&b""[..], b"\n", b"a", b"a\n", b"a\nb", b"a\n\nb\n", b"\n\na", b"1 {}\n2 {}\r\n3 {"] {
            let mut expect: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            // A byte split ends with the empty piece after a final newline (or
            // of an empty chunk); `lines` leaves it out.
            if expect.last().is_some_and(|l| l.is_empty()) {
                expect.pop();
            }
            assert_eq!(lines(text).collect::<Vec<_>>(), expect, "{:?}", String::from_utf8_lossy(text));
        }
    }

    fn drain(mut chunks: LineChunks) -> (Vec<u8>, usize) {
        let (mut all, mut pieces) = (Vec::new(), 0);
        while let Some(p) = chunks.next_piece() {
            let Piece::Lines(buf) = p else { panic!("memory yields lines only") };
            assert!(buf.len() <= CHUNK || !buf[..buf.len() - 1].contains(&b'\n'), "a chunk holds whole lines");
            all.extend_from_slice(&buf);
            pieces += 1;
            chunks.recycle(buf);
        }
        (all, pieces)
    }

    #[test]
    fn memory_lines_come_back_whole_and_in_order() {
        let mut text = Vec::new();
        for i in 0..40_000u64 {
            text.extend_from_slice(format!("{i} {{\"n\":{i}}}\n").as_bytes());
        }
        let data: Arc<[u8]> = text.clone().into();
        let (all, pieces) = drain(LineChunks::from_memory(vec![MemoryLines::whole(data.clone())]));
        assert_eq!(all, text);
        assert_eq!(pieces, 1, "under a chunk: one piece");
        // Many chunks, every one ending at a line end.
        let big: Arc<[u8]> = text.repeat(4).into();
        let mut chunks = LineChunks::from_memory(vec![MemoryLines::whole(big.clone())]);
        let mut total = 0;
        while let Some(Piece::Lines(buf)) = chunks.next_piece() {
            assert_eq!(buf.last(), Some(&b'\n'));
            total += buf.len();
            chunks.recycle(buf);
        }
        assert_eq!(total, big.len());
        // A range, and two parts that stay apart.
        let range = MemoryLines { data: data.clone(), range: 10..20 };
        let (all, _) = drain(LineChunks::from_memory(vec![range, MemoryLines::whole(Arc::from(&b"7 {}"[..]))]));
        assert_eq!(all, b"1 {\"n\":1}\n7 {}");
    }
}
