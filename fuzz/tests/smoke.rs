//! The native smoke test of the fuzz targets, part of `cargo test
//! --workspace` (and so of `cargo xtask test`): each target runs every
//! committed seed in `fuzz/corpus/<target>/seed-*`, then a fixed set of
//! mutations of them (bit flips, interesting bytes, truncations,
//! insertions, deletions, duplicated ranges, splices between seeds; for the
//! record-based targets also whole records dropped, repeated, swapped,
//! re-typed or taken from another seed). The mutations come from a seeded
//! generator, so every run tries the same inputs. A panic in a target fails
//! its test. This is no fuzzing (no coverage feedback, a few hundred inputs
//! at most): `cargo xtask fuzz` is the real run. It checks that the seeds
//! still run to their end and that the targets survive near-misses of them.
//!
//! A failing input is written to `$CARGO_TARGET_TMPDIR/smoke/<target>/`
//! and the message says how to run it again: alone in this test
//! (`TETHER_FUZZ_SMOKE_ONLY=<index>`), or under libFuzzer (`cargo xtask
//! fuzz <target> --reproduce <file>`). `TETHER_FUZZ_SMOKE_SEED=<n>` picks
//! another generator seed and `TETHER_FUZZ_SMOKE_INPUTS=<n>` another number
//! of mutations, to try more inputs by hand.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tether_fuzz::{encode_records, records};

/// The targets this file tests: one `#[test]` each, checked against
/// fuzz/Cargo.toml's binaries and the corpus directories below.
const TARGETS: &[&str] = &["server_frame", "engine_message", "link_uri", "sealed_box"];

/// How a target reads its input, for the mutations that keep its shape.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Plain bytes.
    Bytes,
    /// `tether_fuzz::records` after a prefix of this many bytes.
    Records { prefix: usize },
}

/// SplitMix64: small, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A byte value that often sits on a boundary (lengths, tags, varints).
    fn interesting(&mut self) -> u8 {
        const VALUES: [u8; 8] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, 0x10];
        match self.below(3) {
            0 => self.next() as u8,
            _ => VALUES[self.below(VALUES.len())],
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}: not a number: {value}")))
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// The committed seeds of `target`, by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{target}: no seed-* files in {} (cargo xtask fuzz --write-seeds)", dir.display());
    seeds
}

/// One byte-level change to `data`; returns what it did.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) -> String {
    let len = data.len();
    if len == 0 {
        let n = 1 + rng.below(8);
        *data = rng.bytes(n);
        return format!("fill({n})");
    }
    match rng.below(8) {
        0 => {
            let (at, bit) = (rng.below(len), rng.below(8));
            data[at] ^= 1 << bit;
            format!("flip({at}.{bit})")
        }
        1 => {
            let at = rng.below(len);
            data[at] = rng.interesting();
            format!("byte({at}={:#04x})", data[at])
        }
        2 => {
            let at = rng.below(len);
            data.truncate(at);
            format!("truncate({at})")
        }
        3 => {
            let (at, n) = (rng.below(len + 1), 1 + rng.below(8));
            let bytes = rng.bytes(n);
            data.splice(at..at, bytes);
            format!("insert({at}+{n})")
        }
        4 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            data.drain(at..end);
            format!("delete({at}..{end})")
        }
        5 => {
            let from = rng.below(len);
            let end = (from + 1 + rng.below(32)).min(len);
            let at = rng.below(len + 1);
            let copy = data[from..end].to_vec();
            data.splice(at..at, copy);
            format!("repeat({from}..{end}@{at})")
        }
        6 => {
            // A varint-sized run of 0xff or 0x00: lengths and ids at their limits.
            let at = rng.below(len);
            let n = (1 + rng.below(8)).min(len - at);
            let b = if rng.below(2) == 0 { 0xff } else { 0x00 };
            data[at..at + n].fill(b);
            format!("run({at}+{n}={b:#04x})")
        }
        _ => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
            format!("splice({cut}|{from}..)")
        }
    }
}

/// One change to the records of `data` (after its prefix): one record's
/// bytes mutated, or records dropped, repeated, swapped, re-typed, or
/// taken from `other`. The record framing stays valid.
fn mutate_records(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], prefix: usize) -> String {
    let p = prefix.min(data.len());
    let mut recs: Vec<(u8, Vec<u8>)> = records(&data[p..]).into_iter().map(|(op, b)| (op, b.to_vec())).collect();
    let theirs: Vec<(u8, Vec<u8>)> =
        records(&other[prefix.min(other.len())..]).into_iter().map(|(op, b)| (op, b.to_vec())).collect();
    let what = if recs.is_empty() {
        let (op, n) = (rng.next() as u8, rng.below(16));
        recs.push((op, rng.bytes(n)));
        "new record".to_string()
    } else {
        let i = rng.below(recs.len());
        match rng.below(7) {
            0..=2 => {
                let o = theirs.get(rng.below(theirs.len().max(1))).map(|r| r.1.clone()).unwrap_or_default();
                let what = mutate_bytes(rng, &mut recs[i].1, &o);
                recs[i].1.truncate(usize::from(u16::MAX));
                format!("record {i}: {what}")
            }
            3 => {
                recs.remove(i);
                format!("drop record {i}")
            }
            4 => {
                let r = recs[i].clone();
                let at = rng.below(recs.len() + 1);
                recs.insert(at, r);
                format!("repeat record {i}@{at}")
            }
            5 => {
                let j = rng.below(recs.len());
                recs.swap(i, j);
                let op = rng.next() as u8;
                recs[i].0 = op;
                format!("swap records {i},{j}, record {i} op={op}")
            }
            _ => match theirs.is_empty() {
                true => {
                    recs[i].0 = recs[i].0.wrapping_add(1);
                    format!("record {i} op+1")
                }
                false => {
                    let j = rng.below(theirs.len());
                    let at = rng.below(recs.len() + 1);
                    recs.insert(at, theirs[j].clone());
                    format!("their record {j}@{at}")
                }
            },
        }
    };
    data.truncate(p);
    data.extend_from_slice(&encode_records(&recs));
    what
}

/// Runs `run` on every seed of `target`, then on `mutations` mutations of
/// them (at most ~5 s in a debug build). Fails on the first input that
/// panics, with what is needed to run it again.
fn smoke(target: &str, shape: Shape, mutations: u64, run: fn(&[u8])) {
    tether_fuzz::runs_inputs();
    let started = Instant::now();
    let seeds = seeds(target);
    let default_seed =
        target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let rng_seed = env_number("TETHER_FUZZ_SMOKE_SEED").unwrap_or(default_seed);
    let mutations = env_number("TETHER_FUZZ_SMOKE_INPUTS").unwrap_or(mutations);
    let only = env_number("TETHER_FUZZ_SMOKE_ONLY");
    let mut rng = Rng(rng_seed);
    let total = seeds.len() as u64 + mutations;
    let mut ran = 0;
    for index in 0..total {
        // Every input is generated, even when only one runs, so that an
        // index always names the same input.
        let (what, data) = match usize::try_from(index).ok().and_then(|i| seeds.get(i)) {
            Some((name, bytes)) => (name.clone(), bytes.clone()),
            None => {
                let base = rng.below(seeds.len());
                let (name, mut data) = seeds[base].clone();
                let mut steps = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    let other = &seeds[rng.below(seeds.len())].1;
                    steps.push(match shape {
                        Shape::Records { prefix } if rng.below(10) < 7 => {
                            mutate_records(&mut rng, &mut data, other, prefix)
                        }
                        _ => mutate_bytes(&mut rng, &mut data, other),
                    });
                }
                (format!("{name}: {}", steps.join(", ")), data)
            }
        };
        if only.is_some_and(|o| o != index) {
            continue;
        }
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smoke").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("input-{rng_seed:#x}-{index}"));
            std::fs::write(&file, &data).unwrap();
            panic!(
                "{target}: input {index} (generator seed {rng_seed:#x}; {what}) panicked (message above).\n\
                 input: {file}\n\
                 again, alone: TETHER_FUZZ_SMOKE_SEED={rng_seed:#x} TETHER_FUZZ_SMOKE_ONLY={index} \
                 cargo test -p tether-fuzz --test smoke {target}\n\
                 under libFuzzer: cargo xtask fuzz {target} --reproduce {file}",
                file = file.display()
            );
        }
        ran += 1;
    }
    assert!(ran > 0, "{target}: no input ran");
    eprintln!(
        "{target}: {ran} inputs ({} seeds, generator seed {rng_seed:#x}) in {:.2} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn link_uri() {
    smoke("link_uri", Shape::Bytes, 20000, tether_fuzz::link_uri::run);
}

#[test]
fn sealed_box() {
    smoke("sealed_box", Shape::Bytes, 3000, tether_fuzz::sealed_box::run);
}

#[test]
fn engine_message() {
    // The first byte picks the engine's state; records follow.
    smoke("engine_message", Shape::Records { prefix: 1 }, 300, tether_fuzz::engine_message::run);
}

#[test]
fn server_frame() {
    smoke("server_frame", Shape::Records { prefix: 0 }, 300, tether_fuzz::server_frame::run);
    assert_eq!(tether_fuzz::background_panics(), 0, "a server thread panicked (its message is above)");
}

/// Every fuzz binary in fuzz/Cargo.toml has its test above, a corpus and a
/// place in `cargo xtask fuzz`, so a new target cannot go without them.
#[test]
fn every_target_is_tested() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            let line = section.lines().find(|l| l.trim_start().starts_with("name"))?;
            line.split('"').nth(1)
        })
        .collect();
    bins.sort();
    let mut tested = TARGETS.to_vec();
    tested.sort();
    assert_eq!(bins, tested, "fuzz/Cargo.toml's [[bin]] targets and this file's TARGETS");
    let this = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smoke.rs")).unwrap();
    let xtask = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/src/fuzz.rs")).unwrap();
    let runs = xtask.lines().find(|l| l.starts_with("pub const TARGETS")).expect("xtask's TARGETS");
    for t in TARGETS {
        assert!(runs.contains(&format!("\"{t}\"")), "{t}: not in xtask/src/fuzz.rs's TARGETS");
        assert!(this.contains(&format!("fn {t}() {{")), "{t}: no #[test] fn {t}() in tests/smoke.rs");
        assert!(corpus_dir(t).is_dir(), "{t}: no corpus directory");
    }
}
