//! libFuzzer's entry point for `tether_fuzz::sealed_box` (the target's body and
//! docs are in fuzz/src/targets/sealed_box.rs; `cargo xtask fuzz sealed_box` runs it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::sealed_box::run(data));
