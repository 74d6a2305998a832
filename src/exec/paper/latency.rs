//! Latency models: how long a paper order takes to reach the exchange, a
//! cancel to take effect, and the exchange's answer (ack, reject, fill) to
//! come back.
//!
//! Three one-way delays, as in hftbacktest's `LatencyModel` (entry and
//! response; `hftbacktest/src/backtest/models/latency.rs`):
//! - entry: a new order, from send to the matching engine;
//! - cancel: a cancel, from send to taking effect;
//! - response: the exchange's answer back to us. The strategy learns of a
//!   fill, an ack or a reject only this long after it happened, and a side
//!   whose last order has not been answered yet sends no new order.
//!
//! [`LatencyModel::Constant`] uses `[paper] entry_latency_ms`,
//! `cancel_latency_ms` and `response_latency_ms` (each `latency_ms` unless
//! set). [`LatencyModel::Replay`] draws real round trips measured by a live
//! run: the journal's `order_rtt` rows (`place` for orders, `cancel` for
//! cancels, see `src/exec/journal/schema.rs`), picked by a seeded
//! generator so the same seed replays the same delays. A round trip is
//! send-to-answer; the journal cannot say how it splits, so half is taken
//! as the way there and half as the way back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why recorded round trips could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    #[error("cannot open the journal {path} to read order round trips: {error}")]
    Open { path: PathBuf, error: String },
    #[error(
        "the journal {path} has no usable `order_rtt` rows for placing orders (method 'place'): \
         record a live or testnet run with this journal first, or drop `[paper] latency_from_journal`"
    )]
    NoSamples { path: PathBuf },
}

/// Round trips measured by live runs, ns, in journal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttSamples {
    /// New orders (`place`, and the place half of `cancel_replace`).
    pub place: Arc<[i64]>,
    /// Cancels (`cancel`); the place samples when the journal has none.
    pub cancel: Arc<[i64]>,
}

impl RttSamples {
    /// Reads every positive round trip of `order_rtt` in `path` (read-only;
    /// a running bot may keep writing it).
    pub fn from_journal(path: &Path) -> Result<Self, LatencyError> {
        use rusqlite::{Connection, OpenFlags};
        let open_err = |e: rusqlite::Error| LatencyError::Open { path: path.to_path_buf(), error: e.to_string() };
        let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(open_err)?;
        let mut stmt =
            db.prepare("SELECT method, rtt_ns FROM order_rtt WHERE rtt_ns > 0 ORDER BY id").map_err(open_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(open_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_err)?;
        Self::from_rows(rows.iter().map(|(m, ns)| (m.as_str(), *ns)))
            .ok_or(LatencyError::NoSamples { path: path.to_path_buf() })
    }

    /// From `(method, rtt_ns)` rows; `None` without a place sample.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, i64)>) -> Option<Self> {
        let (mut place, mut cancel) = (Vec::new(), Vec::new());
        for (method, ns) in rows {
            if ns <= 0 {
                continue;
            }
            match method {
                "place" | "cancel_replace" => place.push(ns),
                "cancel" => cancel.push(ns),
                _ => {}
            }
        }
        if place.is_empty() {
            return None;
        }
        let place: Arc<[i64]> = place.into();
        let cancel = if cancel.is_empty() { place.clone() } else { cancel.into() };
        Some(Self { place, cancel })
    }
}

/// Delays of one new order: to the exchange, and its answer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderDelays {
    pub entry_ns: i64,
    pub response_ns: i64,
}

/// Where the paper exchange's delays come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatencyModel {
    /// Fixed delays, ns.
    Constant { entry_ns: i64, cancel_ns: i64, response_ns: i64 },
    /// Recorded round trips drawn by a seeded generator.
    Replay { samples: RttSamples, rng: SplitMix64 },
}

impl LatencyModel {
    /// `[paper] latency_model` as reports name it.
    pub fn name(&self) -> &'static str {
        match self {
            LatencyModel::Constant { .. } => "constant",
            LatencyModel::Replay { .. } => "journal_replay",
        }
    }

    /// Replay of `samples`, drawn in a fixed order from `seed`.
    pub fn replay(samples: RttSamples, seed: u64) -> Self {
        LatencyModel::Replay { samples, rng: SplitMix64(seed) }
    }

    /// The same model drawing from `seed` (a constant one is unchanged).
    pub fn reseeded(&self, seed: u64) -> Self {
        match self {
            LatencyModel::Replay { samples, .. } => LatencyModel::replay(samples.clone(), seed),
            c => c.clone(),
        }
    }

    /// The delays of the next new order.
    pub fn next_order(&mut self) -> OrderDelays {
        match self {
            LatencyModel::Constant { entry_ns, response_ns, .. } => {
                OrderDelays { entry_ns: *entry_ns, response_ns: *response_ns }
            }
            LatencyModel::Replay { samples, rng } => {
                let rtt = rng.pick(&samples.place);
                let entry_ns = rtt / 2;
                OrderDelays { entry_ns, response_ns: rtt - entry_ns }
            }
        }
    }

    /// The delay of the next cancel (send to effect).
    pub fn next_cancel(&mut self) -> i64 {
        match self {
            LatencyModel::Constant { cancel_ns, .. } => *cancel_ns,
            LatencyModel::Replay { samples, rng } => rng.pick(&samples.cancel) / 2,
        }
    }

    /// The delay of answers about fills: the constant response latency, or
    /// half of a drawn order round trip.
    pub fn next_response(&mut self) -> i64 {
        self.next_order().response_ns
    }
}

/// Which clock market events reach the paper exchange on
/// (`[paper] clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaperClock {
    /// When they were received: no feed latency.
    Receive,
    /// When they happened at the exchange ([`FeedClock`]).
    Exchange,
}

impl PaperClock {
    pub fn name(&self) -> &'static str {
        match self {
            PaperClock::Receive => "receive",
            PaperClock::Exchange => "exchange",
        }
    }
}

/// Maps a message's exchange time onto the receive clock, learning the
/// offset between the clocks as it goes: `exchange time + min over the
/// messages so far of (receive - exchange time)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedClock {
    offset: i64,
}

impl Default for FeedClock {
    fn default() -> Self {
        Self { offset: i64::MAX }
    }
}

impl FeedClock {
    /// When a message received at `recv_ns` with exchange time
    /// `exchange_ms` (0: none) happened, on the receive clock. Never after
    /// `recv_ns`; a message without an exchange time happened when received.
    pub fn at(&mut self, recv_ns: i64, exchange_ms: i64) -> i64 {
        if exchange_ms <= 0 {
            return recv_ns;
        }
        let exchange_ns = exchange_ms.saturating_mul(1_000_000);
        self.offset = self.offset.min(recv_ns.saturating_sub(exchange_ns));
        exchange_ns.saturating_add(self.offset).min(recv_ns)
    }
}

/// The exchange time (ms) of a raw market-data message: its `"T"`
/// (transaction time), else its `"E"` (event time), else 0. A byte scan,
/// not a parse: both are plain integers in Binance's payloads.
pub fn exchange_time_ms(json: &[u8]) -> i64 {
    let find = |key: &[u8]| {
        let at = memchr::memmem::find(json, key)? + key.len();
        let digits = json[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&json[at..at + digits]).ok()?.parse::<i64>().ok()
    };
    find(b"\"T\":").or_else(|| find(b"\"E\":")).unwrap_or(0)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator whose
/// whole state is one `u64`, so a seed fixes every draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// One element of a non-empty slice, uniformly (to within 2^-64).
    fn pick(&mut self, from: &[i64]) -> i64 {
        let i = ((self.next_u64() as u128 * from.len() as u128) >> 64) as usize;
        from[i.min(from.len().saturating_sub(1))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_latency_gives_each_kind_its_own_delay() {
        let mut m = LatencyModel::Constant { entry_ns: 5, cancel_ns: 7, response_ns: 11 };
        assert_eq!(m.next_order(), OrderDelays { entry_ns: 5, response_ns: 11 });
        assert_eq!(m.next_cancel(), 7);
        assert_eq!(m.next_response(), 11);
        assert_eq!(m.name(), "constant");
    }

    #[test]
    fn replay_splits_round_trips_and_repeats_for_a_seed() {
        let s = RttSamples::from_rows([("place", 10), ("cancel", 4), ("query", 999), ("place", 21)]).unwrap();
        assert_eq!((&*s.place, &*s.cancel), (&[10, 21][..], &[4][..]));
        let draw = |seed| {
            let mut m = LatencyModel::replay(s.clone(), seed);
            (0..50).map(|_| (m.next_order(), m.next_cancel())).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for (o, c) in &a {
            assert!(
                *o == OrderDelays { entry_ns: 5, response_ns: 5 }
                    || *o == OrderDelays { entry_ns: 10, response_ns: 11 }
            );
            assert_eq!(*c, 2);
        }
        // Both round trips are drawn.
        assert!(a.iter().any(|(o, _)| o.entry_ns == 5) && a.iter().any(|(o, _)| o.entry_ns == 10));
    }

    #[test]
    fn cancels_use_place_samples_when_none_were_recorded() {
        let s = RttSamples::from_rows([("place", 8), ("cancel", -1)]).unwrap();
        assert_eq!(&*s.cancel, &[8][..]);
        assert!(RttSamples::from_rows([("cancel", 8)]).is_none());
    }

    #[test]
    fn feed_clock_maps_exchange_time_by_the_smallest_delay_seen() {
        let mut c = FeedClock::default();
        // Receive clock 1.2 s behind the exchange's; delays 5, 3, 9 ms.
        let skew = -1_200_000_000;
        let at =
            |c: &mut FeedClock, e_ms: i64, delay_ms: i64| c.at(e_ms * 1_000_000 + skew + delay_ms * 1_000_000, e_ms);
        // The first is the fastest so far: it happened when received.
        assert_eq!(at(&mut c, 1_000, 5), 1_000_000_000 + skew + 5_000_000);
        assert_eq!(at(&mut c, 1_010, 3), 1_010_000_000 + skew + 3_000_000);
        // 9 ms late while 3 ms is the fastest: it happened 6 ms before receipt.
        assert_eq!(at(&mut c, 1_020, 9), 1_020_000_000 + skew + 3_000_000);
        assert_eq!(c.at(77, 0), 77);
    }

    #[test]
    fn exchange_time_is_t_else_e() {
        assert_eq!(exchange_time_ms(br#"{"e":"trade","E":1723161256560,"T":1723161256559,"p":"1"}"#), 1723161256559);
        assert_eq!(exchange_time_ms(br#"{"e":"depthUpdate","E":1723161255000,"s":"BTCUSDT"}"#), 1723161255000);
        assert_eq!(exchange_time_ms(br#"{"lastUpdateId":1,"bids":[]}"#), 0);
    }

    #[test]
    fn journal_rows_are_read() {
        let dir = std::env::temp_dir().join(format!("mmbot-rtt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.sqlite");
        let _ = std::fs::remove_file(&path);
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE order_rtt (id INTEGER PRIMARY KEY, run INTEGER, time_ns INTEGER, method TEXT, via TEXT, rtt_ns INTEGER);
             INSERT INTO order_rtt (run, time_ns, method, via, rtt_ns) VALUES
               (1, 0, 'place', 'ws_api', 3000000), (1, 0, 'cancel', 'ws_api', 1000000), (1, 0, 'place', 'rest', 0);",
        )
        .unwrap();
        drop(db);
        let s = RttSamples::from_journal(&path).unwrap();
        assert_eq!((&*s.place, &*s.cancel), (&[3_000_000][..], &[1_000_000][..]));
        let missing = RttSamples::from_journal(&dir.join("none.sqlite")).unwrap_err();
        assert!(missing.to_string().contains("cannot open the journal"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
