//! The stored-value decoder: envelope (compression, encryption) and both serializers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redis_sessions::fuzzing::decode(data);
});
