//! The request body each kind of target takes, and reading Telegram's
//! answer. Pure functions: [`super::send`] does the HTTP.
//!
//! * Generic JSON: `{"kind", "symbol", "text", "at_ms", "source": "mmbot"}`
//!   (mmbot's own shape, for any receiver).
//! * Slack incoming webhook (<https://api.slack.com/messaging/webhooks>,
//!   "Sending messages using incoming webhooks"): a JSON body with `text`;
//!   `&`, `<` and `>` escaped as Slack's formatting reference asks
//!   (<https://api.slack.com/reference/surfaces/formatting>, "Escaping text").
//! * Telegram Bot API `sendMessage` (<https://core.telegram.org/bots/api#sendmessage>):
//!   `POST {api_url}/bot{token}/sendMessage` with `chat_id` (Integer or
//!   String), `text` ("1-4096 characters after entities parsing": longer
//!   text is cut), no `parse_mode` (plain text: nothing to escape), and
//!   `disable_web_page_preview`. The answer is an object with `ok`, and on
//!   failure `error_code`, `description` and maybe `parameters`
//!   (<https://core.telegram.org/bots/api#making-requests>,
//!   <https://core.telegram.org/bots/api#responseparameters>: `retry_after`,
//!   `migrate_to_chat_id`).

use std::time::Duration;

use serde_json::{json, Value};

use super::Alert;
use crate::config::alerts::ChatId;

/// Telegram's longest message text (Bot API "sendMessage": `text`).
pub const TELEGRAM_MAX_TEXT: usize = 4096;
/// Slack's advice for `text` (longer is truncated by Slack).
pub const SLACK_MAX_TEXT: usize = 4000;

/// The alert's text, with how many of its kind were suppressed since the
/// last one sent (rate limits).
pub fn text_with_suppressed(alert: &Alert, suppressed: u64) -> String {
    match suppressed {
        0 => alert.text.clone(),
        1 => format!("{} (1 more like this was suppressed since the last message)", alert.text),
        n => format!("{} ({n} more like this were suppressed since the last message)", alert.text),
    }
}

/// One line for a person: `mmbot BTCUSDT: trading stopped (kill switch)`.
pub fn line(alert: &Alert, suppressed: u64) -> String {
    let text = text_with_suppressed(alert, suppressed);
    match alert.symbol.as_str() {
        "" => format!("mmbot: {text}"),
        s => format!("mmbot {s}: {text}"),
    }
}

/// The generic JSON body.
pub fn json_body(alert: &Alert, suppressed: u64) -> Value {
    json!({
        "kind": alert.kind.name(),
        "symbol": alert.symbol,
        "text": text_with_suppressed(alert, suppressed),
        "at_ms": alert.at_ms,
        "source": "mmbot",
    })
}

/// A Slack incoming webhook's body: `{"text": ...}`.
pub fn slack_body(alert: &Alert, suppressed: u64) -> Value {
    json!({ "text": slack_escape(&cut(&line(alert, suppressed), SLACK_MAX_TEXT)) })
}

/// Slack's three control characters, escaped ("Escaping text").
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Telegram `sendMessage`'s body.
pub fn telegram_body(chat_id: &ChatId, alert: &Alert, suppressed: u64) -> Value {
    json!({
        "chat_id": chat_id.to_json(),
        "text": cut(&line(alert, suppressed), TELEGRAM_MAX_TEXT),
        "disable_web_page_preview": true,
    })
}

/// `{api_url}/bot{token}/sendMessage` (Bot API "Making requests"). Holds
/// the token: never shown.
pub fn telegram_url(api_url: &str, token: &str) -> String {
    format!("{}/bot{token}/sendMessage", api_url.trim_end_matches('/'))
}

/// `text` cut to at most `max` UTF-16 code units (which also bounds the
/// characters: Telegram counts entity offsets in UTF-16), ending in `…`
/// when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.encode_utf16().count() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        // Room for the ellipsis (one unit).
        if units + c.len_utf16() > max - 1 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// What a Telegram answer says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TelegramAnswer {
    pub ok: bool,
    pub error_code: Option<i64>,
    pub description: Option<String>,
    /// `parameters.retry_after`: seconds to wait (flood control, 429).
    pub retry_after: Option<Duration>,
    /// `parameters.migrate_to_chat_id`: the group became a supergroup.
    pub migrate_to_chat_id: Option<i64>,
}

/// Reads a Bot API answer; `None` when the body is not its JSON object
/// (a proxy's page, an empty body).
pub fn telegram_answer(body: &str) -> Option<TelegramAnswer> {
    let v: Value = serde_json::from_str(body).ok()?;
    let ok = v.get("ok")?.as_bool()?;
    let params = v.get("parameters");
    let param = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_i64);
    Some(TelegramAnswer {
        ok,
        error_code: v.get("error_code").and_then(Value::as_i64),
        description: v.get("description").and_then(Value::as_str).map(str::to_string),
        retry_after: param("retry_after").filter(|s| *s >= 0).map(|s| Duration::from_secs(s as u64)),
        migrate_to_chat_id: param("migrate_to_chat_id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::alerts::AlertKind;

    fn alert(text: &str) -> Alert {
        Alert { kind: AlertKind::Kill, symbol: "BTCUSDT".into(), text: text.into(), at_ms: 1_700_000_000_123 }
    }

    #[test]
    fn the_three_bodies() {
        let a = alert("trading stopped (kill switch)");
        assert_eq!(
            json_body(&a, 0),
            json!({"kind": "kill", "symbol": "BTCUSDT", "text": "trading stopped (kill switch)",
                   "at_ms": 1_700_000_000_123i64, "source": "mmbot"})
        );
        assert_eq!(slack_body(&a, 0), json!({"text": "mmbot BTCUSDT: trading stopped (kill switch)"}));
        assert_eq!(
            telegram_body(&ChatId::Name("@ops_room".into()), &a, 2),
            json!({"chat_id": "@ops_room",
                   "text": "mmbot BTCUSDT: trading stopped (kill switch) (2 more like this were suppressed since \
                            the last message)",
                   "disable_web_page_preview": true})
        );
        assert_eq!(telegram_body(&ChatId::Id(-100), &a, 0)["chat_id"], json!(-100));
        assert_eq!(
            json_body(&a, 1)["text"],
            "trading stopped (kill switch) (1 more like this was suppressed since the last message)"
        );
        let mut whole = alert("stopped: ctrl-c");
        whole.symbol.clear();
        assert_eq!(line(&whole, 0), "mmbot: stopped: ctrl-c");
        assert_eq!(telegram_url("http://127.0.0.1:9/", "1:ab"), "http://127.0.0.1:9/bot1:ab/sendMessage");
    }

    #[test]
    fn slack_control_characters_are_escaped() {
        let a = alert("error <script> & more");
        assert_eq!(slack_body(&a, 0)["text"], "mmbot BTCUSDT: error &lt;script&gt; &amp; more");
    }

    #[test]
    fn long_text_is_cut_to_the_limit() {
        let a = alert(&"é".repeat(5000));
        let t = telegram_body(&ChatId::Id(1), &a, 0)["text"].as_str().unwrap().to_string();
        assert_eq!(t.encode_utf16().count(), TELEGRAM_MAX_TEXT);
        assert!(t.ends_with('…'));
        // Surrogate pairs are never split.
        let t = cut(&"😀".repeat(3000), TELEGRAM_MAX_TEXT);
        assert!(t.encode_utf16().count() <= TELEGRAM_MAX_TEXT && t.ends_with('…'));
        assert_eq!(cut("short", 10), "short");
        assert!(slack_body(&alert(&"x".repeat(9000)), 0)["text"].as_str().unwrap().chars().count() <= SLACK_MAX_TEXT);
    }

    #[test]
    fn telegram_answers_are_read() {
        assert_eq!(
            telegram_answer(r#"{"ok":true,"result":{"message_id":5}}"#),
            Some(TelegramAnswer { ok: true, ..TelegramAnswer::default() })
        );
        let a = telegram_answer(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#,
        )
        .unwrap();
        assert_eq!((a.ok, a.error_code, a.retry_after), (false, Some(429), Some(Duration::from_secs(3))));
        let a = telegram_answer(
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
        )
        .unwrap();
        assert_eq!(a.migrate_to_chat_id, Some(-1_001_234));
        assert_eq!(
            telegram_answer(r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#)
                .unwrap()
                .description
                .as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(telegram_answer("<html>bad gateway</html>"), None);
        assert_eq!(telegram_answer("{}"), None);
    }
}
