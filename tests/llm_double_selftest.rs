//! Self-test of the LLM gateway double (tests/llm_double): it validates and
//! answers as the providers' docs say (citations in tests/llm_double/openai.rs
//! and anthropic.rs), and every scripted fault looks as documented on the wire.
//! Raw HTTP/1.1 over a TcpStream, so nothing here depends on mmbot's client.

mod llm_double;

use llm_double::{
    http_date, Behaviour, Fault, Flavour, LlmDouble, RetryAfter, ADVICE_JSON, DEFAULT_KEY, REASONING_TOKENS,
};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

/// A parsed answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body[..self.body.len().min(300)]))
        })
    }
}

fn connect(d: &LlmDouble) -> TcpStream {
    let s = TcpStream::connect(d.addr()).expect("connect to the double");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn write_req(s: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], close: bool) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
}

/// Read one response (Content-Length framed). None when the peer closed first.
fn read_reply(r: &mut BufReader<TcpStream>) -> Option<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Reply { status, headers, body })
}

fn send(d: &LlmDouble, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut s = connect(d);
    write_req(&mut s, method, path, headers, body, true);
    read_reply(&mut BufReader::new(s)).expect("an answer")
}

fn bearer() -> String {
    format!("Bearer {DEFAULT_KEY}")
}

fn chat(d: &LlmDouble, path: &str, body: &Value) -> Reply {
    let auth = bearer();
    send(
        d,
        "POST",
        path,
        &[("authorization", &auth), ("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn messages() -> Value {
    json!([{"role": "system", "content": "Answer in JSON with spread_state."}, {"role": "user", "content": "BTCUSDT book: bid 60000 ask 60000.01"}])
}

/// The double's documented token rule, recomputed independently.
fn tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4)
}

fn expected_prompt() -> u64 {
    (4 + tokens("Answer in JSON with spread_state.")) + (4 + tokens("BTCUSDT book: bid 60000 ask 60000.01"))
}

fn err(r: &Reply) -> Value {
    r.json()["error"].clone()
}

#[test]
fn chat_completion_has_the_documented_shape_and_usage_rule() {
    let d = LlmDouble::start();
    let r = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": messages(), "max_tokens": 800, "temperature": 0.3, "response_format": {"type": "json_object"}}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-4.1");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], ADVICE_JSON);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(u["prompt_tokens"], expected_prompt());
    assert_eq!(u["completion_tokens"], tokens(ADVICE_JSON));
    assert_eq!(u["total_tokens"], expected_prompt() + tokens(ADVICE_JSON));
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 0);
    let rec = d.requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].method, "POST");
    assert_eq!(rec[0].path, "/v1/chat/completions");
    assert_eq!(rec[0].header("Authorization"), Some(bearer().as_str()));
    assert_eq!(rec[0].json()["max_tokens"], 800);
    assert_eq!(rec[0].status, 200);
    let usage = rec[0].usage.expect("usage recorded");
    assert_eq!((usage.prompt, usage.completion, usage.cached), (expected_prompt(), tokens(ADVICE_JSON), 0));
    assert!(rec[0].at >= d.epoch());
}

#[test]
fn any_base_path_serves_chat_gemini_and_bedrock_shapes() {
    let d = LlmDouble::start();
    for path in [
        "/v1/chat/completions",
        "/v1beta/openai/chat/completions",
        "/openai/v1/chat/completions",
        "/api/v1/chat/completions",
    ] {
        let r = chat(&d, path, &json!({"model": "gemini-2.5-flash", "messages": messages()}));
        assert_eq!(r.status, 200, "{path}");
    }
    let auth = bearer();
    let gemini = send(&d, "GET", "/v1beta/openai/models", &[("authorization", &auth)], b"");
    assert_eq!(gemini.status, 200);
    // Bedrock's runtime serves only Create chat completion (AWS Bedrock user guide).
    let bedrock = send(&d, "GET", "/openai/v1/models", &[("authorization", &auth)], b"");
    assert_eq!(bedrock.status, 404);
    let nowhere = send(&d, "POST", "/v1/engines", &[("authorization", &auth)], b"{}");
    assert_eq!(nowhere.status, 404);
    let wrong_method = send(&d, "GET", "/v1/chat/completions", &[("authorization", &auth)], b"");
    assert_eq!(wrong_method.status, 405);
}

#[test]
fn models_list_in_openai_and_anthropic_shapes() {
    let d = LlmDouble::start();
    d.set_models(&["gpt-4.1", "gpt-5-mini"]);
    let auth = bearer();
    let r = send(&d, "GET", "/v1/models", &[("authorization", &auth)], b"");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4.1", "gpt-5-mini"]);
    assert_eq!(v["data"][0]["object"], "model");
    let a = send(&d, "GET", "/v1/models", &[("x-api-key", DEFAULT_KEY), ("anthropic-version", "2023-06-01")], b"");
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["data"][1]["type"], "model");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "gpt-4.1");
    assert_eq!(send(&d, "GET", "/v1/models", &[], b"").status, 401);
}

#[test]
fn authentication_is_checked_and_the_key_is_never_echoed() {
    let d = LlmDouble::start();
    let body = json!({"model": "gpt-4.1", "messages": messages()}).to_string();
    let none = send(&d, "POST", "/v1/chat/completions", &[], body.as_bytes());
    assert_eq!(none.status, 401);
    assert_eq!(err(&none)["type"], "invalid_request_error");
    let wrong_key = "sk-wrong-key-abcdefghijklmnopqrstuvwxyz-9876";
    let wrong =
        send(&d, "POST", "/v1/chat/completions", &[("authorization", &format!("Bearer {wrong_key}"))], body.as_bytes());
    assert_eq!(wrong.status, 401);
    assert_eq!(err(&wrong)["code"], "invalid_api_key");
    let text = String::from_utf8_lossy(&wrong.body);
    assert!(!text.contains(wrong_key) && text.contains("9876"), "masked, last 4 only: {text}");
    // Refused requests leave the script alone.
    d.push(Behaviour::content("queued"));
    assert_eq!(d.queued(), 1);
}

#[test]
fn required_fields_and_bad_json_are_400() {
    let d = LlmDouble::start();
    let no_model = chat(&d, "/v1/chat/completions", &json!({"messages": messages()}));
    assert_eq!((no_model.status, err(&no_model)["param"].clone()), (400, json!("model")));
    let no_messages = chat(&d, "/v1/chat/completions", &json!({"model": "gpt-4.1"}));
    assert_eq!(no_messages.status, 400);
    assert_eq!(err(&no_messages)["code"], "missing_required_parameter");
    let empty = chat(&d, "/v1/chat/completions", &json!({"model": "gpt-4.1", "messages": []}));
    assert_eq!(empty.status, 400);
    let auth = bearer();
    let garbage = send(&d, "POST", "/v1/chat/completions", &[("authorization", &auth)], b"{not json");
    assert_eq!(garbage.status, 400);
    assert!(err(&garbage)["message"].as_str().unwrap().contains("could not parse the JSON body"));
}

#[test]
fn unknown_model_is_404_model_not_found_and_keeps_the_queue() {
    let d = LlmDouble::start();
    d.push(Behaviour::content("for later"));
    let r = chat(&d, "/v1/chat/completions", &json!({"model": "gpt-9-ultra", "messages": messages()}));
    assert_eq!(r.status, 404);
    assert_eq!(err(&r)["code"], "model_not_found");
    assert!(err(&r)["message"].as_str().unwrap().contains("`gpt-9-ultra` does not exist"));
    assert_eq!(d.queued(), 1);
    let ok = chat(&d, "/v1/chat/completions", &json!({"model": "gpt-4.1", "messages": messages()}));
    assert_eq!(ok.json()["choices"][0]["message"]["content"], "for later");
    assert_eq!(d.queued(), 0);
}

#[test]
fn reasoning_models_refuse_max_tokens_and_temperature() {
    let d = LlmDouble::start();
    let mt =
        chat(&d, "/v1/chat/completions", &json!({"model": "gpt-5-mini", "messages": messages(), "max_tokens": 800}));
    assert_eq!(mt.status, 400);
    assert_eq!(err(&mt)["code"], "unsupported_parameter");
    assert_eq!(err(&mt)["param"], "max_tokens");
    assert!(err(&mt)["message"].as_str().unwrap().contains("Use 'max_completion_tokens' instead"));
    let t = chat(&d, "/v1/chat/completions", &json!({"model": "o4-mini", "messages": messages(), "temperature": 0.3}));
    assert_eq!(t.status, 400);
    assert_eq!(err(&t)["code"], "unsupported_value");
    assert_eq!(err(&t)["param"], "temperature");
    let default_t =
        chat(&d, "/v1/chat/completions", &json!({"model": "gpt-5", "messages": messages(), "temperature": 1}));
    assert_eq!(default_t.status, 200);
    let ok = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-5-mini", "messages": messages(), "max_completion_tokens": 800, "reasoning_effort": "low"}),
    );
    assert_eq!(ok.status, 200);
    let u = &ok.json()["usage"];
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], REASONING_TOKENS);
    assert_eq!(u["completion_tokens"], tokens(ADVICE_JSON) + REASONING_TOKENS);
    let bad_effort = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-5-mini", "messages": messages(), "reasoning_effort": "extreme"}),
    );
    assert_eq!((bad_effort.status, err(&bad_effort)["param"].clone()), (400, json!("reasoning_effort")));
    let effort_on_chat_model = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": messages(), "reasoning_effort": "low"}),
    );
    assert_eq!(err(&effort_on_chat_model)["code"], "unsupported_parameter");
    // An explicit flavour overrides the name rule.
    d.set_flavour("my-reasoner", Flavour::Reasoning);
    let custom =
        chat(&d, "/v1/chat/completions", &json!({"model": "my-reasoner", "messages": messages(), "max_tokens": 10}));
    assert_eq!(custom.status, 400);
}

fn advice_schema(strict_ok: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {"spread_state": {"type": "string", "enum": ["narrow", "normal", "wide"]}, "confidence": {"type": "number"}},
        "required": ["spread_state", "confidence"],
        "additionalProperties": false
    });
    if !strict_ok {
        schema.as_object_mut().unwrap().remove("additionalProperties");
    }
    json!({"type": "json_schema", "json_schema": {"name": "market_advice", "strict": true, "schema": schema}})
}

#[test]
fn response_format_by_flavour() {
    let d = LlmDouble::start();
    let ok = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": messages(), "response_format": advice_schema(true)}),
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let loose = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": messages(), "response_format": advice_schema(false)}),
    );
    assert_eq!(loose.status, 400);
    assert!(err(&loose)["message"].as_str().unwrap().contains("additionalProperties"));
    let unnamed = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": messages(), "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
    );
    assert_eq!(unnamed.status, 400);
    let no_json_word = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello"}], "response_format": {"type": "json_object"}}),
    );
    assert_eq!(no_json_word.status, 400);
    assert!(err(&no_json_word)["message"].as_str().unwrap().contains("must contain the word 'json'"));

    d.set_flavour("legacy-model", Flavour::Legacy);
    let legacy = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "legacy-model", "messages": messages(), "response_format": advice_schema(true)}),
    );
    assert_eq!(legacy.status, 400);
    assert_eq!(err(&legacy)["param"], "response_format");
    let legacy_obj = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "legacy-model", "messages": messages(), "response_format": {"type": "json_object"}}),
    );
    assert_eq!(legacy_obj.status, 200);
    d.set_flavour("plain-model", Flavour::Plain);
    let plain = chat(
        &d,
        "/v1/chat/completions",
        &json!({"model": "plain-model", "messages": messages(), "response_format": {"type": "json_object"}}),
    );
    assert_eq!((plain.status, err(&plain)["param"].clone()), (400, json!("response_format")));
    let plain_none = chat(&d, "/v1/chat/completions", &json!({"model": "plain-model", "messages": messages()}));
    assert_eq!(plain_none.status, 200);
}

fn one(d: &LlmDouble, b: Behaviour) -> Reply {
    d.push(b);
    chat(d, "/v1/chat/completions", &json!({"model": "gpt-4.1", "messages": messages(), "max_tokens": 100}))
}

#[test]
fn rate_limit_hints_in_every_documented_form() {
    let d = LlmDouble::start();
    let s = one(&d, Behaviour::fault(Fault::RateLimit(RetryAfter::Seconds(2))));
    assert_eq!(s.status, 429);
    assert_eq!(err(&s)["code"], "rate_limit_exceeded");
    assert_eq!(s.header("retry-after"), Some("2"));
    assert_eq!(s.header("retry-after-ms"), None);
    let ms = one(&d, Behaviour::fault(Fault::RateLimit(RetryAfter::Millis(1500))));
    assert_eq!((ms.header("retry-after-ms"), ms.header("retry-after")), (Some("1500"), None));
    let both = one(&d, Behaviour::fault(Fault::RateLimit(RetryAfter::Both { seconds: 2, millis: 1500 })));
    assert_eq!((both.header("retry-after"), both.header("retry-after-ms")), (Some("2"), Some("1500")));
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
    let date = one(&d, Behaviour::fault(Fault::RateLimit(RetryAfter::HttpDate(when))));
    assert_eq!(date.header("retry-after"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    let none = one(&d, Behaviour::fault(Fault::RateLimit(RetryAfter::None)));
    assert_eq!((none.status, none.header("retry-after")), (429, None));
}

#[test]
fn http_date_is_an_imf_fixdate() {
    assert_eq!(http_date(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599)), "Thu, 31 Dec 2026 23:59:59 GMT");
}

#[test]
fn quota_and_server_errors_are_as_documented() {
    let d = LlmDouble::start();
    let q = one(&d, Behaviour::fault(Fault::InsufficientQuota));
    assert_eq!(q.status, 429);
    assert_eq!(err(&q)["code"], "insufficient_quota");
    assert_eq!(err(&q)["type"], "insufficient_quota");
    assert!(err(&q)["message"].as_str().unwrap().contains("exceeded your current quota"));
    assert_eq!(q.header("retry-after"), None);
    assert_eq!(one(&d, Behaviour::fault(Fault::ServerError)).status, 500);
    assert_eq!(one(&d, Behaviour::fault(Fault::Unavailable)).status, 503);
    let html = one(&d, Behaviour::fault(Fault::HtmlBadGateway));
    assert_eq!(html.status, 502);
    assert!(html.header("content-type").unwrap().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&html.body).contains("<title>502 Bad Gateway</title>"));
    let nf = one(&d, Behaviour::fault(Fault::ModelNotFound));
    assert_eq!((nf.status, err(&nf)["code"].clone()), (404, json!("model_not_found")));
    let unauth = one(&d, Behaviour::fault(Fault::Unauthorized));
    assert_eq!(unauth.status, 401);
    assert!(d.requests().iter().all(|r| r.usage.is_none()), "errors report no usage");
}

#[test]
fn content_faults_huge_cut_off_no_usage_think() {
    let d = LlmDouble::start();
    let huge = one(&d, Behaviour::fault(Fault::HugeBody(5 << 20)));
    assert_eq!(huge.status, 200);
    assert!(huge.body.len() >= 5 << 20, "{} bytes", huge.body.len());
    assert!(huge.json()["choices"][0]["message"]["content"].as_str().unwrap().starts_with(ADVICE_JSON));

    let cut = one(&d, Behaviour::fault(Fault::CutOff));
    let v = cut.json();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content, &ADVICE_JSON[..ADVICE_JSON.len() / 2]);
    assert!(serde_json::from_str::<Value>(content).is_err(), "cut-off JSON does not parse");
    assert_eq!(v["usage"]["completion_tokens"], 100, "billed up to max_tokens");

    let nu = one(&d, Behaviour::fault(Fault::NoUsage));
    assert_eq!(nu.status, 200);
    assert!(nu.json().get("usage").is_none());
    assert!(d.requests().last().unwrap().usage.is_none());

    let think = one(&d, Behaviour::fault(Fault::ThinkAndObjects));
    let content = think.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(content.contains("<think>") && content.contains("</think>"));
    assert!(content.contains("{\"note\":\"not advice\",\"n\":1}"));
    assert!(content.contains(ADVICE_JSON));
    assert!(content.find("{\"note\"").unwrap() < content.find(ADVICE_JSON).unwrap());
}

#[test]
fn slow_answers_and_hang_ups() {
    let d = LlmDouble::start();
    let t0 = Instant::now();
    let slow = one(&d, Behaviour::ok().delay(Duration::from_millis(300)));
    assert_eq!(slow.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300), "the delay is a lower bound");
    d.push(Behaviour::fault(Fault::HangUp));
    let mut s = connect(&d);
    let body = json!({"model": "gpt-4.1", "messages": messages()}).to_string();
    let auth = bearer();
    write_req(&mut s, "POST", "/v1/chat/completions", &[("authorization", &auth)], body.as_bytes(), false);
    assert!(read_reply(&mut BufReader::new(s)).is_none(), "closed without an answer");
    assert_eq!(d.requests().last().unwrap().status, 0);
}

#[test]
fn queue_then_default_and_cached_tokens() {
    let d = LlmDouble::start();
    d.push_all([Behaviour::content("first"), Behaviour::content("second").cached(8)]);
    d.set_default(Behaviour::content("default"));
    let got: Vec<Value> = (0..3)
        .map(|_| chat(&d, "/v1/chat/completions", &json!({"model": "gpt-4.1", "messages": messages()})).json())
        .collect();
    assert_eq!(got[0]["choices"][0]["message"]["content"], "first");
    assert_eq!(got[1]["choices"][0]["message"]["content"], "second");
    assert_eq!(got[1]["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
    assert_eq!(got[1]["usage"]["prompt_tokens"], expected_prompt(), "prompt_tokens includes the cached ones");
    assert_eq!(got[2]["choices"][0]["message"]["content"], "default");
    let total = d.usage_total();
    assert_eq!(total.prompt, 3 * expected_prompt());
    assert_eq!(total.cached, 8);
    assert_eq!(total.completion, tokens("first") + tokens("second") + tokens("default"));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let d = LlmDouble::start();
    let s = connect(&d);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let body = json!({"model": "gpt-4.1", "messages": messages()}).to_string();
    let auth = bearer();
    for _ in 0..3 {
        write_req(&mut w, "POST", "/v1/chat/completions", &[("authorization", &auth)], body.as_bytes(), false);
        let reply = read_reply(&mut r).expect("kept alive");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
    let rec = d.requests();
    assert_eq!(rec.len(), 3);
    assert!(rec.iter().all(|x| x.conn == rec[0].conn));
}

fn anthropic(d: &LlmDouble, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(d, "POST", "/v1/messages", headers, body.to_string().as_bytes())
}

const A_HEADERS: &[(&str, &str)] =
    &[("x-api-key", DEFAULT_KEY), ("anthropic-version", "2023-06-01"), ("content-type", "application/json")];

fn a_body() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 800, "system": "Answer in JSON with spread_state.", "messages": [{"role": "user", "content": "BTCUSDT book: bid 60000 ask 60000.01"}]})
}

fn a_err(r: &Reply) -> (u16, String) {
    let v = r.json();
    assert_eq!(v["type"], "error", "Anthropic error envelope");
    (r.status, v["error"]["type"].as_str().unwrap().to_string())
}

#[test]
fn anthropic_messages_validation() {
    let d = LlmDouble::start();
    let bearer_only = anthropic(&d, &[("authorization", &bearer()), ("anthropic-version", "2023-06-01")], &a_body());
    assert_eq!(a_err(&bearer_only), (401, "authentication_error".into()));
    let wrong = anthropic(&d, &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")], &a_body());
    assert_eq!(a_err(&wrong), (401, "authentication_error".into()));
    let no_version = anthropic(&d, &[("x-api-key", DEFAULT_KEY)], &a_body());
    assert_eq!(a_err(&no_version), (400, "invalid_request_error".into()));
    let mut no_max = a_body();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = anthropic(&d, A_HEADERS, &no_max);
    assert_eq!(a_err(&r), (400, "invalid_request_error".into()));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("max_tokens"));
    let mut system_role = a_body();
    system_role["messages"] = json!([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]);
    let r = anthropic(&d, A_HEADERS, &system_role);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("top-level `system`"));
    let mut rf = a_body();
    rf["response_format"] = json!({"type": "json_object"});
    assert_eq!(a_err(&anthropic(&d, A_HEADERS, &rf)).0, 400);
    let mut hot = a_body();
    hot["temperature"] = json!(1.5);
    assert_eq!(a_err(&anthropic(&d, A_HEADERS, &hot)).0, 400);
    let mut unknown = a_body();
    unknown["model"] = json!("claude-9");
    assert_eq!(a_err(&anthropic(&d, A_HEADERS, &unknown)), (404, "not_found_error".into()));
    assert_eq!(d.requests().iter().filter(|r| r.status == 200).count(), 0);
}

#[test]
fn anthropic_messages_answer_and_faults() {
    let d = LlmDouble::start();
    d.push(Behaviour::ok().cached(5));
    let r = anthropic(&d, A_HEADERS, &a_body());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], ADVICE_JSON);
    assert_eq!(v["stop_reason"], "end_turn");
    // The system prompt counts as input; input_tokens excludes cache reads.
    assert_eq!(v["usage"]["input_tokens"], expected_prompt() - 5);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 5);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(v["usage"]["output_tokens"], tokens(ADVICE_JSON));

    d.push_all([
        Behaviour::fault(Fault::Overloaded),
        Behaviour::fault(Fault::RateLimit(RetryAfter::Seconds(3))),
        Behaviour::fault(Fault::InsufficientQuota),
        Behaviour::fault(Fault::ServerError),
        Behaviour::fault(Fault::CutOff),
    ]);
    assert_eq!(a_err(&anthropic(&d, A_HEADERS, &a_body())), (529, "overloaded_error".into()));
    let rl = anthropic(&d, A_HEADERS, &a_body());
    assert_eq!(a_err(&rl), (429, "rate_limit_error".into()));
    assert_eq!(rl.header("retry-after"), Some("3"));
    let credit = anthropic(&d, A_HEADERS, &a_body());
    assert_eq!(a_err(&credit), (400, "invalid_request_error".into()));
    assert!(credit.json()["error"]["message"].as_str().unwrap().contains("credit balance is too low"));
    assert_eq!(a_err(&anthropic(&d, A_HEADERS, &a_body())), (500, "api_error".into()));
    let cut = anthropic(&d, A_HEADERS, &a_body()).json();
    assert_eq!(cut["stop_reason"], "max_tokens");
    assert_eq!(cut["usage"]["output_tokens"], 800);
}

#[test]
fn oversized_and_chunked_requests_are_refused() {
    let d = LlmDouble::start();
    let mut s = connect(&d);
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut BufReader::new(s)).unwrap().status, 411);
    let mut s = connect(&d);
    s.write_all(
        format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", 64 << 20).as_bytes(),
    )
    .unwrap();
    assert_eq!(read_reply(&mut BufReader::new(s)).unwrap().status, 413);
}

#[test]
fn dropping_the_double_closes_its_port() {
    let d = LlmDouble::start();
    let addr = d.addr();
    drop(d);
    let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(500));
    assert!(refused.is_err(), "the listener is gone once the double is dropped");
}
