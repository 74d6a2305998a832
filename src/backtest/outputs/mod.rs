//! What a quant reads after a backtest: `fills.csv`, `timeline.csv`, the
//! [`Stats`] in `report.json`, and `equity.svg`. [`Research`] is a
//! [`RunObserver`] that builds all of them as the run goes, with memory
//! bounded whatever the recording's length: rows are written to the files
//! as they happen, the timeline is sampled every N ms of simulated time
//! (plus at every fill) rather than at every book event, the plot keeps at
//! most [`plot::MAX_POINTS`] points, markouts wait in bounded queues, and
//! the return series holds one number per simulated minute.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use mmbot::backtest::outputs::{Research, ResearchConfig};
//! let config = mmbot::config::Config::default();
//! let files = vec![std::path::PathBuf::from("capture.gz")];
//! let dir = std::path::Path::new("out");
//! let mut research = Research::with_files(ResearchConfig::from_config(&config, 1000), dir)?;
//! let (mut report, _) = mmbot::backtest::run_with(
//!     &files, &config, mmbot::hot::strategy::NativeStrategy, mmbot::stats::clock::Clock::instant(), &mut research)?;
//! report.stats = Some(research.stats(report.trading.orders, 0));
//! std::fs::write(dir.join("equity.svg"), research.equity_svg("BTCUSDT"))?;
//! research.close()?;
//! # Ok(()) }
//! ```

pub mod fills;
pub mod markout;
pub mod plot;
pub mod stats;
pub mod timeline;

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::backtest::{FillRecord, MarketSample, RunObserver};
use crate::config::Config;
use crate::exec::position::Position;
use crate::hot::fixed::{Price, Qty, SCALE};

pub use fills::FillRow;
pub use markout::Markouts;
pub use plot::{equity_svg, PlotData};
pub use stats::{EquityStats, MarkoutStats, Stats};
pub use timeline::{RowKind, Sampler, TimelineRow};

/// File names in the output folder.
pub const FILLS_CSV: &str = "fills.csv";
pub const TIMELINE_CSV: &str = "timeline.csv";
pub const EQUITY_SVG: &str = "equity.svg";

/// Why the research outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {error}; check that the folder exists, is writable and has space")]
    Write { path: String, error: std::io::Error },
}

/// What [`Research`] needs to know about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResearchConfig {
    /// A timeline row at the first book event of every interval, ns.
    pub timeline_ns: i64,
    /// The strategy's position limit (time at limit, capital base).
    pub max_position: Qty,
}

impl ResearchConfig {
    /// From the run's config (`[strategy] max_position`) and `--timeline-ms`.
    pub fn from_config(config: &Config, timeline_ms: u64) -> Self {
        Self {
            timeline_ns: i64::try_from(timeline_ms).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000),
            max_position: config.hot.params.max_position,
        }
    }
}

/// A CSV file being written, with its path for error messages.
struct Sink {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Sink {
    fn create(path: PathBuf, header: &str) -> Result<Self, OutputError> {
        let err = |e| OutputError::Write { path: path.display().to_string(), error: e };
        let mut w = BufWriter::new(File::create(&path).map_err(err)?);
        writeln!(w, "{header}").map_err(err)?;
        Ok(Self { path, w })
    }
}

/// The market as last seen.
#[derive(Debug, Clone, Copy, Default)]
struct Top {
    mid: Option<Price>,
    best_bid: Option<Price>,
    best_ask: Option<Price>,
    own_bid: Option<(Price, Qty)>,
    own_ask: Option<(Price, Qty)>,
}

/// Builds the research outputs from a backtest's observer calls.
pub struct Research {
    cfg: ResearchConfig,
    sampler: Sampler,
    /// The run's position, rebuilt from its fills (equity at every mark).
    position: Position,
    top: Top,
    equity: EquityStats,
    markouts: Markouts,
    fills: u64,
    filled_orders: HashSet<u64>,
    timeline_rows: u64,
    plot: PlotData,
    fills_csv: Option<Sink>,
    timeline_csv: Option<Sink>,
    /// The first write error (observer calls cannot return one).
    error: Option<OutputError>,
    line: String,
}

fn to_f64(fixed: i64) -> f64 {
    fixed as f64 / SCALE as f64
}

impl Research {
    /// Statistics and plot only: no CSV files.
    pub fn new(cfg: ResearchConfig) -> Self {
        Self {
            cfg,
            sampler: Sampler::new(cfg.timeline_ns),
            position: Position::new(),
            top: Top::default(),
            equity: EquityStats::new(to_f64(cfg.max_position.0)),
            markouts: Markouts::default(),
            fills: 0,
            filled_orders: HashSet::new(),
            timeline_rows: 0,
            plot: PlotData { interval_ms: cfg.timeline_ns as f64 / 1e6, ..PlotData::default() },
            fills_csv: None,
            timeline_csv: None,
            error: None,
            line: String::with_capacity(256),
        }
    }

    /// Also writes `fills.csv` and `timeline.csv` into `dir` (which must
    /// exist) as the run goes.
    pub fn with_files(cfg: ResearchConfig, dir: &Path) -> Result<Self, OutputError> {
        let mut r = Self::new(cfg);
        r.fills_csv = Some(Sink::create(dir.join(FILLS_CSV), fills::HEADER)?);
        r.timeline_csv = Some(Sink::create(dir.join(TIMELINE_CSV), timeline::HEADER)?);
        Ok(r)
    }

    fn write(sink: &mut Option<Sink>, line: &str, error: &mut Option<OutputError>) {
        let Some(s) = sink else { return };
        if error.is_some() {
            return;
        }
        if let Err(e) = s.w.write_all(line.as_bytes()) {
            *error = Some(OutputError::Write { path: s.path.display().to_string(), error: e });
        }
    }

    fn equity_now(&self) -> i64 {
        self.top.mid.map_or(0, |m| self.position.pnl(m))
    }

    fn timeline_row(&mut self, time_ns: i64, kind: RowKind) {
        let equity = self.equity_now();
        let row = TimelineRow {
            time_ns,
            kind,
            mid: self.top.mid,
            best_bid: self.top.best_bid,
            best_ask: self.top.best_ask,
            own_bid: self.top.own_bid,
            own_ask: self.top.own_ask,
            position: self.position.qty(),
            equity,
        };
        self.timeline_rows += 1;
        self.plot.points.push(plot::PlotPoint {
            time_ns,
            mid: self.top.mid.map(|m| to_f64(m.0)),
            position: to_f64(row.position.0),
            equity: to_f64(equity),
        });
        self.line.clear();
        row.csv(&mut self.line);
        Self::write(&mut self.timeline_csv, &self.line, &mut self.error);
    }

    /// Rows written to `timeline.csv` so far.
    pub fn timeline_rows(&self) -> u64 {
        self.timeline_rows
    }

    /// The statistics. `orders` (new orders sent) and `rejected_post_only`
    /// come from the exchange's counters (the run's report), which this
    /// observer does not see.
    pub fn stats(&self, orders: u64, rejected_post_only: u64) -> Stats {
        let mid = self.top.mid.unwrap_or(self.position.avg_entry());
        let mut s = Stats {
            method: stats::METHOD.to_string(),
            pnl_net: to_f64(self.position.pnl(mid)),
            pnl_gross: to_f64(self.position.gross(mid)),
            fees: to_f64(self.position.fees()),
            volume: to_f64(self.position.volume()),
            fills: self.fills,
            orders,
            filled_orders: self.filled_orders.len() as u64,
            markouts: self.markouts.stats(),
            rejected_post_only,
            timeline_samples: self.timeline_rows,
            ..Stats::default()
        };
        self.equity.fill_in(&mut s);
        let per = |num: f64, den: f64| (den > 0.0).then(|| num / den);
        s.return_per_trade = per(s.pnl_net, s.fills as f64);
        s.return_per_trade_bps = per(s.pnl_net * 1e4, s.volume);
        s.return_pct = per(s.pnl_net * 100.0, s.capital_base);
        s.fill_ratio = per(s.filled_orders as f64, s.orders as f64);
        s.order_to_fill = per(s.orders as f64, s.fills as f64);
        s
    }

    /// `equity.svg` as text.
    pub fn equity_svg(&self, title: &str) -> String {
        equity_svg(title, &self.plot)
    }

    /// Flushes the CSV files; the first write error of the run, if any.
    /// Returns the files written.
    pub fn close(&mut self) -> Result<Vec<PathBuf>, OutputError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut written = Vec::new();
        for s in [self.fills_csv.as_mut(), self.timeline_csv.as_mut()].into_iter().flatten() {
            s.w.flush().map_err(|e| OutputError::Write { path: s.path.display().to_string(), error: e })?;
            written.push(s.path.clone());
        }
        Ok(written)
    }
}

impl RunObserver for Research {
    fn on_fill(&mut self, f: &FillRecord) {
        let fill = &f.fill;
        self.position.on_fill(fill);
        self.fills += 1;
        self.filled_orders.insert(fill.order_id);
        self.markouts.on_fill(fill.time_ns, fill.side, to_f64(fill.price.0));
        self.plot.fills.push(plot::FillMark { time_ns: fill.time_ns, price: to_f64(fill.price.0), side: fill.side });
        let row = FillRow::new(f, self.top.mid);
        self.line.clear();
        row.csv(&mut self.line);
        Self::write(&mut self.fills_csv, &self.line, &mut self.error);
        self.equity.observe(fill.time_ns, to_f64(self.equity_now()), to_f64(self.position.qty().0));
        self.timeline_row(fill.time_ns, RowKind::Fill);
    }

    fn on_book(&mut self, s: &MarketSample<'_>) {
        let bid = s.best_bid.map(|l| l.price);
        let ask = s.best_ask.map(|l| l.price);
        if let (Some(b), Some(a)) = (bid, ask) {
            // Integer midpoint, as the report marks its PnL.
            let mid = Price((b.0 + a.0) / 2);
            if self.top.mid.is_none() {
                self.equity.base = to_f64(self.cfg.max_position.0) * to_f64(mid.0);
            }
            self.top.mid = Some(mid);
            self.markouts.on_mid(s.time_ns, to_f64(mid.0));
        }
        self.top.best_bid = bid;
        self.top.best_ask = ask;
        self.top.own_bid = s.own_bid.map(|o| (o.price, o.qty));
        self.top.own_ask = s.own_ask.map(|o| (o.price, o.qty));
        self.equity.observe(s.time_ns, to_f64(self.equity_now()), to_f64(self.position.qty().0));
        if self.sampler.due(s.time_ns) {
            self.timeline_row(s.time_ns, RowKind::Sample);
        }
    }
}

pub use crate::stats::calendar::utc_iso;
