#![no_main]
//! Redaction never panics and never grows text beyond
//! `gatehouse_policy::max_redacted_len` (16 × input).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_policy::fuzz_redact(data);
});
