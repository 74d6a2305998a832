//! Just enough HTTP/1.1 for the control plane: one request per connection
//! (`Connection: close`), a bounded head and body, and JSON answers. The
//! server faces an operator's browser, curl and Prometheus on loopback, not
//! the internet, so it stays small enough to read in one sitting; every
//! limit here is what keeps a bad or slow client from holding it.

use std::io::{self, Read, Write};

use crate::feed::endpoint::percent_decode;

/// A request head may not exceed this.
pub const MAX_HEAD: usize = 16 * 1024;
/// A request body may not exceed this (a script replacement is the largest).
pub const MAX_BODY: usize = 256 * 1024;
const MAX_HEADERS: usize = 48;

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `?name=value` (percent-decoded), the first one.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// Why no request could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the connection closed before a request")]
    Closed,
    #[error("{0}")]
    TooLarge(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
}

/// Reads one request from `stream` (which has its read timeout set).
pub fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head_len = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Malformed("the connection closed inside the request head".into())
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => break len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(ReadError::TooLarge(format!("request head over {MAX_HEAD} bytes")))
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::TooLarge(format!("more than {MAX_HEADERS} headers")))
            }
            Err(e) => return Err(ReadError::Malformed(e.to_string())),
        }
    };
    if head_len > MAX_HEAD {
        return Err(ReadError::TooLarge(format!("request head over {MAX_HEAD} bytes")));
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head_len]).map_err(|e| ReadError::Malformed(e.to_string()))?;
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = Request {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: Vec::new(),
    };
    if out.header("transfer-encoding").is_some() {
        return Err(ReadError::Malformed("chunked bodies are not taken; send Content-Length".into()));
    }
    let len = match out.header("content-length") {
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| ReadError::Malformed(format!("Content-Length {v:?}")))?,
    };
    if len > MAX_BODY {
        return Err(ReadError::TooLarge(format!("body of {len} bytes; the most taken is {MAX_BODY}")));
    }
    let mut body = buf[head_len..].to_vec();
    body.truncate(len);
    while body.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ReadError::Malformed(format!("the body ended after {} of {len} bytes", body.len())));
        }
        let take = n.min(len - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    out.body = body;
    Ok(out)
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self { status, content_type: "application/json", headers: Vec::new(), body: value.to_string().into_bytes() }
    }

    /// `{"error": message, "key": key}`.
    pub fn error(status: u16, message: impl Into<String>, key: Option<&str>) -> Self {
        let mut v = serde_json::json!({ "error": message.into() });
        if let Some(k) = key {
            v["key"] = k.into();
        }
        Self::json(status, &v)
    }

    pub fn bytes(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        w.write_all(&self.body)?;
        w.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_a_body_in_pieces_is_read_whole() {
        let raw = b"POST /api/params?x=1&token=a%2Bb HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{\"a\": 1.5}\n";
        let r = read_request(&mut &raw[..]).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/params"));
        assert_eq!(r.query_param("token").as_deref(), Some("a+b"));
        assert_eq!(r.header("host"), Some("h"));
        assert_eq!(r.body, b"{\"a\": 1.5}\n");
    }

    #[test]
    fn oversized_and_malformed_requests_are_refused() {
        let big = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(matches!(read_request(&mut big.as_bytes()), Err(ReadError::TooLarge(_))));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(matches!(read_request(&mut long.as_bytes()), Err(ReadError::TooLarge(_))));
        assert!(matches!(read_request(&mut &b"GARBAGE\x01\r\n\r\n"[..]), Err(ReadError::Malformed(_))));
        let short = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}";
        assert!(matches!(read_request(&mut &short[..]), Err(ReadError::Malformed(_))));
        assert!(matches!(read_request(&mut &b""[..]), Err(ReadError::Closed)));
    }
}
