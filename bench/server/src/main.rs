//! The benchmark app on each Rust stack: `GET /login` creates a session (user_id, name, three
//! roles, counter 0), `GET /inc` increments the counter and returns it, `GET /read` returns it
//! unchanged (401 without a session). For the lost-fields bench (`src/bin/lost.rs`), `POST
//! /set/{name}/{value}` sets the session field `name` (`f0`..`f63`, else 400; 401 without a
//! session) to the number `value`, and `GET /fields` returns those fields as a JSON object (not
//! on the `-none` ceilings). Every stack is configured as its README shows.
//!
//! ```text
//! bench-server --stack STACK --listen 127.0.0.1:PORT --redis redis://127.0.0.1:PORT/DB
//! ```
//!
//! `axum-memory` and `actix-cookie` (the session layer without a store over the network) and
//! the `-none` ceilings never connect to Redis; they ignore `--redis`.

mod actix;
mod axum_app;

use std::time::Duration;

/// The session payload every stack writes on `/login`.
pub const USER_ID: u64 = 4242;
pub const NAME: &str = "Ada Lovelace";
pub const ROLES: [&str; 3] = ["admin", "editor", "viewer"];

/// `/set` accepts the field names `f0`..`f{FIELDS - 1}`; `/fields` returns those present.
pub const FIELDS: u32 = 64;

/// `f0`..`f63`, written without leading zeros.
pub fn field_name_ok(name: &str) -> bool {
    name.strip_prefix('f')
        .and_then(|digits| digits.parse::<u32>().ok().map(|n| (n, digits)))
        .is_some_and(|(n, digits)| n < FIELDS && digits == n.to_string())
}

/// The idle timeout of the "sliding" variants of our store.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

pub struct Args {
    pub stack: String,
    pub listen: std::net::SocketAddr,
    pub redis: String,
}

fn parse_args() -> Result<Args, String> {
    let mut stack = None;
    let mut listen = None;
    let mut redis = "redis://127.0.0.1:6379".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--stack" => stack = Some(value),
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--redis" => redis = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        stack: stack.ok_or("--stack is required")?,
        listen: listen.ok_or("--listen is required")?,
        redis,
    })
}

pub const STACKS: &[&str] = &[
    "axum-ours",
    "axum-ours-sliding",
    "axum-ours-indexed",
    "axum-ours-cached",
    "axum-ours-merged",
    "axum-tsrs",
    "axum-memory",
    "axum-none",
    "actix-ours",
    "actix-ours-sliding",
    "actix-ours-cached",
    "actix-ours-merged",
    "actix-redis",
    "actix-cookie",
    "actix-none",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        format!(
            "{e}\nusage: bench-server --stack STACK --listen ADDR [--redis URL]\nstacks: {}",
            STACKS.join(", ")
        )
    })?;
    if args.stack.starts_with("axum-") {
        axum_app::main(args)
    } else if args.stack.starts_with("actix-") {
        actix::main(args)
    } else {
        Err(format!(
            "unknown stack {}; stacks: {}",
            args.stack,
            STACKS.join(", ")
        )
        .into())
    }
}
