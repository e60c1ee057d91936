#![no_main]
//! Classification never panics, on any bytes, for any vendor.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_policy::fuzz_classify(data);
});
