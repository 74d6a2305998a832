//! Helpers shared by the integration tests: locating ../shared/data and
//! reading recordings into memory.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// Says why a test is skipping, visibly: written straight to stderr, which
/// libtest does not capture (it captures `eprintln!`), so CI logs show it.
pub fn skip(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {message}");
}

/// ../shared/data, beside the project.
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The real captures beside the project, or `None` (with a message saying
/// why the test is skipping) when ../shared/data is absent.
pub fn recordings(test: &str) -> Option<Vec<PathBuf>> {
    let dir = shared_data().join("recordings");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        skip(format_args!("{test}: {} is absent (real captures live in ../shared/data)", dir.display()));
        return None;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    if files.is_empty() {
        skip(format_args!("{test}: {} holds no recordings", dir.display()));
        return None;
    }
    Some(files)
}

/// All lines of a recording (decompressed), without their newlines.
pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    mmbot::feed::recording::open(path).unwrap().read_to_end(&mut text).unwrap();
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect()
}

/// The first `max` lines of a recording as (receive time ns, frame).
pub fn timed_lines(lines: &[Vec<u8>], max: usize) -> Vec<(i64, Vec<u8>)> {
    lines
        .iter()
        .take(max)
        .filter_map(|l| mmbot::feed::recording::split_line(l).map(|(ts, json)| (ts as i64, json.to_vec())))
        .collect()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmbot-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `tmux -L socket args..` and returns its stdout.
pub fn tmux(socket: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("tmux").arg("-L").arg(socket).args(args).output().expect("running tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (bounded) until tmux session `target`'s pane shows `text`; the
/// last screen either way.
pub fn tmux_wait_for(socket: &str, target: &str, text: &str, limit: std::time::Duration) -> Result<String, String> {
    let start = std::time::Instant::now();
    let mut screen = String::new();
    while start.elapsed() < limit {
        screen = tmux(socket, &["capture-pane", "-t", target, "-p"]);
        if screen.contains(text) {
            return Ok(screen);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(screen)
}

/// Waits for `child` (its stderr piped), killing it past `deadline` (then panics with what it
/// printed): its exit status and everything it wrote to stderr.
pub fn finish_child(
    mut child: std::process::Child,
    deadline: std::time::Duration,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut err = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = std::time::Instant::now() + deadline;
    let status = loop {
        if let Some(st) = child.try_wait().expect("the child can be waited for") {
            break st;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not end within {deadline:?}:\n{}", reader.join().unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

/// `mmbot run --live --yes --no-dashboard --duration DURATION` against a simulator's market
/// (`stream_url`, `rest_url`) with `config`, its outputs under `dir` (`out/`, `report.json`), and
/// `keys` (API key, HMAC secret) in the child's environment only; stdin and stdout closed, stderr
/// piped (callers may redirect it).
pub fn live_run_cmd(
    dir: &Path,
    (stream_url, rest_url): (&str, &str),
    config: &Path,
    duration: &str,
    (key, secret): (&str, &str),
) -> std::process::Command {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mmbot"));
    cmd.args(["run", "--live", "--yes", "--no-dashboard", "--duration", duration])
        .args(["--stream-url", stream_url, "--rest-url", rest_url])
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--report")
        .arg(dir.join("report.json"))
        .env("BINANCE_API_KEY", key)
        .env("BINANCE_SECRET_KEY", secret)
        .env_remove("BINANCE_ED25519_KEY_FILE")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// An exchange order status as the journal spells it (UNKNOWN for what the journal never
/// records as final).
pub fn journal_status(s: &mmbot::exec::binance::OrderStatus) -> &'static str {
    use mmbot::exec::binance::OrderStatus as S;
    match s {
        S::New => "NEW",
        S::PartiallyFilled => "PARTIALLY_FILLED",
        S::Filled => "FILLED",
        S::Canceled => "CANCELED",
        S::Rejected => "REJECTED",
        S::Expired | S::ExpiredInMatch => "EXPIRED",
        _ => "UNKNOWN",
    }
}

/// A child process killed (and reaped) when dropped, on every way out of a test.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// Waits up to `limit` for the child to exit on its own (after a stop it
    /// was asked for): its exit status; panics past `limit` (the drop kills it).
    pub fn exit_within(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(started.elapsed() < limit, "the child did not exit within {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `child`'s stderr (piped) on a thread until its control-plane banner
/// (`control: http://ADDR/ ...`) or `limit`: the address, and the lines before it (panics
/// without one). The thread goes on draining stderr, so the child never blocks on it.
pub fn control_banner(child: &mut std::process::Child, limit: std::time::Duration) -> (String, Vec<String>) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("no control banner within {limit:?}:\n{}", seen.join("\n"));
        };
        if let Some(rest) = line.strip_prefix("control: http://") {
            return (rest.split('/').next().unwrap_or_default().to_string(), seen);
        }
        seen.push(line);
    }
}

/// One HTTP/1.1 exchange with a control plane at `addr` (`Authorization: Bearer TOKEN` when
/// `token` is given; `body` as JSON): the status and the body.
pub fn control_call(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), body.to_string())
}
