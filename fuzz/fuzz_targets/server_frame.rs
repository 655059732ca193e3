//! libFuzzer's entry point for `tether_fuzz::server_frame` (the target's body and
//! docs are in fuzz/src/targets/server_frame.rs; `cargo xtask fuzz server_frame` runs it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::server_frame::run(data));
