//! libFuzzer's entry point for `tether_fuzz::link_uri` (the target's body and
//! docs are in fuzz/src/targets/link_uri.rs; `cargo xtask fuzz link_uri` runs it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::link_uri::run(data));
