//! libFuzzer's entry point for `tether_fuzz::engine_message` (the target's body and
//! docs are in fuzz/src/targets/engine_message.rs; `cargo xtask fuzz engine_message` runs it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_fuzz::engine_message::run(data));
