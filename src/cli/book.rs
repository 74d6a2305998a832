//! `mmbot book FILE...`: replays recordings through the parser and the synced
//! book and prints the top of book after every applied depth event, one JSON
//! line each, with a summary on stderr. It is both a tool (inspect a capture,
//! check a recorder) and the end-to-end check of the market-data core.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::config::Config;
use crate::feed::recording::{lines, split_line, LineChunks, Piece};
use crate::hot::fixed::push_fixed;
use crate::hot::market::{Event, MarketData};
use crate::hot::msg::Level;
use crate::hot::parse::ParseError;

#[derive(clap::Args, Debug)]
pub struct BookArgs {
    /// Recording files (`<recv_ts_ns> <json>` lines, plain or gzip), replayed in this order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Config file (for `[book]` sizes).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Skip comparing bookTicker frames with the rebuilt book.
    #[arg(long)]
    pub no_verify: bool,
}

/// Appends `"key":"decimal"` (or null) for one side of the top of book.
fn push_side(buf: &mut Vec<u8>, name: &str, level: Option<Level>) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    match level {
        Some(l) => {
            buf.extend_from_slice(b"\":\"");
            push_fixed(l.price.0, buf);
            buf.extend_from_slice(b"\",\"");
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b"_qty\":\"");
            push_fixed(l.qty.0, buf);
            buf.push(b'"');
        }
        None => {
            buf.extend_from_slice(b"\":null,\"");
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b"_qty\":null");
        }
    }
}

/// Formats one output line for an applied depth event.
pub fn format_top(buf: &mut Vec<u8>, ev: &Event<'_>) {
    let Event::Depth { symbol, applied, book } = ev else {
        return;
    };
    let mut ints = itoa::Buffer::new();
    buf.extend_from_slice(b"{\"symbol\":\"");
    buf.extend_from_slice(symbol.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"u\":");
    buf.extend_from_slice(ints.format(applied.update_id).as_bytes());
    buf.extend_from_slice(b",\"E\":");
    if applied.event_time != 0 {
        buf.extend_from_slice(ints.format(applied.event_time).as_bytes());
    } else {
        buf.extend_from_slice(b"null");
    }
    push_side(buf, "bid", book.best_bid());
    push_side(buf, "ask", book.best_ask());
    buf.extend_from_slice(b"}\n");
}

pub fn run(args: BookArgs) -> anyhow::Result<i32> {
    let config = Config::load_or_default(args.config.as_deref()).context("loading the configuration")?;
    let mut md = MarketData::new(config.hot.sizes);
    md.verify_tickers(!args.no_verify);
    md.set_sync_config(config.hot.sync);

    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = Vec::with_capacity(256);
    let mut write_error: Option<io::Error> = None;
    let mut file_errors = 0u32;
    let mut bad_lines = 0u64;

    let started = Instant::now();
    let mut chunks = LineChunks::start(args.files.clone());
    'pieces: while let Some(piece) = chunks.next_piece() {
        match piece {
            Piece::Lines(buf) => {
                for raw in lines(&buf) {
                    if raw.is_empty() {
                        continue;
                    }
                    let Some((recv_ts, json)) = split_line(raw) else {
                        bad_lines += 1;
                        continue;
                    };
                    // Recording time drives the stale rule and unsynced time.
                    md.set_time(recv_ts.min(i64::MAX as u64) as i64);
                    md.on_frame(json, &mut |ev| {
                        if matches!(ev, Event::Depth { .. }) {
                            line.clear();
                            format_top(&mut line, &ev);
                            if write_error.is_none() {
                                if let Err(e) = out.write_all(&line) {
                                    write_error = Some(e);
                                }
                            }
                        }
                    });
                    if write_error.is_some() {
                        break 'pieces;
                    }
                }
                chunks.recycle(buf);
            }
            Piece::FileError { path, error } => {
                crate::say!("mmbot book: cannot read {}: {error}", path.display());
                file_errors += 1;
            }
            Piece::Truncated { path, error } => {
                crate::say!(
                    "mmbot book: warning: {} ends early ({error}); replayed up to its last complete line",
                    path.display()
                );
            }
        }
    }
    if write_error.is_none() {
        if let Err(e) = out.flush() {
            write_error = Some(e);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(chunks);
    if let Some(e) = write_error {
        // A closed pipe (`| head`) is a normal way to stop reading.
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing to stdout");
        }
    }
    print_summary(&md, bad_lines, elapsed);
    Ok(if file_errors > 0 { crate::cli::exit::ERROR } else { crate::cli::exit::OK })
}

fn print_summary(md: &MarketData, bad_lines: u64, elapsed: f64) {
    let f = md.stats();
    let s = md.sync_stats();
    let frames = f.frames + bad_lines;
    let rate = if elapsed > 0.0 { frames as f64 / elapsed } else { 0.0 };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "mmbot book: {frames} frames in {elapsed:.3} s ({rate:.0} events/s)\n  \
         depth events applied {}, skipped {}, rejected {} (malformed), gaps {}, resyncs {}, snapshots {}\n  \
         buffered {}, stale {}, crossed {}, snapshots too old {}, unused {}, orphan {}, levels dropped {}\n  \
         bookTicker {} (checked {}, mismatched {}), trades {}\n  \
         ids refused {} (U > u) and {} (jumps past [book] max_id_jump); unsynced {:.3} s in all, {:.3} s at most",
        s.applied,
        f.skipped,
        f.rejected + bad_lines,
        s.gaps,
        s.resyncs,
        s.snapshots,
        s.buffered,
        s.stale,
        s.crossed,
        s.snapshots_too_old,
        s.snapshots_unused,
        f.orphan_snapshots,
        md.dropped_levels(),
        f.tickers,
        f.ticker_checks,
        f.ticker_mismatches,
        f.trades,
        s.malformed_ids,
        s.id_jumps,
        s.unsynced_ns_total as f64 / 1e9,
        s.unsynced_ns_longest as f64 / 1e9,
    );
    if f.rejected + bad_lines > 0 {
        let mut kinds: Vec<String> = ParseError::KIND_NAMES
            .iter()
            .zip(f.rejected_by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if bad_lines > 0 {
            kinds.push(format!("line_without_timestamp {bad_lines}"));
        }
        let _ = writeln!(err, "  rejected by kind: {}", kinds.join(", "));
        if let Some(e) = md.last_error() {
            let _ = writeln!(err, "  last parse error: {e}");
        }
    }
}
