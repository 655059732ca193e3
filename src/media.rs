//! Files in the extension (docs/protocol.md §14): what the core tells the
//! worker to move, and the pieces of the format the worker's cipher needs.
//!
//! Who does what:
//!
//! - The engine (crates/client) owns the protocol: keys, upload records,
//!   tickets over the socket, the message once the blob is whole.
//! - This module turns the engine's file events into [`Transfer`] orders
//!   for the worker (with the blob's full URL on the server's origin), and
//!   exports the format's per-chunk values ([`media_nonce`], [`media_aad`],
//!   the chunk size) and an incremental SHA-256 ([`BlobHasher`]), so the
//!   format is written once, in tether-proto.
//! - The worker (background/transfer.js) reads the file in 256 KiB slices,
//!   runs AES-256-GCM through WebCrypto and moves the bytes with `fetch`.
//!
//! Why the AES calls are made from JavaScript and not from Rust through
//! web-sys' SubtleCrypto: the bytes live in JavaScript anyway (Blob slices
//! in, `fetch` bodies out), so a Rust caller would copy every chunk into
//! wasm memory and back out only to hand it to the same `crypto.subtle`
//! call; the web-sys bindings (SubtleCrypto, CryptoKey, AesGcmParams and
//! their futures) would also cost wasm bytes under the 400 KB budget. AES in
//! wasm itself is 20 times slower than WebCrypto (toolchain notes). What
//! must be exact — nonce, associated data, chunk size, lengths, the digest —
//! comes from here. The digest is computed here because WebCrypto has no
//! incremental hash: each ciphertext chunk is copied into wasm once.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tether_client::{FileRef, Ticket};
use tether_proto::media;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

/// Plaintext images up to this size are fetched as soon as they arrive;
/// larger files and documents wait for a click.
pub const AUTO_DOWNLOAD_MAX: u64 = 8 * 1024 * 1024;

/// What the worker is asked to do with a file's bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Tsify)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Transfer {
    /// Encrypt the file kept for message `id` and PATCH it from `offset`
    /// on; then `uploadFinished(id, digest)`.
    #[serde(rename_all = "camelCase")]
    Upload {
        id: String,
        /// The file's AES-256-GCM key, hex.
        key: String,
        /// The blob's full URL on the server's HTTP origin.
        url: String,
        /// Secret for its hour: never logged.
        token: String,
        /// Bytes of the blob the server holds already.
        offset: u64,
        /// The blob's whole length.
        length: u64,
        /// Plaintext bytes.
        size: u64,
    },
    /// GET the blob, check its digest, decrypt and keep the file; then
    /// `downloadFinished(id)`.
    #[serde(rename_all = "camelCase")]
    Download { id: String, url: String, token: String, length: u64, file: FileRef },
    /// The upload of `id` stopped (refused, or cancelled): drop the transfer.
    #[serde(rename_all = "camelCase")]
    UploadStopped { id: String, reason: String },
    /// The server refused the download of `id`.
    #[serde(rename_all = "camelCase")]
    DownloadFailed { id: String, reason: String },
}

impl Transfer {
    pub fn upload(server: &str, id: String, key: String, t: Ticket, size: u64) -> Self {
        Transfer::Upload {
            id,
            key,
            url: blob_url(server, &t.path),
            token: t.token,
            offset: t.offset,
            length: t.length,
            size,
        }
    }

    pub fn download(server: &str, id: String, file: FileRef, t: Ticket) -> Self {
        Transfer::Download { id, url: blob_url(server, &t.path), token: t.token, length: t.length, file }
    }
}

/// A blob's URL: the ticket's path on the server's origin (`http(s)://`).
pub fn blob_url(server: &str, path: &str) -> String {
    let s = crate::settings::clean_server(server);
    let s = match s.split_once("://") {
        Some(("wss", rest)) => format!("https://{rest}"),
        Some(("ws", rest)) => format!("http://{rest}"),
        _ => s,
    };
    format!("{}{path}", s.trim_end_matches('/'))
}

/// Whether a received file is fetched without a click: images up to 8 MB.
pub fn auto_download(file: &FileRef) -> bool {
    file.mime_type.starts_with("image/") && file.size <= AUTO_DOWNLOAD_MAX && !file.blob_id.is_empty()
}

/// Plaintext bytes per chunk (256 KiB).
#[wasm_bindgen(js_name = mediaChunkSize)]
pub fn media_chunk_size() -> u32 {
    media::CHUNK_SIZE as u32
}

/// The blob's length for a file of `size` bytes (0 above what fits).
#[wasm_bindgen(js_name = mediaCiphertextLen)]
pub fn media_ciphertext_len(size: f64) -> f64 {
    media::ciphertext_len(size as u64).unwrap_or(0) as f64
}

/// Chunk `index`'s 12-byte AES-GCM IV: 4 zero bytes ‖ index (u64, big-endian).
#[wasm_bindgen(js_name = mediaNonce)]
pub fn media_nonce(index: u32) -> Vec<u8> {
    media::nonce(index.into()).to_vec()
}

/// Chunk `index`'s 24 bytes of associated data, with the final flag.
#[wasm_bindgen(js_name = mediaAad)]
pub fn media_aad(index: u32, last: bool) -> Vec<u8> {
    media::aad(index.into(), last).to_vec()
}

/// SHA-256 of a blob, fed one ciphertext chunk at a time.
#[wasm_bindgen]
#[derive(Default)]
pub struct BlobHasher {
    inner: Sha256,
    len: u64,
}

#[wasm_bindgen]
impl BlobHasher {
    #[wasm_bindgen(constructor)]
    pub fn new() -> BlobHasher {
        BlobHasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.len as f64
    }

    /// The digest as 64 lowercase hex digits (the hasher is used up).
    pub fn finish(self) -> String {
        self.inner.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_are_on_the_servers_http_origin() {
        assert_eq!(blob_url("http://127.0.0.1:8080", "/v1/blobs/ab"), "http://127.0.0.1:8080/v1/blobs/ab");
        assert_eq!(blob_url("https://chat.example/", "/v1/blobs/ab"), "https://chat.example/v1/blobs/ab");
        assert_eq!(blob_url("wss://chat.example", "/v1/blobs/ab"), "https://chat.example/v1/blobs/ab");
    }

    #[test]
    fn hasher_matches_the_encryptors_digest() {
        let key = [7u8; 32];
        let plain = vec![42u8; media::CHUNK_SIZE + 1000];
        let (blob, done) = media::encrypt_all(&key, &plain);
        let mut h = BlobHasher::new();
        for piece in blob.chunks(media::CIPHER_CHUNK_SIZE) {
            h.update(piece);
        }
        let hex: String = done.digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h.finish(), hex);
    }

    #[test]
    fn nonce_and_aad_are_the_formats() {
        assert_eq!(media_nonce(1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let aad = media_aad(2, true);
        assert_eq!(&aad[..15], b"tether media v1");
        assert_eq!(aad[15..23], [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(aad[23], 1);
    }
}
