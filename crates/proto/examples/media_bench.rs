//! Native throughput of the file format (docs/protocol.md §14.1):
//! streaming encryption and decryption of 64 MiB in 256 KiB chunks, with
//! the blob's SHA-256. Run by `cargo xtask bench media` (release).

use std::time::Instant;
use tether_proto::media::{self, CHUNK_SIZE, Decryptor, Encryptor};

fn main() {
    let size = 64 * 1024 * 1024;
    let plain: Vec<u8> = (0..size).map(|i| (i as u32).wrapping_mul(2654435761) as u8).collect();
    let key = [9u8; 32];
    let mut best_enc = f64::MAX;
    let mut best_dec = f64::MAX;
    let mut blob = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut enc = Encryptor::new(&key);
        let mut out = Vec::with_capacity(media::ciphertext_len(size as u64).unwrap() as usize);
        let chunks = plain.chunks(CHUNK_SIZE).collect::<Vec<_>>();
        for (i, c) in chunks.iter().enumerate() {
            // A file of exactly k·C bytes ends with an empty final chunk.
            out.extend(enc.encrypt_chunk(c, i + 1 == chunks.len() && c.len() < CHUNK_SIZE).unwrap());
        }
        if plain.len() % CHUNK_SIZE == 0 {
            out.extend(enc.encrypt_chunk(&[], true).unwrap());
        }
        let done = enc.finish().unwrap();
        best_enc = best_enc.min(t.elapsed().as_secs_f64());
        assert_eq!(done.ciphertext_len, out.len() as u64);
        blob = out;

        let t = Instant::now();
        let mut dec = Decryptor::new(&key, size as u64, Some(done.digest), media::DEFAULT_MAX_SIZE).unwrap();
        let mut n = 0;
        for piece in blob.chunks(64 * 1024) {
            n += dec.update(piece).unwrap().len();
        }
        n += dec.finish().unwrap().len();
        best_dec = best_dec.min(t.elapsed().as_secs_f64());
        assert_eq!(n, size);
    }
    let mb = size as f64 / 1e6;
    println!(
        "{{\"bytes\": {size}, \"encrypt_mb_s\": {:.0}, \"decrypt_mb_s\": {:.0}, \"encrypt_ms\": {:.1}, \"decrypt_ms\": {:.1}}}",
        mb / best_enc,
        mb / best_dec,
        best_enc * 1e3,
        best_dec * 1e3
    );
    let _ = blob;
}
