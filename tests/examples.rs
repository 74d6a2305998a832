//! Parses the exact example payloads of Binance's docs (../shared/binance/examples)
//! and hand-written frames of every message kind with [`Parser`], asserting every
//! field of the resulting [`Msg`] and every level, exactly, in fixed-point.
//!
//! Every payload that belongs to a stream is also tried inside the combined
//! wrapper in three shapes: the compact `{"stream":..,"data":..}` the fast path
//! splits without parsing, the same with `data` first, and a pretty-printed one
//! (both of which take the general path). All three must give the same message.

use std::path::{Path, PathBuf};

use mmbot::hot::fixed::{Price, Qty};
use mmbot::hot::msg::{Aggressor, BookTicker, DepthDiff, Level, Msg, PartialDepth, Snapshot, Symbol, Trade};
use mmbot::hot::parse::Parser;

fn parser() -> Parser {
    Parser::new(5000, 64 << 10)
}

fn lv(price: i64, qty: i64) -> Level {
    Level::new(price, qty)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s.as_bytes())
}

/// The examples folder, or `None` (with a message) when ../shared is absent.
fn examples_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/binance/examples");
    if !dir.is_dir() {
        {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {test}: {} is absent (Binance doc examples live in ../shared/binance/examples)",
                dir.display()
            );
        }
        return None;
    }
    Some(dir)
}

/// The payload of an example file. The files hold the bare payload exactly as
/// Binance documents it; should one ever hold a document with metadata around
/// the payload (`{"payload": ...}` / `{"example": ...}`), that payload is taken
/// out with serde_json.
fn example(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    for key in ["payload", "example", "response", "body"] {
        if let Some(inner) = v.get(key) {
            if inner.is_object() {
                return serde_json::to_vec(inner).unwrap();
            }
        }
    }
    text
}

/// Parses `frame` and asserts the message and the levels left in the parser.
#[track_caller]
fn check(p: &mut Parser, frame: &[u8], msg: Msg, bids: &[Level], asks: &[Level]) {
    let what = String::from_utf8_lossy(frame);
    assert_eq!(p.parse(frame), Ok(msg), "frame: {what}");
    if matches!(msg, Msg::Diff(_) | Msg::Partial(_) | Msg::Snapshot(_)) {
        assert_eq!(p.bids(), bids, "bids of frame: {what}");
        assert_eq!(p.asks(), asks, "asks of frame: {what}");
    }
}

/// The three wrapper shapes of `payload` under `stream`.
fn wrappers(stream: &str, payload: &[u8]) -> Vec<Vec<u8>> {
    let payload = String::from_utf8(payload.to_vec()).unwrap();
    vec![
        format!(r#"{{"stream":"{stream}","data":{payload}}}"#).into_bytes(),
        format!(r#"{{"data":{payload},"stream":"{stream}"}}"#).into_bytes(),
        format!("{{\n  \"stream\" : \"{stream}\",\n  \"data\" :\n{payload}\n}}\n").into_bytes(),
    ]
}

/// Asserts `payload` parsed bare and inside every wrapper shape.
#[track_caller]
fn check_wrapped_and_bare(stream: &str, payload: &[u8], wrapped: Msg, bare: Msg, bids: &[Level], asks: &[Level]) {
    let mut p = parser();
    check(&mut p, payload, bare, bids, asks);
    for frame in wrappers(stream, payload) {
        check(&mut p, &frame, wrapped, bids, asks);
    }
    // Compact re-serialisation (serde_json may reorder keys): same message.
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    let compact = serde_json::to_vec(&v).unwrap();
    check(&mut p, &compact, bare, bids, asks);
    for frame in wrappers(stream, &compact) {
        check(&mut p, &frame, wrapped, bids, asks);
    }
}

// ---------------------------------------------------------------------------
// Doc examples
// ---------------------------------------------------------------------------

fn spot_diff_160(symbol: &str) -> Msg {
    Msg::Diff(DepthDiff {
        symbol: sym(symbol),
        event_time: 1_672_515_782_136,
        transact_time: 0,
        first_id: 157,
        last_id: 160,
        prev_last_id: None,
    })
}

#[test]
fn spot_diff_depth_example() {
    let Some(dir) = examples_dir("spot_diff_depth_example") else {
        return;
    };
    let payload = example(&dir, "spot_ws_diff_depth_depthUpdate.json");
    let msg = spot_diff_160("BNBBTC");
    let Msg::Diff(d) = msg else { unreachable!() };
    assert_eq!(d.market(), mmbot::hot::msg::Market::Spot);
    check_wrapped_and_bare(
        "bnbbtc@depth@100ms",
        &payload,
        msg,
        msg,
        &[lv(240_000, 1_000_000_000)],
        &[lv(260_000, 10_000_000_000)],
    );
}

#[test]
fn spot_partial_depth20_example_bare_is_a_snapshot_wrapped_is_a_partial() {
    let Some(dir) = examples_dir("spot_partial_depth20_example") else {
        return;
    };
    let payload = example(&dir, "spot_ws_partial_depth_depth20.json");
    let bare =
        Msg::Snapshot(Snapshot { symbol: Symbol::default(), last_update_id: 160, event_time: 0, transact_time: 0 });
    let wrapped = Msg::Partial(PartialDepth { symbol: sym("BNBBTC"), update_id: 160, event_time: 0 });
    check_wrapped_and_bare(
        "bnbbtc@depth20@100ms",
        &payload,
        wrapped,
        bare,
        &[lv(240_000, 1_000_000_000)],
        &[lv(260_000, 10_000_000_000)],
    );
    // The 1000 ms stream name (no speed suffix) is a partial too.
    let mut p = parser();
    let frame = wrappers("bnbbtc@depth20", &payload).remove(0);
    check(&mut p, &frame, wrapped, &[lv(240_000, 1_000_000_000)], &[lv(260_000, 10_000_000_000)]);
}

#[test]
fn spot_rest_depth_example_is_a_snapshot() {
    let Some(dir) = examples_dir("spot_rest_depth_example") else {
        return;
    };
    let payload = example(&dir, "spot_rest_depth_response.json");
    let mut p = parser();
    check(
        &mut p,
        &payload,
        Msg::Snapshot(Snapshot {
            symbol: Symbol::default(),
            last_update_id: 1_027_024,
            event_time: 0,
            transact_time: 0,
        }),
        &[lv(400_000_000, 43_100_000_000)],
        &[lv(400_000_200, 1_200_000_000)],
    );
}

#[test]
fn usdm_rest_depth_example_is_a_snapshot_with_event_and_transaction_time() {
    let Some(dir) = examples_dir("usdm_rest_depth_example") else {
        return;
    };
    let payload = example(&dir, "futures_usdm_rest_depth_response.json");
    let mut p = parser();
    check(
        &mut p,
        &payload,
        Msg::Snapshot(Snapshot {
            symbol: Symbol::default(),
            last_update_id: 1_027_024,
            event_time: 1_589_436_922_972,
            transact_time: 1_589_436_922_959,
        }),
        &[lv(400_000_000, 43_100_000_000)],
        &[lv(400_000_200, 1_200_000_000)],
    );
}

#[test]
fn usdm_diff_depth_example_has_pu_and_transaction_time() {
    let Some(dir) = examples_dir("usdm_diff_depth_example") else {
        return;
    };
    let payload = example(&dir, "futures_usdm_ws_diff_depth_depthUpdate.json");
    let msg = Msg::Diff(DepthDiff {
        symbol: sym("BTCUSDT"),
        event_time: 123_456_789,
        transact_time: 123_456_788,
        first_id: 157,
        last_id: 160,
        prev_last_id: Some(149),
    });
    let Msg::Diff(d) = msg else { unreachable!() };
    assert_eq!(d.market(), mmbot::hot::msg::Market::UsdM);
    check_wrapped_and_bare(
        "btcusdt@depth@0ms",
        &payload,
        msg,
        msg,
        &[lv(240_000, 1_000_000_000)],
        &[lv(260_000, 10_000_000_000)],
    );
}

#[test]
fn usdm_partial_depth5_example_wrapped_is_a_partial_bare_is_a_diff() {
    let Some(dir) = examples_dir("usdm_partial_depth5_example") else {
        return;
    };
    let payload = example(&dir, "futures_usdm_ws_partial_depth_depth5.json");
    // Bids in the order sent: the docs' example is ascending.
    let bids = [
        lv(740_389_000_000, 200_000),
        lv(740_390_000_000, 390_600_000),
        lv(740_400_000_000, 142_800_000),
        lv(740_485_000_000, 523_900_000),
        lv(740_543_000_000, 256_200_000),
    ];
    let asks = [
        lv(740_596_000_000, 334_000_000),
        lv(740_663_000_000, 452_500_000),
        lv(740_708_000_000, 247_500_000),
        lv(740_715_000_000, 480_000_000),
        lv(740_720_000_000, 17_500_000),
    ];
    let wrapped =
        Msg::Partial(PartialDepth { symbol: sym("BTCUSDT"), update_id: 390_497_878, event_time: 1_571_889_248_277 });
    let bare = Msg::Diff(DepthDiff {
        symbol: sym("BTCUSDT"),
        event_time: 1_571_889_248_277,
        transact_time: 1_571_889_248_276,
        first_id: 390_497_796,
        last_id: 390_497_878,
        prev_last_id: Some(390_497_794),
    });
    check_wrapped_and_bare("btcusdt@depth5", &payload, wrapped, bare, &bids, &asks);
    let mut p = parser();
    for stream in ["btcusdt@depth5@100ms", "btcusdt@depth5@500ms", "btcusdt@depth10", "btcusdt@depth20@100ms"] {
        check(&mut p, &wrappers(stream, &payload)[0], wrapped, &bids, &asks);
    }
}

#[test]
fn spot_book_ticker_example() {
    let Some(dir) = examples_dir("spot_book_ticker_example") else {
        return;
    };
    let payload = example(&dir, "spot_ws_bookTicker.json");
    let msg = Msg::BookTicker(BookTicker {
        symbol: sym("BNBUSDT"),
        update_id: 400_900_217,
        bid: lv(2_535_190_000, 3_121_000_000),
        ask: lv(2_536_520_000, 4_066_000_000),
        event_time: 0,
    });
    check_wrapped_and_bare("bnbusdt@bookTicker", &payload, msg, msg, &[], &[]);
}

#[test]
fn spot_combined_wrapper_example() {
    let Some(dir) = examples_dir("spot_combined_wrapper_example") else {
        return;
    };
    let frame = example(&dir, "spot_ws_combined_wrapper_example.json");
    let mut p = parser();
    let (b, a) = ([lv(240_000, 1_000_000_000)], [lv(260_000, 10_000_000_000)]);
    check(&mut p, &frame, spot_diff_160("BNBBTC"), &b, &a);
    // Compact (keys sorted by serde_json: "data" before "stream").
    let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
    check(&mut p, &serde_json::to_vec(&v).unwrap(), spot_diff_160("BNBBTC"), &b, &a);
    // Compact with "stream" first: the fast path.
    let data = serde_json::to_string(&v["data"]).unwrap();
    let fast = format!(r#"{{"stream":"bnbbtc@depth","data":{data}}}"#);
    check(&mut p, fast.as_bytes(), spot_diff_160("BNBBTC"), &b, &a);
}

#[test]
fn spot_server_shutdown_examples() {
    let Some(dir) = examples_dir("spot_server_shutdown_examples") else {
        return;
    };
    let mut p = parser();
    let msg = Msg::ServerShutdown { event_time: 1_770_123_456_789 };
    for name in ["spot_ws_serverShutdown_raw.json", "spot_ws_serverShutdown_combined.json"] {
        let frame = example(&dir, name);
        assert_eq!(p.parse(&frame), Ok(msg), "{name}");
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(p.parse(&serde_json::to_vec(&v).unwrap()), Ok(msg), "{name} compact");
    }
    let raw = example(&dir, "spot_ws_serverShutdown_raw.json");
    for frame in wrappers("!serverShutdown", &raw) {
        assert_eq!(p.parse(&frame), Ok(msg), "{}", String::from_utf8_lossy(&frame));
    }
}

#[test]
fn spot_subscribe_response_example_is_skipped() {
    let Some(dir) = examples_dir("spot_subscribe_response_example") else {
        return;
    };
    let frame = example(&dir, "spot_ws_subscribe_response.json");
    let mut p = parser();
    assert_eq!(p.parse(&frame), Ok(Msg::Skipped));
    assert_eq!(p.parse(br#"{"result":null,"id":1}"#), Ok(Msg::Skipped));
    assert_eq!(p.parse(br#"{"id":"abc","result":["btcusdt@depth"]}"#), Ok(Msg::Skipped));
}

// ---------------------------------------------------------------------------
// Hand-written frames
// ---------------------------------------------------------------------------

#[test]
fn spot_trade() {
    let payload =
        br#"{"e":"trade","E":123456789,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":123456785,"m":true,"M":true}"#;
    let msg = Msg::Trade(Trade {
        symbol: sym("BNBBTC"),
        id: 12345,
        price: Price(100_000),
        qty: Qty(10_000_000_000),
        trade_time: 123_456_785,
        event_time: 123_456_789,
        aggressor: Aggressor::Sell,
        aggregated: false,
    });
    check_wrapped_and_bare("bnbbtc@trade", payload, msg, msg, &[], &[]);
    // Buyer is the taker when the buyer is not the maker.
    let buy = br#"{"e":"trade","E":1,"s":"BNBBTC","t":7,"p":"2","q":"3","T":1,"m":false,"M":true}"#;
    let Ok(Msg::Trade(t)) = parser().parse(buy) else { panic!("not a trade") };
    assert_eq!(t.aggressor, Aggressor::Buy);
}

#[test]
fn spot_agg_trade() {
    let payload = br#"{"e":"aggTrade","E":123456789,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true,"M":true}"#;
    let msg = Msg::Trade(Trade {
        symbol: sym("BNBBTC"),
        id: 12345,
        price: Price(100_000),
        qty: Qty(10_000_000_000),
        trade_time: 123_456_785,
        event_time: 123_456_789,
        aggressor: Aggressor::Sell,
        aggregated: true,
    });
    check_wrapped_and_bare("bnbbtc@aggTrade", payload, msg, msg, &[], &[]);
}

#[test]
fn usdm_book_ticker_with_event_and_transaction_time() {
    let payload = br#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
    let msg = Msg::BookTicker(BookTicker {
        symbol: sym("BNBUSDT"),
        update_id: 400_900_217,
        bid: lv(2_535_190_000, 3_121_000_000),
        ask: lv(2_536_520_000, 4_066_000_000),
        event_time: 1_568_014_460_893,
    });
    check_wrapped_and_bare("bnbusdt@bookTicker", payload, msg, msg, &[], &[]);
}

#[test]
fn usdm_diff_with_pair_and_contract_type_fields_ignores_them() {
    let payload = br#"{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","ps":"BTCUSDT","st":1,"U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#;
    let msg = Msg::Diff(DepthDiff {
        symbol: sym("BTCUSDT"),
        event_time: 123_456_789,
        transact_time: 123_456_788,
        first_id: 157,
        last_id: 160,
        prev_last_id: Some(149),
    });
    check_wrapped_and_bare(
        "btcusdt@depth@100ms",
        payload,
        msg,
        msg,
        &[lv(240_000, 1_000_000_000)],
        &[lv(260_000, 10_000_000_000)],
    );
}

#[test]
fn unknown_streams_are_skipped() {
    let mut p = parser();
    let kline = br#"{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1,"T":2,"s":"BTCUSDT","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1","x":false}}"#;
    let mark = br#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#;
    for (stream, payload) in [
        ("btcusdt@kline_1m", &kline[..]),
        ("btcusdt@markPrice", &mark[..]),
        ("btcusdt@markPrice@1s", &mark[..]),
        ("btcusdt@ticker", &mark[..]),
        ("btcusdt@depthX", &mark[..]),
        ("!miniTicker@arr", &mark[..]),
    ] {
        for frame in wrappers(stream, payload) {
            assert_eq!(p.parse(&frame), Ok(Msg::Skipped), "{}", String::from_utf8_lossy(&frame));
        }
    }
    // Raw (unwrapped) events of unused kinds are skipped by their "e".
    assert_eq!(p.parse(kline), Ok(Msg::Skipped));
    assert_eq!(p.parse(mark), Ok(Msg::Skipped));
}

#[test]
fn unknown_fields_reordered_keys_and_pretty_printing_are_accepted() {
    let mut p = parser();
    let expect = spot_diff_160("BNBBTC");
    let (b, a) = ([lv(240_000, 1_000_000_000)], [lv(260_000, 10_000_000_000)]);
    // Reordered keys, unknown fields of every JSON type (nested ones included,
    // so skipping them must step over whole sub-trees).
    let reordered = br#"{"a":[["0.0026","100"]],"x":{"b":[["9","9"]],"u":1,"n":{"e":"trade"}},"u":160,"y":[[1,2],{"U":3}],"b":[["0.0024","10"]],"z":null,"U":157,"w":1.5,"s":"BNBBTC","v":true,"E":1672515782136,"e":"depthUpdate","zz":"str"}"#;
    check(&mut p, reordered, expect, &b, &a);
    for frame in wrappers("bnbbtc@depth", reordered) {
        check(&mut p, &frame, expect, &b, &a);
    }
    let pretty = b"\n\t{ \"e\" :\t\"depthUpdate\" ,\r\n  \"E\": 1672515782136,\n  \"s\": \"BNBBTC\",\n  \"unknown\": {\"deep\": [1, {\"a\": [\"x\"]}]},\n  \"U\": 157,\n  \"u\": 160,\n  \"b\": [ [ \"0.0024\" , \"10\" ] ],\n  \"a\": [\n    [\"0.0026\", \"100\"]\n  ]\n}\n  ";
    check(&mut p, pretty, expect, &b, &a);
    for frame in wrappers("bnbbtc@depth", pretty) {
        check(&mut p, &frame, expect, &b, &a);
    }
    // Unknown fields in the wrapper itself, before and after "data".
    let frames: [&[u8]; 3] = [
        br#"{"id":5,"stream":"bnbbtc@depth","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#,
        br#"{"stream":"bnbbtc@depth","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]},"extra":{"k":[1]}}"#,
        br#"{"data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]},"x":[],"stream":"bnbbtc@depth"}"#,
    ];
    for frame in frames {
        check(&mut p, frame, expect, &b, &a);
    }
}

#[test]
fn wrapper_with_data_before_stream_is_routed_by_the_stream_name() {
    let mut p = parser();
    // A spot depth20 payload under "data" first must still be a Partial.
    let frame = br#"{"data":{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]},"stream":"bnbbtc@depth20@100ms"}"#;
    check(
        &mut p,
        frame,
        Msg::Partial(PartialDepth { symbol: sym("BNBBTC"), update_id: 160, event_time: 0 }),
        &[lv(240_000, 1_000_000_000)],
        &[lv(260_000, 10_000_000_000)],
    );
    let frame =
        br#"{"data":{"e":"trade","E":1,"s":"BNBBTC","t":2,"p":"3","q":"4","T":5,"m":false},"stream":"bnbbtc@trade"}"#;
    let Ok(Msg::Trade(t)) = p.parse(frame) else { panic!("not a trade") };
    assert_eq!((t.id, t.price, t.qty, t.aggressor), (2, Price(300_000_000), Qty(400_000_000), Aggressor::Buy));
    let frame = br#"{"data":{"e":"kline","E":1},"stream":"bnbbtc@kline_1m"}"#;
    assert_eq!(p.parse(frame), Ok(Msg::Skipped));
}

#[test]
fn stream_symbol_names_the_book_even_when_the_payload_has_none() {
    let mut p = parser();
    let payload = br#"{"lastUpdateId":7,"bids":[],"asks":[]}"#;
    for frame in wrappers("ethbtc@depth10@100ms", payload) {
        check(
            &mut p,
            &frame,
            Msg::Partial(PartialDepth { symbol: sym("ETHBTC"), update_id: 7, event_time: 0 }),
            &[],
            &[],
        );
    }
}

#[test]
fn old_style_levels_with_a_third_element_are_accepted() {
    let mut p = parser();
    let diff = br#"{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"b":[["0.1","2",[]],["0.2","3",[]]],"a":[["0.3","4",[]]]}"#;
    let expect = Msg::Diff(DepthDiff {
        symbol: sym("BNBBTC"),
        event_time: 1,
        transact_time: 0,
        first_id: 157,
        last_id: 160,
        prev_last_id: None,
    });
    let bids = [lv(10_000_000, 200_000_000), lv(20_000_000, 300_000_000)];
    let asks = [lv(30_000_000, 400_000_000)];
    check_wrapped_and_bare("bnbbtc@depth", diff, expect, expect, &bids, &asks);
    // Old REST snapshots had the same third element (and non-empty ones).
    let snap = br#"{"lastUpdateId":9,"bids":[["0.1","2",[]],["0.05","1",["x",{"y":1}]]],"asks":[["0.3","4",[]]]}"#;
    check(
        &mut p,
        snap,
        Msg::Snapshot(Snapshot { symbol: Symbol::default(), last_update_id: 9, event_time: 0, transact_time: 0 }),
        &[lv(10_000_000, 200_000_000), lv(5_000_000, 100_000_000)],
        &asks,
    );
}

#[test]
fn empty_level_lists_and_zero_quantities() {
    let mut p = parser();
    let diff = br#"{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[["61837.63","0.00000000"]]}"#;
    check(
        &mut p,
        diff,
        Msg::Diff(DepthDiff {
            symbol: sym("BTCUSDT"),
            event_time: 5,
            transact_time: 0,
            first_id: 1,
            last_id: 2,
            prev_last_id: None,
        }),
        &[],
        &[lv(6_183_763_000_000, 0)],
    );
}

#[test]
fn parser_buffers_are_replaced_by_each_depth_message() {
    // Levels of an earlier, larger message must not leak into the next one.
    let mut p = parser();
    let big = br#"{"e":"depthUpdate","E":1,"s":"A","U":1,"u":2,"b":[["1","1"],["2","2"],["3","3"]],"a":[["4","4"],["5","5"]]}"#;
    let small = br#"{"e":"depthUpdate","E":1,"s":"A","U":3,"u":3,"b":[["1.5","1"]],"a":[]}"#;
    assert!(matches!(p.parse(big), Ok(Msg::Diff(_))));
    assert_eq!((p.bids().len(), p.asks().len()), (3, 2));
    assert!(matches!(p.parse(small), Ok(Msg::Diff(_))));
    assert_eq!(p.bids(), &[lv(150_000_000, 100_000_000)]);
    assert_eq!(p.asks(), &[]);
}
