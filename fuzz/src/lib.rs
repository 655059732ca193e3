//! The fuzz targets and the helpers they share with the seed generator.
//!
//! Each target is a module with `pub fn run(data: &[u8])`, which must not
//! panic on any input. Two harnesses drive them: the libFuzzer binaries in
//! `fuzz_targets/` (feature `libfuzzer`, built and run by `cargo xtask
//! fuzz`), and the native smoke test `tests/smoke.rs` (`cargo test -p
//! tether-fuzz`: every committed seed and a fixed set of mutations of them,
//! part of `cargo xtask test`).
//!
//! The stateful targets (`server_frame`, `engine_message`) read their input
//! as a sequence of records, each `op (1 byte) || len (u16, little endian)
//! || len bytes`; the last record may be short. `op` tells the target what
//! to do with the bytes (send them as a frame, patch in a request id, let
//! time pass, ...). The seed generator writes inputs in the same form.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod targets {
    pub mod engine_message;
    pub mod link_uri;
    pub mod sealed_box;
    pub mod server_frame;
}
pub use targets::{engine_message, link_uri, sealed_box, server_frame};

/// Splits a fuzz input into `(op, bytes)` records (see the module docs).
pub fn records(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((&op, rest)) = data.split_first() {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (0, &[][..]),
        };
        let len = len.min(rest.len());
        out.push((op, &rest[..len]));
        data = &rest[len..];
        // Bounded so one input cannot run for seconds.
        if out.len() == 64 {
            break;
        }
    }
    out
}

/// Encodes records in the form [`records`] reads.
pub fn encode_records(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, bytes) in records {
        let len = u16::try_from(bytes.len()).expect("a record fits 64 KiB");
        out.push(*op);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A seeded generator for the engine's randomness: the same input runs the
/// same way every time, so a crash reproduces.
pub struct Seeded(pub u64);

impl tether_client::Random for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

thread_local! {
    /// Whether this thread runs inputs (see [`runs_inputs`]).
    static RUNS_INPUTS: Cell<bool> = const { Cell::new(false) };
}
static BACKGROUND_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Marks the calling thread as one that runs inputs: a panic there reaches
/// the harness by itself, so [`background_panics`] leaves it out.
pub fn runs_inputs() {
    RUNS_INPUTS.with(|r| r.set(true));
}

/// Panics so far on threads that do not run inputs (the server's
/// connection tasks, its writer and SQLite threads), once
/// [`count_background_panics`] was called. Under libFuzzer any panic aborts
/// the process (libfuzzer-sys's panic hook); natively, a panic in a
/// connection task only ends that task, so a target checks this count.
pub fn background_panics() -> usize {
    BACKGROUND_PANICS.load(Ordering::SeqCst)
}

/// Installs (once) a panic hook that counts [`background_panics`], then
/// calls the hook that was there before (libFuzzer's abort, or the
/// default message).
pub fn count_background_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !RUNS_INPUTS.with(Cell::get) {
                BACKGROUND_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}
