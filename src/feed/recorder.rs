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

enum Sink {
    Plain(BufWriter<File>),
    /// `None` only between members.
    Gzip(Option<Box<GzEncoder<BufWriter<File>>>>),
}

/// A recording being written.
pub struct RecordingWriter {
    path: PathBuf,
    sink: Sink,
    flush_every: Duration,
    last_flush: Instant,
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
            Sink::Gzip(g) => g.as_mut().expect("a member is open between calls"),
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
                let enc = g.take().expect("a member is open between calls");
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
                let enc = g.take().expect("a member is open between calls");
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
