//! libFuzzer target: see `partnerhub_fuzz_targets::email_rules`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partnerhub_fuzz_targets::email_rules::run(data));
