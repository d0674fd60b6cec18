//! libFuzzer target: see `partnerhub_fuzz_targets::page_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partnerhub_fuzz_targets::page_token::run(data));
