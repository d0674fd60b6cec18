//! libFuzzer target: see `partnerhub_fuzz_targets::csv_import`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partnerhub_fuzz_targets::csv_import::run(data));
