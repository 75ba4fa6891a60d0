//! A minimal HTTP/1.1 client with a one-cookie jar (the session cookie), enough for the suite.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub set_cookie: Option<String>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    /// `name=value` of the session cookie, as the server last set it.
    pub cookie: Option<String>,
    /// The `User-Agent` header to send, if any.
    pub agent: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            cookie: None,
            agent: None,
        }
    }

    /// A client that sends `User-Agent: agent`.
    pub fn with_agent(addr: SocketAddr, agent: &str) -> Client {
        Client {
            agent: Some(agent.to_owned()),
            ..Client::new(addr)
        }
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, json: Option<Value>) -> Response {
        self.send("POST", path, json.map(|v| v.to_string())).await
    }

    /// Sends one request on a new connection; keeps the session cookie the server sets.
    pub async fn send(&mut self, method: &str, path: &str, body: Option<String>) -> Response {
        let response = self.raw(method, path, body).await;
        if let Some(set) = &response.set_cookie {
            let pair = set.split(';').next().unwrap_or_default().trim().to_owned();
            let removed = set.to_ascii_lowercase().contains("max-age=0") || pair.ends_with('=');
            self.cookie = (!removed).then_some(pair);
        }
        response
    }

    async fn raw(&self, method: &str, path: &str, body: Option<String>) -> Response {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(cookie) = &self.cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(agent) = &self.agent {
            request.push_str(&format!("User-Agent: {agent}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.unwrap();
        let raw = read_response(&mut stream).await;
        parse(&String::from_utf8_lossy(&raw))
    }
}

/// Reads one response: up to its `Content-Length`, or the last chunk, or the end of the
/// stream. Not only to the end: chromedriver answers `Connection: close` and keeps the
/// connection open.
async fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body = &raw[end + 4..];
            match length {
                Some(n) if body.len() >= n => return raw,
                None if head.contains("chunked") && body.ends_with(b"0\r\n\r\n") => return raw,
                _ => {}
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return raw;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn parse(raw: &str) -> Response {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {raw}"));
    let mut set_cookie = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "set-cookie" => set_cookie = Some(value.trim().to_owned()),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        set_cookie,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
