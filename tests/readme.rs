//! Every command the README (and `docs/*.md`) shows is checked, so the
//! documentation cannot drift from the program: each one is parsed by
//! mmbot's real command-line parser (`mmbot::cli::check_args`), and those
//! that run offline and quickly are run in a temporary folder and must
//! exit 0. A command that does not parse is a documentation bug: fix the
//! README, never skip it here.
//!
//! What counts as a command: in ```sh / ```bash / ```shell / ```console
//! blocks every line, in other blocks only lines with a `$ ` prompt (the
//! rest of those blocks is program output), that starts with `mmbot ` or
//! `cargo run --release -- ` once the prompt, leading `VAR=value`
//! assignments, a trailing `# comment` and a trailing `&` are stripped and
//! `\` continuations joined. Heredoc bodies are skipped.
//!
//! Synopsis lines (`[optional]` parts, `a|b` choices, `FILE...`) are
//! parsed in several forms: the required parts alone, then with each
//! optional part added on its own, every choice tried. Placeholders
//! (`FILE`, `DIR`, `N`, `D`, `URL`, `<timestamp>`, ...) are replaced with
//! real files of the temporary folder, chosen by the flag they follow.
//!
//! Which commands run (see [`why_not_run`]): `--help`, `config check`,
//! `script check`, `book`, `backtest`, `report`, `replay` without
//! `--speed`, `bench` on a file or a small `--events`, `sweep` without
//! walk-forward, `ai cost`. The others only parse: they need the network
//! (`run`, `paper`, `record`, `ai check`/`compare`), keys (`--live`), or
//! run until stopped (`demo`, `sim`). No test touches the internet.
//!
//! Every ```toml block is a configuration a reader may copy: each one must
//! pass `mmbot config check`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one documented command may run (a debug build on a busy
/// 2-core machine).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The sample recording every `FILE` of a recording stands for.
const SAMPLE: &str = "tests/data/sample_spot_btcusdt.rec";

/// One command line found in a document.
#[derive(Debug, Clone)]
struct DocCommand {
    /// `README.md:123`.
    place: String,
    /// The words after `mmbot` (or `cargo run --release --`).
    words: Vec<String>,
    /// The line uses synopsis notation (`[..]`, `a|b`, `FILE...`).
    synopsis: bool,
}

/// Splits a command line into words as a POSIX shell would for the simple
/// lines the README shows: whitespace outside quotes separates, single and
/// double quotes group (and are removed).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The line without a trailing `# comment` (a `#` that starts a word,
/// outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev_space => return line[..i].trim_end(),
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

/// The mmbot command on a (joined) shell line, if it is one.
fn command_of(line: &str) -> Option<(Vec<String>, bool)> {
    let line = line.trim();
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let line = strip_comment(line);
    let line = line.strip_suffix('&').unwrap_or(line).trim_end();
    let mut words = shell_words(line);
    // Leading environment assignments (`BINANCE_API_KEY=.. mmbot ..`).
    while words.first().is_some_and(|w| {
        let name = w.split('=').next().unwrap_or("");
        w.contains('=')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }) {
        words.remove(0);
    }
    let rest = if words.first().is_some_and(|w| w == "mmbot") {
        words.split_off(1)
    } else if words.len() >= 4 && words[..4] == ["cargo", "run", "--release", "--"] {
        words.split_off(4)
    } else {
        return None;
    };
    let synopsis = rest.iter().any(|w| w.contains('[') || w.contains(']') || w.contains('|') || w.ends_with("..."));
    Some((rest, synopsis))
}

/// Every mmbot command in the fenced code blocks of one Markdown file.
fn commands_in(path: &Path) -> Vec<DocCommand> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let shown = if name == "README.md" { name } else { format!("docs/{name}") };
    let mut out = Vec::new();
    let mut fence: Option<String> = None; // the open block's language
    let mut heredoc: Option<String> = None;
    let mut pending: Option<(usize, String)> = None; // a line ending in `\`
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(tag) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(tag.trim().to_string()),
            };
            pending = None;
            heredoc = None;
            continue;
        }
        let Some(lang) = &fence else { continue };
        if let Some(end) = &heredoc {
            if raw.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let shell = matches!(lang.as_str(), "sh" | "bash" | "shell" | "console");
        let (start, mut line) = match pending.take() {
            Some((start, head)) => (start, format!("{head} {}", raw.trim())),
            None => (i + 1, raw.trim().to_string()),
        };
        if let Some(head) = line.strip_suffix('\\') {
            pending = Some((start, head.trim_end().to_string()));
            continue;
        }
        if let Some(pos) = line.find("<<") {
            let tag = line[pos + 2..].trim().trim_matches(|c| c == '\'' || c == '"' || c == '-').to_string();
            if !tag.is_empty() {
                heredoc = Some(tag);
            }
            line.truncate(pos);
        }
        if !shell && !line.starts_with("$ ") {
            continue;
        }
        if let Some((words, synopsis)) = command_of(&line) {
            out.push(DocCommand { place: format!("{shown}:{start}"), words, synopsis });
        }
    }
    assert!(fence.is_none(), "{shown}: a code block is never closed");
    out
}

/// A synopsis, parsed: words and optional groups, each group a list of
/// alternatives (`a | b`).
#[derive(Debug, Clone)]
enum Item {
    Word(String),
    Optional(Vec<Vec<Item>>),
}

/// Parses synopsis words into items (`[--script FILE [--interpreted]]`).
fn synopsis_items(words: &[String]) -> Vec<Item> {
    // Split brackets off the words: "[--config" -> "[", "--config".
    let mut tokens = Vec::new();
    for w in words {
        let mut w = w.as_str();
        while let Some(rest) = w.strip_prefix('[') {
            tokens.push("[".to_string());
            w = rest;
        }
        let closing = w.len() - w.trim_end_matches(']').len();
        let core = &w[..w.len() - closing];
        if !core.is_empty() {
            tokens.push(core.to_string());
        }
        tokens.extend(std::iter::repeat_n("]".to_string(), closing));
    }
    fn group(tokens: &[String], at: &mut usize) -> Vec<Vec<Item>> {
        let mut alternatives = vec![Vec::new()];
        while *at < tokens.len() {
            let t = &tokens[*at];
            *at += 1;
            match t.as_str() {
                "]" => return alternatives,
                "|" => alternatives.push(Vec::new()),
                "[" => {
                    let inner = group(tokens, at);
                    alternatives.last_mut().unwrap().push(Item::Optional(inner));
                }
                w => alternatives.last_mut().unwrap().push(Item::Word(w.to_string())),
            }
        }
        alternatives
    }
    let mut at = 0;
    let mut top = group(&tokens, &mut at);
    assert_eq!(top.len(), 1, "a `|` outside brackets in {words:?}");
    top.remove(0)
}

/// The items with every optional group left out.
fn required(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Word(w) => Some(w.clone()),
            Item::Optional(_) => None,
        })
        .collect()
}

/// Everything in one alternative, nested groups included (their first
/// alternative).
fn everything(items: &[Item]) -> Vec<String> {
    let mut out = Vec::new();
    for i in items {
        match i {
            Item::Word(w) => out.push(w.clone()),
            Item::Optional(alts) => out.extend(everything(&alts[0])),
        }
    }
    out
}

/// The forms a synopsis is checked in: the required words, then each
/// top-level optional group added alone (each alternative), then every
/// `a|b` word tried with each choice.
fn synopsis_forms(words: &[String]) -> Vec<Vec<String>> {
    let items = synopsis_items(words);
    let mut forms = vec![required(&items)];
    for (k, item) in items.iter().enumerate() {
        if let Item::Optional(alts) = item {
            for alt in alts {
                let mut form = Vec::new();
                for (j, other) in items.iter().enumerate() {
                    match other {
                        Item::Word(w) => form.push(w.clone()),
                        Item::Optional(_) if j == k => form.extend(everything(alt)),
                        Item::Optional(_) => {}
                    }
                }
                forms.push(form);
            }
        }
    }
    // `spot|usdm` words: one form per choice.
    let mut expanded = Vec::new();
    for form in forms {
        let mut variants = vec![Vec::new()];
        for w in form {
            let w = w.strip_suffix("...").unwrap_or(&w).to_string();
            let choices: Vec<String> =
                if w.contains('|') { w.split('|').map(str::to_string).collect() } else { vec![w] };
            variants = variants
                .into_iter()
                .flat_map(|v: Vec<String>| {
                    choices.iter().map(move |c| {
                        let mut v = v.clone();
                        v.push(c.clone());
                        v
                    })
                })
                .collect();
        }
        expanded.extend(variants);
    }
    expanded
}

/// Replaces placeholders with real files and values of the temporary
/// folder, by the flag they follow.
fn substitute(words: &[String]) -> Vec<String> {
    let sub = words.first().map(String::as_str).unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let flag = if i > 0 { words[i - 1].as_str() } else { "" };
        let v = match (flag, w.as_str()) {
            ("--script", "FILE" | "FILE.rhai") => "scripts/default.rhai".to_string(),
            ("--config", _) => "mmbot.toml".to_string(),
            ("--report", "FILE") => "out-report.json".to_string(),
            ("--advice-log", _) => "advice.jsonl".to_string(),
            ("--list", "FILE") => "points.csv".to_string(),
            ("--out", "FILE.gz") => "new-recording.gz".to_string(),
            (f, "FILE") if sub == "script" && !f.starts_with("--") => "scripts/default.rhai".to_string(),
            (_, "FILE") if sub == "report" => "bt/report.json".to_string(),
            (_, "FILE") if sub == "config" => "mmbot.example.toml".to_string(),
            (_, "FILE") => SAMPLE.to_string(),
            ("--stream-url", "URL") => "ws://127.0.0.1:9".to_string(),
            ("--rest-url", "URL") => "http://127.0.0.1:9".to_string(),
            (_, "DIR") => "out-dir".to_string(),
            (_, "N") => "2".to_string(),
            (_, "X") => "4".to_string(),
            (_, "D") => "10s".to_string(),
            (_, "M") => "gpt-4.1".to_string(),
            (_, "USD") => "10".to_string(),
            (_, "NAME=VALUE") => "risk.min_spread_bps=1".to_string(),
            (_, "NAME=V1,V2") => "strategy.target_spread_pct=0,0.01".to_string(),
            (_, "KEY:HMAC_SECRET") => "KEY0123456789abcdef:SECRET0123456789abcdef".to_string(),
            (_, w) if w.contains("<timestamp>") || (w.starts_with("mmbot-out/") && w.ends_with("report.json")) => {
                "bt/report.json".to_string()
            }
            (_, w) if w.contains('*') => "data/x.gz".to_string(),
            (_, w) => w.to_string(),
        };
        out.push(v);
    }
    out
}

/// Why a command is only parsed, not run; `None` when it runs here.
fn why_not_run(words: &[String]) -> Option<&'static str> {
    let has = |flag: &str| words.iter().any(|w| w == flag);
    if has("--help") || has("-h") || has("--version") {
        return None;
    }
    let sub: Vec<&str> = words.iter().take(2).map(String::as_str).collect();
    match sub.as_slice() {
        ["demo", ..] => Some("runs until stopped (60 s by default)"),
        ["run", ..] | ["paper", ..] | ["record", ..] => Some("needs the Binance network (or a simulator it names)"),
        ["sim", ..] => Some("a server: runs until stopped"),
        ["ai", "check"] | ["ai", "compare"] => Some("calls an LLM gateway with a real key"),
        // Its inputs are what an earlier run wrote; tests/ai_eval.rs runs it.
        ["ai", "eval"] => Some("needs the advice log a run wrote and that run's recording"),
        ["replay", ..] if has("--speed") => Some("paced at the recorded rate"),
        ["bench", ..] if words.len() == 1 || (!has("--events") && !words[1].ends_with(".rec")) => {
            Some("200,000 synthetic frames: too long for a debug build")
        }
        ["bench", ..] if has("--events") && !has("20000") => Some("too many events for a debug build"),
        ["sweep", ..] if has("--walk-forward") => Some("walk-forward windows are hours; the sample is a second"),
        _ => None,
    }
}

/// The temporary folder commands run in: the repository's scripts and test
/// data, a config, and every file the README's examples name.
fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = common::temp_dir("readme");
    std::os::unix::fs::symlink(root.join("scripts"), dir.join("scripts")).unwrap();
    std::os::unix::fs::symlink(root.join("tests"), dir.join("tests")).unwrap();
    std::fs::copy(root.join("mmbot.example.toml"), dir.join("mmbot.example.toml")).unwrap();
    std::fs::copy(root.join("mmbot.example.toml"), dir.join("mmbot.toml")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    // Recordings are read by content (plain or gzip), whatever the name.
    for name in ["btcusdt.gz", "data/x.gz"] {
        std::fs::copy(root.join(SAMPLE), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("advice.jsonl"), "").unwrap();
    std::fs::write(dir.join("points.csv"), "strategy.target_spread_pct\n0\n0.01\n").unwrap();
    dir
}

/// Runs `mmbot words..` in `dir` with a bounded time; `Err` says what went
/// wrong with the output.
fn run_mmbot(dir: &Path, words: &[String]) -> Result<(), String> {
    let log = dir.join("last-command.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmbot"))
        .args(words)
        .current_dir(dir)
        .env_remove("MMBOT_CONFIG")
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .env("HOLYSHEEP_API_KEY", "")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .map_err(|e| format!("cannot start mmbot: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {RUN_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.success() {
        Ok(())
    } else {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: String =
            text.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        Err(format!("exited {status}:\n{tail}"))
    }
}

/// The documents whose commands are checked.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

#[test]
fn every_documented_command_parses_and_the_offline_ones_run() {
    let commands: Vec<DocCommand> = documents().iter().flat_map(|d| commands_in(d)).collect();
    let dir = workspace();
    // `mmbot report` examples read a report a backtest wrote.
    run_mmbot(&dir, &substitute(&["backtest".into(), "FILE".into(), "--out".into(), "bt".into()])).unwrap();

    let mut failures = Vec::new();
    let (mut parsed, mut forms, mut ran) = (0, 0, 0);
    let mut only_parsed: Vec<String> = Vec::new();
    for c in &commands {
        let candidates = if c.synopsis { synopsis_forms(&c.words) } else { vec![c.words.clone()] };
        let mut ok = true;
        for form in &candidates {
            forms += 1;
            let words = substitute(form);
            if let Err(e) = mmbot::cli::check_args(&words) {
                ok = false;
                failures.push(format!("{}: `mmbot {}` does not parse: {e}", c.place, words.join(" ")));
            }
        }
        if !ok {
            continue;
        }
        parsed += 1;
        if c.synopsis {
            only_parsed.push(format!("{}: synopsis", c.place));
            continue;
        }
        let words = substitute(&c.words);
        match why_not_run(&words) {
            Some(why) => only_parsed.push(format!("{}: `mmbot {}`: {why}", c.place, words.join(" "))),
            None => match run_mmbot(&dir, &words) {
                Ok(()) => ran += 1,
                Err(e) => failures.push(format!("{}: `mmbot {}` {e}", c.place, words.join(" "))),
            },
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{} commands found, {parsed} parse ({forms} forms), {ran} ran", commands.len());
    for line in &only_parsed {
        println!("parsed only: {line}");
    }
    assert!(failures.is_empty(), "documented commands that fail:\n{}", failures.join("\n"));
    // Guards against the extraction silently finding nothing.
    assert!(commands.len() >= 40, "only {} commands found", commands.len());
    assert!(ran >= 15, "only {ran} commands ran");
}

/// The ```toml blocks of one Markdown file, with where each starts.
fn toml_blocks_in(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    let mut in_other = false;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut block, fence) {
            (Some(_), Some(_)) => out.push(block.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, Some(tag)) if !in_other && tag.trim() == "toml" => block = Some((i + 1, String::new())),
            (None, Some(_)) => in_other = !in_other,
            (None, None) => {}
        }
    }
    out
}

#[test]
fn every_documented_toml_block_is_a_valid_config() {
    let dir = common::temp_dir("readme-toml");
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        for (line, body) in toml_blocks_in(&doc) {
            let name = format!("block-{checked}.toml");
            std::fs::write(dir.join(&name), body).unwrap();
            checked += 1;
            if let Err(e) = run_mmbot(&dir, &["config".into(), "check".into(), name]) {
                failures.push(format!("{}:{line}: {e}", doc.display()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "documented configs that do not check:\n{}", failures.join("\n"));
    assert!(checked >= 3, "only {checked} toml blocks found");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors_in(text: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.push(anchor_of(line.trim_start_matches('#')));
        }
    }
    anchors
}

#[test]
fn every_link_between_the_documents_leads_somewhere() {
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let folder = doc.parent().unwrap();
        for (n, line) in text.lines().enumerate() {
            for part in line.split("](").skip(1) {
                let Some(target) = part.split(')').next() else { continue };
                if target.starts_with("http") || target.contains(' ') {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = if file.is_empty() { doc.clone() } else { folder.join(file) };
                let Ok(linked) = std::fs::read_to_string(&path) else {
                    if !path.exists() {
                        broken.push(format!("{}:{}: {target}: no such file", doc.display(), n + 1));
                    }
                    continue;
                };
                if !anchor.is_empty()
                    && path.extension().is_some_and(|x| x == "md")
                    && !anchors_in(&linked).iter().any(|a| a == anchor)
                {
                    broken.push(format!("{}:{}: {target}: no such heading", doc.display(), n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn extraction_follows_the_rules_the_module_states() {
    let md = "text\n```sh\n$ mmbot book FILE   # a comment\nBINANCE_API_KEY=k mmbot run --live \\\n  --yes &\ncat > x <<'T'\nmmbot not-a-command\nT\ncargo run --release -- demo\n```\n```\nmmbot book: 42 frames (output)\n$ mmbot report r.json\n```\n";
    let dir = common::temp_dir("readme-extract");
    let path = dir.join("README.md");
    std::fs::write(&path, md).unwrap();
    let found: Vec<String> = commands_in(&path).iter().map(|c| c.words.join(" ")).collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found, ["book FILE", "run --live --yes", "demo", "report r.json"]);
    // The parser really refuses what mmbot refuses.
    let args = |s: &str| shell_words(s);
    assert!(mmbot::cli::check_args(&args("backtest x.rec --no-such-flag")).is_err());
    assert!(mmbot::cli::check_args(&args("paper --live --symbol BTCUSDT")).is_err());
    assert!(mmbot::cli::check_args(&args("backtest --help")).is_ok());
    let forms = synopsis_forms(&shell_words("bench [FILE...] [--script FILE [--interpreted]] [--market spot|usdm]"));
    let forms: Vec<String> = forms.iter().map(|f| f.join(" ")).collect();
    assert_eq!(
        forms,
        ["bench", "bench FILE", "bench --script FILE --interpreted", "bench --market spot", "bench --market usdm"]
    );
}
