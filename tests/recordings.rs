//! Replays every real capture in ../shared/data/recordings and checks the
//! rebuilt books against Binance's own ground truth (bookTicker frames), for
//! crossing, and for what happens when a diff goes missing; and serves the
//! USD-M captures through `mmbot sim --replay` to a subscriber of another
//! depth speed than the one recorded.

mod common;

use mmbot::feed::recording::split_line;
use mmbot::hot::market::{BookSizes, Event, MarketData};
use mmbot::hot::msg::Level;

/// Top of book after one applied depth event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Top {
    symbol: String,
    update_id: u64,
    bid: Option<Level>,
    ask: Option<Level>,
}

/// Replays lines; returns every emitted top and the final market state.
fn replay(lines: &[Vec<u8>]) -> (Vec<Top>, MarketData) {
    let mut md = MarketData::new(BookSizes::default());
    md.verify_tickers(true);
    let mut tops = Vec::new();
    for line in lines {
        let (_, json) = split_line(line).expect("recording line has a timestamp");
        md.on_frame(json, &mut |ev| {
            if let Event::Depth { symbol, applied, book } = ev {
                assert!(!book.is_crossed(), "crossed book emitted at u={}", applied.update_id);
                tops.push(Top {
                    symbol: symbol.to_string(),
                    update_id: applied.update_id,
                    bid: book.best_bid(),
                    ask: book.best_ask(),
                });
            }
        });
    }
    (tops, md)
}

#[test]
fn every_capture_matches_its_book_tickers_and_never_crosses() {
    let Some(files) = common::recordings("every_capture_matches_its_book_tickers_and_never_crosses") else {
        return;
    };
    let mut total_checks = 0;
    for path in &files {
        let lines = common::lines(path);
        let (tops, md) = replay(&lines);
        let (f, s) = (md.stats(), md.sync_stats());
        let name = path.display();
        assert_eq!(f.rejected, 0, "{name}: rejected frames");
        assert_eq!(f.ticker_mismatches, 0, "{name}: bookTicker disagrees with the rebuilt book");
        assert_eq!((s.gaps, s.crossed, s.resyncs), (0, 0, 0), "{name}");
        assert_eq!(s.snapshots, 1, "{name}");
        assert!(!tops.is_empty(), "{name}: no depth event applied");
        assert_eq!(tops.len() as u64, s.applied, "{name}");
        // Update ids only go forward.
        assert!(tops.windows(2).all(|w| w[0].update_id < w[1].update_id), "{name}");
        total_checks += f.ticker_checks;
    }
    // The captures hold enough tickers at exact update ids to make this meaningful.
    assert!(total_checks >= 50, "only {total_checks} bookTicker checks across all captures");
}

/// Removes one applied diff from a capture and inserts, a few diffs later, a
/// snapshot of the true book: the gap must be reported, nothing may be emitted
/// until the snapshot, and every top emitted must equal the true one.
#[test]
fn a_missing_diff_is_a_gap_and_a_later_snapshot_resyncs() {
    let Some(files) = common::recordings("a_missing_diff_is_a_gap_and_a_later_snapshot_resyncs") else {
        return;
    };
    for path in &files {
        let lines = common::lines(path);
        let (truth, _) = replay(&lines);
        if truth.len() < 8 {
            continue; // too short to remove something in the middle and resync
        }
        // Indices of depth-diff lines, in order.
        let diff_lines: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.windows(13).any(|w| w == b"\"depthUpdate\""))
            .map(|(i, _)| i)
            .collect();
        let victim = diff_lines[diff_lines.len() / 2];
        // The snapshot goes in three diffs later, taken from the true book at
        // the last update id applied before that point.
        let insert_at = diff_lines[diff_lines.len() / 2 + 3];
        let (snap_line, snap_id) = true_snapshot_before(&lines, insert_at);

        let mut broken: Vec<Vec<u8>> = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if i == insert_at {
                broken.push(snap_line.clone());
            }
            if i != victim {
                broken.push(l.clone());
            }
        }
        let (tops, md) = replay(&broken);
        let name = path.display();
        let s = md.sync_stats();
        assert!(s.gaps >= 1, "{name}: missing diff not reported as a gap");
        assert_eq!(s.resyncs, 1, "{name}: did not resync from the later snapshot");
        assert_eq!(md.stats().ticker_mismatches, 0, "{name}");
        // Every emitted top is the true top at that update id.
        for t in &tops {
            let want = truth
                .iter()
                .find(|x| x.update_id == t.update_id)
                .unwrap_or_else(|| panic!("{name}: emitted u={} which the clean replay never reached", t.update_id));
            assert_eq!(t, want, "{name}: wrong top of book emitted");
        }
        // Nothing between the gap and the resync snapshot. (USD-M re-applies
        // the buffered diff whose u equals lastUpdateId: harmless, and equal to
        // the truth as checked above, so the window ends before snap_id.)
        let victim_u = truth_ids_of(&lines, victim);
        assert!(
            !tops.iter().any(|t| t.update_id >= victim_u && t.update_id < snap_id),
            "{name}: emitted a top while the book was unsynced"
        );
        // And after the resync the replay runs to the same end.
        assert_eq!(tops.last(), truth.last(), "{name}");
    }
}

/// `u` of the diff on line `i`.
fn truth_ids_of(lines: &[Vec<u8>], i: usize) -> u64 {
    let text = std::str::from_utf8(&lines[i]).unwrap();
    let at = text.find("\"u\":").unwrap() + 4;
    text[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

/// Replays `lines[..end]` and renders the whole book of its (single) symbol
/// as a REST snapshot line, returning it with its lastUpdateId.
fn true_snapshot_before(lines: &[Vec<u8>], end: usize) -> (Vec<u8>, u64) {
    let mut md = MarketData::new(BookSizes::default());
    for line in &lines[..end] {
        let (_, json) = split_line(line).unwrap();
        md.on_frame(json, &mut |_| {});
    }
    let sym = md.symbols().next().unwrap();
    let book = md.book(sym).unwrap();
    assert!(book.is_synced());
    let side = |get: &dyn Fn(usize) -> Option<Level>| {
        let mut v = Vec::new();
        let mut n = 0;
        while let Some(l) = get(n) {
            v.push(format!("[\"{}\",\"{}\"]", l.price, l.qty));
            n += 1;
        }
        v.join(",")
    };
    let b = book.book();
    let id = book.update_id();
    let json =
        format!("0 {{\"lastUpdateId\":{id},\"bids\":[{}],\"asks\":[{}]}}", side(&|n| b.bid(n)), side(&|n| b.ask(n)));
    (json.into_bytes(), id)
}

/// `mmbot sim --replay` of each real USD-M capture (recorded on
/// `@depth@100ms`) serves its depth to a client subscribed to
/// `@depth@0ms`, under that name: the speed suffix is not part of the match.
#[test]
fn usdm_captures_are_replayed_to_a_subscriber_of_another_depth_speed() {
    use std::time::{Duration, Instant};

    use mmbot::sim::flow::SimMarket;
    use mmbot::sim::{Sim, SimConfig, SimSource};

    let Some(files) = common::recordings("usdm_captures_are_replayed_to_a_subscriber_of_another_depth_speed") else {
        return;
    };
    let mut served = 0;
    for path in files.iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("usdm_"))) {
        let has_depth = common::lines(path).iter().take(50).any(|l| l.windows(7).any(|w| w == b"@depth@"));
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let symbol = stem.trim_start_matches("usdm_").trim_end_matches(".gz").to_ascii_uppercase();
        if !has_depth {
            continue; // a bookTicker-only capture has no depth to serve
        }
        let sim = Sim::start(SimConfig {
            market: SimMarket::Usdm,
            symbols: vec![symbol.clone()],
            source: SimSource::Replay { files: vec![path.clone()], speed: 20.0 },
            ..SimConfig::default()
        })
        .unwrap();
        let name = format!("{}@depth@0ms", symbol.to_ascii_lowercase());
        let (mut ws, _) = tungstenite::connect(format!("{}/stream?streams={name}", sim.ws_base())).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        }
        let (mut diffs, t) = (0, Instant::now());
        while diffs < 5 && t.elapsed() < Duration::from_secs(10) && !sim.finished() {
            if let Ok(tungstenite::Message::Text(text)) = ws.read() {
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(v["stream"], name.as_str(), "{}: {v}", path.display());
                diffs += 1;
            }
        }
        assert!(diffs >= 5, "{}: only {diffs} depth frames reached a @depth@0ms subscriber", path.display());
        served += 1;
    }
    if served == 0 {
        common::skip(format_args!(
            "usdm_captures_are_replayed_to_a_subscriber_of_another_depth_speed: no USD-M capture with depth"
        ));
    }
}
