//! The host-wide half of the guard: a small file that every mmbot process
//! on this host reads before each request and writes when Binance asks it
//! to back off, so one process's 418 or 429 stops the others within
//! milliseconds (Binance counts per IP, FACTS.md §4.8; `mmbot paper` and
//! `mmbot record` side by side share one IP).
//!
//! Format (one ASCII line, times in Unix milliseconds on this host's clock):
//!
//! ```text
//! mmbot-ipguard 1 ban_until_ms=1700000120000 weight_until_ms=0 orders_until_ms=0
//! ```
//!
//! - `ban_until_ms`: a 418 ban; every request and every connect waits.
//! - `weight_until_ms`: a request-weight 429 (-1003); every request waits.
//! - `orders_until_ms`: an order-count 429 (-1015); new orders wait. (The
//!   order count is per account, so two accounts traded from one host share
//!   this conservatively.)
//!
//! A missing key reads as 0, an unknown key is ignored (newer writers), an
//! empty file means no back-off. A file that does not read as this format
//! is ignored with a counted warning and overwritten by the next back-off;
//! nothing in it can panic.
//!
//! Locking: `flock` (std's `File::lock` family): a writer holds it
//! exclusive while it reads, merges (each time only ever grows, so a ban is
//! never shortened) and rewrites; a reader holds it shared. Neither waits
//! long: a lock still busy after a few milliseconds is counted and the
//! step skipped (a read is retried on the next admit; a write keeps the
//! back-off in this process).
//!
//! Cost: every admit stats the path; the file is read only when its
//! modification time or length changed, when it was modified in the last
//! [`RECENT`] (file times move in kernel ticks, so two writes in one tick
//! look alike), or once per [`REREAD`]. Used weight is not shared here:
//! every Binance answer carries the IP-wide `X-MBX-USED-WEIGHT-*`, so each
//! process learns the others' spend from its own next answer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Re-read a file modified this recently on every admit.
pub const RECENT: Duration = Duration::from_millis(50);
/// Re-read at least this often whatever the file's times say.
pub const REREAD: Duration = Duration::from_secs(1);
/// Longest a read waits for a shared lock.
const READ_LOCK_WAIT: Duration = Duration::from_millis(5);
/// Longest a write waits for the exclusive lock.
const WRITE_LOCK_WAIT: Duration = Duration::from_millis(200);
/// Larger than any valid file; more is corrupt.
const MAX_LEN: u64 = 4096;
const MAGIC: &str = "mmbot-ipguard 1";

/// The back-offs in force, Unix ms on this host's clock (0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blocks {
    pub ban_until_ms: i64,
    pub weight_until_ms: i64,
    pub orders_until_ms: i64,
    /// REST only (a 429 not from request weight: the RAW_REQUESTS limit,
    /// which the WebSocket API does not have).
    pub rest_until_ms: i64,
}

impl Blocks {
    /// Takes the later of each time; true when anything grew.
    pub fn merge(&mut self, o: &Blocks) -> bool {
        let before = *self;
        self.ban_until_ms = self.ban_until_ms.max(o.ban_until_ms);
        self.weight_until_ms = self.weight_until_ms.max(o.weight_until_ms);
        self.orders_until_ms = self.orders_until_ms.max(o.orders_until_ms);
        self.rest_until_ms = self.rest_until_ms.max(o.rest_until_ms);
        *self != before
    }

    /// The file's line.
    pub fn to_line(&self) -> String {
        format!(
            "{MAGIC} ban_until_ms={} weight_until_ms={} orders_until_ms={} rest_until_ms={}\n",
            self.ban_until_ms, self.weight_until_ms, self.orders_until_ms, self.rest_until_ms
        )
    }

    /// Parses the file's text: `Ok(None)` when empty, `Err` (what is wrong)
    /// when it is not this format.
    pub fn parse(text: &str) -> Result<Option<Blocks>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let Some(rest) = text.strip_prefix(MAGIC) else {
            return Err(format!("it does not start with {MAGIC:?}"));
        };
        let mut b = Blocks::default();
        for field in rest.split_ascii_whitespace() {
            let Some((k, v)) = field.split_once('=') else {
                return Err(format!("{field:?} is not key=value"));
            };
            let slot = match k {
                "ban_until_ms" => &mut b.ban_until_ms,
                "weight_until_ms" => &mut b.weight_until_ms,
                "orders_until_ms" => &mut b.orders_until_ms,
                "rest_until_ms" => &mut b.rest_until_ms,
                _ => continue,
            };
            *slot = v.parse::<i64>().map_err(|_| format!("{k}={v:?} is not a whole number"))?.max(0);
        }
        Ok(Some(b))
    }
}

/// Counts of what happened to the file (for status lines and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostFileStats {
    pub reads: u64,
    pub writes: u64,
    /// Contents that were not the format (ignored).
    pub corrupt: u64,
    /// Locks still held by another process after the short wait.
    pub lock_busy: u64,
    /// Read, write or reopen failures.
    pub io_errors: u64,
}

/// Why the file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "IP guard file {path}: {source}; check that its folder exists and is writable by this user, or set [net] \
     ip_guard_file"
)]
pub struct HostFileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// The open shared file.
#[derive(Debug)]
pub struct HostFile {
    path: PathBuf,
    file: File,
    ino: u64,
    /// Modification time and length when last read.
    seen: Option<(SystemTime, u64)>,
    last_read: Option<Instant>,
    stats: HostFileStats,
}

fn open(path: &Path) -> Result<File, HostFileError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // Only this user: the file steers when this user's bots may trade.
        .mode(0o600)
        .open(path)
        .map_err(|source| HostFileError { path: path.display().to_string(), source })
}

impl HostFile {
    /// Opens (creating) the file.
    pub fn open(path: &Path) -> Result<Self, HostFileError> {
        let file = open(path)?;
        let err = |source| HostFileError { path: path.display().to_string(), source };
        let meta = file.metadata().map_err(err)?;
        // In a shared temp folder someone else could have made the file (or
        // a link to one of theirs) first: only our own file is trusted.
        if let Some(uid) = own_uid() {
            if meta.uid() != uid {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("it belongs to user id {}, not this user ({uid})", meta.uid()),
                )));
            }
        }
        let ino = meta.ino();
        Ok(Self { path: path.to_path_buf(), file, ino, seen: None, last_read: None, stats: HostFileStats::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> HostFileStats {
        self.stats
    }

    /// The file's back-offs if it may have changed since the last read;
    /// `None` when unchanged or unreadable right now.
    pub fn refresh(&mut self, now: Instant) -> Option<Blocks> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // Removed: make it again (an absent file means no back-off).
            Err(_) => {
                self.reopen();
                return None;
            }
        };
        if meta.ino() != self.ino {
            // Replaced by someone: follow the path.
            self.reopen();
        }
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let stamp = (mtime, meta.len());
        let recent = SystemTime::now().duration_since(mtime).map_or(true, |age| age < RECENT);
        let due = self.last_read.is_none_or(|t| now.duration_since(t) >= REREAD);
        if self.seen == Some(stamp) && !recent && !due {
            return None;
        }
        if !self.lock(true, READ_LOCK_WAIT) {
            return None;
        }
        let text = self.read_all();
        let _ = self.file.unlock();
        self.seen = Some(stamp);
        self.last_read = Some(now);
        self.stats.reads += 1;
        self.decode(text?)
    }

    /// Merges `mine` into the file (each time only grows) and returns what
    /// the file holds now; `None` when the lock stayed busy or I/O failed
    /// (the back-off then holds in this process only).
    pub fn publish(&mut self, mine: &Blocks) -> Option<Blocks> {
        if !self.lock(false, WRITE_LOCK_WAIT) {
            return None;
        }
        let result = self.merge_and_write(mine);
        let _ = self.file.unlock();
        match result {
            Ok(b) => {
                self.stats.writes += 1;
                Some(b)
            }
            Err(e) => {
                self.stats.io_errors += 1;
                tracing::warn!(
                    target: "mmbot::ipguard",
                    "cannot write the IP guard file {}: {e}; the back-off holds in this process only",
                    self.path.display()
                );
                None
            }
        }
    }

    fn merge_and_write(&mut self, mine: &Blocks) -> std::io::Result<Blocks> {
        let mut merged = *mine;
        if let Some(text) = self.read_all() {
            if let Some(theirs) = self.decode(text) {
                merged.merge(&theirs);
            }
        }
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(merged.to_line().as_bytes())?;
        self.file.flush()?;
        Ok(merged)
    }

    /// Takes the lock (shared or exclusive) without waiting longer than `wait`.
    fn lock(&mut self, shared: bool, wait: Duration) -> bool {
        let end = Instant::now() + wait;
        loop {
            let r = if shared { self.file.try_lock_shared() } else { self.file.try_lock() };
            match r {
                Ok(()) => return true,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    self.stats.lock_busy += 1;
                    return false;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    self.stats.io_errors += 1;
                    tracing::warn!(target: "mmbot::ipguard", "cannot lock the IP guard file {}: {e}", self.path.display());
                    return false;
                }
            }
        }
    }

    fn read_all(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let r = self.file.seek(SeekFrom::Start(0)).and_then(|_| (&self.file).take(MAX_LEN + 1).read_to_end(&mut buf));
        if let Err(e) = r {
            self.stats.io_errors += 1;
            tracing::warn!(target: "mmbot::ipguard", "cannot read the IP guard file {}: {e}", self.path.display());
            return None;
        }
        if buf.len() as u64 > MAX_LEN {
            self.corrupt("it is larger than any IP guard file");
            return None;
        }
        match String::from_utf8(buf) {
            Ok(s) => Some(s),
            Err(_) => {
                self.corrupt("it is not text");
                None
            }
        }
    }

    fn decode(&mut self, text: String) -> Option<Blocks> {
        match Blocks::parse(&text) {
            Ok(b) => b,
            Err(why) => {
                self.corrupt(&why);
                None
            }
        }
    }

    fn corrupt(&mut self, why: &str) {
        self.stats.corrupt += 1;
        // The first and then every 100th, so a garbage file cannot flood the log.
        if self.stats.corrupt % 100 == 1 {
            tracing::warn!(
                target: "mmbot::ipguard",
                "IP guard file {} ignored: {why} (seen {} times); the next back-off rewrites it",
                self.path.display(),
                self.stats.corrupt
            );
        }
    }

    fn reopen(&mut self) {
        match open(&self.path).and_then(|f| {
            let ino =
                f.metadata().map_err(|source| HostFileError { path: self.path.display().to_string(), source })?.ino();
            Ok((f, ino))
        }) {
            Ok((f, ino)) => {
                self.file = f;
                self.ino = ino;
                self.seen = None;
            }
            Err(_) => self.stats.io_errors += 1,
        }
    }
}

/// This process's user id (Linux: the owner of `/proc/self`).
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Where the file lives unless `[net] ip_guard_file` says otherwise:
/// `$XDG_RUNTIME_DIR/mmbot-ipguard-<uid>` (per-user, cleared at logout), or
/// `<temp dir>/mmbot-ipguard-<uid>`. The user id keeps two users' bots on one
/// host from sharing (or fighting over) one file.
pub fn default_path() -> PathBuf {
    let uid =
        own_uid().map(|u| u.to_string()).unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "user".into()));
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("mmbot-ipguard-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_round_trips_and_garbage_is_an_error_not_a_panic() {
        let b = Blocks { ban_until_ms: 5, weight_until_ms: 6, orders_until_ms: 7, rest_until_ms: 8 };
        assert_eq!(Blocks::parse(&b.to_line()), Ok(Some(b)));
        assert_eq!(Blocks::parse(""), Ok(None));
        assert_eq!(Blocks::parse("  \n"), Ok(None));
        assert_eq!(
            Blocks::parse("mmbot-ipguard 1 ban_until_ms=9 future_key=x"),
            Ok(Some(Blocks { ban_until_ms: 9, ..Default::default() }))
        );
        for bad in ["garbage", "mmbot-ipguard 1 ban_until_ms=abc", "mmbot-ipguard 1 ban", "\u{0}\u{1}"] {
            assert!(Blocks::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merging_never_shortens() {
        let mut a = Blocks { ban_until_ms: 100, weight_until_ms: 0, orders_until_ms: 50, rest_until_ms: 0 };
        assert!(!a.merge(&Blocks { ban_until_ms: 90, weight_until_ms: 0, orders_until_ms: 10, rest_until_ms: 0 }));
        assert!(a.merge(&Blocks { weight_until_ms: 70, ..Default::default() }));
        assert_eq!(a, Blocks { ban_until_ms: 100, weight_until_ms: 70, orders_until_ms: 50, rest_until_ms: 0 });
    }
}
