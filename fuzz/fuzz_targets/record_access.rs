#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| storage_fuzz::record_access(data));
