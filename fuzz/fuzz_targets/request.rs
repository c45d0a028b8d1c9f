//! Fuzzes `protocol::fuzzing::request`: a logged-in client's message, decoded and checked as
//! the server checks it, must never panic and must survive re-encoding unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::request(data));
