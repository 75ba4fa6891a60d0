//! Session ids, scan keys (plain and hashed keyspaces), glob escaping and key-ring lists.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redis_sessions::fuzzing::parse_key(data);
});
