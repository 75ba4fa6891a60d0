//! [`RedisStore::check`]: what is wrong with the deployment under a store, one [`Check`] per
//! finding, each with its reason and its fix (the CLI's `redis-sessions doctor` prints them).
//!
//! Everything is read from `INFO` (never `CONFIG`, which managed Redis forbids) and from what
//! the backend knows of its topology ([`Backend::info`]); the permissions are tried on a
//! scratch key under the prefix that no listing takes for a session, deleted at the end.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::RedisStore;
use crate::backend::{Backend, ServerInfo, ServerReport, SetMode, Topology};
use crate::error::{BackendError, BackendErrorKind};

/// How bad a [`Check`]'s finding is. Ordered: `Ok < Warning < Failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CheckLevel {
    /// Nothing to do.
    Ok,
    /// The store works, but users may lose sessions (evictions, no persistence, no replica)
    /// or something could not be checked.
    Warning,
    /// Something the store relies on is broken or missing: requests will fail.
    Failure,
}

impl CheckLevel {
    /// `ok`, `warning` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckLevel::Ok => "ok",
            CheckLevel::Warning => "warning",
            CheckLevel::Failure => "failure",
        }
    }
}

impl fmt::Display for CheckLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of [`RedisStore::check`].
///
/// `name` says what was checked: `backend`, `servers`, `info`, `version`, `eviction`,
/// `persistence`, `role`, `replicas`, `slots`, `sentinels`, `tls` or `permissions` (more may
/// come). Texts never hold a session id, a session's contents or a password.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How bad it is.
    pub level: CheckLevel,
    /// The server it is about (`host:port`), when it is about one.
    pub server: Option<String>,
    /// What was found, and what it means for the sessions.
    pub reason: String,
    /// What to do about it; `None` when the level is [`CheckLevel::Ok`].
    pub fix: Option<String>,
}

impl Check {
    /// A finding of a check of your own (or of a tool's, such as a failed connect), without a
    /// server or a fix; add them with [`with_server`](Check::with_server) and
    /// [`with_fix`](Check::with_fix).
    pub fn new(name: &'static str, level: CheckLevel, reason: impl Into<String>) -> Check {
        Check {
            name,
            level,
            server: None,
            reason: reason.into(),
            fix: None,
        }
    }

    /// The same finding, about `server`.
    pub fn with_server(mut self, server: impl Into<String>) -> Check {
        self.server = Some(server.into());
        self
    }

    /// The same finding, with a fix.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    fn ok(name: &'static str, server: Option<&str>, reason: impl Into<String>) -> Check {
        Check {
            name,
            level: CheckLevel::Ok,
            server: server.map(str::to_owned),
            reason: reason.into(),
            fix: None,
        }
    }

    fn bad(
        name: &'static str,
        level: CheckLevel,
        server: Option<&str>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            level,
            server: server.map(str::to_owned),
            reason: reason.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every finding of one [`RedisStore::check`], in the order they were made.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The findings, one per check (and per server where a check is per server).
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The worst level found ([`CheckLevel::Ok`] when there is no finding).
    pub fn level(&self) -> CheckLevel {
        self.checks
            .iter()
            .map(|c| c.level)
            .max()
            .unwrap_or(CheckLevel::Ok)
    }

    /// The warnings and failures.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.level != CheckLevel::Ok)
    }
}

/// The scratch key's lifetime: it expires by itself if the final delete is refused.
const SCRATCH_TTL: Duration = Duration::from_secs(60);

impl<B: Backend> RedisStore<B> {
    /// Checks the deployment under this store and says what is wrong, with the fix: the
    /// server's version (`GETEX` needs 6.2, `UNLINK` 4.0), the `maxmemory-policy` (an
    /// `allkeys-*` policy evicts sessions: random logouts), persistence (no AOF and no RDB
    /// snapshot: sessions lost on restart), the role (a replica refuses writes), replicas,
    /// on a cluster every primary and all 16,384 slots, on Sentinel whether the sentinels agree
    /// on the primary, TLS, and the permissions the store needs (tried on a scratch key under
    /// the prefix, never on a session).
    ///
    /// It reads `INFO` only (no `CONFIG`), so it works on managed Redis; a user that may not
    /// run `INFO` gets a warning with the ACL line to add. `INFO` does not show RDB save
    /// points: persistence counts as on with AOF, or when an RDB snapshot has been taken since
    /// the server started, so a young server with save points but no snapshot yet is reported
    /// as a warning too.
    ///
    /// The check never fails as a call: a server that does not answer is a
    /// [`CheckLevel::Failure`] finding. It sends a handful of commands per server; run it at start-up
    /// or on demand, not per request.
    pub async fn check(&self) -> Diagnosis {
        let mut checks = Vec::new();
        match self.inner.backend.info(&[]).await {
            Ok(report) => self.check_report(&report, &mut checks),
            Err(e) => checks.push(Check::bad(
                "servers",
                CheckLevel::Failure,
                None,
                format!("cannot find the deployment's servers: {e}"),
                unreachable_fix(&e),
            )),
        }
        checks.push(self.check_permissions().await);
        Diagnosis { checks }
    }

    fn check_report(&self, report: &ServerReport, checks: &mut Vec<Check>) {
        match report.topology {
            Topology::Memory => {
                checks.push(Check::bad(
                    "backend",
                    CheckLevel::Warning,
                    None,
                    "in-process memory backend: sessions are lost when the process stops and \
                     are not shared with other processes",
                    "connect to Redis (a redis:// URL) outside development and tests",
                ));
                return;
            }
            Topology::Unknown => checks.push(Check::bad(
                "backend",
                CheckLevel::Warning,
                None,
                "the backend does not report its servers: version, eviction, persistence and \
                 topology not checked",
                "implement Backend::info for this backend",
            )),
            _ => {}
        }
        for server in &report.servers {
            self.check_server(report.topology, server, checks);
        }
        if let Some(served) = report.slots_served {
            let answered = report
                .servers
                .iter()
                .filter(|s| s.reply.as_ref().map_or_else(is_permission_denied, |_| true))
                .count();
            checks.push(slots(served, answered));
        }
        if report.topology == Topology::Sentinel {
            checks.push(sentinels(report));
        }
        if let Some(check) = tls(report) {
            checks.push(check);
        }
    }

    fn check_server(&self, topology: Topology, server: &ServerInfo, checks: &mut Vec<Check>) {
        let at = Some(server.address.as_str());
        let text = match &server.reply {
            Ok(text) => text,
            Err(e) if is_permission_denied(e) => {
                checks.push(Check::bad(
                    "info",
                    CheckLevel::Warning,
                    at,
                    format!(
                        "INFO is refused ({e}): version, eviction policy, persistence and \
                         replicas not checked"
                    ),
                    "allow INFO for the store's user: ACL SETUSER <user> +info",
                ));
                return;
            }
            Err(e) => {
                checks.push(Check::bad(
                    "info",
                    CheckLevel::Failure,
                    at,
                    format!("the server does not answer: {e}"),
                    match topology {
                        Topology::Cluster => {
                            "start the primary again, or fail its slots over to a replica \
                             (CLUSTER FAILOVER FORCE on the replica)"
                                .to_owned()
                        }
                        _ => unreachable_fix(e),
                    },
                ));
                return;
            }
        };
        let info = Info::parse(text);
        checks.push(self.version(&info, at));
        checks.push(eviction(&info, at));
        checks.push(persistence(&info, at));
        checks.push(role(topology, &info, at));
    }

    fn version(&self, info: &Info<'_>, at: Option<&str>) -> Check {
        let Some(text) = info.get("redis_version") else {
            return Check::bad(
                "version",
                CheckLevel::Warning,
                at,
                "INFO shows no redis_version: GETEX and UNLINK support not checked",
                "check that the server is Redis 6.2 or later (or compatible)",
            );
        };
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let upgrade = "upgrade to Redis 6.2 or later";
        if version < (4, 0) {
            return Check::bad(
                "version",
                CheckLevel::Failure,
                at,
                format!(
                    "Redis {text} has no UNLINK (4.0) nor GETEX (6.2): destroy, clear and the \
                     removal of expired sessions fail with \"unknown command\""
                ),
                upgrade,
            );
        }
        if version < (6, 2) {
            let (level, effect) = match self.inner.idle_timeout {
                Some(_) => (
                    CheckLevel::Failure,
                    "every load fails (idle_timeout is set)",
                ),
                None => (
                    CheckLevel::Warning,
                    "get_and_refresh and idle_timeout would fail",
                ),
            };
            return Check::bad(
                "version",
                level,
                at,
                format!(
                    "Redis {text} has no GETEX (6.2): reads that refresh the expiry fail with \
                     \"unknown command\"; {effect}"
                ),
                upgrade,
            );
        }
        Check::ok(
            "version",
            at,
            format!("Redis {text}: GETEX and UNLINK are available"),
        )
    }

    /// Sets, reads, refreshes, lists and deletes a scratch key under the prefix, with the
    /// commands the store uses; the first refused one is the finding.
    async fn check_permissions(&self) -> Check {
        let nonce = match crate::id::random_bytes::<9>() {
            Ok(bytes) => crate::id::base64url(&bytes),
            Err(e) => {
                return Check::bad(
                    "permissions",
                    CheckLevel::Failure,
                    None,
                    format!("not checked: {e}"),
                    "check the operating system's random number generator",
                )
            }
        };
        let key = self.inner.keyspace.scratch_key(&nonce);
        let result = self.try_commands(&key).await;
        // Best effort: the key expires by itself within SCRATCH_TTL if this is refused too.
        let cleaned = match &result {
            Err(("UNLINK", _)) => true,
            _ => self
                .inner
                .backend
                .delete(std::slice::from_ref(&key))
                .await
                .is_ok(),
        };
        let prefix = self.inner.keyspace.prefix();
        match result {
            Ok(()) => Check::ok(
                "permissions",
                None,
                format!(
                    "SET, GETEX, PEXPIRE, PTTL, MGET, SCAN and UNLINK work under the prefix \
                     {prefix:?} (tried on a scratch key, deleted)"
                ),
            ),
            Err((command, e)) => {
                let fix = if is_permission_denied(&e) {
                    format!(
                        "grant it to the store's user: ACL SETUSER <user> +{} ~{}*",
                        command.to_ascii_lowercase(),
                        crate::keyspace::escape_glob(prefix)
                    )
                } else if e.kind() == BackendErrorKind::ReadOnly {
                    "connect to the primary, not a replica".to_owned()
                } else {
                    unreachable_fix(&e)
                };
                let left = if cleaned {
                    ""
                } else {
                    "; the scratch key expires within a minute"
                };
                Check::bad(
                    "permissions",
                    CheckLevel::Failure,
                    None,
                    format!("{command} under the prefix {prefix:?} failed: {e}{left}"),
                    fix,
                )
            }
        }
    }

    async fn try_commands(&self, key: &str) -> Result<(), (&'static str, BackendError)> {
        let backend = &self.inner.backend;
        let keys = [key.to_owned()];
        backend
            .set(key, b"doctor", Some(SCRATCH_TTL), SetMode::IfAbsent)
            .await
            .map_err(|e| ("SET", e))?;
        backend
            .get_ex(key, SCRATCH_TTL)
            .await
            .map_err(|e| ("GETEX", e))?;
        backend
            .pexpire(key, SCRATCH_TTL)
            .await
            .map_err(|e| ("PEXPIRE", e))?;
        backend.pttl(key).await.map_err(|e| ("PTTL", e))?;
        backend.mget(&keys).await.map_err(|e| ("MGET", e))?;
        let pattern = crate::keyspace::escape_glob(key);
        backend
            .scan(crate::backend::ScanCursor::default(), &pattern, 10)
            .await
            .map_err(|e| ("SCAN", e))?;
        backend.delete(&keys).await.map_err(|e| ("UNLINK", e))?;
        Ok(())
    }
}

/// A refused command: `NOPERM` ([`BackendErrorKind::PermissionDenied`]), or another
/// authorization error ([`BackendErrorKind::Auth`]).
fn is_permission_denied(e: &BackendError) -> bool {
    matches!(
        e.kind(),
        BackendErrorKind::PermissionDenied | BackendErrorKind::Auth
    )
}

fn unreachable_fix(e: &BackendError) -> String {
    match e.kind() {
        BackendErrorKind::Tls => {
            "check the TLS settings: the CA (tls_ca_file), the client certificate, and \
             rediss:// against a TLS port"
                .to_owned()
        }
        BackendErrorKind::Auth => "check the user name and password in the URL".to_owned(),
        _ => "check that the server runs and that the URL's address and port are right".to_owned(),
    }
}

/// `INFO`'s `field:value` lines.
struct Info<'a> {
    fields: HashMap<&'a str, &'a str>,
}

impl<'a> Info<'a> {
    fn parse(text: &'a str) -> Info<'a> {
        let fields = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.trim_end().split_once(':'))
            .collect();
        Info { fields }
    }

    fn get(&self, field: &str) -> Option<&'a str> {
        self.fields.get(field).copied()
    }

    fn number(&self, field: &str) -> Option<i64> {
        self.get(field)?.parse().ok()
    }
}

fn eviction(info: &Info<'_>, at: Option<&str>) -> Check {
    let Some(policy) = info.get("maxmemory_policy") else {
        return Check::bad(
            "eviction",
            CheckLevel::Warning,
            at,
            "INFO shows no maxmemory_policy: eviction not checked",
            "make sure the policy is volatile-* or noeviction, not allkeys-*",
        );
    };
    let limit = match info.number("maxmemory") {
        Some(0) => "no memory limit".to_owned(),
        Some(bytes) => format!("maxmemory {bytes} bytes"),
        None => "maxmemory unknown".to_owned(),
    };
    if policy.starts_with("allkeys-") {
        return Check::bad(
            "eviction",
            CheckLevel::Warning,
            at,
            format!(
                "maxmemory-policy {policy} ({limit}): when memory is full Redis evicts any key, \
                 sessions included, which users see as random logouts"
            ),
            "set maxmemory-policy to volatile-lru (or noeviction) and give Redis enough \
             memory; on managed Redis, in the service's parameter group",
        );
    }
    let meaning = if policy == "noeviction" {
        "when memory is full, writes fail instead of evicting sessions"
    } else {
        "only keys with a TTL are evicted when memory is full"
    };
    Check::ok(
        "eviction",
        at,
        format!("maxmemory-policy {policy} ({limit}): {meaning}"),
    )
}

fn persistence(info: &Info<'_>, at: Option<&str>) -> Check {
    if info.get("aof_enabled") == Some("1") {
        return Check::ok("persistence", at, "AOF is on: sessions survive a restart");
    }
    // A full sync of a replica takes an RDB snapshot too: only snapshots beyond those show
    // save points (or BGSAVEs) at work.
    let saves = info.number("rdb_saves").unwrap_or(0);
    let for_replicas = info.number("sync_full").unwrap_or(0);
    if saves > for_replicas {
        return Check::ok(
            "persistence",
            at,
            format!(
                "RDB snapshots are taken ({saves} since start): sessions survive a restart \
                 (those written since the last snapshot are lost)"
            ),
        );
    }
    if info.get("aof_enabled").is_none() {
        return Check::bad(
            "persistence",
            CheckLevel::Warning,
            at,
            "INFO shows no persistence section: persistence not checked",
            "make sure AOF (appendonly yes) or RDB save points are on",
        );
    }
    let uptime = info
        .number("uptime_in_seconds")
        .map(|s| format!(" in {s} s of uptime"))
        .unwrap_or_default();
    Check::bad(
        "persistence",
        CheckLevel::Warning,
        at,
        format!(
            "AOF is off and no RDB snapshot was taken{uptime} (replica syncs aside): every \
             session is lost when the server restarts (INFO does not show save points: a young \
             server with save points looks the same)"
        ),
        "turn on appendonly yes (or RDB save points, e.g. save 3600 1 300 100); on managed \
         Redis, turn on persistence or backups in the service's settings",
    )
}

fn role(topology: Topology, info: &Info<'_>, at: Option<&str>) -> Check {
    let replicas = info.number("connected_slaves").unwrap_or(0);
    let cluster = info.get("cluster_enabled") == Some("1");
    match info.get("role") {
        Some("slave") => {
            let primary = match (info.get("master_host"), info.get("master_port")) {
                (Some(h), Some(p)) => format!(" of {h}:{p}"),
                _ => String::new(),
            };
            Check::bad(
                "role",
                CheckLevel::Failure,
                at,
                format!(
                    "this server is a read-only replica{primary}: every write fails with READONLY"
                ),
                "point the URL at the primary, or use redis+sentinel:// to follow it",
            )
        }
        _ if topology == Topology::Standalone && cluster => Check::bad(
            "role",
            CheckLevel::Failure,
            at,
            "this server is a cluster node, reached as one server: keys of slots it does not \
             serve fail with MOVED",
            "use a redis+cluster:// URL",
        ),
        _ if replicas == 0 && matches!(topology, Topology::Cluster | Topology::Sentinel) => {
            let effect = match topology {
                Topology::Cluster => {
                    "if it fails, its slots and their sessions are lost until it comes back"
                }
                _ => "the sentinels have nothing to fail over to",
            };
            Check::bad(
                "replicas",
                CheckLevel::Warning,
                at,
                format!("the primary has no connected replica: {effect}"),
                "add a replica (replicaof, or CLUSTER REPLICATE on a cluster)",
            )
        }
        _ => Check::ok(
            "replicas",
            at,
            format!("primary with {replicas} connected replica(s)"),
        ),
    }
}

/// `served` slots by the `answered` primaries (those whose `INFO` got a reply).
fn slots(served: u32, answered: usize) -> Check {
    const ALL: u32 = 16_384;
    if served >= ALL {
        return Check::ok(
            "slots",
            None,
            format!("all 16,384 hash slots are served by {answered} primaries that answered"),
        );
    }
    Check::bad(
        "slots",
        CheckLevel::Failure,
        None,
        format!(
            "{} of 16,384 hash slots have no primary that answers ({answered} did): sessions \
             in them cannot be read or written",
            ALL - served
        ),
        "start the failed primary again or let a replica take over (CLUSTER FAILOVER FORCE on \
         it); assign unassigned slots (CLUSTER ADDSLOTS)",
    )
}

fn sentinels(report: &ServerReport) -> Check {
    let primary = report.servers.first().map(|s| s.address.as_str());
    let mut agree = 0;
    let mut silent = Vec::new();
    for view in &report.sentinels {
        match &view.primary {
            Ok(Some(named)) if Some(named.as_str()) == primary => agree += 1,
            Ok(named) => {
                let named = named.as_deref().unwrap_or("no primary");
                return Check::bad(
                    "sentinels",
                    CheckLevel::Failure,
                    Some(&view.address),
                    format!(
                        "this sentinel names {named}, the store uses {}: the sentinels disagree \
                         on the primary",
                        primary.unwrap_or("none")
                    ),
                    "check the sentinels' configuration (same master name and quorum) and \
                     their connectivity; wait for a failover in progress to end",
                );
            }
            Err(e) => silent.push(format!("{} ({e})", view.address)),
        }
    }
    if !silent.is_empty() {
        return Check::bad(
            "sentinels",
            CheckLevel::Warning,
            None,
            format!(
                "{agree} sentinel(s) agree on the primary; no answer from {}: fewer sentinels \
                 may not reach the quorum for a failover",
                silent.join(", ")
            ),
            "start the missing sentinels or fix their addresses in the URL",
        );
    }
    Check::ok(
        "sentinels",
        None,
        format!(
            "all {agree} sentinels agree on the primary {}",
            primary.unwrap_or("?")
        ),
    )
}

fn tls(report: &ServerReport) -> Option<Check> {
    match report.tls? {
        true => Some(Check::ok("tls", None, "connections use TLS")),
        false if report.servers.iter().all(|s| is_loopback(&s.address)) => Some(Check::ok(
            "tls",
            None,
            "plain TCP, to this machine only (loopback)",
        )),
        false => Some(Check::bad(
            "tls",
            CheckLevel::Warning,
            None,
            "plain TCP over the network: session ids and contents can be read and changed on \
             the way",
            "use TLS: rediss:// (rediss+cluster:// on a cluster) with the server's CA",
        )),
    }
}

fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> Info<'_> {
        Info::parse(text)
    }

    #[test]
    fn eviction_policies() {
        let check = eviction(
            &info("maxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n"),
            None,
        );
        assert_eq!(check.level, CheckLevel::Warning);
        assert!(check.reason.contains("random logouts"), "{}", check.reason);
        for policy in ["volatile-lru", "volatile-ttl", "noeviction"] {
            let text = format!("maxmemory:100\r\nmaxmemory_policy:{policy}\r\n");
            assert_eq!(
                eviction(&info(&text), None).level,
                CheckLevel::Ok,
                "{policy}"
            );
        }
        assert_eq!(eviction(&info(""), None).level, CheckLevel::Warning);
    }

    #[test]
    fn persistence_from_info_alone() {
        let off =
            "# Persistence\r\nrdb_saves:0\r\nrdb_last_bgsave_time_sec:-1\r\naof_enabled:0\r\n";
        assert_eq!(persistence(&info(off), None).level, CheckLevel::Warning);
        let aof = off.replace("aof_enabled:0", "aof_enabled:1");
        assert_eq!(persistence(&info(&aof), None).level, CheckLevel::Ok);
        let rdb = off.replace("rdb_saves:0", "rdb_saves:3");
        assert_eq!(persistence(&info(&rdb), None).level, CheckLevel::Ok);
        let synced = format!("{rdb}sync_full:3\r\n");
        assert_eq!(
            persistence(&info(&synced), None).level,
            CheckLevel::Warning,
            "snapshots for replica syncs only"
        );
    }

    #[test]
    fn old_servers_lack_getex_and_unlink() {
        let store = RedisStore::new(crate::MemoryBackend::new());
        let at = |v: &str| store.version(&info(&format!("redis_version:{v}\r\n")), None);
        assert_eq!(at("7.0.15").level, CheckLevel::Ok);
        assert_eq!(at("6.2.0").level, CheckLevel::Ok);
        let old = at("6.0.9");
        assert_eq!(old.level, CheckLevel::Warning, "no idle_timeout: {old:?}");
        assert!(old.reason.contains("GETEX"), "{old:?}");
        let sliding = RedisStore::builder(crate::MemoryBackend::new())
            .idle_timeout(Duration::from_secs(60))
            .build();
        let old = sliding.version(&info("redis_version:6.0.9\r\n"), None);
        assert_eq!(old.level, CheckLevel::Failure, "{old:?}");
        let ancient = at("3.2.1");
        assert_eq!(ancient.level, CheckLevel::Failure);
        assert!(ancient.reason.contains("UNLINK"), "{ancient:?}");
    }

    #[test]
    fn roles() {
        let replica = "role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\n";
        let check = role(Topology::Standalone, &info(replica), None);
        assert_eq!(check.level, CheckLevel::Failure);
        assert!(check.reason.contains("10.0.0.1:6379"), "{}", check.reason);
        let node = "role:master\r\nconnected_slaves:0\r\ncluster_enabled:1\r\n";
        assert_eq!(
            role(Topology::Standalone, &info(node), None).level,
            CheckLevel::Failure
        );
        assert_eq!(
            role(Topology::Cluster, &info(node), None).level,
            CheckLevel::Warning
        );
        let lone = "role:master\r\nconnected_slaves:0\r\n";
        assert_eq!(
            role(Topology::Standalone, &info(lone), None).level,
            CheckLevel::Ok
        );
        assert_eq!(
            role(Topology::Sentinel, &info(lone), None).level,
            CheckLevel::Warning
        );
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1:6379"));
        assert!(is_loopback("[::1]:6379"));
        assert!(is_loopback("localhost:6379"));
        assert!(!is_loopback("10.0.0.1:6379"));
        assert!(!is_loopback("redis.example.com:6380"));
    }

    #[test]
    fn levels_are_ordered() {
        assert!(CheckLevel::Ok < CheckLevel::Warning && CheckLevel::Warning < CheckLevel::Failure);
        let diagnosis = Diagnosis {
            checks: vec![
                Check::ok("a", None, "fine"),
                Check::bad("b", CheckLevel::Warning, None, "meh", "fix"),
            ],
        };
        assert_eq!(diagnosis.level(), CheckLevel::Warning);
        assert_eq!(diagnosis.problems().count(), 1);
        assert_eq!(Diagnosis::default().level(), CheckLevel::Ok);
    }
}
