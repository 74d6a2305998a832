//! Whether the terminal is still there, and whether a key is waiting.
//!
//! crossterm's `event::poll` never returns once its terminal has gone away
//! (an SSH session dropped, a tmux pane killed): a hung-up tty stays
//! readable while reads return 0 or fail, and its read loop retries at
//! once, forever, at 100% CPU (crossterm-rs/crossterm issue #793, fix
//! proposed in PR #1067, not released). A dashboard stuck there never sees
//! its run finish, so the process never exits and ignores SIGTERM. The
//! dashboards therefore wait on the terminal themselves (`epoll` through
//! mio, on the descriptor crossterm reads: stdin, which `View::auto`
//! requires to be a terminal) and call crossterm only when input is
//! waiting and the terminal has not hung up.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::io::Errno;

/// What the terminal did while [`TtyWatch::wait`] waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tty {
    /// Nothing: no key, still there.
    Quiet,
    /// Input is waiting: crossterm can read it without blocking.
    Input,
    /// Hung up or failed: the terminal is gone.
    Gone,
}

/// A watch on stdin's terminal.
pub struct TtyWatch {
    poll: Poll,
    events: Events,
}

impl TtyWatch {
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let fd = io::stdin().as_raw_fd();
        poll.registry().register(&mut SourceFd(&fd), Token(0), Interest::READABLE)?;
        Ok(Self { poll, events: Events::with_capacity(4) })
    }

    /// Waits up to `timeout` for input or a hang-up.
    pub fn wait(&mut self, timeout: Duration) -> Tty {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            // A signal (SIGWINCH on a resize) is not a lost terminal.
            return if e.kind() == io::ErrorKind::Interrupted { Tty::Quiet } else { Tty::Gone };
        }
        let mut out = Tty::Quiet;
        for e in self.events.iter() {
            if e.is_read_closed() || e.is_error() {
                return Tty::Gone;
            }
            if e.is_readable() {
                out = Tty::Input;
            }
        }
        out
    }
}

/// The error a dashboard ends with when its terminal went away: nothing
/// can be shown any more, so its caller prints nothing either (a write to
/// a hung-up terminal fails, and `eprintln!` would panic on it).
pub fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the terminal went away (hung up)")
}

/// Points stdout and stderr at `/dev/null` once the terminal is gone, so
/// that what the run still prints (its summary, the report's path) cannot
/// fail: `eprintln!` panics on a write error, and a hung-up terminal fails
/// every write. The run's log file still gets its log lines.
pub fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return };
    let _ = rustix::stdio::dup2_stdout(&null);
    let _ = rustix::stdio::dup2_stderr(&null);
}

/// A dashboard's result, with any failure that comes from a terminal that
/// went away (hung up, or a write failing with EIO/ENXIO) made [`gone`]'s,
/// and stdout and stderr then detached ([`detach_stdio`]) before anything
/// else writes to them: ratatui's restore prints its own failure with
/// `eprintln!`, which would panic.
pub fn settle(result: io::Result<()>, watch: &mut TtyWatch) -> io::Result<()> {
    let Err(e) = result else { return Ok(()) };
    let dead = [Errno::IO, Errno::NXIO].map(|n| Some(n.raw_os_error()));
    let hung_up = is_gone(&e) || dead.contains(&e.raw_os_error()) || watch.wait(Duration::ZERO) == Tty::Gone;
    if hung_up {
        detach_stdio();
        return Err(gone());
    }
    Err(e)
}

/// Whether `e` is [`gone`]'s.
pub fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
