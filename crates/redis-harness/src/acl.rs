//! ACL users for tests: the `ACL SETUSER` lines of a file with `{placeholders}`, applied to a
//! server, every node of a cluster, or a Sentinel group's data servers or sentinels.

use crate::{Connection, RedisCluster, RedisSentinelGroup, RedisServer, Reply};

/// The `ACL SETUSER <user> ...` lines of a text, one per non-empty line.
#[derive(Clone, Debug)]
pub struct AclLines {
    lines: Vec<String>,
}

impl AclLines {
    /// Reads every `ACL SETUSER` line of `text`.
    ///
    /// # Panics
    /// A non-empty line that is not an `ACL SETUSER` with a user name.
    pub fn parse(text: &str) -> AclLines {
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                assert!(
                    words.len() > 2 && words[0] == "ACL" && words[1] == "SETUSER",
                    "not an ACL SETUSER line: {l:?}"
                );
                l.to_owned()
            })
            .collect();
        AclLines { lines }
    }

    /// The line that sets up `user`.
    ///
    /// # Panics
    /// No line is for `user`.
    pub fn line(&self, user: &str) -> &str {
        self.lines
            .iter()
            .find(|l| l.split_whitespace().nth(2) == Some(user))
            .unwrap_or_else(|| panic!("no ACL SETUSER line for user {user:?}"))
    }
}

/// The arguments of `line` with each `{name}` of `values` replaced.
///
/// # Panics
/// A placeholder is left unfilled (a `{` remains).
pub fn setuser_args(line: &str, values: &[(&str, &str)]) -> Vec<String> {
    line.split_whitespace()
        .map(|word| {
            let mut word = word.to_owned();
            for (name, value) in values {
                word = word.replace(&format!("{{{name}}}"), value);
            }
            assert!(
                !word.contains('{'),
                "unfilled placeholder in {word:?} of {line:?}"
            );
            word
        })
        .collect()
}

impl Connection {
    /// Runs an `ACL SETUSER` line with its placeholders filled (see [`setuser_args`]).
    ///
    /// # Panics
    /// The server refuses the line, or a placeholder is unfilled.
    pub fn acl_setuser_line(&mut self, line: &str, values: &[(&str, &str)]) {
        let args = setuser_args(line, values);
        let reply = self
            .command(&args)
            .unwrap_or_else(|e| panic!("ACL SETUSER: {e}"));
        assert_eq!(reply, Reply::Status("OK".into()), "{args:?}");
    }
}

fn setuser_on(ports: impl IntoIterator<Item = u16>, line: &str, values: &[(&str, &str)]) {
    for port in ports {
        Connection::open(port)
            .unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
            .acl_setuser_line(line, values);
    }
}

impl RedisServer {
    /// Creates the user of an `ACL SETUSER` line (see [`Connection::acl_setuser_line`]).
    pub fn acl_setuser_line(&self, line: &str, values: &[(&str, &str)]) {
        setuser_on([self.port()], line, values);
    }
}

impl RedisCluster {
    /// Creates the user on every node, primaries and replicas (ACLs are per node).
    pub fn acl_setuser_line(&self, line: &str, values: &[(&str, &str)]) {
        setuser_on(self.ports(), line, values);
    }
}

impl RedisSentinelGroup {
    /// Creates the user on every data server: the primary and the replicas its `ROLE` lists.
    pub fn acl_setuser_line_on_servers(&self, line: &str, values: &[(&str, &str)]) {
        let primary = self.primary_port();
        let mut ports = vec![primary];
        if let Reply::Array(Some(role)) = self.cmd(primary, &["ROLE"]) {
            if let Some(Reply::Array(Some(replicas))) = role.get(2) {
                ports.extend(replicas.iter().filter_map(|r| match r {
                    Reply::Array(Some(fields)) => fields.get(1)?.text()?.parse::<u16>().ok(),
                    _ => None,
                }));
            }
        }
        assert!(ports.len() > 1, "the primary on {primary} lists no replica");
        setuser_on(ports, line, values);
    }

    /// Creates the user on every sentinel.
    pub fn acl_setuser_line_on_sentinels(&self, line: &str, values: &[(&str, &str)]) {
        setuser_on(self.sentinel_ports(), line, values);
    }
}

/// How often the server at `port` refused `command` (ACL or arity), from the
/// `rejected_calls` of `INFO commandstats`: a refused command is never counted in `calls`.
///
/// # Panics
/// The server cannot be reached.
pub fn rejected_calls(port: u16, command: &str) -> u64 {
    let info = Connection::open(port)
        .and_then(|mut c| c.command(&["INFO", "commandstats"]))
        .unwrap_or_else(|e| panic!("INFO commandstats on {port}: {e}"))
        .text()
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            (name == command).then_some(rest)
        })
        .flat_map(|rest| rest.split(','))
        .find_map(|field| field.strip_prefix("rejected_calls=")?.parse().ok())
        .unwrap_or(0)
}
