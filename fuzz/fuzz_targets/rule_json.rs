#![no_main]
// Body and what it checks: modelwatch_fuzz_targets::rule_json (crates/fuzz-targets).
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelwatch_fuzz_targets::rule_json(data));
