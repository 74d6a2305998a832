//! Frames from recordings for the threaded trader ([`RecordingSource`]):
//! as fast as possible, or paced at a multiple of the recorded rate
//! (`mmbot replay --speed 1`), optionally only the first seconds of
//! recorded time (`--seconds`).
//!
//! A paced source waits for each frame's due time either by sleeping (the
//! default; kind to a shared machine) or, with `[feed] poll = "busy"`, by
//! spinning and calling the hot thread's idle work (warming) in the gaps:
//! the same waiting a busy-polling live feed does, so a paced replay
//! measures what a live run at Binance's cadence would see.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::feed::recording::{split_line, LineChunks, Piece};

use super::FrameSource;

/// A paced frame taken this soon after it fell due, by a thread that was
/// waiting for it, found the thread on its core: a spinning turn takes well
/// under a microsecond, a preemption hundreds.
pub const ON_TIME: Duration = Duration::from_micros(10);

/// tick_to_quote of a paced replay's quotes, split by whether their frame
/// found the hot thread waiting on its core ([`RecordingSource::last_on_time`]).
/// On a shared machine most frames arrive while the hot thread is off its
/// core, and the cache state then is the other process's, whatever the hot
/// thread did while idle: the on-time share is what a dedicated core shows.
#[derive(Debug, Clone)]
pub struct PacedLatency {
    /// Quotes from frames that found the hot thread waiting (ns).
    pub on_time: Histogram<u64>,
    /// Quotes from frames that were already due when looked at (ns).
    pub late: Histogram<u64>,
}

impl PacedLatency {
    /// Both histograms, allocated now (1 ns to 10 s, 3 significant digits).
    pub fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds");
        Self { on_time: h(), late: h() }
    }

    /// Records one quote's tick_to_quote (no allocation: within bounds or
    /// clamped to them).
    #[inline]
    pub fn record(&mut self, on_time: bool, tick_to_quote_ns: u64) {
        let h = if on_time { &mut self.on_time } else { &mut self.late };
        h.saturating_record(tick_to_quote_ns.max(1));
    }

    /// `count, p50, p90, p99` of one side, ns.
    pub fn summary(h: &Histogram<u64>) -> (u64, u64, u64, u64) {
        (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.9), h.value_at_quantile(0.99))
    }
}

impl Default for PacedLatency {
    fn default() -> Self {
        Self::new()
    }
}

/// Frames from recordings, as fast as possible or paced at `speed` times the
/// recorded rate.
pub struct RecordingSource {
    chunks: LineChunks,
    chunk: Vec<u8>,
    pos: usize,
    speed: Option<f64>,
    start: Option<(Instant, i64)>,
    /// Recorded ns replayed from the first frame (`None`: everything).
    limit_ns: Option<i64>,
    /// The first frame's recorded time (for `limit_ns`).
    first_ns: Option<i64>,
    /// The limit was reached: nothing more, even if later lines are
    /// stamped earlier.
    finished: bool,
    /// Paced: whether the latest frame found the waiting loop running when
    /// it fell due ([`RecordingSource::last_on_time`]).
    last_on_time: Option<bool>,
    /// Unreadable files, reported at the end.
    pub errors: Vec<String>,
}

impl RecordingSource {
    pub fn new(files: Vec<PathBuf>, speed: Option<f64>) -> Self {
        Self::from_chunks(LineChunks::start(files), speed)
    }

    /// Lines from any source (files being read, or lines in memory: a
    /// multi-symbol replay's recordings merged in time order,
    /// [`merge_by_time`]).
    pub fn from_chunks(chunks: LineChunks, speed: Option<f64>) -> Self {
        Self {
            chunks,
            chunk: Vec::new(),
            pos: 0,
            speed,
            start: None,
            limit_ns: None,
            first_ns: None,
            finished: false,
            last_on_time: None,
            errors: Vec::new(),
        }
    }

    /// Ends the source after `seconds` of recorded time from its first
    /// frame (`None`: the whole recording). A paced run of a long capture
    /// stays short this way.
    pub fn limited_to(mut self, seconds: Option<f64>) -> Self {
        self.limit_ns = seconds.map(|s| (s * 1e9).min(i64::MAX as f64) as i64);
        self
    }

    /// The pace, as a multiple of the recorded rate (`None`: unpaced).
    pub fn speed(&self) -> Option<f64> {
        self.speed
    }

    /// Paced sources: true when the latest frame fell due while this
    /// thread was waiting for it and was taken within [`ON_TIME`]; false
    /// when it was already due (the thread was busy, or off its core:
    /// preempted, or asleep past it). `None`: unpaced.
    pub fn last_on_time(&self) -> Option<bool> {
        self.last_on_time
    }

    /// [`FrameSource::next_frame`], choosing how a paced frame is waited
    /// for: `idle` `None` sleeps (at most 1 ms at a time); `Some` spins,
    /// calling it on every turn until the frame is due (the busy-polling
    /// hot thread's warming). `idle` runs only while no frame is due.
    pub fn next_frame_with(&mut self, buf: &mut Vec<u8>, mut idle: Option<&mut dyn FnMut()>) -> Option<i64> {
        while !self.finished {
            if self.pos >= self.chunk.len() {
                let done = std::mem::take(&mut self.chunk);
                self.chunks.recycle(done);
                self.pos = 0;
                match self.chunks.next_piece()? {
                    Piece::Lines(b) => self.chunk = b,
                    Piece::FileError { path, error } => self.errors.push(format!("{}: {error}", path.display())),
                    Piece::Truncated { .. } => {}
                }
                continue;
            }
            let rest = &self.chunk[self.pos..];
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            self.pos += end + 1;
            let Some((ts, json)) = split_line(&rest[..end]) else { continue };
            let ts = ts as i64;
            let first = *self.first_ns.get_or_insert(ts);
            if self.limit_ns.is_some_and(|limit| ts.saturating_sub(first) > limit) {
                self.finished = true;
                break;
            }
            if let Some(speed) = self.speed {
                let (wall0, rec0) = *self.start.get_or_insert((Instant::now(), ts));
                let due = Duration::from_nanos(((ts - rec0).max(0) as f64 / speed) as u64);
                // One reading per turn: reading twice could find the second
                // past `due`, and the subtraction would underflow.
                let mut waited = false;
                let late = loop {
                    let elapsed = wall0.elapsed();
                    let left = due.saturating_sub(elapsed);
                    if left.is_zero() {
                        break elapsed.saturating_sub(due);
                    }
                    waited = true;
                    match idle.as_deref_mut() {
                        Some(work) => {
                            work();
                            std::hint::spin_loop();
                        }
                        None => std::thread::sleep(left.min(Duration::from_millis(1))),
                    }
                };
                self.last_on_time = Some(waited && late <= ON_TIME);
            }
            buf.clear();
            buf.extend_from_slice(json);
            return Some(ts);
        }
        None
    }
}

impl FrameSource for RecordingSource {
    fn next_frame(&mut self, buf: &mut Vec<u8>) -> Option<i64> {
        self.next_frame_with(buf, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<PathBuf> {
        vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec")]
    }

    fn frames(mut src: RecordingSource) -> Vec<i64> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        // Bounded: the sample has 42 frames.
        while let (Some(ts), true) = (src.next_frame(&mut buf), out.len() < 1000) {
            out.push(ts);
        }
        out
    }

    #[test]
    fn a_limit_keeps_the_first_seconds_of_recorded_time() {
        let all = frames(RecordingSource::new(sample(), None));
        assert_eq!(all.len(), 42);
        let half_s = (all[all.len() - 1] - all[0]) as f64 / 2e9;
        let some = frames(RecordingSource::new(sample(), None).limited_to(Some(half_s)));
        assert!(!some.is_empty() && some.len() < all.len(), "{} of {}", some.len(), all.len());
        assert_eq!(some[..], all[..some.len()]);
        assert!(some.iter().all(|t| (t - all[0]) as f64 <= half_s * 1e9));
        assert_eq!(frames(RecordingSource::new(sample(), None).limited_to(Some(1e6))), all);
    }

    #[test]
    fn a_busy_paced_source_calls_idle_work_only_between_frames() {
        // 4x the recorded rate: the sample spans ~0.9 s, so ~0.23 s here.
        let mut src = RecordingSource::new(sample(), Some(4.0));
        let mut buf = Vec::new();
        let mut idle_calls = 0u64;
        let mut got = Vec::new();
        while got.len() < 1000 {
            let mut work = || idle_calls += 1;
            match src.next_frame_with(&mut buf, Some(&mut work)) {
                Some(ts) => got.push(ts),
                None => break,
            }
        }
        assert_eq!(got, frames(RecordingSource::new(sample(), None)), "same frames, same order");
        assert!(idle_calls > 0, "the gaps between paced frames were spun in");
    }
}

/// The lines of `files` merged in receive-time order into one buffer: of
/// the files' next lines, the earliest goes first (ties: the file named
/// first), each file's own order kept. What a threaded replay of one
/// recording per symbol replays, so the symbols' frames interleave as they
/// were received (a single-symbol replay reads its files one after another).
pub fn merge_by_time(files: &[PathBuf]) -> std::io::Result<Vec<u8>> {
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut crate::feed::recording::open(f)?, &mut text)?;
        texts.push(text);
    }
    // Each file's lines with their receive times (lines without one are
    // skipped, as a replay skips them).
    let lines: Vec<Vec<(u64, &[u8])>> = texts
        .iter()
        .map(|t| t.split(|&b| b == b'\n').filter_map(|l| split_line(l).map(|(ts, _)| (ts, l))).collect::<Vec<_>>())
        .collect();
    let mut at = vec![0usize; lines.len()];
    let mut out = Vec::with_capacity(texts.iter().map(Vec::len).sum::<usize>() + lines.len());
    loop {
        let next = lines.iter().enumerate().filter_map(|(f, l)| l.get(at[f]).map(|(ts, _)| (*ts, f))).min();
        let Some((_, f)) = next else { break };
        out.extend_from_slice(lines[f][at[f]].1);
        out.push(b'\n');
        at[f] += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn files_interleave_by_receive_time_each_in_its_own_order() {
        let dir = std::env::temp_dir().join(format!("mmbot-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.rec"), dir.join("b.rec"));
        std::fs::write(&a, "1 {\"a\":1}\n5 {\"a\":2}\n5 {\"a\":3}\nnot a line\n9 {\"a\":4}\n").unwrap();
        std::fs::write(&b, "2 {\"b\":1}\n5 {\"b\":2}\n7 {\"b\":3}\n").unwrap();
        let merged = String::from_utf8(merge_by_time(&[a, b]).unwrap()).unwrap();
        let order: Vec<&str> = merged.lines().map(|l| l.split_once(' ').unwrap().1).collect();
        assert_eq!(
            order,
            ["{\"a\":1}", "{\"b\":1}", "{\"a\":2}", "{\"a\":3}", "{\"b\":2}", "{\"b\":3}", "{\"a\":4}"],
            "ties go to the file named first"
        );
        assert!(merge_by_time(&[dir.join("missing.rec")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
