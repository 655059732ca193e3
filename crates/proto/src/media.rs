//! Media: the encrypted file format for attachments (issue 11), and the
//! attachment descriptor that travels inside the end-to-end message.
//!
//! A file is encrypted on the sending device with a fresh AES-256-GCM key in
//! chunks of [`CHUNK_SIZE`] plaintext bytes (the STREAM construction of
//! Hoang, Reyhanitabar, Rogaway and Vizár, with the final flag in the
//! associated data). The server stores the result as an opaque blob.
//!
//! ```text
//! ciphertext = chunk 0 ‖ chunk 1 ‖ … ‖ chunk n−1      (no header, no framing)
//! chunk i    = AES-256-GCM(key, nonce(i), aad(i, i = n−1), plaintext[i·C .. min((i+1)·C, size)])
//!              (ciphertext ‖ 16-byte tag)
//! nonce(i)   = 00 00 00 00 ‖ u64 big-endian i                              (12 bytes)
//! aad(i, f)  = "tether media v1" ‖ u64 big-endian i ‖ u8 (1 if final else 0) (24 bytes)
//! n          = size / C + 1     (C = CHUNK_SIZE; the final chunk may be empty)
//! ```
//!
//! Every chunk but the last holds exactly `C` plaintext bytes; the last holds
//! `size mod C` (0 to C−1) bytes, so an empty file is one empty final chunk
//! (16 bytes: just the tag) and a file of exactly `k·C` bytes ends with an
//! empty final chunk. The ciphertext length is therefore a function of the
//! plaintext size alone ([`ciphertext_len`]), which lets a server enforce
//! sizes and resume uploads at exact offsets.
//!
//! Why this is enough:
//! - **Nonces.** The key is fresh for every file and never used for anything
//!   else, so a nonce only has to be unique within one file: the chunk index
//!   is. A random per-file nonce prefix would add nothing (and one more field
//!   to carry). The index-derived nonce also binds each chunk to its position.
//! - **Reordering** a chunk changes its nonce and associated data: its tag
//!   fails.
//! - **Truncation** at a chunk boundary leaves a last chunk that was
//!   encrypted as not final: its tag fails under the final flag. Dropping a
//!   middle chunk shifts the later ones to the wrong index. Appending after
//!   the final chunk is caught because the length is known from the size.
//! - **WebCrypto**: plain AES-GCM with a 96-bit IV, a 128-bit tag and
//!   `additionalData` = the 24 bytes of `aad(i, f)`; nothing else is needed.
//!
//! Randomness (the key) is passed in by the caller; nothing here touches the
//! OS. Never encrypt two different files (or two versions of one) under the
//! same key: forward a file by reusing its blob and descriptor instead.

use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use aes_gcm::{Aes256Gcm, Key};
use prost::Message;
use sha2::{Digest, Sha256};

/// Plaintext bytes per chunk: 256 KiB.
///
/// - Memory: a streaming encryptor or decryptor (a service worker, a phone)
///   holds about one ciphertext chunk and one plaintext chunk, ~512 KiB,
///   however large the file.
/// - Overhead: 16 bytes of tag per chunk, 0.006 %; a 64 MiB file is 256
///   chunks, so 256 WebCrypto calls (each a promise and a copy), not 1024 as
///   with 64 KiB chunks.
/// - Resumable uploads and downloads restart at a chunk boundary, so at most
///   256 KiB is sent twice after a dropped connection (1 MiB chunks would
///   make that 4× worse on slow mobile links, and 2 MiB resident).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// The AES-GCM tag at the end of every chunk.
pub const TAG_LEN: usize = 16;
/// A full chunk's ciphertext: [`CHUNK_SIZE`] + [`TAG_LEN`].
pub const CIPHER_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_LEN;
/// The AES-256 key length.
pub const KEY_LEN: usize = 32;
/// Start of every chunk's associated data.
pub const AAD_LABEL: &[u8] = b"tether media v1";

/// Default largest file (plaintext bytes) an attachment may describe: 64 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;
/// Largest thumbnail (JPEG or PNG bytes) in a descriptor: 32 KiB.
pub const MAX_THUMBNAIL: usize = 32 * 1024;
/// Most waveform samples (one byte each, 0–255 amplitude) of a voice note.
pub const MAX_WAVEFORM: usize = 256;
/// Longest blob id, in bytes.
pub const MAX_BLOB_ID: usize = 64;
/// Longest MIME type, in bytes.
pub const MAX_MIME_TYPE: usize = 127;
/// Longest file name, in bytes (UTF-8), as most file systems allow.
pub const MAX_FILE_NAME: usize = 255;

/// What can go wrong with an encrypted file or its descriptor. Messages never
/// contain key material or file content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The ciphertext ended early: fewer bytes than the size announces, or
    /// its last chunk was not encrypted as the final one (cut at a chunk
    /// boundary). Also: an encryptor finished without a final chunk.
    #[error("the encrypted file is truncated")]
    Truncated,
    /// A chunk did not decrypt: wrong key, or the data was altered,
    /// reordered or has a chunk missing.
    #[error("encrypted file chunk {chunk} did not decrypt: wrong key, or the data was altered")]
    Corrupt {
        /// The index of the first chunk that failed.
        chunk: u64,
    },
    /// The file is larger than allowed (or than this format can express).
    #[error("the file is too large ({size} bytes, at most {max})")]
    TooLarge {
        /// Its size in plaintext bytes.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Bytes after the end of the final chunk, or a chunk after the final one.
    #[error("data after the end of the encrypted file")]
    TrailingData,
    /// A chunk other than the last was not exactly [`CHUNK_SIZE`] bytes, or
    /// the last was larger.
    #[error("a plaintext chunk of {0} bytes: every chunk but the last must be exactly {CHUNK_SIZE} bytes")]
    ChunkSize(usize),
    /// The ciphertext does not have the SHA-256 the descriptor announces.
    #[error("the encrypted file does not match its digest")]
    DigestMismatch,
    /// An attachment descriptor breaks a rule of [`Attachment::check`].
    #[error("invalid attachment: {0}")]
    InvalidAttachment(&'static str),
}

/// The 96-bit nonce of chunk `index`: 4 zero bytes ‖ `index` as u64 big-endian.
pub fn nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

/// The associated data of chunk `index`: `"tether media v1"` ‖ `index` as
/// u64 big-endian ‖ 1 if it is the final chunk, else 0 (24 bytes).
pub fn aad(index: u64, last: bool) -> [u8; 24] {
    let mut a = [0u8; 24];
    a[..15].copy_from_slice(AAD_LABEL);
    a[15..23].copy_from_slice(&index.to_be_bytes());
    a[23] = u8::from(last);
    a
}

/// The number of chunks of a file of `size` plaintext bytes.
pub fn chunk_count(size: u64) -> u64 {
    size / CHUNK_SIZE as u64 + 1
}

/// The ciphertext length of a file of `size` plaintext bytes: `size` plus
/// 16 bytes per chunk. `None` if it does not fit a u64.
pub fn ciphertext_len(size: u64) -> Option<u64> {
    size.checked_add(chunk_count(size).checked_mul(TAG_LEN as u64)?)
}

/// The plaintext size of a ciphertext of `len` bytes; `None` if no file
/// encrypts to that length (the inverse of [`ciphertext_len`]).
pub fn plaintext_len(len: u64) -> Option<u64> {
    let full = len / CIPHER_CHUNK_SIZE as u64;
    let rest = len % CIPHER_CHUNK_SIZE as u64;
    if rest < TAG_LEN as u64 {
        return None;
    }
    Some(full * CHUNK_SIZE as u64 + rest - TAG_LEN as u64)
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

fn seal_chunk(cipher: &Aes256Gcm, index: u64, last: bool, plain: &[u8]) -> Vec<u8> {
    cipher
        .encrypt(&Nonce::<Aes256Gcm>::from(nonce(index)), Payload { msg: plain, aad: &aad(index, last) })
        .expect("a chunk is far below AES-GCM's plaintext limit")
}

fn open_chunk(cipher: &Aes256Gcm, index: u64, last: bool, chunk: &[u8]) -> Option<Vec<u8>> {
    cipher.decrypt(&Nonce::<Aes256Gcm>::from(nonce(index)), Payload { msg: chunk, aad: &aad(index, last) }).ok()
}

/// Encrypts a file chunk by chunk, hashing the ciphertext as it goes.
pub struct Encryptor {
    cipher: Aes256Gcm,
    index: u64,
    size: u64,
    done: bool,
    hash: Sha256,
}

/// What an [`Encryptor`] knows once the final chunk is out: the descriptor's
/// `size` and `digest`, and the blob's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted {
    /// Plaintext bytes.
    pub size: u64,
    /// Ciphertext bytes (= [`ciphertext_len`] of `size`).
    pub ciphertext_len: u64,
    /// SHA-256 of the whole ciphertext.
    pub digest: [u8; 32],
}

impl Encryptor {
    /// A new file under `key`: 32 fresh random bytes, used for this file only.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: cipher(key), index: 0, size: 0, done: false, hash: Sha256::new() }
    }

    /// Encrypts the next chunk: exactly [`CHUNK_SIZE`] bytes unless `last`,
    /// at most `CHUNK_SIZE − 1` if `last` (a file of exactly `k·CHUNK_SIZE`
    /// bytes ends with an empty last chunk). Returns the chunk's ciphertext,
    /// to be appended to the blob.
    pub fn encrypt_chunk(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>, MediaError> {
        if self.done {
            return Err(MediaError::TrailingData);
        }
        if (last && plain.len() >= CHUNK_SIZE) || (!last && plain.len() != CHUNK_SIZE) {
            return Err(MediaError::ChunkSize(plain.len()));
        }
        let out = seal_chunk(&self.cipher, self.index, last, plain);
        self.hash.update(&out);
        self.index += 1;
        self.size += plain.len() as u64;
        self.done = last;
        Ok(out)
    }

    /// After the last chunk: the size and digest for the descriptor. Fails
    /// with [`MediaError::Truncated`] if no chunk was marked `last`.
    pub fn finish(self) -> Result<Encrypted, MediaError> {
        if !self.done {
            return Err(MediaError::Truncated);
        }
        Ok(Encrypted {
            size: self.size,
            ciphertext_len: ciphertext_len(self.size).expect("it was encrypted"),
            digest: self.hash.finalize().into(),
        })
    }
}

/// Decrypts a file from its ciphertext in pieces of any length, holding at
/// most one chunk, and checks it against the descriptor's size and digest.
pub struct Decryptor {
    cipher: Aes256Gcm,
    /// Chunks in the file, and the next one to decrypt.
    chunks: u64,
    index: u64,
    /// Ciphertext bytes still expected.
    remaining: u64,
    buffer: Vec<u8>,
    hash: Sha256,
    digest: Option<[u8; 32]>,
}

impl Decryptor {
    /// A decryptor for a file of `size` plaintext bytes under `key`. With a
    /// `digest`, [`finish`](Self::finish) also checks the SHA-256 of the
    /// ciphertext. Fails with [`MediaError::TooLarge`] above `max_size`.
    pub fn new(key: &[u8; KEY_LEN], size: u64, digest: Option<[u8; 32]>, max_size: u64) -> Result<Self, MediaError> {
        let len = ciphertext_len(size).filter(|_| size <= max_size);
        let Some(len) = len else {
            return Err(MediaError::TooLarge { size, max: max_size });
        };
        Ok(Self {
            cipher: cipher(key),
            chunks: chunk_count(size),
            index: 0,
            remaining: len,
            buffer: Vec::with_capacity(CIPHER_CHUNK_SIZE.min(len as usize)),
            hash: Sha256::new(),
            digest,
        })
    }

    /// Feeds the next ciphertext bytes; returns the plaintext of every
    /// non-final chunk they complete (the final chunk comes from
    /// [`finish`](Self::finish)). Errors are final: drop the decryptor
    /// and whatever it returned.
    pub fn update(&mut self, mut data: &[u8]) -> Result<Vec<u8>, MediaError> {
        if data.len() as u64 > self.remaining {
            return Err(MediaError::TrailingData);
        }
        self.remaining -= data.len() as u64;
        self.hash.update(data);
        let mut out = Vec::new();
        while self.index + 1 < self.chunks {
            let take = (CIPHER_CHUNK_SIZE - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() < CIPHER_CHUNK_SIZE {
                return Ok(out);
            }
            let plain = open_chunk(&self.cipher, self.index, false, &self.buffer)
                .ok_or(MediaError::Corrupt { chunk: self.index })?;
            out.extend_from_slice(&plain);
            self.buffer.clear();
            self.index += 1;
        }
        // The final chunk: at most CIPHER_CHUNK_SIZE − 1 bytes, bounded by
        // `remaining` above.
        self.buffer.extend_from_slice(data);
        Ok(out)
    }

    /// After the last byte: decrypts the final chunk and returns its
    /// plaintext, having checked the length, the final flag and the digest.
    pub fn finish(self) -> Result<Vec<u8>, MediaError> {
        if self.remaining > 0 {
            return Err(MediaError::Truncated);
        }
        let plain = match open_chunk(&self.cipher, self.index, true, &self.buffer) {
            Some(plain) => plain,
            // Encrypted as a middle chunk: the file was cut after it (and
            // the size describes the cut file).
            None if open_chunk(&self.cipher, self.index, false, &self.buffer).is_some() => {
                return Err(MediaError::Truncated);
            }
            None => return Err(MediaError::Corrupt { chunk: self.index }),
        };
        let digest: [u8; 32] = self.hash.finalize().into();
        if self.digest.is_some_and(|d| d != digest) {
            return Err(MediaError::DigestMismatch);
        }
        Ok(plain)
    }
}

/// Encrypts a small file in one go: its ciphertext and what the descriptor needs.
pub fn encrypt_all(key: &[u8; KEY_LEN], plain: &[u8]) -> (Vec<u8>, Encrypted) {
    let mut enc = Encryptor::new(key);
    let mut out = Vec::with_capacity(ciphertext_len(plain.len() as u64).expect("in memory") as usize);
    let full = plain.len() / CHUNK_SIZE;
    for chunk in plain.chunks(CHUNK_SIZE).take(full) {
        out.extend_from_slice(&enc.encrypt_chunk(chunk, false).expect("a full chunk"));
    }
    out.extend_from_slice(&enc.encrypt_chunk(&plain[full * CHUNK_SIZE..], true).expect("a short last chunk"));
    (out, enc.finish().expect("finished"))
}

/// Decrypts a small file in one go, its size taken from the ciphertext's
/// length (a length no file has is [`MediaError::Truncated`]).
pub fn decrypt_all(key: &[u8; KEY_LEN], ciphertext: &[u8]) -> Result<Vec<u8>, MediaError> {
    let size = plaintext_len(ciphertext.len() as u64).ok_or(MediaError::Truncated)?;
    let mut dec = Decryptor::new(key, size, None, u64::MAX)?;
    let mut out = dec.update(ciphertext)?;
    out.extend_from_slice(&dec.finish()?);
    Ok(out)
}

/// The attachment descriptor, carried inside the end-to-end message: all a
/// recipient needs to fetch, check, decrypt and show a file. The server
/// never sees it.
#[derive(Clone, PartialEq, Message)]
pub struct Attachment {
    /// The server's id of the encrypted blob.
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
    /// The file's AES-256-GCM key (32 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// SHA-256 of the whole ciphertext (the blob).
    #[prost(bytes = "vec", tag = "3")]
    pub digest: Vec<u8>,
    /// Plaintext bytes.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// e.g. `image/jpeg`; empty if unknown.
    #[prost(string, tag = "5")]
    pub mime_type: String,
    /// A bare file name (no directories); empty if none.
    #[prost(string, tag = "6")]
    pub file_name: String,
    /// Images and video: pixels; 0 if unknown.
    #[prost(uint32, tag = "7")]
    pub width: u32,
    #[prost(uint32, tag = "8")]
    pub height: u32,
    /// Images and video: a small JPEG or PNG preview (at most 32 KiB).
    #[prost(bytes = "vec", tag = "9")]
    pub thumbnail: Vec<u8>,
    /// Voice notes, audio and video: the length in milliseconds.
    #[prost(uint32, tag = "10")]
    pub duration_ms: u32,
    /// Voice notes: up to 256 amplitude samples, one byte each (0–255).
    #[prost(bytes = "vec", tag = "11")]
    pub waveform: Vec<u8>,
}

impl Attachment {
    /// [`check_max`](Self::check_max) with [`DEFAULT_MAX_SIZE`].
    pub fn check(&self) -> Result<(), MediaError> {
        self.check_max(DEFAULT_MAX_SIZE)
    }

    /// Checks a received (or about to be sent) descriptor: key and digest
    /// of 32 bytes, a blob id of 1–64 bytes, `size` at most `max_size`, a
    /// MIME type of at most 127 printable ASCII bytes, a file name that
    /// [`file_name_ok`] accepts, a thumbnail of at most 32 KiB and a
    /// waveform of at most 256 samples. A bad file name is refused, not
    /// repaired: a sender runs [`sanitize_file_name`] first, so a bad one
    /// comes from a broken or hostile sender.
    pub fn check_max(&self, max_size: u64) -> Result<(), MediaError> {
        let bad = |why| Err(MediaError::InvalidAttachment(why));
        if self.key.len() != KEY_LEN {
            return bad("the key is not 32 bytes");
        }
        if self.digest.len() != 32 {
            return bad("the digest is not 32 bytes");
        }
        if self.blob_id.is_empty() || self.blob_id.len() > MAX_BLOB_ID {
            return bad("the blob id is empty or too long");
        }
        if self.size > max_size {
            return Err(MediaError::TooLarge { size: self.size, max: max_size });
        }
        if self.mime_type.len() > MAX_MIME_TYPE || !self.mime_type.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("the MIME type is too long or not printable ASCII");
        }
        if !self.file_name.is_empty() && !file_name_ok(&self.file_name) {
            return bad("the file name is not a plain file name");
        }
        if self.thumbnail.len() > MAX_THUMBNAIL {
            return bad("the thumbnail is larger than 32 KiB");
        }
        if self.waveform.len() > MAX_WAVEFORM {
            return bad("the waveform has more than 256 samples");
        }
        Ok(())
    }

    /// The key as an array (after [`check`](Self::check)).
    pub fn key_array(&self) -> Result<[u8; KEY_LEN], MediaError> {
        self.key.as_slice().try_into().map_err(|_| MediaError::InvalidAttachment("the key is not 32 bytes"))
    }

    /// A [`Decryptor`] for this attachment's blob: checks the descriptor
    /// (with `max_size`), then the blob's length, chunks and digest.
    pub fn decryptor(&self, max_size: u64) -> Result<Decryptor, MediaError> {
        self.check_max(max_size)?;
        let digest = self.digest.as_slice().try_into().expect("checked");
        Decryptor::new(&self.key_array()?, self.size, Some(digest), max_size)
    }
}

/// Characters a file name must not contain besides path separators and
/// control characters: the bidirectional overrides and isolates, which make
/// `photo\u{202e}gpj.exe` look like `photoexe.jpg`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A plain file name: 1–255 bytes, no `/` or `\`, no control or
/// bidirectional-control characters, not `.` or `..`, not starting or
/// ending with whitespace.
pub fn file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && name != "."
        && name != ".."
        && name.trim() == name
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control() || is_bidi_control(c))
}

/// What a sender puts in [`Attachment::file_name`]: the last path component
/// of `name`, with control and bidirectional-control characters replaced
/// by `_`, trimmed, cut to 255 bytes at a character boundary; `file` if
/// nothing is left. The result passes [`file_name_ok`].
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().map(|c| if c.is_control() || is_bidi_control(c) { '_' } else { c }).collect();
    let mut out = cleaned.trim().to_string();
    if out.len() > MAX_FILE_NAME {
        let mut end = MAX_FILE_NAME;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out = out.trim_end().to_string();
    }
    if out.is_empty() || out == "." || out == ".." { "file".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x42; 32];
    const C: usize = CHUNK_SIZE;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn chunks_of(ct: &[u8]) -> Vec<&[u8]> {
        ct.chunks(CIPHER_CHUNK_SIZE).collect()
    }

    #[test]
    fn round_trips_at_every_interesting_size() {
        for size in [0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 7] {
            let plain = pattern(size);
            let (ct, info) = encrypt_all(&KEY, &plain);
            assert_eq!(ct.len() as u64, ciphertext_len(size as u64).unwrap(), "size {size}");
            assert_eq!(info.ciphertext_len, ct.len() as u64);
            assert_eq!(info.size, size as u64);
            assert_eq!(info.digest, <[u8; 32]>::from(Sha256::digest(&ct)), "digest of the ciphertext");
            assert_eq!(plaintext_len(ct.len() as u64), Some(size as u64));
            assert_eq!(chunks_of(&ct).len() as u64, chunk_count(size as u64));
            assert_eq!(decrypt_all(&KEY, &ct).unwrap(), plain, "size {size}");
        }
    }

    #[test]
    fn streams_in_pieces_of_any_length() {
        let plain = pattern(2 * C + 1000);
        let (ct, info) = encrypt_all(&KEY, &plain);
        for piece in [1, 7, 4096, CIPHER_CHUNK_SIZE - 1, CIPHER_CHUNK_SIZE, CIPHER_CHUNK_SIZE + 1, ct.len()] {
            let mut dec = Decryptor::new(&KEY, info.size, Some(info.digest), DEFAULT_MAX_SIZE).unwrap();
            let mut out = Vec::new();
            for p in ct.chunks(piece) {
                out.extend(dec.update(p).unwrap());
                assert!(dec.buffer.len() < CIPHER_CHUNK_SIZE, "holds less than one chunk");
            }
            out.extend(dec.finish().unwrap());
            assert_eq!(out, plain, "pieces of {piece}");
        }
    }

    #[test]
    fn an_empty_file_is_one_empty_final_chunk() {
        let (ct, _) = encrypt_all(&KEY, &[]);
        assert_eq!(ct.len(), TAG_LEN);
        assert_eq!(ciphertext_len(0), Some(16));
        assert_eq!(decrypt_all(&KEY, &[]), Err(MediaError::Truncated));
    }

    #[test]
    fn a_file_of_whole_chunks_ends_with_an_empty_final_chunk() {
        let (ct, _) = encrypt_all(&KEY, &pattern(2 * C));
        let cs = chunks_of(&ct);
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[2].len(), TAG_LEN);
    }

    #[test]
    fn reordered_chunks_fail_at_the_first_moved_one() {
        let (ct, _) = encrypt_all(&KEY, &pattern(3 * C + 7));
        let cs = chunks_of(&ct);
        let swapped = [cs[1], cs[0], cs[2], cs[3]].concat();
        assert_eq!(decrypt_all(&KEY, &swapped), Err(MediaError::Corrupt { chunk: 0 }));
        let swapped = [cs[0], cs[2], cs[1], cs[3]].concat();
        assert_eq!(decrypt_all(&KEY, &swapped), Err(MediaError::Corrupt { chunk: 1 }));
    }

    #[test]
    fn a_dropped_last_chunk_is_truncation() {
        let plain = pattern(3 * C + 7);
        let (ct, info) = encrypt_all(&KEY, &plain);
        let cut = &ct[..3 * CIPHER_CHUNK_SIZE];
        // Against the descriptor's size: too few bytes.
        let mut dec = Decryptor::new(&KEY, info.size, Some(info.digest), DEFAULT_MAX_SIZE).unwrap();
        dec.update(cut).unwrap();
        assert_eq!(dec.finish(), Err(MediaError::Truncated));
        // With a size that matches the cut (no descriptor, or a lying one):
        // the last chunk was not encrypted as final.
        assert_eq!(decrypt_all(&KEY, cut), Err(MediaError::Truncated));
        // Cut inside a chunk.
        assert_eq!(decrypt_all(&KEY, &ct[..ct.len() - 1]), Err(MediaError::Corrupt { chunk: 3 }));
        let mut dec = Decryptor::new(&KEY, info.size, None, DEFAULT_MAX_SIZE).unwrap();
        dec.update(&ct[..ct.len() - 1]).unwrap();
        assert_eq!(dec.finish(), Err(MediaError::Truncated));
        // The whole final empty chunk of a whole-chunk file.
        let (ct, _) = encrypt_all(&KEY, &pattern(2 * C));
        assert_eq!(decrypt_all(&KEY, &ct[..2 * CIPHER_CHUNK_SIZE]), Err(MediaError::Truncated));
    }

    #[test]
    fn a_dropped_middle_chunk_fails() {
        let (ct, info) = encrypt_all(&KEY, &pattern(3 * C + 7));
        let cs = chunks_of(&ct);
        let dropped = [cs[0], cs[2], cs[3]].concat();
        assert_eq!(decrypt_all(&KEY, &dropped), Err(MediaError::Corrupt { chunk: 1 }));
        let mut dec = Decryptor::new(&KEY, info.size, None, DEFAULT_MAX_SIZE).unwrap();
        assert_eq!(dec.update(&dropped), Err(MediaError::Corrupt { chunk: 1 }));
    }

    #[test]
    fn a_flipped_bit_names_its_chunk() {
        let (ct, _) = encrypt_all(&KEY, &pattern(3 * C + 7));
        for (pos, chunk) in [(0, 0), (CIPHER_CHUNK_SIZE - 1, 0), (CIPHER_CHUNK_SIZE + 5, 1), (ct.len() - 1, 3)] {
            let mut bad = ct.clone();
            bad[pos] ^= 0x01;
            assert_eq!(decrypt_all(&KEY, &bad), Err(MediaError::Corrupt { chunk }), "bit at {pos}");
        }
    }

    #[test]
    fn nothing_goes_after_the_final_chunk() {
        let plain = pattern(C + 1);
        let (ct, info) = encrypt_all(&KEY, &plain);
        let extra = encrypt_all(&KEY, &pattern(C + 2)).0;
        let appended = [&ct[..], &extra[CIPHER_CHUNK_SIZE..]].concat();
        let mut dec = Decryptor::new(&KEY, info.size, Some(info.digest), DEFAULT_MAX_SIZE).unwrap();
        assert_eq!(dec.update(&appended), Err(MediaError::TrailingData));
        let mut dec = Decryptor::new(&KEY, info.size, Some(info.digest), DEFAULT_MAX_SIZE).unwrap();
        dec.update(&ct).unwrap();
        assert_eq!(dec.update(&[0]), Err(MediaError::TrailingData));
        assert!(decrypt_all(&KEY, &appended).is_err());
        let mut enc = Encryptor::new(&KEY);
        enc.encrypt_chunk(b"x", true).unwrap();
        assert_eq!(enc.encrypt_chunk(b"y", true), Err(MediaError::TrailingData));
    }

    #[test]
    fn a_wrong_key_or_digest_fails() {
        let (ct, info) = encrypt_all(&KEY, &pattern(C + 3));
        assert_eq!(decrypt_all(&[0x43; 32], &ct), Err(MediaError::Corrupt { chunk: 0 }));
        let (small, _) = encrypt_all(&KEY, b"hi");
        assert_eq!(decrypt_all(&[0x43; 32], &small), Err(MediaError::Corrupt { chunk: 0 }));
        let mut wrong = info.digest;
        wrong[0] ^= 1;
        let mut dec = Decryptor::new(&KEY, info.size, Some(wrong), DEFAULT_MAX_SIZE).unwrap();
        dec.update(&ct).unwrap();
        assert_eq!(dec.finish(), Err(MediaError::DigestMismatch));
    }

    #[test]
    fn the_encryptor_insists_on_whole_chunks_and_a_final_one() {
        let mut enc = Encryptor::new(&KEY);
        assert_eq!(enc.encrypt_chunk(&[0; 10], false), Err(MediaError::ChunkSize(10)));
        assert_eq!(enc.encrypt_chunk(&pattern(C), true), Err(MediaError::ChunkSize(C)));
        enc.encrypt_chunk(&pattern(C), false).unwrap();
        assert_eq!(enc.finish(), Err(MediaError::Truncated));
    }

    #[test]
    fn lengths_agree_and_sizes_are_bounded() {
        for n in (0..5 * C as u64).step_by(C / 3 + 1).chain([u64::MAX / 2]) {
            let len = ciphertext_len(n).unwrap();
            assert_eq!(plaintext_len(len), Some(n));
        }
        assert_eq!(ciphertext_len(u64::MAX), None);
        assert_eq!(plaintext_len(0), None);
        assert_eq!(plaintext_len(CIPHER_CHUNK_SIZE as u64 + 15), None);
        assert_eq!(
            Decryptor::new(&KEY, DEFAULT_MAX_SIZE + 1, None, DEFAULT_MAX_SIZE).err(),
            Some(MediaError::TooLarge { size: DEFAULT_MAX_SIZE + 1, max: DEFAULT_MAX_SIZE })
        );
    }

    #[test]
    fn nonce_and_aad_layout() {
        assert_eq!(nonce(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        let a = aad(0x0102, true);
        assert_eq!(&a[..15], b"tether media v1");
        assert_eq!(&a[15..], &[0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_eq!(aad(0, false)[23], 0);
    }

    #[test]
    fn streams_4_mib() {
        stream(4 * 1024 * 1024 + 7);
    }

    fn stream(size: usize) {
        let mut enc = Encryptor::new(&KEY);
        let chunk_of = |i: usize| -> Vec<u8> {
            let len = C.min(size - i * C);
            (0..len).map(|j| ((i * C + j) % 251) as u8).collect()
        };
        let n = size / C + 1;
        let mut dec = Decryptor::new(&KEY, size as u64, None, DEFAULT_MAX_SIZE + C as u64).unwrap();
        let mut hash = Sha256::new();
        let mut got = 0;
        for i in 0..n {
            let plain = chunk_of(i);
            let ct = enc.encrypt_chunk(&plain, i + 1 == n).unwrap();
            hash.update(&ct);
            let out = dec.update(&ct).unwrap();
            if i + 1 < n {
                assert_eq!(out, plain);
            } else {
                assert!(out.is_empty());
                assert_eq!(dec.buffer.len(), ct.len());
            }
            got += out.len();
        }
        let info = enc.finish().unwrap();
        let last = dec.finish().unwrap();
        assert_eq!(last, chunk_of(n - 1));
        assert_eq!(got + last.len(), size);
        assert_eq!(info.digest, <[u8; 32]>::from(hash.finalize()));
        assert_eq!(info.ciphertext_len, ciphertext_len(size as u64).unwrap());
    }

    fn attachment() -> Attachment {
        Attachment {
            blob_id: vec![7; 16],
            key: vec![1; 32],
            digest: vec![2; 32],
            size: 1000,
            mime_type: "image/jpeg".into(),
            file_name: "holiday.jpg".into(),
            width: 640,
            height: 480,
            thumbnail: vec![0; MAX_THUMBNAIL],
            duration_ms: 0,
            waveform: vec![],
        }
    }

    #[test]
    fn attachments_are_checked() {
        assert_eq!(attachment().check(), Ok(()));
        let decoded = Attachment::decode(&attachment().encode_to_vec()[..]).unwrap();
        assert_eq!(decoded, attachment());
        type Change = fn(&mut Attachment);
        let cases: [(&str, Change); 14] = [
            ("short key", |a| a.key.truncate(31)),
            ("short digest", |a| a.digest.truncate(31)),
            ("no blob id", |a| a.blob_id.clear()),
            ("long blob id", |a| a.blob_id = vec![0; 65]),
            ("too large", |a| a.size = DEFAULT_MAX_SIZE + 1),
            ("mime with space", |a| a.mime_type = "image/ jpeg".into()),
            ("slash", |a| a.file_name = "../etc/passwd".into()),
            ("backslash", |a| a.file_name = "a\\b".into()),
            ("control", |a| a.file_name = "a\nb".into()),
            ("bidi", |a| a.file_name = "photo\u{202e}gpj.exe".into()),
            ("dotdot", |a| a.file_name = "..".into()),
            ("long name", |a| a.file_name = "a".repeat(256)),
            ("big thumbnail", |a| a.thumbnail.push(0)),
            ("long waveform", |a| a.waveform = vec![0; 257]),
        ];
        for (what, change) in cases {
            let mut a = attachment();
            change(&mut a);
            assert!(a.check().is_err(), "{what} must be refused");
        }
        let mut big = attachment();
        big.size = DEFAULT_MAX_SIZE + 1;
        assert_eq!(big.check_max(DEFAULT_MAX_SIZE * 2), Ok(()));
        let mut voice = attachment();
        (voice.file_name, voice.thumbnail, voice.waveform) = (String::new(), vec![], vec![9; 256]);
        assert_eq!(voice.check(), Ok(()));
    }

    #[test]
    fn an_attachment_decrypts_its_blob() {
        let plain = pattern(C + 99);
        let (ct, info) = encrypt_all(&KEY, &plain);
        let a = Attachment { key: KEY.to_vec(), digest: info.digest.to_vec(), size: info.size, ..attachment() };
        let mut dec = a.decryptor(DEFAULT_MAX_SIZE).unwrap();
        let mut out = dec.update(&ct).unwrap();
        out.extend(dec.finish().unwrap());
        assert_eq!(out, plain);
    }

    #[test]
    fn file_names_are_sanitized_for_sending() {
        for (input, want) in [
            ("holiday.jpg", "holiday.jpg"),
            ("C:\\Users\\me\\cv.pdf", "cv.pdf"),
            ("/tmp/x/../report.txt", "report.txt"),
            ("a\tb\u{202e}c", "a_b_c"),
            ("  spaced  ", "spaced"),
            ("dir/", "file"),
            ("..", "file"),
            ("", "file"),
        ] {
            assert_eq!(sanitize_file_name(input), want, "{input:?}");
            assert!(file_name_ok(&sanitize_file_name(input)));
        }
        let long = "é".repeat(200);
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_FILE_NAME && file_name_ok(&s));
    }
}
