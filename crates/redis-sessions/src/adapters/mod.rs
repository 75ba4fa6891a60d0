//! Framework adapters: thin trait impls that translate types and map errors, nothing more.
//! Policy (TTL, idle timeout, create-if-absent, update-if-present, corrupt values) is the
//! store's.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(any(feature = "tower-sessions-014", feature = "tower-sessions-015"))]
pub mod tower;
