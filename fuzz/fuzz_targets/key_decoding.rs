#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| storage_fuzz::key_decoding(data));
