//! The lost-fields client: several keep-alive connections share one session and each sets its
//! own field in a loop; at the end the session is read back and every field is checked against
//! the last value its connection got acknowledged.
//!
//! ```text
//! lost --addr 127.0.0.1:PORT [--conns 8] [--writes 200] [--rounds 3]
//! ```
//!
//! A round: `GET /login` (one new session, its cookie kept), then `--conns` connections, all with
//! that cookie, connection `i` sending `POST /set/f{i}/1`, `/2`, ... `/{writes}` one after the
//! other (a `200` whose body is the value acknowledges it), then `GET /fields`. A field is
//! **missing** when the session lacks it although a write of it was acknowledged, **stale** when
//! it holds a value older than the last acknowledged one; both are lost updates. A write that
//! failed (non-200, broken connection) is counted as an error, never as acknowledged.
//!
//! Prints one line per round on stdout: `round,acked,errors,missing,stale,conns`.
//! A minimal HTTP/1.1 client over tokio's `TcpStream`: no HTTP client crate in the lock file.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    addr: SocketAddr,
    conns: u32,
    writes: u64,
    rounds: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let (mut conns, mut writes, mut rounds) = (8, 200, 3);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|e| bad(&e))?),
            "--conns" => conns = value.parse().map_err(|e| bad(&e))?,
            "--writes" => writes = value.parse().map_err(|e| bad(&e))?,
            "--rounds" => rounds = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(1..=64).contains(&conns) {
        return Err("--conns: 1..=64 (the fields f0..f63)".into());
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        conns,
        writes,
        rounds,
    })
}

struct Response {
    status: u16,
    set_cookie: Option<String>,
    body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection; requests one at a time (no pipelining).
struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Conn { addr, stream: None }
    }

    /// Sends one request without a body; on an I/O error the connection is dropped (the next
    /// request opens a new one) and the error returned.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> io::Result<Response> {
        let result = self.try_send(method, path, cookie).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> io::Result<Response> {
        if self.stream.is_none() {
            let tcp = TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            self.stream = Some(BufReader::new(tcp));
        }
        let stream = self.stream.as_mut().expect("connected above");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n",
            self.addr
        );
        if let Some(c) = cookie {
            head.push_str("Cookie: ");
            head.push_str(c);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.get_mut().write_all(head.as_bytes()).await?;

        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a reply",
            ));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("status line {line:?}")))?;
        let (mut length, mut chunked, mut close, mut set_cookie) = (None, false, false, None);
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed in the headers",
                ));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = Some(value.parse::<usize>().map_err(invalid)?),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "set-cookie" if set_cookie.is_none() => {
                    set_cookie = value.split(';').next().map(str::to_owned);
                }
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(invalid)?;
                let start = body.len();
                body.resize(start + size + 2, 0); // the chunk and its CRLF
                stream.read_exact(&mut body[start..]).await?;
                body.truncate(start + size);
                if size == 0 {
                    break; // no trailers are sent by these servers: the CRLF read was the end
                }
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            stream.read_exact(&mut body).await?;
        }
        if close {
            self.stream = None;
        }
        Ok(Response {
            status,
            set_cookie,
            body,
        })
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// One connection's loop: the last value acknowledged (0: none), the writes acknowledged and
/// the writes failed.
async fn writer(addr: SocketAddr, cookie: String, field: u32, writes: u64) -> (u64, u64, u64) {
    let mut conn = Conn::new(addr);
    let (mut last, mut acked, mut errors) = (0, 0, 0);
    for v in 1..=writes {
        match conn
            .send("POST", &format!("/set/f{field}/{v}"), Some(&cookie))
            .await
        {
            Ok(r) if r.status == 200 && r.body == v.to_string().as_bytes() => {
                last = v;
                acked += 1;
            }
            _ => errors += 1,
        }
    }
    (last, acked, errors)
}

struct Round {
    acked: u64,
    errors: u64,
    missing: u32,
    stale: u32,
}

async fn round(args: &Args) -> Result<Round, Error> {
    let mut conn = Conn::new(args.addr);
    let login = conn.send("GET", "/login", None).await?;
    let cookie = match (login.status, login.set_cookie) {
        (200, Some(c)) => c,
        (status, _) => return Err(format!("/login: status {status}, no session cookie").into()),
    };
    let tasks: Vec<_> = (0..args.conns)
        .map(|i| tokio::spawn(writer(args.addr, cookie.clone(), i, args.writes)))
        .collect();
    let mut last = Vec::new();
    let mut r = Round {
        acked: 0,
        errors: 0,
        missing: 0,
        stale: 0,
    };
    for t in tasks {
        let (last_acked, acked, errors) = t.await?;
        last.push(last_acked);
        r.acked += acked;
        r.errors += errors;
    }
    let reply = conn.send("GET", "/fields", Some(&cookie)).await?;
    if reply.status != 200 {
        return Err(format!("/fields: status {}", reply.status).into());
    }
    let stored: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&reply.body)?;
    for (i, &acked) in last.iter().enumerate() {
        if acked == 0 {
            continue; // nothing acknowledged: nothing to lose
        }
        match stored
            .get(&format!("f{i}"))
            .and_then(serde_json::Value::as_u64)
        {
            None => r.missing += 1,
            Some(v) if v < acked => r.stale += 1,
            Some(_) => {}
        }
    }
    Ok(r)
}

fn main() -> Result<(), Error> {
    let args = parse_args().map_err(|e| {
        format!("{e}\nusage: lost --addr HOST:PORT [--conns 8] [--writes 200] [--rounds 3]")
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("round,acked,errors,missing,stale,conns");
        for n in 1..=args.rounds {
            let r = round(&args).await?;
            println!(
                "{n},{},{},{},{},{}",
                r.acked, r.errors, r.missing, r.stale, args.conns
            );
        }
        Ok(())
    })
}
