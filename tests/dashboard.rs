//! The terminal dashboard, driven through tmux (skipped where tmux is not
//! installed): `mmbot demo` draws the ladder, latency and key help; `p`
//! pauses quoting, `q` quits cleanly and the outputs are still written.

use std::process::Command;
use std::time::Duration;

mod common;

use common::tmux;

fn wait_for(socket: &str, text: &str, limit: Duration) -> Result<String, String> {
    common::tmux_wait_for(socket, "dash", text, limit)
}

#[test]
fn the_dashboard_draws_and_answers_its_keys() {
    if Command::new("tmux").arg("-V").output().is_err() {
        common::skip(format_args!("the_dashboard_draws_and_answers_its_keys: tmux is not installed"));
        return;
    }
    let socket = format!("mmbot-test-{}", std::process::id());
    let out = std::env::temp_dir().join(format!("mmbot-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cmd = format!(
        "env -u HOLYSHEEP_API_KEY -u OPENAI_API_KEY {} demo --duration 60s --out {}; echo EXITED $?; sleep 30",
        env!("CARGO_BIN_EXE_mmbot"),
        out.join("runs").display()
    );
    std::fs::create_dir_all(&out).unwrap();
    let started = Command::new("tmux")
        .args(["-L", &socket, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "45"])
        // Away from any .env with an API key: offline advice, no network.
        .arg("-c")
        .arg(&out)
        .arg(&cmd)
        .env("TERM", "xterm-256color")
        .env_remove("HOLYSHEEP_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .status()
        .unwrap();
    assert!(started.success());
    let result = (|| -> Result<(), String> {
        let screen = wait_for(&socket, "connected synced", Duration::from_secs(20))?;
        for part in
            ["book (top 10)", "latency", "tick_to_quote", "q quit", "advice", "strategy", "default.rhai", "offline"]
        {
            if !screen.contains(part) {
                return Err(format!("missing {part:?}:\n{screen}"));
            }
        }
        tmux(&socket, &["send-keys", "-t", "dash", "p"]);
        wait_for(&socket, "PAUSED", Duration::from_secs(5))?;
        tmux(&socket, &["send-keys", "-t", "dash", "p"]);
        let screen = wait_for(&socket, "tick_to_quote", Duration::from_secs(5))?;
        if screen.contains("PAUSED") {
            // Redraws come every 250 ms; give it one more.
            std::thread::sleep(Duration::from_millis(600));
            let again = tmux(&socket, &["capture-pane", "-t", "dash", "-p"]);
            if again.contains("PAUSED") {
                return Err(format!("still paused after the second p:\n{again}"));
            }
        }
        tmux(&socket, &["send-keys", "-t", "dash", "q"]);
        wait_for(&socket, "EXITED 0", Duration::from_secs(20))?;
        Ok(())
    })();
    tmux(&socket, &["kill-server"]);
    if let Err(screen) = result {
        panic!("dashboard check failed; last screen:\n{screen}");
    }
    let dirs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].path().join("report.json").exists());
    let report = std::fs::read_to_string(dirs[0].path().join("report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(v["trading"]["pulled"].as_u64().unwrap() >= 1, "pausing pulls the quotes");
    let _ = std::fs::remove_dir_all(&out);
}
