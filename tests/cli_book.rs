//! End-to-end checks of `mmbot book` as a user runs it.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn mmbot_book(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmbot")).arg("book").args(args).output().expect("running mmbot")
}

fn stdout_lines(o: &Output) -> Vec<String> {
    String::from_utf8(o.stdout.clone()).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn prints_one_exact_json_line_per_applied_event_and_a_summary() {
    let Some(files) = common::recordings("prints_one_exact_json_line_per_applied_event_and_a_summary") else {
        return;
    };
    let path = files.iter().find(|p| p.ends_with("spot_nknusdt.gz")).expect("spot_nknusdt.gz");
    let o = mmbot_book(&[path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = stdout_lines(&o);
    assert_eq!(lines.len(), 149);
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["symbol"], "NKNUSDT");
        assert!(v["u"].is_u64() && v["E"].is_u64());
        for k in ["bid", "bid_qty", "ask", "ask_qty"] {
            let s = v[k].as_str().unwrap();
            assert!(s.parse::<f64>().unwrap() > 0.0, "{k}={s}");
        }
    }
    // First event after the snapshot, checked by hand against the capture.
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["u"], 499869754u64); // U=499869753 straddles lastUpdateId+1
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "227 frames",
        "depth events applied 149",
        "rejected 0",
        "gaps 0",
        "resyncs 0",
        "snapshots 1",
        "mismatched 0",
        "events/s",
    ] {
        assert!(err.contains(want), "summary lacks {want:?}:\n{err}");
    }
}

#[test]
fn files_are_replayed_in_order_as_one_stream() {
    let Some(files) = common::recordings("files_are_replayed_in_order_as_one_stream") else {
        return;
    };
    let a = files.iter().find(|p| p.ends_with("spot_lrcbtc.gz")).unwrap();
    let b = files.iter().find(|p| p.ends_with("usdm_keepusdt.gz")).unwrap();
    let o = mmbot_book(&[a, b]);
    assert!(o.status.success());
    let lines = stdout_lines(&o);
    let first_keep = lines.iter().position(|l| l.contains("KEEPUSDT")).unwrap();
    assert!(lines[..first_keep].iter().all(|l| l.contains("LRCBTC")));
    assert!(lines[first_keep..].iter().all(|l| l.contains("KEEPUSDT")));
    assert_eq!(lines.len(), stdout_lines(&mmbot_book(&[a])).len() + stdout_lines(&mmbot_book(&[b])).len());
}

#[test]
fn plain_and_truncated_files_replay_and_missing_files_fail() {
    let Some(files) = common::recordings("plain_and_truncated_files_replay_and_missing_files_fail") else {
        return;
    };
    let gz = files.iter().find(|p| p.ends_with("usdm_sushiusdt.gz")).unwrap();
    let full = stdout_lines(&mmbot_book(&[gz]));
    let dir = common::temp_dir("cli-book");

    // Plain text recording: same output.
    let mut text = Vec::new();
    mmbot::feed::recording::open(gz).unwrap().read_to_end(&mut text).unwrap();
    let plain = dir.join("sushi.txt");
    std::fs::write(&plain, &text).unwrap();
    assert_eq!(stdout_lines(&mmbot_book(&[&plain])), full);

    // A gzip cut in the middle (a recorder killed mid-write): exit 0, a
    // warning, and a prefix of the full output.
    let bytes = std::fs::read(gz).unwrap();
    let cut = dir.join("cut.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let o = mmbot_book(&[&cut]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ends early"));
    let partial = stdout_lines(&o);
    assert!(!partial.is_empty() && partial.len() < full.len());
    assert_eq!(partial[..], full[..partial.len()]);

    // A file that cannot be read: a message naming it and a non-zero exit.
    let missing = dir.join("no-such-file.gz");
    let o = mmbot_book(&[&missing, gz]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-file.gz"));
    assert_eq!(stdout_lines(&o), full, "the readable file is still replayed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sample shipped with the project (the README's first command): needs
/// nothing beside the project, so this runs everywhere.
#[test]
fn the_shipped_sample_replays_exactly() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample_spot_btcusdt.rec");
    let o = mmbot_book(&[&sample]);
    assert!(o.status.success());
    let lines = stdout_lines(&o);
    assert_eq!(lines.len(), 25);
    // The buffered diff that straddles lastUpdateId+1 is the first applied.
    assert_eq!(
        lines[0],
        r#"{"symbol":"BTCUSDT","u":50093239003,"E":1723161255009,"bid":"61837.01","bid_qty":"0.15","ask":"61837.05","ask_qty":"0.11"}"#
    );
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "42 frames",
        "depth events applied 25",
        "skipped 1",
        "stale 1",
        "bookTicker 9 (checked 9, mismatched 0)",
        "trades 5",
    ] {
        assert!(err.contains(want), "summary lacks {want:?}:\n{err}");
    }
}

/// A line longer than the reader's 1 MiB chunk (a deep snapshot) is still
/// one frame.
#[test]
fn lines_longer_than_a_chunk_stay_whole() {
    let dir = common::temp_dir("long-line");
    let levels: Vec<String> = (0..40_000).map(|i| format!("[\"{}.00000000\",\"1.00000000\"]", 10_000 + i)).collect();
    let snap = format!("2 {{\"lastUpdateId\":10,\"bids\":[],\"asks\":[{}]}}", levels.join(","));
    assert!(snap.len() > 1 << 20);
    let text = format!(
        "1 {{\"stream\":\"abc@depth\",\"data\":{{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"ABC\",\"U\":5,\"u\":12,\"b\":[[\"9999.00000000\",\"2\"]],\"a\":[]}}}}\n{snap}\n"
    );
    let path = dir.join("long.rec");
    std::fs::write(&path, text).unwrap();
    let cfg = dir.join("mmbot.toml");
    std::fs::write(&cfg, "[book]\nmax_message_levels = 50000\n").unwrap();
    let o =
        Command::new(env!("CARGO_BIN_EXE_mmbot")).arg("book").arg(&path).arg("--config").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 frames") && err.contains("rejected 0") && err.contains("snapshots 1"), "{err}");
    assert_eq!(stdout_lines(&o).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
