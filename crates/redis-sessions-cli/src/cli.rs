//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use redis_sessions::{DEFAULT_PREFIX, DEFAULT_SCAN_COUNT};

/// The exit codes, as `--help` lists them (the crate docs of `main.rs` have the same table).
const EXIT_CODES: &str = "\
Exit status:
  0  success (doctor: every check ok)
  1  error: Redis unreachable, bad id, missing session, refused clear, ...
  2  usage error (unknown command or option)
  3  finished, but some items failed (export, import)
  4  doctor: warnings, no failure
  5  doctor: at least one failure";

/// Administer sessions stored by redis-sessions (or connect-redis) in Redis.
#[derive(Debug, Parser)]
#[command(name = "redis-sessions", version, about, long_about = None, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub(crate) global: Global,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Redis URL, e.g. redis://user:password@host:6379/0 (rediss:// for TLS).
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub(crate) url: String,
    /// PEM file of the certificate authorities to trust for rediss:// (instead of the
    /// system's roots).
    #[arg(long, env = "REDIS_TLS_CA_FILE", global = true)]
    pub(crate) tls_ca_file: Option<PathBuf>,
    /// PEM file of a client certificate for mutual TLS (with --tls-key-file).
    #[arg(long, env = "REDIS_TLS_CERT_FILE", global = true)]
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(long, env = "REDIS_TLS_KEY_FILE", global = true)]
    pub(crate) tls_key_file: Option<PathBuf>,
    /// Do not check the server's TLS certificate (tests only: anyone on the path can read and
    /// change the traffic).
    #[arg(long, global = true)]
    pub(crate) tls_insecure: bool,
    /// Key prefix of the sessions.
    #[arg(long, default_value = DEFAULT_PREFIX, global = true)]
    pub(crate) prefix: String,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// SCAN COUNT hint and batch size of MGET/UNLINK.
    #[arg(long, default_value_t = DEFAULT_SCAN_COUNT, global = true)]
    pub(crate) scan_count: u32,
    /// The application stores sessions under the SHA-256 of their id: `ids` then lists the
    /// hashes, and `show --cookie` / `rm --cookie` hash the ids they are given.
    #[arg(long, env = "SESSION_HASH_IDS", global = true)]
    pub(crate) hash_ids: bool,
    /// File with the application's id hashing key (base64, 32 bytes), when it hashes ids
    /// with HMAC-SHA-256: `show --cookie` / `rm --cookie` then hash with it (implies
    /// --hash-ids). The `SESSION_HASH_KEY` environment variable holds the key itself; the file
    /// wins.
    #[arg(long, env = "SESSION_HASH_KEY_FILE", global = true)]
    pub(crate) hash_key_file: Option<PathBuf>,
    /// File with the application's encryption key ring (base64 32-byte keys separated by
    /// commas or newlines). The `SESSION_KEYS` environment variable holds the same list; the
    /// file wins. Needed to read encrypted sessions; `import` writes with the first key.
    #[arg(long, env = "SESSION_KEYS_FILE", global = true)]
    pub(crate) keys_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the number of sessions under the prefix.
    Count,
    /// Print every session id under the prefix, one per line.
    Ids,
    /// Print sessions (decoded, pretty JSON) with their remaining TTL.
    Show {
        /// Session ids as `ids` lists them (the hashes, with hashed ids).
        #[arg(required = true)]
        ids: Vec<String>,
        /// The ids are cookie values (what a user holds): hashed first with --hash-ids.
        #[arg(long)]
        cookie: bool,
    },
    /// Delete sessions; prints how many existed.
    Rm {
        /// Session ids as `ids` lists them (the hashes, with hashed ids).
        #[arg(required = true)]
        ids: Vec<String>,
        /// The ids are cookie values (what a user holds): hashed first with --hash-ids.
        #[arg(long)]
        cookie: bool,
    },
    /// Delete every session under the prefix (asks first; --yes when stdin is not a terminal).
    Clear {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write every session as JSON Lines: {"id", "ttl_ms", "value"}.
    Export,
    /// Read sessions in the export format and write them with their remaining TTL.
    Import {
        /// File to read; standard input when absent or "-".
        file: Option<PathBuf>,
        /// Overwrite sessions that already exist (default: skip them).
        #[arg(long)]
        overwrite: bool,
    },
    /// Check the deployment and print one line per check (ok, warning or failure, the reason
    /// and the fix): version (GETEX, UNLINK), maxmemory-policy, persistence, role and
    /// replicas, cluster slots, sentinels, TLS, and the store's permissions (tried on a
    /// scratch key under the prefix). Reads INFO only, never CONFIG. Exit status: 0 all ok,
    /// 4 warnings, 5 failures (1 and 2 keep their meaning: error, usage).
    Doctor,
    /// Print the session count, value sizes and the TTL distribution.
    Stats {
        /// How many sessions to measure with MEMORY USAGE.
        #[arg(long, default_value_t = 1000)]
        sample: usize,
    },
    /// One user's sessions, through the application's per-user index (its `index_by`).
    User {
        /// The session field that names the user (the application's `index_by`).
        #[arg(long, env = "SESSION_INDEX_BY", default_value = "user", global = true)]
        index_by: String,
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// The `user` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// List the user's sessions, most recently used first: listed id, created, last used,
    /// TTL and user agent.
    Ls {
        /// The user, as the session field holds it.
        user: String,
    },
    /// Print how many sessions the user has.
    Count {
        /// The user, as the session field holds it.
        user: String,
    },
    /// End the user's sessions; prints how many ended (and with --wait, how many replicas
    /// acknowledged the deletes).
    Revoke {
        /// The user, as the session field holds it.
        user: String,
        /// Keep this session (its id as `user ls` lists it).
        #[arg(long)]
        except: Option<String>,
        /// Then wait for this many replicas to acknowledge the deletes (Redis `WAIT`), so a
        /// failover cannot bring the sessions back; prints how many did.
        #[arg(long, value_name = "N")]
        wait: Option<u32>,
        /// The longest --wait waits, in milliseconds (on one server and on Cluster at most
        /// 4/5 of the connection's 500 ms response timeout).
        #[arg(long, value_name = "MS", default_value_t = 300, requires = "wait")]
        wait_timeout: u64,
    },
}
