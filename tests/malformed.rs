//! Malformed frames: each is refused with the exact [`ParseError`] that names
//! what is wrong, none of them changes a book, and nothing the network can send
//! makes the parser or [`MarketData`] panic.
//!
//! * a table of hand-made bad frames and their exact errors;
//! * a replay of the real capture ../shared/data/recordings/spot_nknusdt.gz,
//!   once clean and once with bad frames inserted between the good lines: the
//!   bad ones are counted by kind and the top-of-book sequence is identical;
//! * property tests feeding random bytes and random mutations of real frames.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use mmbot::feed::recording::{open, split_line};
use mmbot::hot::fixed::DecimalError;
use mmbot::hot::market::{BookSizes, Event, FeedStats, MarketData};
use mmbot::hot::msg::{Level, Msg, Symbol};
use mmbot::hot::parse::{ParseError, Parser, MAX_FRAME};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A real diff frame, line 1 of spot_nknusdt.gz (also quoted in FACTS.md).
const REAL_DIFF: &[u8] = br#"{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"],["0.34640000","6222.00000000"]],"a":[]}}"#;
const REAL_TICKER: &[u8] = br#"{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}"#;
const REAL_AGG_TRADE: &[u8] = br#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#;
const REAL_SNAPSHOT: &[u8] = br#"{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"],["0.35200000","1144.00000000"]],"asks":[["0.35260000","3199.00000000"],["0.35270000","100.00000000"]]}"#;

fn parser() -> Parser {
    Parser::new(100, 4096)
}

fn dec(field: &'static str, err: DecimalError) -> ParseError {
    ParseError::Decimal { field, err }
}

/// A spot diff with `b` and `a` spliced in as raw JSON text.
fn diff_with(b: &str, a: &str) -> Vec<u8> {
    format!(r#"{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"b":{b},"a":{a}}}"#).into_bytes()
}

/// Hand-made bad frames and their exact errors. The last element says whether
/// the frame is a payload that must fail the same way inside a combined wrapper.
fn bad_frames() -> Vec<(&'static str, Vec<u8>, ParseError, bool)> {
    use DecimalError as D;
    use ParseError as E;
    let s = |x: &str| x.as_bytes().to_vec();
    vec![
        ("empty", vec![], E::Empty, false),
        ("too large", vec![b' '; MAX_FRAME + 1], E::TooLarge, false),
        // Not JSON.
        ("text", s("hello"), E::Json, true),
        ("bare word value", s(r#"{"e":depthUpdate}"#), E::Json, true),
        ("single quotes", s("{'e':'trade'}"), E::Json, true),
        ("binary", vec![0x00, 0xff, 0xfe, 0x7b, 0x80], E::Json, true),
        ("invalid utf-8 in a string", b"{\"e\":\"\xff\xfe\"}".to_vec(), E::Json, true),
        ("two documents", s(r#"{"a":1}{"b":2}"#), E::Json, true),
        ("trailing comma", s(r#"{"e":"trade",}"#), E::Json, true),
        ("unclosed", s(r#"{"e":"trade""#), E::Json, true),
        ("only whitespace", s(" \n\t "), E::Json, false),
        // JSON but not an object.
        ("array", s("[1,2]"), E::NotObject, true),
        ("empty array", s("[]"), E::NotObject, true),
        ("number", s("42"), E::NotObject, true),
        ("string", s(r#""depthUpdate""#), E::NotObject, true),
        ("null", s("null"), E::NotObject, true),
        ("true", s("true"), E::NotObject, true),
        // Missing fields.
        ("diff without u", s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"b":[],"a":[]}"#), E::Missing("u"), true),
        ("diff without U", s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","u":10,"b":[],"a":[]}"#), E::Missing("U"), true),
        ("diff without b", s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"a":[]}"#), E::Missing("b"), true),
        ("snapshot without asks", s(r#"{"lastUpdateId":5,"bids":[]}"#), E::Missing("asks"), true),
        (
            "trade without m",
            s(r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1}"#),
            E::Missing("m"),
            true,
        ),
        (
            "trade without p",
            s(r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"q":"1","T":1,"m":true}"#),
            E::Missing("p"),
            true,
        ),
        (
            "aggTrade without a",
            s(r#"{"e":"aggTrade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}"#),
            E::Missing("a"),
            true,
        ),
        (
            "usdm bookTicker without A",
            s(r#"{"e":"bookTicker","u":1,"E":1,"T":1,"s":"BTCUSDT","b":"1","B":"1","a":"2"}"#),
            E::Missing("A"),
            true,
        ),
        // Wrong JSON types.
        (
            "U as a string",
            s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":"10","u":12,"b":[],"a":[]}"#),
            E::WrongType("U"),
            true,
        ),
        (
            "u as a float",
            s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12.5,"b":[],"a":[]}"#),
            E::WrongType("u"),
            true,
        ),
        (
            "u negative",
            s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":-12,"b":[],"a":[]}"#),
            E::WrongType("u"),
            true,
        ),
        (
            "E as a string",
            s(r#"{"e":"depthUpdate","E":"1","s":"BTCUSDT","U":10,"u":12,"b":[],"a":[]}"#),
            E::WrongType("E"),
            true,
        ),
        (
            "pu as null",
            s(r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"pu":null,"b":[],"a":[]}"#),
            E::WrongType("pu"),
            true,
        ),
        ("e as a number", s(r#"{"e":5,"E":1}"#), E::WrongType("e"), true),
        ("b as an object", diff_with(r#"{"0.1":"1"}"#, "[]"), E::WrongType("b"), true),
        ("a as a string", diff_with("[]", r#""0.1""#), E::WrongType("a"), true),
        ("level [\"1\"] in b", diff_with(r#"[["1"]]"#, "[]"), E::WrongType("b"), true),
        ("level [1,2] in b", diff_with("[[1,2]]", "[]"), E::WrongType("b"), true),
        ("level [1,2] in a", diff_with("[]", "[[1,2]]"), E::WrongType("a"), true),
        ("level [\"1\",2] in b", diff_with(r#"[["1",2]]"#, "[]"), E::WrongType("b"), true),
        ("level [] in b", diff_with("[[]]", "[[\"1\",\"1\"]]"), E::WrongType("b"), true),
        ("level as a string in b", diff_with(r#"["1","2"]"#, "[]"), E::WrongType("b"), true),
        ("level as an object in b", diff_with(r#"[{"p":"1","q":"2"}]"#, "[]"), E::WrongType("b"), true),
        ("level [[\"1\",\"2\"]] in b", diff_with(r#"[[["1","2"]]]"#, "[]"), E::WrongType("b"), true),
        (
            "trade m as a string",
            s(r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":"true"}"#),
            E::WrongType("m"),
            true,
        ),
        (
            "trade price as a number",
            s(r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true}"#),
            E::WrongType("p"),
            true,
        ),
        (
            "spot bookTicker u as a string",
            s(
                r#"{"u":"400900217","s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
            ),
            E::WrongType("u"),
            true,
        ),
        (
            "snapshot lastUpdateId as a string",
            s(r#"{"lastUpdateId":"5","bids":[],"asks":[]}"#),
            E::WrongType("lastUpdateId"),
            true,
        ),
        // Bad decimals, in prices and in quantities.
        ("price 1e5", diff_with(r#"[["1e5","1"]]"#, "[]"), dec("b", D::Exponent), true),
        ("price -1", diff_with(r#"[["-1","1"]]"#, "[]"), dec("b", D::Sign), true),
        ("price 1.123456789", diff_with(r#"[["1.123456789","1"]]"#, "[]"), dec("b", D::TooManyDecimals), true),
        ("empty price", diff_with(r#"[["","1"]]"#, "[]"), dec("b", D::Empty), true),
        ("ask price +1", diff_with("[]", r#"[["+1","1"]]"#), dec("a", D::Sign), true),
        ("ask qty .5", diff_with("[]", r#"[["1",".5"]]"#), dec("a", D::MissingDigits), true),
        ("price with a blank", diff_with(r#"[[" 1","1"]]"#, "[]"), dec("b", D::NonDigit(b' ')), true),
        (
            "price 12 integer digits",
            diff_with(r#"[["123456789012","1"]]"#, "[]"),
            dec("b", D::TooManyIntegerDigits),
            true,
        ),
        ("price overflow", diff_with(r#"[["99999999999","1"]]"#, "[]"), dec("b", D::Overflow), true),
        ("second level bad", diff_with(r#"[["1","1"],["2","1x"]]"#, "[]"), dec("b", D::NonDigit(b'x')), true),
        ("snapshot bid 1e5", s(r#"{"lastUpdateId":5,"bids":[["1e5","1"]],"asks":[]}"#), dec("bids", D::Exponent), true),
        ("bookTicker bid -1", s(r#"{"u":1,"s":"BNBUSDT","b":"-1","B":"1","a":"2","A":"1"}"#), dec("b", D::Sign), true),
        (
            "trade qty 1.123456789",
            s(r#"{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1.123456789","T":1,"m":true}"#),
            dec("q", D::TooManyDecimals),
            true,
        ),
        // More levels than the book takes (the parser here takes 100).
        (
            "101 bids",
            diff_with(&format!("[{}]", vec![r#"["1","1"]"#; 101].join(",")), "[]"),
            E::TooManyLevels { field: "b", len: 101, max: 100 },
            true,
        ),
        (
            "101 asks in a snapshot",
            format!(r#"{{"lastUpdateId":5,"bids":[],"asks":[{}]}}"#, vec![r#"["1","1"]"#; 101].join(",")).into_bytes(),
            E::TooManyLevels { field: "asks", len: 101, max: 100 },
            true,
        ),
        // Objects that are no Binance message.
        ("foo", s(r#"{"foo":1}"#), E::Unrecognised, true),
        ("empty object", s("{}"), E::Unrecognised, true),
        ("u without B", s(r#"{"u":1,"b":"1"}"#), E::Unrecognised, true),
        ("wrapper whose stream is not a string", s(r#"{"stream":5,"data":{"e":"trade"}}"#), E::Unrecognised, false),
    ]
}

#[test]
fn every_bad_frame_gets_its_exact_error() {
    let mut p = parser();
    let mut failures = Vec::new();
    for (name, frame, expect, wrap) in bad_frames() {
        let got = p.parse(&frame);
        if got != Err(expect) {
            failures.push(format!("{name}: expected Err({expect:?}), got {got:?}"));
        }
        if wrap {
            // The same payload inside a combined wrapper (fast path), with
            // "data" first and pretty-printed (general path): same error.
            let body = String::from_utf8_lossy(&frame);
            for w in [
                format!(r#"{{"stream":"btcusdt@depth","data":{body}}}"#),
                format!(r#"{{"data":{body},"stream":"btcusdt@depth"}}"#),
                format!("{{ \"stream\": \"btcusdt@trade\",\n \"data\": {body} }}"),
            ] {
                // Invalid UTF-8 was replaced by U+FFFD in `body`: rebuild bytes.
                let w = if std::str::from_utf8(&frame).is_ok() {
                    w.into_bytes()
                } else {
                    [br#"{"stream":"btcusdt@depth","data":"#.as_slice(), &frame, b"}"].concat()
                };
                let got = p.parse(&w);
                if got != Err(expect) {
                    failures.push(format!(
                        "{name} wrapped as {}: expected Err({expect:?}), got {got:?}",
                        String::from_utf8_lossy(&w)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong errors:\n{}", failures.len(), failures.join("\n"));
}

/// Regression: a one-element level that is the last node of the frame must be
/// `WrongType`, exactly as it is anywhere else. The parser reads the level's
/// second and third tape nodes before checking the level's length; when the
/// level ends the frame there is no third node and the lookup fails as `Json`.
#[test]
fn short_level_at_the_end_of_the_frame_is_wrong_type_not_json() {
    let mut p = parser();
    let cases: [(&[u8], ParseError); 4] = [
        // "a" is the last key: the level ["1"] ends the tape.
        (br#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":10,"u":12,"b":[],"a":[["1"]]}"#, ParseError::WrongType("a")),
        (br#"{"lastUpdateId":5,"bids":[],"asks":[["1"]]}"#, ParseError::WrongType("asks")),
        (br#"{"lastUpdateId":5,"bids":[],"asks":[[]]}"#, ParseError::WrongType("asks")),
        (
            br#"{"stream":"btcusdt@depth20","data":{"lastUpdateId":5,"bids":[],"asks":[["1"]]}}"#,
            ParseError::WrongType("asks"),
        ),
    ];
    let mut failures = Vec::new();
    for (frame, expect) in cases {
        let got = p.parse(frame);
        if got != Err(expect) {
            failures.push(format!("{}: expected Err({expect:?}), got {got:?}", String::from_utf8_lossy(frame)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn real_diff_truncated_anywhere_is_json_error() {
    let mut p = parser();
    // Sanity: the whole frame parses.
    assert!(matches!(p.parse(REAL_DIFF), Ok(Msg::Diff(_))));
    let bare_start = REAL_DIFF.windows(7).position(|w| w == b"\"data\":").unwrap() + 7;
    let bare = &REAL_DIFF[bare_start..REAL_DIFF.len() - 1];
    assert!(matches!(p.parse(bare), Ok(Msg::Diff(_))));
    for frame in [REAL_DIFF, bare, REAL_TICKER, REAL_AGG_TRADE, REAL_SNAPSHOT] {
        assert!(p.parse(frame).is_ok());
        for cut in 1..frame.len() {
            let got = p.parse(&frame[..cut]);
            assert_eq!(got, Err(ParseError::Json), "cut at {cut}: {}", String::from_utf8_lossy(&frame[..cut]));
        }
    }
}

#[test]
fn bad_frames_leave_the_next_good_frame_alone() {
    // A rejected frame half-way through its levels must not leak them into
    // the next message.
    let mut p = parser();
    let bad = diff_with(r#"[["1","1"],["2","2"],["3","x"]]"#, "[]");
    assert!(matches!(p.parse(&bad), Err(ParseError::Decimal { .. })));
    assert!(matches!(p.parse(REAL_DIFF), Ok(Msg::Diff(_))));
    assert_eq!(p.bids().len(), 3);
    assert_eq!(p.bids()[0], Level::new(35_130_000, 619_500_000_000));
    assert!(p.asks().is_empty());
}

// ---------------------------------------------------------------------------
// Replay of a real capture, clean and with bad frames inserted
// ---------------------------------------------------------------------------

fn recording_path(test: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/recordings/spot_nknusdt.gz");
    if !path.is_file() {
        {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {test}: {} is absent (real captures live in ../shared/data)",
                path.display()
            );
        }
        return None;
    }
    Some(path)
}

/// Every line of the recording, decompressed, without newlines.
fn recording_lines(path: &Path) -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    open(path).expect("opening the recording").read_to_end(&mut text).expect("reading the recording");
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// Top of book after one depth event, as the strategy would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Top {
    symbol: Symbol,
    update_id: u64,
    bid: Option<Level>,
    ask: Option<Level>,
}

struct Replay {
    md: MarketData,
    tops: Vec<Top>,
    /// Lines without the `<ts> <json>` shape, never handed to MarketData.
    no_timestamp: u64,
}

/// Replays `lines`. When `expect` is given, it holds for each line the error
/// kind MarketData must report for it (None for a good line), checked right
/// after the line through `last_error` and the per-kind counters.
fn replay(lines: &[Vec<u8>], expect: Option<&[Option<ParseError>]>) -> Replay {
    let mut md = MarketData::new(BookSizes::default());
    md.verify_tickers(true);
    let mut tops = Vec::new();
    let mut no_timestamp = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some((_, json)) = split_line(line) else {
            no_timestamp += 1;
            continue;
        };
        let before = *md.stats();
        md.on_frame(json, &mut |ev| {
            if let Event::Depth { symbol, applied, book } = ev {
                assert!(!book.is_crossed(), "crossed book emitted at u={}", applied.update_id);
                tops.push(Top { symbol, update_id: applied.update_id, bid: book.best_bid(), ask: book.best_ask() });
            }
        });
        let after = md.stats();
        let rejected = after.rejected - before.rejected;
        let what = String::from_utf8_lossy(&json[..json.len().min(160)]);
        match expect.map(|e| e[i]) {
            Some(Some(err)) => {
                assert_eq!(rejected, 1, "line {i} should be rejected: {what}");
                let got = md.last_error().unwrap();
                assert_eq!(got.kind(), err.kind(), "line {i}: expected {err:?}, got {got:?}: {what}");
                assert_eq!(after.rejected_by_kind[err.kind()] - before.rejected_by_kind[err.kind()], 1);
            }
            _ => assert_eq!(rejected, 0, "line {i} rejected ({:?}): {what}", md.last_error()),
        }
    }
    Replay { md, tops, no_timestamp }
}

/// Index of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Quotes the number after `key` (`"U":123` -> `"U":"123"`).
fn quote_number_after(json: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let at = find(json, key)? + key.len();
    let end = at + json[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    if end == at {
        return None;
    }
    Some([&json[..at], b"\"", &json[at..end], b"\"", &json[end..]].concat())
}

/// Bad copies of one good JSON frame, each with the error it should get (the
/// replay checks the kind: which level list holds the first bad price depends
/// on the frame).
fn corrupt(json: &[u8], seed: usize) -> Vec<(Vec<u8>, ParseError)> {
    let mut out = Vec::new();
    let stream_unused = find(json, b"@kline").is_some();
    if !stream_unused {
        // A strict prefix of a frame is never valid JSON (and frames of
        // unused streams may be skipped unparsed, so they are left out).
        let cut = 1 + (seed * 7919) % (json.len() - 1);
        out.push((json[..cut].to_vec(), ParseError::Json));
        out.push((json[..json.len() - 1].to_vec(), ParseError::Json));
        // Dropped byte in the middle of a level list or a number.
        if let Some(at) = find(json, b"\"]") {
            out.push(([&json[..at], &json[at + 1..]].concat(), ParseError::Json));
        }
    }
    if let Some(at) = find(json, b"[[\"") {
        // Sign, exponent, nine decimals in the first level.
        let at = at + 3;
        out.push((
            [&json[..at], b"-", &json[at..]].concat(),
            ParseError::Decimal { field: "b", err: DecimalError::Sign },
        ));
        out.push((
            [&json[..at], b"1e", &json[at..]].concat(),
            ParseError::Decimal { field: "b", err: DecimalError::Exponent },
        ));
        let q = at + json[at..].iter().position(|&b| b == b'"').unwrap();
        out.push((
            [&json[..q], b"1", &json[q..]].concat(),
            ParseError::Decimal { field: "b", err: DecimalError::TooManyDecimals },
        ));
        // A level of numbers.
        out.push(([&json[..at - 2], b"[1,2],", &json[at - 2..]].concat(), ParseError::WrongType("b")));
    }
    if !stream_unused {
        for (key, field) in
            [(&b"\"U\":"[..], "U"), (b"\"u\":", "u"), (b"\"lastUpdateId\":", "lastUpdateId"), (b"\"E\":", "E")]
        {
            if let Some(bad) = quote_number_after(json, key) {
                out.push((bad, ParseError::WrongType(field)));
            }
        }
    }
    if let Some(at) = find(json, b"\"b\":\"") {
        // bookTicker bid with a blank.
        let at = at + 5;
        out.push((
            [&json[..at], b" ", &json[at..]].concat(),
            ParseError::Decimal { field: "b", err: DecimalError::NonDigit(b' ') },
        ));
    }
    out
}

#[test]
fn malformed_frames_between_real_lines_change_nothing() {
    let Some(path) = recording_path("malformed_frames_between_real_lines_change_nothing") else {
        return;
    };
    let good = recording_lines(&path);
    assert!(good.len() > 200, "recording has {} lines", good.len());

    let clean = replay(&good, None);
    let cs = *clean.md.stats();
    assert_eq!(cs.rejected, 0);
    assert_eq!(clean.no_timestamp, 0);
    assert!(cs.ticker_checks > 0, "no bookTicker was checked: {cs:?}");
    assert_eq!(cs.ticker_mismatches, 0);
    assert!(clean.tops.len() > 100, "only {} depth events", clean.tops.len());

    // Hand-made bad frames, cycled between the good lines.
    // Too many levels for this MarketData means more than its book capacity,
    // not the 100 of the table's parser.
    let cap = BookSizes::default().capacity;
    let too_many = diff_with(&format!("[{}]", vec![r#"["1","1"]"#; cap + 1].join(",")), "[]");
    let table: Vec<(Vec<u8>, ParseError)> = bad_frames()
        .into_iter()
        .filter(|(_, f, _, _)| f.len() < 1 << 20)
        .map(|(_, f, e, _)| match e {
            ParseError::TooManyLevels { .. } => {
                (too_many.clone(), ParseError::TooManyLevels { field: "b", len: cap + 1, max: cap })
            }
            _ => (f, e),
        })
        .collect();
    let mut dirty = Vec::new();
    let mut expect = Vec::new();
    let mut inserted_no_ts = 0;
    let mut tally = [0u64; ParseError::KINDS];
    let mut push_bad =
        |dirty: &mut Vec<Vec<u8>>, expect: &mut Vec<Option<ParseError>>, ts: u64, json: &[u8], e: ParseError| {
            let mut line = format!("{ts} ").into_bytes();
            line.extend_from_slice(json);
            dirty.push(line);
            expect.push(Some(e));
            tally[ParseError::kind(&e)] += 1;
        };
    // Before anything: garbage, and a bad frame that looks like a snapshot.
    push_bad(&mut dirty, &mut expect, 1, b"\x00\x01garbage\xff", ParseError::Json);
    push_bad(
        &mut dirty,
        &mut expect,
        1,
        br#"{"lastUpdateId":1,"bids":[["x","1"]],"asks":[]}"#,
        ParseError::Decimal { field: "bids", err: DecimalError::NonDigit(b'x') },
    );
    push_bad(&mut dirty, &mut expect, 1, &vec![b'{'; MAX_FRAME + 1], ParseError::TooLarge);
    for (i, line) in good.iter().enumerate() {
        let (ts, json) = split_line(line).expect("good lines have a timestamp");
        dirty.push(line.clone());
        expect.push(None);
        let (frame, e) = &table[i % table.len()];
        push_bad(&mut dirty, &mut expect, ts, frame, *e);
        // Corrupted copies of this very line (every 3rd line, and the snapshot).
        if i % 3 == 0 || json.starts_with(b"{\"lastUpdateId\"") {
            for (bad, e) in corrupt(json, i) {
                push_bad(&mut dirty, &mut expect, ts, &bad, e);
            }
        }
        // Lines without a timestamp: never reach MarketData.
        if i % 10 == 0 {
            for bad in [json.to_vec(), [b"ts ", json].concat(), b"-5 {}".to_vec(), format!("{ts}").into_bytes()] {
                assert!(split_line(&bad).is_none());
                dirty.push(bad);
                expect.push(None);
                inserted_no_ts += 1;
            }
        }
        // An empty frame after a timestamp.
        if i % 25 == 0 {
            push_bad(&mut dirty, &mut expect, ts, b"", ParseError::Empty);
        }
    }
    let inserted: u64 = tally.iter().sum();
    assert!(inserted > 300, "only {inserted} bad frames inserted");
    for kind in [
        "empty",
        "too_large",
        "json",
        "not_object",
        "missing_field",
        "wrong_type",
        "bad_decimal",
        "too_many_levels",
        "unrecognised",
    ] {
        let k = ParseError::KIND_NAMES.iter().position(|n| *n == kind).unwrap();
        assert!(tally[k] > 0, "no bad frame of kind {kind} inserted");
    }

    let run = replay(&dirty, Some(&expect));
    let ds = *run.md.stats();
    assert_eq!(run.no_timestamp, inserted_no_ts);
    assert_eq!(ds.rejected, inserted, "rejected count");
    assert_eq!(ds.rejected_by_kind, tally, "rejected by kind ({:?})", ParseError::KIND_NAMES);
    assert_eq!(ds.frames, cs.frames + inserted);

    // Identical books, event by event.
    assert_eq!(run.tops.len(), clean.tops.len(), "number of depth events");
    for (i, (d, c)) in run.tops.iter().zip(&clean.tops).enumerate() {
        assert_eq!(d, c, "depth event {i} differs");
    }
    // Identical counters apart from frames and rejections.
    let strip = |s: FeedStats| FeedStats { frames: 0, rejected: 0, rejected_by_kind: [0; ParseError::KINDS], ..s };
    assert_eq!(strip(ds), strip(cs));
    assert_eq!(run.md.sync_stats(), clean.md.sync_stats());
    assert_eq!(ds.ticker_mismatches, 0);
    assert!(ds.ticker_checks > 0);
    let sym = Symbol::new(b"NKNUSDT");
    let (a, b) = (run.md.book(sym).unwrap(), clean.md.book(sym).unwrap());
    assert!(a.is_synced() && b.is_synced());
    assert_eq!(a.update_id(), b.update_id());
    assert_eq!((a.book().bid_depth(), a.book().ask_depth()), (b.book().bid_depth(), b.book().ask_depth()));
    for n in 0..a.book().bid_depth() {
        assert_eq!(a.book().bid(n), b.book().bid(n));
    }
    for n in 0..a.book().ask_depth() {
        assert_eq!(a.book().ask(n), b.book().ask(n));
    }
}

/// Regression: a REST snapshot whose best bid is at or above its best ask
/// (a broken body, or a mutated frame) must not leave a book that says it is
/// synced. Partial-depth messages are checked for this (`on_partial`), diffs
/// too, but `SyncedBook::on_snapshot` loads the book and marks it synced
/// without looking, so until the next diff `is_synced()` is true on a crossed
/// book, which DESIGN.md says must never be quoted from.
#[test]
fn crossed_snapshot_does_not_leave_a_synced_book() {
    let mut md = MarketData::new(BookSizes {
        capacity: 100,
        max_message_levels: 100,
        buffer_events: 16,
        buffer_levels: 256,
        max_symbols: 4,
    });
    let sym = Symbol::new(b"BTCUSDT");
    let mut events = 0;
    let mut sink = |ev: Event<'_>| {
        if let Event::Depth { book, .. } = ev {
            assert!(!book.is_crossed());
            events += 1;
        }
    };
    md.on_frame(
        br#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":5,"b":[],"a":[]}}"#,
        &mut sink,
    );
    assert!(md.book(sym).unwrap().wants_snapshot());
    // Bid 101 >= ask 100; the buffered diff is older than the snapshot.
    md.on_frame(br#"{"lastUpdateId":10,"bids":[["101","1"]],"asks":[["100","1"]]}"#, &mut sink);
    let b = md.book(sym).unwrap();
    assert!(
        !(b.is_synced() && b.book().is_crossed()),
        "book is synced and crossed after a crossed snapshot: best bid {:?}, best ask {:?}, sync stats {:?}",
        b.book().best_bid(),
        b.book().best_ask(),
        b.stats()
    );
}

// ---------------------------------------------------------------------------
// Property tests: nothing panics
// ---------------------------------------------------------------------------

/// `cases` by default; `MMBOT_FUZZ_CASES=N` runs N instead (for a longer
/// fuzzing session, e.g. with `--release`).
fn case_count(cases: u32) -> u32 {
    std::env::var("MMBOT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Feeds one frame to both the parser and MarketData, checking the counters
/// add up and that no crossed book is ever emitted.
fn feed(p: &mut Parser, md: &mut MarketData, frame: &[u8]) -> Result<(), TestCaseError> {
    let _ = p.parse(frame);
    let before = *md.stats();
    let mut crossed = false;
    md.on_frame(frame, &mut |ev| {
        if let Event::Depth { book, .. } = ev {
            crossed |= book.is_crossed();
        }
    });
    prop_assert!(!crossed, "crossed book emitted");
    let s = md.stats();
    let delta = |f: fn(&FeedStats) -> u64| f(s) - f(&before);
    prop_assert_eq!(delta(|s| s.frames), 1);
    let outcomes = delta(|s| s.depth_messages)
        + delta(|s| s.snapshot_messages)
        + delta(|s| s.tickers)
        + delta(|s| s.trades)
        + delta(|s| s.skipped)
        + delta(|s| s.rejected)
        + delta(|s| s.server_shutdowns);
    prop_assert_eq!(outcomes, 1, "one frame, one outcome");
    prop_assert_eq!(s.rejected, s.rejected_by_kind.iter().sum::<u64>());
    Ok(())
}

fn small_sizes() -> BookSizes {
    BookSizes { capacity: 2000, max_message_levels: 2000, buffer_events: 64, buffer_levels: 4096, max_symbols: 8 }
}

/// Bytes that look like JSON often enough to reach deep into the parser.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"0",
        b"1",
        b"9",
        b".",
        b"-",
        b"e",
        b" ",
        b"\\",
        b"null",
        b"true",
        b"\"e\"",
        b"\"depthUpdate\"",
        b"\"stream\"",
        b"\"data\"",
        b"\"btcusdt@depth\"",
        b"\"x@depth5\"",
        b"\"lastUpdateId\"",
        b"\"bids\"",
        b"\"asks\"",
        b"\"b\"",
        b"\"a\"",
        b"\"u\"",
        b"\"U\"",
        b"\"pu\"",
        b"\"B\"",
        b"\"A\"",
        b"\"s\"",
        b"\"E\"",
        b"\"T\"",
        b"\"p\"",
        b"\"q\"",
        b"\"m\"",
        b"\"t\"",
        b"\"trade\"",
        b"\"aggTrade\"",
        b"\"bookTicker\"",
        b"\"serverShutdown\"",
        b"\"0.1\"",
        b"\"2\"",
        b"[\"1.5\",\"2\"]",
        b"18446744073709551615",
        b"99999999999999999999",
        b"-1",
        b"{\"stream\":\"btcusdt@depth\",\"data\":",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..64).prop_map(|t| t.concat())
}

#[test]
fn arbitrary_bytes_never_panic() {
    let p = RefCell::new(Parser::new(64, 4096));
    let md = RefCell::new(MarketData::new(small_sizes()));
    let strategy = prop_oneof![prop::collection::vec(any::<u8>(), 0..600), jsonish()];
    let cases = std::cell::Cell::new(0u32);
    let n = case_count(2000);
    runner(n)
        .run(&strategy, |bytes| {
            cases.set(cases.get() + 1);
            feed(&mut p.borrow_mut(), &mut md.borrow_mut(), &bytes)
        })
        .unwrap();
    assert!(cases.get() >= n, "ran {} cases", cases.get());
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b'"', b'[', b']', b'{', b'}', b',', b':', b'-', b'.', b'e', b'0', b'9', b' ', b'\\', 0u8, 0xff,
    ]);
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(prop_oneof![interesting, any::<u8>()], 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(frame: &mut Vec<u8>, m: &Mutation) {
    let len = frame.len();
    if len == 0 {
        return;
    }
    match *m {
        Mutation::Flip(i, x) => frame[i % len] ^= x,
        Mutation::Set(i, b) => frame[i % len] = b,
        Mutation::Truncate(i) => frame.truncate(i % len),
        Mutation::Insert(i, ref v) => {
            let at = i % (len + 1);
            frame.splice(at..at, v.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
            frame.drain(at..(at + n).min(len));
        }
        Mutation::Duplicate(i, n) => {
            let at = i % len;
            let piece = frame[at..(at + n).min(len)].to_vec();
            frame.splice(at..at, piece);
        }
    }
}

/// Mutates frames from `frames` and feeds them to a parser and to a
/// MarketData that has replayed `warmup` (so its books are synced and the
/// mutated frames reach the sync code, not just the parser).
fn mutations_never_panic(frames: &[Vec<u8>], warmup: &[Vec<u8>], cases: u32) {
    let cases = case_count(cases);
    let p = RefCell::new(Parser::new(5000, 64 << 10));
    let mut m = MarketData::new(small_sizes());
    m.verify_tickers(true);
    for f in warmup {
        m.on_frame(f, &mut |_| {});
    }
    let md = RefCell::new(m);
    let strategy = (0..frames.len(), prop::collection::vec(mutation(), 1..6));
    let ran = std::cell::Cell::new(0u32);
    runner(cases)
        .run(&strategy, |(i, muts)| {
            ran.set(ran.get() + 1);
            let mut frame = frames[i].clone();
            for m in &muts {
                mutate(&mut frame, m);
            }
            feed(&mut p.borrow_mut(), &mut md.borrow_mut(), &frame)?;
            // The untouched frame still goes through afterwards.
            feed(&mut p.borrow_mut(), &mut md.borrow_mut(), &frames[i])
        })
        .unwrap();
    assert!(ran.get() >= cases, "ran {} cases", ran.get());
}

#[test]
fn mutated_inline_frames_never_panic() {
    let frames: Vec<Vec<u8>> = [REAL_DIFF, REAL_TICKER, REAL_AGG_TRADE, REAL_SNAPSHOT]
        .iter()
        .map(|f| f.to_vec())
        .chain(bad_frames().into_iter().filter(|(_, f, _, _)| f.len() < 4096 && !f.is_empty()).map(|(_, f, _, _)| f))
        .collect();
    mutations_never_panic(&frames, &[], 1000);
}

#[test]
fn mutated_real_frames_never_panic() {
    let Some(path) = recording_path("mutated_real_frames_never_panic") else {
        return;
    };
    let lines = recording_lines(&path);
    let frames: Vec<Vec<u8>> = lines.iter().filter_map(|l| split_line(l).map(|(_, j)| j.to_vec())).collect();
    mutations_never_panic(&frames, &frames, 2000);
}
