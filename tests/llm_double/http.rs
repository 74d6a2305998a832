//! Just enough HTTP/1.1 for an LLM gateway double: one request at a time off a
//! kept-alive connection, bodies framed by Content-Length (what the providers'
//! SDKs and mmbot's client send for a JSON POST), answers framed the same way.
//! RFC 9112 sections 6.2-6.3 (message body length) and 9.3 (persistence) are
//! the rules followed; chunked request bodies are refused with 411 because no
//! client we double sends them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// The largest request body the double accepts. OpenAI documents no exact
/// cap for Chat Completions, so this only bounds the test process' memory.
pub const MAX_REQUEST_BODY: usize = 4 << 20;
/// Header section cap (lines and bytes): a runaway client cannot grow us.
const MAX_HEADER_LINES: usize = 100;
const MAX_HEADER_LINE: usize = 16 << 10;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path as sent, query included.
    pub target: String,
    /// Header names lower-cased (HTTP names are case-insensitive), values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether the client asked to close after this exchange (RFC 9112 9.3).
    pub fn wants_close(&self) -> bool {
        self.header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or timed out) between requests: the normal end.
    Closed,
    /// A request the double refuses to parse; answer with this status and stop.
    Bad(u16, &'static str),
}

/// Read one request. `Closed` at a clean boundary.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, ReadError> {
    let mut line = String::new();
    let first = read_line(reader, &mut line)?;
    if first.is_empty() {
        return Err(ReadError::Closed);
    }
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(505, "only HTTP/1.x is served"));
    }
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut buf = String::new();
        let h = read_line(reader, &mut buf)?;
        if h.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADER_LINES {
            return Err(ReadError::Bad(431, "too many header lines"));
        }
        let Some((k, v)) = h.split_once(':') else {
            return Err(ReadError::Bad(400, "header line without a colon"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut req = Request { method, target, headers, body: Vec::new() };
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(411, "chunked request bodies are not served; send Content-Length"));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
    };
    if len > MAX_REQUEST_BODY {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).map_err(|_| ReadError::Closed)?;
    req.body = body;
    Ok(req)
}

/// One CRLF-terminated line without its terminator; "" at EOF before any byte.
fn read_line(reader: &mut BufReader<TcpStream>, buf: &mut String) -> Result<String, ReadError> {
    let mut limited = reader.take(MAX_HEADER_LINE as u64);
    match limited.read_line(buf) {
        Ok(0) => Ok(String::new()),
        Ok(_) if !buf.ends_with('\n') => Err(ReadError::Bad(431, "header line too long")),
        Ok(_) => {
            let trimmed = buf.trim_end_matches(['\r', '\n']).to_string();
            // A bare CRLF is the end of the header section, not EOF: mark it.
            if trimmed.is_empty() {
                Ok(String::new())
            } else {
                Ok(trimmed)
            }
        }
        Err(_) => Err(ReadError::Closed),
    }
}

/// One response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Write `resp` with Content-Length framing. Errors (peer gone) are returned
/// so the connection loop can stop; they are never a test failure by themselves.
pub fn write_response(stream: &mut TcpStream, resp: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n", resp.body.len()));
    head.push_str(if close { "connection: close\r\n" } else { "connection: keep-alive\r\n" });
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&resp.body)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        529 => "Site Overloaded",
        _ => "Status",
    }
}
