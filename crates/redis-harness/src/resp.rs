//! A minimal blocking RESP2 client, enough for tests to inspect and poke a server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` bulk string, `None` for nil.
    Bulk(Option<Vec<u8>>),
    /// `*n` array, `None` for nil.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status, bulk or error), for assertions.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) | Reply::Error(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The reply as an integer.
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// A blocking connection with a 10 s read timeout.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `127.0.0.1:port`.
    ///
    /// # Errors
    /// The connection is refused.
    pub fn open(port: u16) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply.
    ///
    /// # Errors
    /// I/O failure or a reply this parser does not understand.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            let arg = arg.as_ref();
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out)?;
        self.read_reply()
    }

    /// The commands that clients are blocked on right now (`CLIENT LIST` entries with the `b`
    /// flag, e.g. writes held by `CLIENT PAUSE .. WRITE`), lower-case, in client-id order.
    /// Sentinels' `PUBLISH` of their hello messages, which a write pause also holds, is left
    /// out, so the list holds the test's own commands only.
    ///
    /// # Errors
    /// I/O failure or a reply that is not `CLIENT LIST`'s text.
    pub fn blocked_commands(&mut self) -> std::io::Result<Vec<String>> {
        let list = self.command(&["CLIENT", "LIST"])?;
        let Some(text) = list.text().filter(|_| matches!(list, Reply::Bulk(_))) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("CLIENT LIST: {list:?}"),
            ));
        };
        Ok(text
            .lines()
            .filter_map(|client| {
                let field = |name: &str| {
                    client
                        .split(' ')
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                };
                let blocked = field("flags")?.contains('b');
                let cmd = field("cmd")?;
                (blocked && cmd != "publish").then(|| cmd.to_owned())
            })
            .collect())
    }

    /// Waits until exactly `n` clients are blocked (see [`Connection::blocked_commands`]) and
    /// returns their commands. Polls every millisecond for up to `timeout`.
    ///
    /// # Errors
    /// I/O failure, or `TimedOut` (naming what was blocked) when the count was not reached.
    pub fn wait_for_blocked(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> std::io::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let blocked = self.blocked_commands()?;
            if blocked.len() == n {
                return Ok(blocked);
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("waited {timeout:?} for {n} blocked clients, saw {blocked:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches("\r\n");
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP reply");
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        let number = || rest.parse::<i64>().map_err(|_| bad());
        Ok(match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(number()?),
            "$" => match number()? {
                -1 => Reply::Bulk(None),
                n => {
                    let mut buf = vec![0; usize::try_from(n).map_err(|_| bad())? + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(buf.len() - 2);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match number()? {
                -1 => Reply::Array(None),
                n => Reply::Array(Some(
                    (0..n)
                        .map(|_| self.read_reply())
                        .collect::<Result<_, _>>()?,
                )),
            },
            _ => return Err(bad()),
        })
    }
}
