//! The event cache: recordings decompressed once, kept in memory for every
//! sweep worker and on disk for the next sweep.
//!
//! Inflating gzip is the floor of a replay (see `feed::recording`), and a
//! sweep replays the same recordings hundreds of times. So each recording is
//! decompressed once into an `Arc<[u8]>` that all workers read (through
//! [`crate::feed::recording::LineChunks::from_memory`]), and written as a
//! cache file that the next sweep reads instead of inflating again.
//!
//! A cache file is the recording's whole lines, decompressed, behind a header:
//! `MMCACHE\0`, the format version (u32 LE), the source's length (u64 LE),
//! the source's SHA-256 (32 bytes) and the payload length (u64 LE). It is used
//! only when its version and the hash of the source as it is now both match,
//! so an edited, re-recorded or replaced recording is never served stale.
//!
//! Where: `<recording>.mmcache` beside the recording when its folder may be
//! written, else in the cache folder (`--cache-dir`, default
//! `$XDG_CACHE_HOME/mmbot` or `~/.cache/mmbot`) as
//! `<name>-<hash prefix>.mmcache`. A read-only recording or folder (an
//! archive such as `../shared/data`) is never written beside, even by root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::feed::recording::MemoryLines;

/// Bumped whenever the layout or the payload's meaning changes.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"MMCACHE\0";
const HEADER: usize = 8 + 4 + 8 + 32 + 8;

/// Why the recordings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read recording {path}: {error}")]
    Source { path: String, error: String },
}

/// Where the cache lives and whether it is written.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    /// `--cache-dir`: always use this folder (never beside the recording).
    pub dir: Option<PathBuf>,
    /// `--no-cache`: decompress in memory only; read and write no file.
    pub memory_only: bool,
}

/// How a recording got into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOrigin {
    /// Read from a valid cache file.
    Hit(PathBuf),
    /// Decompressed, and the cache file written.
    Built(PathBuf),
    /// Decompressed; no cache file (memory only, or nowhere writable: the
    /// reason says which).
    NotWritten(String),
}

/// One recording's lines in memory.
#[derive(Debug, Clone)]
pub struct CachedRecording {
    pub source: PathBuf,
    /// Whole lines, the last one ending in a newline.
    pub lines: Arc<[u8]>,
    pub origin: CacheOrigin,
    /// Set when the source ended early (a truncated gzip): its message.
    pub truncated: Option<String>,
}

/// Every recording of a sweep, in memory, in the order given.
#[derive(Debug, Clone)]
pub struct EventCache {
    pub recordings: Vec<CachedRecording>,
}

impl EventCache {
    /// Loads each file from its cache, or decompresses it (and writes the cache).
    pub fn load(files: &[PathBuf], options: &CacheOptions) -> Result<Self, CacheError> {
        let recordings = files.iter().map(|f| load_one(f, options)).collect::<Result<_, _>>()?;
        Ok(Self { recordings })
    }

    /// The recordings as one stream of lines for a backtest.
    pub fn parts(&self) -> Vec<MemoryLines> {
        self.recordings.iter().map(|r| MemoryLines::whole(r.lines.clone())).collect()
    }

    /// The source paths (for reports).
    pub fn files(&self) -> Vec<PathBuf> {
        self.recordings.iter().map(|r| r.source.clone()).collect()
    }

    /// Decompressed bytes held.
    pub fn bytes(&self) -> usize {
        self.recordings.iter().map(|r| r.lines.len()).sum()
    }
}

/// SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `$XDG_CACHE_HOME/mmbot`, else `$HOME/.cache/mmbot`, else a folder in the
/// system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("XDG_CACHE_HOME")
        .map(|d| d.join("mmbot"))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("mmbot")))
        .unwrap_or_else(|| std::env::temp_dir().join("mmbot-cache"))
}

/// `<recording>.mmcache`.
pub fn beside_path(source: &Path) -> PathBuf {
    let mut name = source.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".mmcache");
    source.with_file_name(name)
}

/// `<dir>/<name>-<first 16 hex digits of the hash>.mmcache`.
pub fn dir_path(dir: &Path, source: &Path, hash: &[u8; 32]) -> PathBuf {
    let name = source.file_name().map_or_else(|| "recording".into(), |n| n.to_string_lossy().into_owned());
    dir.join(format!("{name}-{}.mmcache", hex(&hash[..8])))
}

/// Whether a cache file may be written beside `source`: neither the file
/// nor its folder is read-only by its permission bits (which root would
/// otherwise write through).
fn may_write_beside(source: &Path) -> bool {
    let folder = source.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let writable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.permissions().readonly());
    writable(source) && writable(folder)
}

/// The header a cache of `source` (length, hash) with `payload` bytes has.
fn header(source_len: u64, hash: &[u8; 32], payload_len: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&source_len.to_le_bytes());
    h[20..52].copy_from_slice(hash);
    h[52..60].copy_from_slice(&payload_len.to_le_bytes());
    h
}

/// The payload of a cache file, if it is a valid cache of this source.
fn read_cache(path: &Path, source_len: u64, hash: &[u8; 32]) -> Option<Arc<[u8]>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = [0u8; HEADER];
    f.read_exact(&mut h).ok()?;
    let payload_len = u64::from_le_bytes(h[52..60].try_into().ok()?);
    if h != header(source_len, hash, payload_len) || f.metadata().ok()?.len() != HEADER as u64 + payload_len {
        return None;
    }
    let mut payload = Vec::with_capacity(payload_len as usize);
    f.read_to_end(&mut payload).ok()?;
    (payload.len() as u64 == payload_len).then(|| payload.into())
}

/// Writes a cache file atomically (temporary file, then rename), so a
/// reader never sees half of one.
fn write_cache(path: &Path, source_len: u64, hash: &[u8; 32], payload: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("mmcache.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(&header(source_len, hash, payload.len() as u64))?;
        f.write_all(payload)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Decompresses (when gzip) into whole lines ending in a newline. A source
/// that ends early keeps its complete lines and says why.
fn decompress(source: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::with_capacity(source.len() * 4);
    let error = if source.len() >= 2 && source[0] == 0x1f && source[1] == 0x8b {
        // read_to_end keeps what was read before an error.
        flate2::read::MultiGzDecoder::new(source).read_to_end(&mut out).err().map(|e| e.to_string())
    } else {
        out.extend_from_slice(source);
        None
    };
    if error.is_some() {
        let keep = memchr::memrchr(b'\n', &out).map_or(0, |i| i + 1);
        out.truncate(keep);
    } else if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    (out, error)
}

fn load_one(path: &Path, options: &CacheOptions) -> Result<CachedRecording, CacheError> {
    let source = std::fs::read(path)
        .map_err(|e| CacheError::Source { path: path.display().to_string(), error: e.to_string() })?;
    let (len, hash) = (source.len() as u64, content_hash(&source));
    let dir = options.dir.clone().unwrap_or_else(default_cache_dir);
    let candidates: Vec<PathBuf> = match (&options.dir, options.memory_only) {
        (_, true) => Vec::new(),
        (Some(_), false) => vec![dir_path(&dir, path, &hash)],
        (None, false) => vec![beside_path(path), dir_path(&dir, path, &hash)],
    };
    for c in &candidates {
        if let Some(lines) = read_cache(c, len, &hash) {
            return Ok(CachedRecording {
                source: path.to_path_buf(),
                lines,
                origin: CacheOrigin::Hit(c.clone()),
                truncated: None,
            });
        }
    }
    let (lines, truncated) = decompress(&source);
    drop(source);
    let origin = if options.memory_only {
        CacheOrigin::NotWritten("--no-cache".into())
    } else {
        let beside_ok = options.dir.is_none() && may_write_beside(path);
        let targets = candidates.iter().filter(|c| beside_ok || **c != beside_path(path));
        let mut failures = Vec::new();
        let mut written = None;
        for t in targets {
            match write_cache(t, len, &hash, &lines) {
                Ok(()) => {
                    written = Some(t.clone());
                    break;
                }
                Err(e) => failures.push(format!("{}: {e}", t.display())),
            }
        }
        match written {
            Some(p) => CacheOrigin::Built(p),
            None => CacheOrigin::NotWritten(format!("could not write a cache file ({})", failures.join("; "))),
        }
    };
    Ok(CachedRecording { source: path.to_path_buf(), lines: lines.into(), origin, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mmbot-cache-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn built_once_then_hit_and_rebuilt_when_the_source_changes() {
        let dir = temp("beside");
        let rec = dir.join("a.gz");
        std::fs::write(&rec, gzip(b"1 {}\n2 {}")).unwrap();
        let opts = CacheOptions::default();
        let first = EventCache::load(std::slice::from_ref(&rec), &opts).unwrap();
        assert_eq!(&*first.recordings[0].lines, b"1 {}\n2 {}\n");
        assert_eq!(first.recordings[0].origin, CacheOrigin::Built(beside_path(&rec)));
        let second = EventCache::load(std::slice::from_ref(&rec), &opts).unwrap();
        assert_eq!(second.recordings[0].origin, CacheOrigin::Hit(beside_path(&rec)));
        assert_eq!(second.recordings[0].lines, first.recordings[0].lines);
        // Same length, other content: the hash tells.
        std::fs::write(&rec, gzip(b"1 {}\n3 {}")).unwrap();
        let third = EventCache::load(std::slice::from_ref(&rec), &opts).unwrap();
        assert_eq!(third.recordings[0].origin, CacheOrigin::Built(beside_path(&rec)));
        assert_eq!(&*third.recordings[0].lines, b"1 {}\n3 {}\n");
        // A damaged cache file is rebuilt, not trusted.
        let mut bytes = std::fs::read(beside_path(&rec)).unwrap();
        bytes.truncate(bytes.len() - 2);
        std::fs::write(beside_path(&rec), bytes).unwrap();
        let fourth = EventCache::load(std::slice::from_ref(&rec), &opts).unwrap();
        assert!(matches!(fourth.recordings[0].origin, CacheOrigin::Built(_)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn read_only_folders_get_their_cache_in_the_cache_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("readonly");
        let (ro, cache) = (dir.join("archive"), dir.join("cache"));
        std::fs::create_dir_all(&ro).unwrap();
        let rec = ro.join("b.rec");
        std::fs::write(&rec, b"5 {}\n").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let opts = CacheOptions { dir: None, memory_only: false };
        // The default cache dir is the user's; point it at the test's by
        // asking for the folder explicitly, and check the beside rule alone.
        assert!(!may_write_beside(&rec));
        let with_dir = CacheOptions { dir: Some(cache.clone()), ..opts };
        let c = EventCache::load(std::slice::from_ref(&rec), &with_dir).unwrap();
        let CacheOrigin::Built(p) = &c.recordings[0].origin else { panic!("{:?}", c.recordings[0].origin) };
        assert!(p.starts_with(&cache), "{}", p.display());
        assert!(!beside_path(&rec).exists());
        let mem = EventCache::load(std::slice::from_ref(&rec), &CacheOptions { dir: None, memory_only: true }).unwrap();
        assert_eq!(mem.recordings[0].origin, CacheOrigin::NotWritten("--no-cache".into()));
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_gzip_keeps_its_complete_lines() {
        let full = gzip(&b"1 {\"a\":1}\n".repeat(5000));
        let (lines, err) = decompress(&full[..full.len() / 2]);
        assert!(err.is_some());
        assert!(!lines.is_empty() && lines.ends_with(b"}\n"));
        assert_eq!(lines.len() % 10, 0);
    }
}
