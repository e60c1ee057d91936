#![no_main]
//! Frame decoding and request dispatch never panic, on any bytes: the input
//! is what a peer writes on a broker connection (length prefix checked, body
//! decoded, requests role-checked and dispatched against a real broker
//! service). See gatehouse_broker::fuzz.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_broker::fuzz::fuzz_frame(data);
});
