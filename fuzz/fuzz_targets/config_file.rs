#![no_main]
// Body and what it checks: modelwatch_fuzz_targets::config_file (crates/fuzz-targets).
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelwatch_fuzz_targets::config_file(data));
