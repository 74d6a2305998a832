//! Live `[strategy.params]`: a paper run on the simulator (`mmbot demo`,
//! headless) whose config file is edited mid-run. The change is logged
//! (`params: half_bps 1.0 -> 4.0`), the script is rebuilt with the new
//! value and the quotes move out; a native `[strategy]` setting changes
//! too, and an invalid edit is refused with the running values kept.
//! Bounded: the run is 14 s and killed a minute after that at the latest.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "[strategy]\ntarget_spread_pct = 0.00002\nmin_order_size = \"0.001\"\nmax_position = \"0.005\"\n\
                      [strategy.params]\nhalf_bps = 1.0\n[risk]\nmin_spread_bps = 0.0\nmax_spread_bps = 100.0\n";

/// Quotes both sides `half_bps` from the mid.
const SCRIPT: &str = "fn quote(m) {\n    let h = m.mid * param(\"half_bps\", 0.5) / 1e4;\n    \
                      #{ bid: m.mid - h, ask: m.mid + h }\n}\n";

/// Ask minus bid of every status line's last quote, in order.
fn spreads(stderr: &str) -> Vec<f64> {
    stderr
        .lines()
        .filter_map(|l| {
            let q = l.split("last quote bid ").nth(1)?;
            let (bid, ask) = q.split_once(" ask ")?;
            // The line goes on after the quote ("; advisor ...").
            let price = |s: &str| s.split(';').next()?.trim().split('@').nth(1)?.parse::<f64>().ok();
            Some(price(ask)? - price(bid)?)
        })
        .collect()
}

fn wait_for(log: &Path, limit: Instant, what: impl Fn(&str) -> bool) -> String {
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if what(&text) || Instant::now() > limit {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_param_edited_in_the_config_file_applies_while_the_run_goes_on() {
    let dir = common::temp_dir("live-params");
    let (config, script, log) = (dir.join("mmbot.toml"), dir.join("half.rhai"), dir.join("stderr.txt"));
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(["demo", "--duration", "14s", "--no-dashboard", "--out", "runs", "--config"])
        .arg(&config)
        .arg("--script")
        .arg(&script)
        .current_dir(&dir)
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(74);

    // Quoting at 1 bps each side (12 USDT wide at 60,000) first.
    let before = wait_for(&log, limit, |t| spreads(t).len() >= 2);
    assert!(spreads(&before).len() >= 2, "no quotes in the status lines\n{before}");
    // An invalid edit: refused, nothing changes.
    std::fs::write(&config, CONFIG.replace("half_bps = 1.0", "half_bps = inf")).unwrap();
    let refused = wait_for(&log, limit, |t| t.contains("was not applied"));
    assert!(refused.contains("the running parameters stay"), "{refused}");
    // A good one: 4 bps each side, and the native spread setting.
    std::fs::write(
        &config,
        CONFIG.replace("half_bps = 1.0", "half_bps = 4.0\nunused_knob = 7").replace("0.00002", "0.00003"),
    )
    .unwrap();
    let applied = wait_for(&log, limit, |t| t.contains("params: half_bps 1.0 -> 4.0"));
    let at = applied.find("params: half_bps 1.0 -> 4.0").unwrap_or_else(|| panic!("not logged\n{applied}"));
    let after = wait_for(&log, limit, |t| spreads(&t[at.min(t.len())..]).len() >= 3);

    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("params: unused_knob (new) -> 7.0 (the script does not read it: kept, unused)"),
        "{stderr}"
    );
    assert!(stderr.contains("params: strategy.target_spread_pct 0.00002 -> 0.00003"), "{stderr}");
    assert!(stderr.contains("half.rhai reloaded"), "the script was rebuilt with the new value\n{stderr}");

    // Quotes moved out: about 12 USDT wide before, about 48 after (the
    // first status line after the change may still show an older quote).
    let (old, new) = (spreads(&before), spreads(&after[at..]));
    assert!(old.iter().all(|s| (6.0..18.0).contains(s)), "before: {old:?}\n{stderr}");
    let last = *new.last().unwrap();
    assert!((40.0..56.0).contains(&last), "after: {new:?}\n{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A live run (`mmbot run --live` against the simulator's exchange double,
/// all on 127.0.0.1): the change is journaled in the run's `params` table,
/// who = "config file"; a change through the control API
/// (`POST /api/params`) is journaled too, who = "api (ops)". Bounded: a 9 s
/// run, killed 90 s after its start at the latest.
#[test]
fn a_live_run_journals_the_change() {
    use mmbot::sim::{Sim, SimConfig, SimSource};
    const KEY: &str = "liveParamsKey0123456789abcdefghijklmnopq";
    const SECRET: &str = "liveParamsSecret9876543210zyxwvutsrqponm";
    let dir = common::temp_dir("live-params-journal");
    let sim = Sim::start(SimConfig {
        source: SimSource::Synthetic { seed: 7, events_per_sec: 300.0 },
        accounts: vec![mmbot::sim::exchange::SimAccount::hmac(
            KEY,
            SECRET,
            &[("BTC", "1"), ("USDT", "100000")],
            "0.001",
        )],
        ..SimConfig::default()
    })
    .expect("the simulator starts on an ephemeral port");
    let journal = dir.join("journal.sqlite");
    let text = |gamma: &str| {
        format!(
            "[strategy]\ntarget_spread_pct = 0.0\nmin_order_size = \"0.002\"\nmax_position = \"0.01\"\n\
             [strategy.params]\ngamma = {gamma}\n[risk]\nmin_spread_bps = 0.0\n[ai]\nprovider = \"offline\"\n\
             [live]\nbase_url = \"{}\"\nws_api_url = \"{}/ws-api/v3\"\nmax_position = \"0.01\"\n\
             max_order_notional = \"1000\"\nmax_open_orders = 2\ndaily_loss_limit = \"1000\"\njournal = \"{}\"\n\
             env_file = \"{}\"\n",
            sim.http_base(),
            sim.ws_base(),
            journal.display(),
            dir.join("no.env").display(),
        )
    };
    let (config, log) = (dir.join("mmbot.toml"), dir.join("stderr.txt"));
    std::fs::write(&config, text("0.1")).unwrap();
    let mut child = common::live_run_cmd(&dir, (&sim.ws_base(), &sim.http_base()), &config, "9s", (KEY, SECRET))
        .args(["--symbol", "BTCUSDT", "--control", "127.0.0.1:0"])
        .env("MMBOT_CONTROL_TOKEN", TOKEN)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(90);
    let started = wait_for(&log, limit, |t| t.contains("last quote"));
    assert!(started.contains("last quote"), "{started}");
    std::fs::write(&config, text("0.25")).unwrap();
    let logged = wait_for(&log, limit, |t| t.contains("params: gamma 0.1 -> 0.25"));
    assert!(logged.contains("params: gamma 0.1 -> 0.25"), "{logged}");
    // The same through the control API.
    let addr = logged
        .lines()
        .find_map(|l| l.strip_prefix("control: http://")?.split('/').next().map(str::to_string))
        .unwrap_or_else(|| panic!("no control banner:\n{logged}"));
    let change = "{\"params\": {\"gamma\": 0.3}, \"who\": \"ops\"}";
    let (status, body) = common::control_call(&addr, "POST", "/api/params", Some(TOKEN), Some(change));
    assert_eq!(status, 200, "{body}");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let run = mmbot::exec::journal::RunId(report["live"]["run_id"].as_i64().unwrap());
    let rows = mmbot::exec::journal::params_of(&journal, run).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (time_ns, row, who) = &rows[0];
    assert_eq!((row.name.as_str(), row.old, row.new, who.as_str()), ("gamma", Some(0.1), Some(0.25), "config file"));
    assert!(*time_ns > 1_600_000_000_000_000_000, "wall-clock ns: {time_ns}");
    let (api_ns, row, who) = &rows[1];
    assert_eq!((row.name.as_str(), row.old, row.new, who.as_str()), ("gamma", Some(0.25), Some(0.3), "api (ops)"));
    assert!(api_ns >= time_ns, "{rows:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

const TOKEN: &str = "live-params-token-0123456789";

/// The mechanism under the binary, on both paths: a new value published on
/// `SharedParams` reaches a running `ScriptStrategy` as a rebuilt version,
/// compiled (the value baked in at bind) and interpreted (the value read
/// from the run's tag), within a bounded wait; the strategy's own engine
/// keeps working for versions that came before.
#[test]
fn new_params_reach_the_compiled_and_the_interpreted_path() {
    use mmbot::hot::advice::Advice;
    use mmbot::hot::features::Features;
    use mmbot::hot::fixed::{Qty, SCALE};
    use mmbot::hot::msg::Level;
    use mmbot::hot::strategy::{Strategy, StrategyInput, StrategyParams};
    use mmbot::script::params::SharedParams;
    use mmbot::script::reload::watch_shared;
    use mmbot::script::{Params, ScriptLimits, ScriptStrategy};

    let dir = common::temp_dir("live-params-paths");
    let f = Features {
        best_bid: Level::new(1999 * SCALE, SCALE),
        best_ask: Level::new(2001 * SCALE, SCALE),
        mid: 2000.0,
        ..Features::default()
    };
    let params = StrategyParams { target_spread_pct: 0.1, min_order_size: Qty(SCALE), max_position: Qty(10 * SCALE) };
    let input = StrategyInput {
        features: &f,
        position: Qty(0),
        advice: Advice::neutral(),
        params: &params,
        scope: Default::default(),
    };
    // The same rule, once compiled and once kept interpreted by a `do`
    // loop (the fast path refuses those: scripts/README.md).
    let sources = [
        ("fast.rhai", "fn quote(m) { bid(m.mid - param(\"off\", 1.0), 1.0); }", true),
        (
            "slow.rhai",
            "fn quote(m) { let o = 0.0; let i = 0; do { o += param(\"off\", 1.0); i += 1; } while i < 1; bid(m.mid - o, 1.0); }",
            false,
        ),
    ];
    for (name, source, compiled) in sources {
        let path = dir.join(name);
        std::fs::write(&path, source).unwrap();
        let start = Params::from_iter([("off".to_string(), 2.0)]);
        let limits = ScriptLimits::default();
        let mut s = ScriptStrategy::from_file(&path, &start, &limits).unwrap();
        assert_eq!(s.fast_path(), compiled, "{name}");
        let shared = SharedParams::new(start.clone());
        let (_w, reload) = watch_shared(path.clone(), s.script().hash, limits, shared.clone(), |_| {});
        s.attach_reload(reload);
        let bid = |s: &mut ScriptStrategy| s.decide(&input).bid.map(|b| b.price);
        assert_eq!(bid(&mut s), Some(1998.0), "{name}");
        shared.set(Params::from_iter([("off".to_string(), 5.0)]));
        let t = Instant::now();
        while bid(&mut s) != Some(1995.0) {
            assert!(t.elapsed() < Duration::from_secs(5), "{name}: the new value never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(s.fast_path(), compiled, "{name}");
        assert_eq!(s.stats().reloads, 1, "{name}");
        // Removed: param()'s default again.
        shared.set(Params::new());
        let t = Instant::now();
        while bid(&mut s) != Some(1999.0) {
            assert!(t.elapsed() < Duration::from_secs(5), "{name}: the removal never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
