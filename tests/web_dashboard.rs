//! The web dashboard in a real browser: `mmbot demo --control 127.0.0.1:0`
//! serves the page (docs/control.md), headless Chromium loads it with the
//! token in the fragment, and the test drives it over the Chrome DevTools
//! Protocol: the page connects its stream and its values move, a real mouse
//! click on Pause stops the quoting (the page, `GET /api/status` and the
//! run's event log and report all say so), a screenshot is saved to
//! `target/test-output/web_dashboard.png`, and `POST /api/stop` ends the run.
//!
//! Skips (with a message, passing) when no Chromium is found: Debian's
//! `chromium` package, `chromium-browser` or `google-chrome` on PATH, or
//! `$MMBOT_CHROMIUM`. Every wait is bounded; the browser and the demo are
//! killed on every way out (a guard's Drop).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// 32 characters, as the demo's `MMBOT_CONTROL_TOKEN`.
const TOKEN: &str = "mmbot-web-dashboard-e2e-token-32";

/// The browser to use: `$MMBOT_CHROMIUM`, else the first of `chromium`,
/// `chromium-browser`, `google-chrome` on PATH; or why there is none.
fn find_chromium() -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("MMBOT_CHROMIUM").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        let found = if p.components().count() > 1 { p.is_file().then_some(p) } else { on_path(&v) };
        return found.ok_or_else(|| format!("MMBOT_CHROMIUM={} is not a file or on PATH", v.to_string_lossy()));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|n| on_path(std::ffi::OsStr::new(n)))
        .ok_or_else(|| "no Chromium found (install Debian's `chromium` package, or set MMBOT_CHROMIUM)".into())
}

fn on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// A child's stderr, read on a thread of its own (so the child never blocks
/// on a full pipe): every line kept, and each also sent on a channel.
struct Lines {
    all: Arc<Mutex<Vec<String>>>,
    rx: mpsc::Receiver<String>,
}

impl Lines {
    fn read(from: impl Read + Send + 'static) -> Lines {
        let all = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = Arc::clone(&all);
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Lines { all, rx }
    }

    /// Waits (up to `limit`) for a line `pick` says yes to; what it picked.
    fn wait_for<T>(&self, limit: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let end = Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(t) = pick(&line) {
                        return Some(t);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The last `n` lines, for a failure's message.
    fn tail(&self, n: usize) -> String {
        let all = self.all.lock().unwrap();
        all[all.len().saturating_sub(n)..].join("\n")
    }
}

/// Kills the demo and the browser (its whole process group) on every way
/// out, and says what they printed when the test fails.
struct Guard {
    demo: Option<Child>,
    demo_err: Option<Lines>,
    browser: Option<Child>,
    browser_err: Option<Lines>,
    profile: Option<PathBuf>,
}

impl Guard {
    /// Panics with `what` and the tail of both children's stderr.
    fn fail(&self, what: impl std::fmt::Display) -> ! {
        let demo = self.demo_err.as_ref().map(|l| l.tail(60)).unwrap_or_default();
        // Headless Chromium without a D-Bus complains about it at length.
        let browser = self.browser_err.as_ref().map(|l| l.tail(200)).unwrap_or_default();
        let browser: Vec<&str> = browser.lines().filter(|l| !l.contains(":ERROR:dbus/")).collect();
        let browser = browser[browser.len().saturating_sub(30)..].join("\n");
        panic!("web_dashboard: {what}\n--- mmbot demo stderr (tail) ---\n{demo}\n--- chromium stderr (tail) ---\n{browser}");
    }

    fn kill_browser(&mut self) {
        if let Some(mut b) = self.browser.take() {
            // Chromium's helpers (zygote, renderers, GPU) share its group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", b.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = b.kill();
            let _ = b.wait();
        }
        if let Some(p) = self.profile.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut d) = self.demo.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        self.kill_browser();
    }
}

/// Polls `probe` every 100 ms for up to `limit`: its first `Ok`, or an error
/// naming `what` and the last thing it saw.
fn poll<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let end = Instant::now() + limit;
    loop {
        match probe() {
            Ok(t) => return Ok(t),
            Err(last) if Instant::now() >= end => return Err(format!("{what}: not within {limit:?}; last: {last}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A minimal HTTP/1.1 client over a raw `TcpStream`, bounded in time: the
/// status and the body (Content-Length, chunked, or up to the close).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let end = Instant::now() + Duration::from_secs(10);
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("address {addr}: {e}"))?;
    let mut s =
        TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).map_err(|e| format!("{method} {path}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(done) = parse_response(&buf) {
            return done.map_err(|e| format!("{method} {path}: {e}"));
        }
        if Instant::now() > end {
            return Err(format!("{method} {path}: no whole answer within 10 s ({} bytes)", buf.len()));
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                // Closed: whatever came is the whole answer.
                return parse_closed(&buf).map_err(|e| format!("{method} {path}: {e}"));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("{method} {path}: {e}")),
        }
    }
}

/// An answer's headers, names lower-cased.
type Headers = Vec<(String, String)>;

/// The head of `buf` (status, headers) and where the body starts.
fn split_head(buf: &[u8]) -> Option<(u16, Headers, usize)> {
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..at]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((status, headers, at + 4))
}

/// A whole answer in `buf`, when it is one already (Content-Length or chunked).
fn parse_response(buf: &[u8]) -> Option<Result<(u16, String), String>> {
    let (status, headers, start) = split_head(buf)?;
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(len) = header("content-length") {
        let Ok(len) = len.parse::<usize>() else { return Some(Err(format!("Content-Length {len}"))) };
        let body = &buf[start..];
        return (body.len() >= len).then(|| Ok((status, String::from_utf8_lossy(&body[..len]).into_owned())));
    }
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        return dechunk(&buf[start..]).map(|b| Ok((status, b)));
    }
    None
}

fn parse_closed(buf: &[u8]) -> Result<(u16, String), String> {
    if let Some(done) = parse_response(buf) {
        return done;
    }
    let (status, _, start) =
        split_head(buf).ok_or_else(|| format!("no HTTP head in {:?}", String::from_utf8_lossy(buf)))?;
    Ok((status, String::from_utf8_lossy(&buf[start..]).into_owned()))
}

/// A chunked body, when all of it (the last, empty chunk included) is here.
fn dechunk(mut b: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..eol]).ok()?.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// GET `path` with the token: its JSON body (a 200 only).
fn api_get(addr: &str, path: &str) -> Result<Value, String> {
    let (status, body) = http(addr, "GET", path, Some(TOKEN), None)?;
    if status != 200 {
        return Err(format!("GET {path}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
}

/// A tiny Chrome DevTools Protocol client: one page target, commands
/// matched to their replies by id, events skipped, every read bounded.
mod cdp {
    use super::*;
    use tungstenite::{Message, WebSocket};

    /// Starts `exe` headless on a free DevTools port with a fresh profile
    /// in `profile` (and `HOME` there too): the child, its stderr, and the
    /// browser's DevTools address (`127.0.0.1:PORT`).
    pub fn launch(exe: &Path, profile: &Path) -> Result<(Child, Lines, String), String> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.join("profile").display()))
            .arg("about:blank")
            .env("HOME", profile)
            .env("XDG_CONFIG_HOME", profile.join(".config"))
            .env("XDG_CACHE_HOME", profile.join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let lines = Lines::read(child.stderr.take().unwrap());
        let ws = lines.wait_for(Duration::from_secs(30), |l| {
            l.split_once("DevTools listening on ws://").map(|(_, rest)| rest.trim().to_string())
        });
        match ws {
            Some(rest) => {
                let addr = rest.split('/').next().unwrap_or_default().to_string();
                Ok((child, lines, addr))
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("no `DevTools listening on ws://` within 30 s:\n{}", lines.tail(30)))
            }
        }
    }

    pub struct Page {
        ws: WebSocket<TcpStream>,
        next_id: u64,
    }

    impl Page {
        /// Attaches to the browser's first page target (from `/json/list`).
        pub fn attach(devtools: &str) -> Result<Page, String> {
            let url = poll("a page target in /json/list", Duration::from_secs(10), || {
                let (status, body) = http(devtools, "GET", "/json/list", None, None)?;
                let list: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
                list.as_array()
                    .and_then(|l| {
                        l.iter()
                            .find(|t| t["type"] == "page")
                            .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
                    })
                    .ok_or_else(|| body.clone())
            })?;
            let addr = url.trim_start_matches("ws://").split('/').next().unwrap_or_default();
            let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{url}: {e}"))?;
            let stream =
                TcpStream::connect_timeout(&sock, Duration::from_secs(5)).map_err(|e| format!("{url}: {e}"))?;
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            let (ws, _) = tungstenite::client(url.as_str(), stream).map_err(|e| format!("WebSocket {url}: {e}"))?;
            // Short reads from here on, so every wait can watch its deadline.
            ws.get_ref().set_read_timeout(Some(Duration::from_millis(250))).unwrap();
            Ok(Page { ws, next_id: 1 })
        }

        /// Sends `method` and waits (up to `limit`) for its reply: the
        /// `result`, or the protocol's error.
        pub fn call_within(&mut self, method: &str, params: Value, limit: Duration) -> Result<Value, String> {
            let id = self.next_id;
            self.next_id += 1;
            let msg = json!({"id": id, "method": method, "params": params});
            self.ws.send(Message::text(msg.to_string())).map_err(|e| format!("{method}: sending: {e}"))?;
            let end = Instant::now() + limit;
            while Instant::now() < end {
                let text = match self.ws.read() {
                    Ok(Message::Text(t)) => t,
                    Ok(Message::Close(c)) => return Err(format!("{method}: the browser closed the socket: {c:?}")),
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                    {
                        continue
                    }
                    Err(e) => return Err(format!("{method}: {e}")),
                };
                let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                if reply["id"].as_u64() != Some(id) {
                    continue; // an event, or a late reply to an earlier call
                }
                if let Some(err) = reply.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(reply["result"].clone());
            }
            Err(format!("{method}: no reply within {limit:?}"))
        }

        pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
            self.call_within(method, params, Duration::from_secs(10))
        }

        /// Evaluates `expr` in the page: its value (JSON; `null` for
        /// undefined), or the exception it threw.
        pub fn eval(&mut self, expr: &str) -> Result<Value, String> {
            let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}))?;
            if let Some(ex) = r.get("exceptionDetails") {
                return Err(format!("{expr}: threw {ex}"));
            }
            Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
        }

        /// The trimmed text of the element with `id`, or an error saying it is absent.
        pub fn text(&mut self, id: &str) -> Result<String, String> {
            let v = self.eval(&format!(
                "(() => {{ const e = document.getElementById({id:?}); return e ? e.textContent.trim() : null; }})()"
            ))?;
            v.as_str().map(String::from).ok_or_else(|| format!("no element #{id}"))
        }

        /// Opens `url` in a 1280x800 viewport.
        pub fn navigate(&mut self, url: &str) -> Result<(), String> {
            self.call("Page.enable", json!({}))?;
            let viewport = json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false});
            self.call("Emulation.setDeviceMetricsOverride", viewport)?;
            let r = self.call_within("Page.navigate", json!({"url": url}), Duration::from_secs(30))?;
            match r.get("errorText").and_then(Value::as_str) {
                Some(e) => Err(format!("navigating to {url}: {e}")),
                None => Ok(()),
            }
        }

        /// A real left click (mouse moved, pressed, released) at the centre
        /// of the element with `id`, after checking it is what is there.
        pub fn click(&mut self, id: &str) -> Result<(), String> {
            let r = self.eval(&format!(
                "(() => {{ const e = document.getElementById({id:?}); if (!e) return null;
                   e.scrollIntoView({{block: 'center'}});
                   const r = e.getBoundingClientRect();
                   const x = r.left + r.width / 2, y = r.top + r.height / 2;
                   const at = document.elementFromPoint(x, y);
                   return {{x, y, w: r.width, h: r.height, hit: !!at && (at === e || e.contains(at)),
                            disabled: !!e.disabled}}; }})()"
            ))?;
            if r.is_null() {
                return Err(format!("no element #{id}"));
            }
            let (x, y) = (r["x"].as_f64().unwrap_or(-1.0), r["y"].as_f64().unwrap_or(-1.0));
            if r["w"].as_f64().unwrap_or(0.0) <= 0.0 || r["h"].as_f64().unwrap_or(0.0) <= 0.0 {
                return Err(format!("#{id} is not shown: {r}"));
            }
            if r["hit"] != true || r["disabled"] == true {
                return Err(format!("#{id} cannot be clicked at its centre (covered or disabled): {r}"));
            }
            for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
                let mut p = json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 0, "clickCount": 1});
                if kind == "mousePressed" {
                    p["buttons"] = json!(1);
                }
                if kind == "mouseMoved" {
                    p["button"] = json!("none");
                    p["clickCount"] = json!(0);
                }
                self.call("Input.dispatchMouseEvent", p)?;
            }
            Ok(())
        }

        /// A PNG of the viewport, scrolled to the top.
        pub fn screenshot(&mut self) -> Result<Vec<u8>, String> {
            use base64::Engine;
            self.eval("window.scrollTo(0, 0)")?;
            let r = self.call_within("Page.captureScreenshot", json!({"format": "png"}), Duration::from_secs(30))?;
            let data = r["data"].as_str().ok_or("Page.captureScreenshot: no data")?;
            let png = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| format!("screenshot: {e}"))?;
            if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
                return Err("the screenshot is not a PNG".into());
            }
            Ok(png)
        }

        /// Asks the browser to close (the guard kills it anyway).
        pub fn close_browser(mut self) {
            let _ = self.call_within("Browser.close", json!({}), Duration::from_secs(3));
        }
    }
}

/// The integer in an element's text (digits only: separators dropped).
fn integer(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The run's folder under `out/runs` (one timestamped folder).
fn run_dir(out: &Path) -> Result<PathBuf, String> {
    let runs = out.join("runs");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map_err(|e| format!("{}: {e}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{} holds {} folders, not one", runs.display(), dirs.len())),
    }
}

#[test]
fn the_web_dashboard_shows_the_demo_live_and_a_click_pauses_it() {
    let started = Instant::now();
    let chromium = match find_chromium() {
        Ok(p) => p,
        Err(why) => {
            common::skip(format_args!("web_dashboard: skipped: {why}"));
            return;
        }
    };
    let out = common::temp_dir("web-dashboard");
    let mut g = Guard { demo: None, demo_err: None, browser: None, browser_err: None, profile: None };

    // The demo, its control plane on a free loopback port.
    let mut demo = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", "40s", "--no-dashboard", "--control", "127.0.0.1:0", "--out", "runs"])
        .current_dir(&out)
        .env("HOME", &out)
        .env("MMBOT_CONTROL_TOKEN", TOKEN)
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("MMBOT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting mmbot demo");
    g.demo_err = Some(Lines::read(demo.stderr.take().unwrap()));
    g.demo = Some(demo);
    // `control: http://127.0.0.1:PORT/ (token: $MMBOT_CONTROL_TOKEN)`
    let url = g.demo_err.as_ref().unwrap().wait_for(Duration::from_secs(30), |l| {
        let (_, rest) = l.split_once("control: http://")?;
        Some(format!("http://{}", rest.split_whitespace().next().unwrap_or_default()))
    });
    let Some(url) = url else {
        match g.demo.as_mut().unwrap().try_wait() {
            Ok(Some(exit)) => g.fail(format!("the demo ended ({exit}) without a `control: http://...` line")),
            _ => g.fail("no `control: http://...` line from the demo within 30 s"),
        }
    };
    let addr = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    eprintln!("web_dashboard: the demo serves {url}");

    // The browser.
    let profile = out.join("chromium");
    std::fs::create_dir_all(&profile).unwrap();
    g.profile = Some(profile.clone());
    let (browser, browser_err, devtools) = cdp::launch(&chromium, &profile).unwrap_or_else(|e| g.fail(e));
    g.browser = Some(browser);
    g.browser_err = Some(browser_err);
    let mut page = cdp::Page::attach(&devtools).unwrap_or_else(|e| g.fail(e));
    let base = if url.ends_with('/') { url.clone() } else { format!("{url}/") };
    page.navigate(&format!("{base}#token={TOKEN}")).unwrap_or_else(|e| g.fail(e));

    // It loads, connects its stream, and its values move.
    let title = poll("#title says mmbot demo", Duration::from_secs(15), || {
        page.text("title").and_then(|t| if t.contains("mmbot demo") { Ok(t) } else { Err(t) })
    })
    .unwrap_or_else(|e| g.fail(e));
    poll("#conn says live", Duration::from_secs(15), || {
        page.text("conn").and_then(|t| if t == "live" { Ok(()) } else { Err(t) })
    })
    .unwrap_or_else(|e| g.fail(e));
    let read_counts = |page: &mut cdp::Page| -> Result<(u64, u64), String> {
        let updates = page.eval("document.body.dataset.updates ?? null")?;
        let updates = updates
            .as_str()
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| updates.as_u64())
            .ok_or(format!("document.body.dataset.updates is {updates}"))?;
        let frames = page.text("frames")?;
        let frames = integer(&frames).ok_or(format!("#frames is {frames:?}"))?;
        Ok((updates, frames))
    };
    // The first status may be on its way still.
    let (u0, f0) =
        poll("#frames shows a count", Duration::from_secs(10), || read_counts(&mut page)).unwrap_or_else(|e| g.fail(e));
    std::thread::sleep(Duration::from_secs(3));
    let (u1, f1) = read_counts(&mut page).unwrap_or_else(|e| g.fail(e));
    if u1 <= u0 || f1 <= f0 {
        g.fail(format!("the page did not update over 3 s: updates {u0} -> {u1}, frames {f0} -> {f1}"));
    }
    let mid = poll("#mid shows a price", Duration::from_secs(10), || {
        let t = page.text("mid")?;
        match t.replace(',', "").parse::<f64>() {
            Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
            _ => Err(t),
        }
    })
    .unwrap_or_else(|e| g.fail(e));
    eprintln!("web_dashboard: {title:?} live: updates {u0} -> {u1}, frames {f0} -> {f1} in 3 s, mid {mid}");

    // A real click on Pause.
    let before = api_get(&addr, "/api/status").unwrap_or_else(|e| g.fail(e));
    if before["paused"] != false {
        g.fail(format!("paused before the click: {}", before["paused"]));
    }
    page.click("btn-pause").unwrap_or_else(|e| g.fail(e));
    poll("#quoting says paused", Duration::from_secs(10), || {
        page.text("quoting").and_then(|t| if t == "paused" { Ok(()) } else { Err(t) })
    })
    .unwrap_or_else(|e| g.fail(e));
    // Paused, the hot thread still counts a quote per book update, each one
    // a pull (src/hot/engine.rs): quoting has stopped when the quotes made
    // (`quotes - pulled`) and the orders sent stay put, with no quote out and
    // no order working.
    let made = |s: &Value| -> Option<(u64, u64)> {
        let c = &s["counters"];
        Some((c["quotes"].as_u64()?.checked_sub(c["pulled"].as_u64()?)?, c["orders"].as_u64()?))
    };
    // No quote out: `quote` null (docs/control.md), or a pulled one (both sides null).
    let quiet = |s: &Value| {
        let pulled = s["quote"].is_null() || (s["quote"]["bid"].is_null() && s["quote"]["ask"].is_null());
        s["paused"] == true && pulled && s["orders"]["bid"].is_null() && s["orders"]["ask"].is_null()
    };
    let (made_paused, orders_paused) =
        poll("GET /api/status: paused, no quote, no order", Duration::from_secs(10), || {
            let s = api_get(&addr, "/api/status")?;
            match made(&s) {
                Some(m) if quiet(&s) => Ok(m),
                _ => Err(format!(
                    "paused {} quote {} orders {} counters {}",
                    s["paused"], s["quote"], s["orders"], s["counters"]
                )),
            }
        })
        .unwrap_or_else(|e| g.fail(e));
    std::thread::sleep(Duration::from_millis(1500));
    let later = api_get(&addr, "/api/status").unwrap_or_else(|e| g.fail(e));
    if !quiet(&later) || made(&later) != Some((made_paused, orders_paused)) {
        g.fail(format!(
            "quoting went on while paused: {made_paused} quotes made and {orders_paused} orders, then 1.5 s later \
             paused {} quote {} orders {} counters {}",
            later["paused"], later["quote"], later["orders"], later["counters"]
        ));
    }
    eprintln!(
        "web_dashboard: the click paused quoting: {made_paused} quotes made, {orders_paused} orders; 1.5 s later the \
         same ({} quote decisions, {} of them pulls)",
        later["counters"]["quotes"], later["counters"]["pulled"]
    );

    // A picture of the paused page.
    let png = page.screenshot().unwrap_or_else(|e| g.fail(e));
    let shot_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-output");
    std::fs::create_dir_all(&shot_dir).unwrap();
    let shot = shot_dir.join("web_dashboard.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("web_dashboard: screenshot ({} bytes): {}", png.len(), shot.display());
    page.close_browser();
    g.kill_browser();

    // Stopped over the API, the run ends and its outputs say quoting stopped.
    let (status, body) = http(&addr, "POST", "/api/stop", Some(TOKEN), Some("{}")).unwrap_or_else(|e| g.fail(e));
    if !(200..300).contains(&status) || !body.contains("\"stopping\"") {
        g.fail(format!("POST /api/stop: {status} {body}"));
    }
    let end = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = g.demo.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            g.fail("the demo did not end within 30 s of POST /api/stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    g.demo = None;
    // The stderr reader ends with the demo; give it a moment to catch up.
    std::thread::sleep(Duration::from_millis(200));
    if !exit.success() {
        g.fail(format!("the demo exited with {exit}"));
    }
    let dir = run_dir(&out).unwrap_or_else(|e| g.fail(e));
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_else(|e| g.fail(e));
    let operator: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "operator")
        .collect();
    let by_web = operator.iter().any(|e| {
        let t = e["text"].as_str().unwrap_or_default().to_ascii_lowercase();
        t.contains("paus") && t.contains("web")
    });
    if !by_web {
        g.fail(format!(
            "no operator event saying the web paused quoting in events.jsonl; operator events: {operator:?}"
        ));
    }
    let report: Value = std::fs::read(dir.join("report.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| g.fail(format!("report.json: {e}")));
    let t = &report["trading"];
    let (Some(quotes), Some(pulled), Some(orders)) = (t["quotes"].as_u64(), t["pulled"].as_u64(), t["orders"].as_u64())
    else {
        g.fail(format!("the report's trading section lacks quotes, pulled or orders: {t}"))
    };
    let reported = quotes.saturating_sub(pulled);
    if reported > made_paused || orders > orders_paused {
        g.fail(format!(
            "the report counts {reported} quotes made ({quotes} - {pulled} pulled) and {orders} orders, more than \
             the {made_paused} and {orders_paused} when paused"
        ));
    }
    eprintln!(
        "web_dashboard: stopped: the report counts {reported} quotes made and {orders} orders (paused at \
         {made_paused}, {orders_paused}); operator events: {}; {:.1} s",
        operator.iter().map(|e| e["text"].as_str().unwrap_or_default()).collect::<Vec<_>>().join(" | "),
        started.elapsed().as_secs_f64()
    );
    drop(g);
    let _ = std::fs::remove_dir_all(&out);
}
