//! libFuzzer target: see `partnerhub_fuzz_targets::validators`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partnerhub_fuzz_targets::validators::run(data));
