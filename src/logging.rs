//! Logs: `tracing` events from the side threads (connector, snapshot,
//! script, ai), written by a background worker (`tracing-appender`'s
//! non-blocking writer) to stderr and/or a file. The hot thread never logs:
//! it counts, and the counters reach status lines, the dashboard and the
//! report.
//!
//! While the dashboard owns the terminal, logs go to the run's folder only
//! (`mmbot.log`), so they never tear the screen. `MMBOT_LOG` sets the filter
//! (`info` by default; e.g. `MMBOT_LOG=debug` or `MMBOT_LOG=mmbot::feed=debug`).
//!
//! Lines for the operator (status lines, summaries, warnings) go to stderr
//! through [`say!`](crate::say), never `eprintln!`: `eprintln!` panics when
//! stderr is gone (a closed pipe, `mmbot live 2>&1 | tee run.txt` with `tee`
//! killed), and with `panic = "abort"` any thread's panic would end the
//! process with live orders still working instead of letting the run stop
//! and cancel them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::EnvFilter;

/// Keeps the log writers flushing; drop it at exit (it flushes what is left).
#[must_use = "logs stop being written when the guard is dropped"]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

/// Installs the process's log subscriber: to stderr when `stderr`, and to
/// `file` (appended) when given. A second call changes nothing.
pub fn init(stderr: bool, file: Option<&Path>) -> LogGuard {
    let filter = EnvFilter::try_from_env("MMBOT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let mut guards = Vec::new();
    let file_writer = file.and_then(|p| {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(p).ok()?;
        let (w, g) = tracing_appender::non_blocking(f);
        guards.push(g);
        Some(w)
    });
    let (err_writer, g) = tracing_appender::non_blocking(std::io::stderr());
    guards.push(g);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let installed = match (stderr, file_writer) {
        (true, Some(f)) => builder.with_ansi(false).with_writer(err_writer.and(f)).try_init(),
        (true, None) => builder.with_writer(err_writer).try_init(),
        (false, Some(f)) => builder.with_ansi(false).with_writer(f).try_init(),
        (false, None) => builder.with_writer(std::io::sink).try_init(),
    };
    // Already installed (tests, or a command that set it up): keep that one.
    let _ = installed;
    LogGuard { _guards: guards }
}

/// Set once a [`say!`](crate::say) line could not be written (stderr gone),
/// so that only the first failure is logged.
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `line` and a newline to stderr, as `eprintln!` would, but a
/// failed write drops the line instead of panicking. The first failure is
/// logged (the run's log file keeps it). Use through [`say!`](crate::say).
pub fn say_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stderr().lock(), "{line}") {
        if !STDERR_GONE.swap(true, Ordering::Relaxed) {
            tracing::warn!("stderr went away ({e}): operator lines to it are dropped from now on; the run goes on");
        }
    }
}

/// `eprintln!` that never panics: see [`say_line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::logging::say_line(::std::format_args!($($arg)*))
    };
}
