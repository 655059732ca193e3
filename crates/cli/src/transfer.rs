//! Moving a file's blob over HTTP (docs/protocol.md §14.3): encrypt while
//! uploading (tus-style PATCH from the server's offset), download by
//! `Range` into a `.part` file that resumes, then check and decrypt. Never
//! more than a chunk or two in memory, whatever the file's size. Blocking
//! (ureq); commands run it on a blocking thread while the socket stays up.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tether_client::{FileRef, Ticket};
use tether_proto::media::{self, CHUNK_SIZE, Decryptor, Encryptor, KEY_LEN};

/// How a transfer ended, when not with the whole blob.
#[derive(Debug)]
pub enum Failure {
    /// Worth another ticket: the network broke, the token expired, the
    /// server restarted.
    Retry(String),
    /// Not worth it: the server refused for good, or the file is bad.
    Fatal(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Fatal(m) => m,
        }
    }
}

/// Progress shared with the thread that shows it.
#[derive(Default)]
pub struct Progress {
    /// Bytes of the blob the server holds (upload) or this computer has (download).
    pub done: AtomicU64,
    /// Set by the user (Ctrl-C) to stop between chunks.
    pub cancel: AtomicBool,
}

fn agent() -> Result<ureq::Agent, Failure> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = crate::tls::root_certificates().map_err(Failure::Fatal)?;
    let certs: Vec<Certificate<'static>> = roots.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    Ok(ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(RootCerts::new_with_certs(&certs)).build())
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .new_agent())
}

/// The blob's URL on the server's HTTP origin.
pub fn blob_url(server: &str, path: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = base
        .strip_prefix("ws://")
        .map(|r| format!("http://{r}"))
        .or_else(|| base.strip_prefix("wss://").map(|r| format!("https://{r}")));
    format!("{}{path}", base.unwrap_or_else(|| server.trim_end_matches('/').to_string()))
}

/// The server's words for a refused HTTP request (`{"code","message"}`).
fn refused(status: u16, body: &str) -> Failure {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = v["code"].as_str().unwrap_or("");
    let message = v["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}"));
    match (status, code) {
        (401, _) | (409, _) | (500..=599, _) => Failure::Retry(message),
        _ => Failure::Fatal(crate::format::clean_line(&message)),
    }
}

/// Encrypts `file` chunk by chunk as it is read, leaving out the first
/// `skip` bytes of the blob (the server has them) but hashing them all.
struct Encrypting {
    file: File,
    size: u64,
    next_chunk: u64,
    chunks: u64,
    enc: Option<Encryptor>,
    buf: Vec<u8>,
    pos: usize,
    skip: u64,
    result: Arc<Mutex<Option<media::Encrypted>>>,
    progress: Arc<Progress>,
    sent: u64,
}

impl Encrypting {
    fn fill(&mut self) -> io::Result<bool> {
        while self.pos == self.buf.len() {
            if self.next_chunk == self.chunks {
                if let Some(enc) = self.enc.take() {
                    let done = enc.finish().map_err(io::Error::other)?;
                    *self.result.lock().expect("not poisoned") = Some(done);
                }
                return Ok(false);
            }
            if self.progress.cancel.load(Ordering::Relaxed) {
                return Err(io::Error::other("cancelled"));
            }
            let last = self.next_chunk + 1 == self.chunks;
            let want = if last { (self.size % CHUNK_SIZE as u64) as usize } else { CHUNK_SIZE };
            let mut plain = vec![0u8; want];
            self.file
                .read_exact(&mut plain)
                .map_err(|_| io::Error::other("the file changed while it was being sent"))?;
            let enc = self.enc.as_mut().expect("until the last chunk");
            self.buf = enc.encrypt_chunk(&plain, last).map_err(io::Error::other)?;
            self.pos = 0;
            self.next_chunk += 1;
            if self.skip >= self.buf.len() as u64 {
                self.skip -= self.buf.len() as u64;
                self.pos = self.buf.len();
            } else {
                self.pos = self.skip as usize;
                self.skip = 0;
            }
        }
        Ok(true)
    }
}

impl Read for Encrypting {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.sent += n as u64;
        self.progress.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Uploads `path` encrypted with `key` from the ticket's offset; returns
/// the blob's SHA-256 (hex) once the server holds all of it.
pub fn upload(
    server: &str,
    ticket: &Ticket,
    key_hex: &str,
    path: &Path,
    progress: Arc<Progress>,
) -> Result<String, Failure> {
    let key: [u8; KEY_LEN] = hex(key_hex).try_into().map_err(|_| Failure::Fatal("bad key".into()))?;
    let file = File::open(path).map_err(|e| Failure::Fatal(format!("cannot read {}: {e}", path.display())))?;
    let size = file.metadata().map_err(|e| Failure::Fatal(e.to_string()))?.len();
    if media::ciphertext_len(size) != Some(ticket.length) {
        return Err(Failure::Fatal(format!("{} changed size since it was sent; send it again", path.display())));
    }
    progress.done.store(ticket.offset, Ordering::Relaxed);
    let result = Arc::new(Mutex::new(None));
    let mut body = Encrypting {
        file,
        size,
        next_chunk: 0,
        chunks: media::chunk_count(size),
        enc: Some(Encryptor::new(&key)),
        buf: Vec::new(),
        pos: 0,
        skip: ticket.offset,
        result: result.clone(),
        progress: progress.clone(),
        sent: 0,
    };
    let url = blob_url(server, &ticket.path);
    let agent = agent()?;
    if ticket.offset < ticket.length {
        let resp = agent
            .patch(&url)
            .header("Authorization", &format!("Bearer {}", ticket.token))
            .header("Upload-Offset", &ticket.offset.to_string())
            .header("Content-Length", &(ticket.length - ticket.offset).to_string())
            .content_type("application/offset+octet-stream")
            .send(ureq::SendBody::from_reader(&mut body));
        let resp = match resp {
            Ok(r) => r,
            Err(e) if progress.cancel.load(Ordering::Relaxed) => {
                return Err(Failure::Fatal(format!("cancelled ({e})")));
            }
            Err(e) => return Err(Failure::Retry(format!("the upload broke off: {e}"))),
        };
        let status = resp.status().as_u16();
        if status != 204 {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(refused(status, &text));
        }
        let offset: u64 =
            resp.headers().get("Upload-Offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        if offset != ticket.length {
            return Err(Failure::Retry(format!("the server holds {offset} of {} bytes", ticket.length)));
        }
    } else {
        // Whole already (a restart right after the last PATCH): still
        // read the file through for its digest.
        io::copy(&mut body, &mut io::sink()).map_err(|e| Failure::Fatal(e.to_string()))?;
    }
    // Drain: a server that answered before reading everything is a bug,
    // but the digest needs every chunk.
    io::copy(&mut body, &mut io::sink()).map_err(|e| Failure::Fatal(e.to_string()))?;
    let done =
        result.lock().expect("not poisoned").take().ok_or_else(|| Failure::Fatal("the file ended early".into()))?;
    Ok(hex_string(&done.digest))
}

/// Where a download keeps the blob until it is whole.
pub fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tether-part");
    out.with_file_name(name)
}

/// Downloads the blob into `out`'s `.tether-part` (resuming from what it
/// has), then checks the digest, decrypts into `out` and removes the part.
pub fn download(
    server: &str,
    ticket: &Ticket,
    file: &FileRef,
    out: &Path,
    progress: Arc<Progress>,
) -> Result<(), Failure> {
    let part = part_path(out);
    let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have > ticket.length {
        have = 0;
    }
    progress.done.store(have, Ordering::Relaxed);
    if have < ticket.length {
        let resp = agent()?
            .get(&blob_url(server, &ticket.path))
            .header("Authorization", &format!("Bearer {}", ticket.token))
            .header("Range", &format!("bytes={have}-"))
            .call()
            .map_err(|e| Failure::Retry(format!("the download broke off: {e}")))?;
        let status = resp.status().as_u16();
        if status == 200 {
            have = 0; // the whole blob again
        } else if status != 206 {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            return Err(refused(status, &text));
        }
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", part.display())))?;
        f.set_len(have).and_then(|_| f.seek(SeekFrom::Start(have))).map_err(|e| Failure::Fatal(e.to_string()))?;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if progress.cancel.load(Ordering::Relaxed) {
                return Err(Failure::Fatal("cancelled; run the same command again to go on".into()));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = f.sync_data();
                    return Err(Failure::Retry(format!("the download broke off: {e}")));
                }
            };
            f.write_all(&buf[..n]).map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", part.display())))?;
            progress.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        f.sync_data().map_err(|e| Failure::Fatal(e.to_string()))?;
    }
    decrypt_part(&part, file, out)
}

/// Checks and decrypts a whole blob into `out` (via a temporary file, so
/// `out` never holds unchecked bytes).
fn decrypt_part(part: &Path, file: &FileRef, out: &Path) -> Result<(), Failure> {
    let key: [u8; KEY_LEN] = hex(&file.key).try_into().map_err(|_| Failure::Fatal("bad key".into()))?;
    let digest: [u8; 32] = hex(&file.digest).try_into().map_err(|_| Failure::Fatal("bad digest".into()))?;
    let mut dec = Decryptor::new(&key, file.size, Some(digest), media::DEFAULT_MAX_SIZE)
        .map_err(|e| Failure::Fatal(e.to_string()))?;
    let tmp = out.with_extension("tether-tmp");
    let result = (|| -> Result<(), Failure> {
        let mut src = File::open(part).map_err(|e| Failure::Fatal(e.to_string()))?;
        let mut dst = File::create(&tmp).map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", tmp.display())))?;
        let mut buf = vec![0u8; 256 * 1024];
        let bad = |e: media::MediaError| {
            Failure::Fatal(format!("the file is damaged or not what was sent ({e}); it was not saved"))
        };
        loop {
            let n = src.read(&mut buf).map_err(|e| Failure::Fatal(e.to_string()))?;
            if n == 0 {
                break;
            }
            let plain = dec.update(&buf[..n]).map_err(bad)?;
            dst.write_all(&plain).map_err(|e| Failure::Fatal(e.to_string()))?;
        }
        let plain = dec.finish().map_err(bad)?;
        dst.write_all(&plain).and_then(|_| dst.sync_all()).map_err(|e| Failure::Fatal(e.to_string()))?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            std::fs::rename(&tmp, out).map_err(|e| Failure::Fatal(format!("cannot write {}: {e}", out.display())))?;
            let _ = std::fs::remove_file(part);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(part); // its bytes are bad
            Err(e)
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_use_the_servers_http_origin() {
        assert_eq!(blob_url("http://127.0.0.1:7780", "/v1/blobs/ab"), "http://127.0.0.1:7780/v1/blobs/ab");
        assert_eq!(blob_url("https://chat.example.org/", "/v1/blobs/ab"), "https://chat.example.org/v1/blobs/ab");
        assert_eq!(blob_url("wss://chat.example.org", "/v1/blobs/ab"), "https://chat.example.org/v1/blobs/ab");
    }

    #[test]
    fn the_encrypting_reader_skips_what_the_server_has_and_still_hashes_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let key = [7u8; 32];
        let (whole, info) = media::encrypt_all(&key, &data);
        for skip in [0u64, 1, CHUNK_SIZE as u64 + 16, whole.len() as u64 - 3, whole.len() as u64] {
            let result = Arc::new(Mutex::new(None));
            let mut r = Encrypting {
                file: File::open(&path).unwrap(),
                size: data.len() as u64,
                next_chunk: 0,
                chunks: media::chunk_count(data.len() as u64),
                enc: Some(Encryptor::new(&key)),
                buf: vec![],
                pos: 0,
                skip,
                result: result.clone(),
                progress: Arc::default(),
                sent: 0,
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, whole[skip as usize..], "skip {skip}");
            assert_eq!(result.lock().unwrap().take().unwrap().digest, info.digest);
        }
    }
}
