#![no_main]
// Body and what it checks: modelwatch_fuzz_targets::prediction_rows (crates/fuzz-targets).
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelwatch_fuzz_targets::prediction_rows(data));
