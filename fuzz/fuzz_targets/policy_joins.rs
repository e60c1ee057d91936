#![no_main]
//! A read-only and a dangerous command of the hand corpus, joined any way
//! the vendor can or cannot join them (picked by the fuzzer, with bytes
//! after the second command), are never read-only.
use gatehouse_policy::joins::JoinCorpus;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn corpus() -> &'static JoinCorpus {
    static C: OnceLock<JoinCorpus> = OnceLock::new();
    C.get_or_init(|| JoinCorpus::parse(include_str!("../../policy/corpus/classify.tsv")))
}

fuzz_target!(|data: &[u8]| {
    gatehouse_policy::fuzz_joins(corpus(), data);
});
