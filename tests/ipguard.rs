//! The process-wide IP guard across guards, processes and the feed's side
//! threads: one guard's (one process's) 418 stops the others through the
//! host file; the file is `flock`ed; a corrupt file is ignored, never a
//! panic; the snapshot thread and the connector send nothing during a ban.
//!
//! Everything is local: files in a per-test temp folder, listeners on
//! 127.0.0.1 with ephemeral ports, every wait bounded.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mmbot::feed::connector::{Connector, ConnectorConfig, Reason, Request as ConnectRequest};
use mmbot::feed::endpoint::{FeedMarket, Url};
use mmbot::feed::snapshot::{SnapshotConfig, SnapshotFetcher, SnapshotRequest};
use mmbot::hot::msg::Symbol;
use mmbot::ipguard::{IpGuard, Refusal, Request};

const ORDER: Request = Request { label: "POST /api/v3/order", weight: 1, orders: 1 };
const CANCEL: Request = Request { label: "DELETE /api/v3/order", weight: 1, orders: 0 };

/// The environment variable that turns `child_process_bans` into the child.
const CHILD: &str = "MMBOT_IPGUARD_TEST_CHILD";

#[test]
fn a_ban_on_one_guard_refuses_the_other_at_once() {
    let dir = common::temp_dir("ipguard-two");
    let file = dir.join("guard");
    let a = IpGuard::with_host_file(&file).unwrap();
    let b = IpGuard::with_host_file(&file).unwrap();
    a.admit(ORDER).unwrap();
    b.admit(ORDER).unwrap();
    b.on_banned(Duration::from_secs(120));
    // No sleep: a freshly written file is read on the next admit.
    let Err(Refusal::Banned { retry_in }) = a.admit(CANCEL) else { panic!("{:?}", a.stats()) };
    assert!(retry_in > Duration::from_secs(110), "{retry_in:?}");
    assert!(a.admit_connect("market streams").is_err());
    assert_eq!(a.stats().learnt_from_host, 1);
    // A shorter back-off from the other side never shortens it.
    a.on_rate_limited(false, Duration::from_secs(1));
    assert!(matches!(b.admit(CANCEL), Err(Refusal::Banned { .. })));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("mmbot-ipguard 1 ban_until_ms="), "{text}");
    // A new guard (a process started later) sees it from the start.
    let c = IpGuard::with_host_file(&file).unwrap();
    assert!(matches!(c.admit(CANCEL), Err(Refusal::Banned { .. })));
}

#[test]
fn an_orders_back_off_is_shared_and_still_lets_cancels_go() {
    let dir = common::temp_dir("ipguard-orders");
    let file = dir.join("guard");
    let a = IpGuard::with_host_file(&file).unwrap();
    let b = IpGuard::with_host_file(&file).unwrap();
    a.on_rate_limited(true, Duration::from_secs(30));
    assert!(matches!(b.admit(ORDER), Err(Refusal::OrdersBackOff { .. })));
    b.admit(CANCEL).unwrap();
    b.on_rate_limited(false, Duration::from_secs(30));
    assert!(matches!(a.admit(CANCEL), Err(Refusal::WeightBackOff { .. })));
}

#[test]
fn writers_take_the_flock() {
    let dir = common::temp_dir("ipguard-flock");
    let file = dir.join("guard");
    let a = IpGuard::with_host_file(&file).unwrap();
    let b = IpGuard::with_host_file(&file).unwrap();
    // Someone else (another process, as far as flock is concerned: its own
    // open file description) holds the lock.
    let holder = OpenOptions::new().read(true).write(true).open(&file).unwrap();
    holder.lock().unwrap();
    b.on_banned(Duration::from_secs(60));
    let s = b.stats().host.unwrap();
    assert_eq!((s.lock_busy, s.writes), (1, 0), "the write waited for the lock and gave up: {s:?}");
    assert!(b.admit(CANCEL).is_err(), "the ban still holds in this process");
    a.admit(CANCEL).unwrap();
    holder.unlock().unwrap();
    // Released: the missed write is made on a later admit (at most a second
    // later), and the ban reaches the other guard.
    assert!(eventually(Duration::from_secs(5), || {
        let _ = b.admit(CANCEL);
        b.stats().host.unwrap().writes == 1
    }));
    let Err(Refusal::Banned { retry_in }) = a.admit(CANCEL) else { panic!("{:?}", a.stats()) };
    assert!(retry_in > Duration::from_secs(50), "{retry_in:?}");
    // A longer one is written at once.
    b.on_banned(Duration::from_secs(90));
    assert_eq!(b.stats().host.unwrap().writes, 2);
    assert!(a.admit(CANCEL).unwrap_err().retry_in() > Duration::from_secs(80));
}

#[test]
fn a_corrupt_or_empty_file_is_ignored_and_rewritten() {
    let dir = common::temp_dir("ipguard-corrupt");
    let file = dir.join("guard");
    std::fs::write(&file, b"").unwrap();
    let g = IpGuard::with_host_file(&file).unwrap();
    g.admit(ORDER).unwrap();
    for junk in [&b"\xff\xfe not text"[..], b"ban_until_ms=99999999999999", b"mmbot-ipguard 1 ban_until_ms=soon"] {
        let mut f = OpenOptions::new().write(true).truncate(true).open(&file).unwrap();
        f.write_all(junk).unwrap();
        drop(f);
        // Bounded: the file is re-read when it changed or within a second.
        let t0 = Instant::now();
        let before = g.stats().host.unwrap().corrupt;
        while g.stats().host.unwrap().corrupt == before && t0.elapsed() < Duration::from_secs(3) {
            g.admit(CANCEL).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(g.stats().host.unwrap().corrupt > before, "{junk:?}: {:?}", g.stats());
    }
    g.on_rate_limited(false, Duration::from_secs(5));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("mmbot-ipguard 1 ") && text.contains("weight_until_ms="), "{text}");
    assert!(IpGuard::with_host_file(&dir).is_err(), "a folder is no guard file");
}

/// Only does something as the child of `a_ban_in_another_process_stops_this_one`.
#[test]
fn child_process_bans() {
    let Ok(path) = std::env::var(CHILD) else { return };
    let g = IpGuard::with_host_file(Path::new(&path)).unwrap();
    g.on_banned(Duration::from_secs(120));
    let s = g.stats().host.unwrap();
    // 0: written; 3: the lock was busy (the parent holds it).
    std::process::exit(if s.writes == 1 {
        0
    } else if s.lock_busy > 0 {
        3
    } else {
        4
    });
}

fn run_child(file: &Path) -> i32 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_bans", "--nocapture", "--test-threads=1"])
        .env(CHILD, file)
        .output()
        .unwrap();
    out.status.code().unwrap_or(-1)
}

#[test]
fn a_ban_in_another_process_stops_this_one() {
    let dir = common::temp_dir("ipguard-process");
    let file = dir.join("guard");
    let g = IpGuard::with_host_file(&file).unwrap();
    g.admit(ORDER).unwrap();
    // While this process holds the flock, the child cannot write.
    let holder = OpenOptions::new().read(true).write(true).open(&file).unwrap();
    holder.lock().unwrap();
    assert_eq!(run_child(&file), 3, "the child found the lock busy");
    holder.unlock().unwrap();
    g.admit(ORDER).unwrap();
    assert_eq!(run_child(&file), 0);
    let Err(Refusal::Banned { retry_in }) = g.admit(CANCEL) else { panic!("{:?}", g.stats()) };
    assert!(retry_in > Duration::from_secs(100), "{retry_in:?}");
}

/// Waits (bounded) for `f` to hold.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn the_feeds_side_threads_send_nothing_during_a_ban() {
    let guard = IpGuard::new();
    guard.on_banned(Duration::from_millis(1500));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut fetcher = SnapshotFetcher::start(SnapshotConfig {
        market: FeedMarket::Spot,
        url: format!("http://127.0.0.1:{port}/api/v3/depth"),
        limit: 100,
        timeout: Duration::from_secs(1),
        weight_per_minute: 6000,
        ip_weight_limit: 6000,
        guard: guard.clone(),
        ws_api: None,
    });
    fetcher.set_generation(1);
    assert!(fetcher.request(SnapshotRequest { symbol: Symbol::new(b"BTCUSDT"), generation: 1 }));
    let connector = Connector::start(
        ConnectorConfig {
            url: Url::parse(&format!("ws://127.0.0.1:{port}/ws")).unwrap(),
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(20),
            max_attempts: 300,
            guard: guard.clone(),
        },
        mmbot::feed::tls::client_config(),
    );
    connector.request(ConnectRequest { reason: Reason::Start, lived: Duration::ZERO });

    // Both notice the ban and wait: counted, nothing reaches the listener.
    assert!(eventually(Duration::from_secs(2), || {
        fetcher.counters().guard_waits.load(Ordering::Relaxed) == 1 && connector.stats().guard_waits == 1
    }));
    assert!(fetcher.counters().waiting_for_guard.load(Ordering::Relaxed) || guard.blocked().is_none());
    if guard.blocked().is_some() {
        assert!(listener.accept().is_err(), "a connection during the ban");
        assert_eq!(connector.stats().attempts, 0);
        assert_eq!(fetcher.counters().requests.load(Ordering::Relaxed), 0);
    }
    // After the ban both go ahead (the listener never answers; that is fine).
    let mut accepted = 0;
    assert!(eventually(Duration::from_secs(5), || {
        while listener.accept().is_ok() {
            accepted += 1;
        }
        accepted >= 2
    }));
    assert!(guard.blocked().is_none());
    assert_eq!(fetcher.counters().requests.load(Ordering::Relaxed), 1);
    // Counted once the handshake gives up (nobody answers it here).
    assert!(eventually(Duration::from_secs(5), || connector.stats().attempts >= 1));
    drop(fetcher.take());
}
