//! A hung server: `SIGSTOP` keeps its port and its connections open but it answers nothing
//! (as a server stuck on a slow disk or swapped out), until `SIGCONT`.

use std::process::Command;

use crate::RedisServer;

/// Sends `signal` (`STOP`, `CONT`) to `pid` with the system's `kill` (no unsafe code here).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

impl RedisServer {
    /// Suspends the process (`SIGSTOP`): connections stay open and nothing is answered, so
    /// every command waits for the client's timeout. Undo with [`RedisServer::resume`]; a
    /// paused server is still killed on drop.
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn pause(&self) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("the server on port {} is not running", self.port()));
        signal(pid, "STOP");
    }

    /// Resumes a [paused](RedisServer::pause) server (`SIGCONT`); it then answers the commands
    /// that waited.
    ///
    /// # Panics
    /// When the server is not running or the signal cannot be sent.
    pub fn resume(&self) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("the server on port {} is not running", self.port()));
        signal(pid, "CONT");
    }
}
