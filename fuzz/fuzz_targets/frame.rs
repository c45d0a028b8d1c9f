//! Fuzzes `protocol::fuzzing::frame`: arbitrary bytes must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| protocol::fuzzing::frame(data));
