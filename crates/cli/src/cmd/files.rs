//! `tether send-file` and `tether download`: files end to end encrypted
//! (docs/protocol.md §14). The engine holds the upload records and asks
//! for tickets; this moves the bytes (`transfer`) on a blocking thread
//! while the socket stays up, with a progress bar, and resumes where the
//! server (or the `.tether-part` file) left off.

use super::groups;
use super::{Home, WAIT, fail, report};
use crate::format::{clean_line, size};
use crate::session::{Session, now};
use crate::transfer::{self, Failure, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tether_client::{Engine, Event, FileInfo, FileRef, Ticket};
use tether_proto::media;

/// Tries per transfer before giving up for now (each with a new ticket).
const TRIES: usize = 5;
/// Longest side of a photo's thumbnail, in pixels.
const THUMB_SIDE: u32 = 320;

/// Send a file (photo, document, audio) to a contact or a group, end to end encrypted.
#[derive(Debug, clap::Args)]
pub struct SendFile {
    /// The contact's handle, or a group's name or id (see `tether group --help`).
    contact: String,
    /// The file to send (up to 64 MB, or the server's limit).
    path: PathBuf,
    /// A caption shown under the file.
    #[arg(long, default_value = "", hide_default_value = true)]
    caption: String,
}

/// Save a file someone sent (the id is in `tether read` and `listen --json`).
#[derive(Debug, clap::Args)]
pub struct Download {
    /// The message's id (or its first 8 or more hex digits).
    id: String,
    /// Where to save it: a file, or a directory (default: the current
    /// directory, under the sender's file name).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
}

impl SendFile {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let info = describe(&self.path)?;
        let (mut s, target) = groups::find(engine, &self.contact, false).await?;
        let (chat, label) = (target.chat(), target.label());
        let name = info.file_name.clone();
        let total = info.size;
        let (id, key) = match s.engine.send_file(&chat, info, &self.caption, now()) {
            Ok(sent) => sent,
            Err(e) => {
                s.close().await;
                return Err(fail(e));
            }
        };
        // From here the message and its upload record are on disk.
        remember_source(home, &id, &self.path)?;
        eprintln!("Sending {} ({}) to {label}…", clean_line(&name), size(total));
        if !s.engine.is_open()
            && let Err(e) = s.connect().await
        {
            return Err(format!(
                "{e}\ntether: the file waits on this computer: `tether uploads --resume` sends it once the server can be reached. Do not send it again."
            ));
        }
        let result = upload_until_sent(&mut s, home, &id, &key).await;
        match result {
            Ok(()) => {
                s.settle(Duration::from_secs(5), report).await.ok();
                s.close().await;
                println!("Sent {} to {label}.", clean_line(&name));
                Ok(())
            }
            Err(e) => {
                s.close().await;
                Err(e)
            }
        }
    }
}

/// What a file is, for the message: name, type, size, and for photos the
/// dimensions and a small thumbnail.
fn describe(path: &Path) -> Result<FileInfo, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.len() > media::DEFAULT_MAX_SIZE {
        return Err(format!(
            "{} is {}: files can be at most {}",
            path.display(),
            size(meta.len()),
            size(media::DEFAULT_MAX_SIZE)
        ));
    }
    let file_name = path.file_name().map(|n| media::sanitize_file_name(&n.to_string_lossy())).unwrap_or_default();
    let mime_type = mime_guess::from_path(path).first().map(|m| m.essence_str().to_string()).unwrap_or_default();
    let mut info = FileInfo { file_name, mime_type, size: meta.len(), ..Default::default() };
    if info.mime_type == "image/jpeg" || info.mime_type == "image/png" {
        if let Ok(img) = image::open(path) {
            info.width = img.width();
            info.height = img.height();
            info.thumbnail = thumbnail(&img).unwrap_or_default();
        }
    }
    Ok(info)
}

/// A JPEG of at most `THUMB_SIDE` pixels a side and 32 KiB, as base64.
fn thumbnail(img: &image::DynamicImage) -> Option<String> {
    use base64::Engine as _;
    let mut side = THUMB_SIDE;
    while side >= 40 {
        let small = img.thumbnail(side, side).to_rgb8();
        let mut out = std::io::Cursor::new(Vec::new());
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 70);
        small.write_with_encoder(enc).ok()?;
        let bytes = out.into_inner();
        if bytes.len() <= media::MAX_THUMBNAIL {
            return Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        side /= 2;
    }
    None
}

/// The CLI's note of which file on disk an upload is: a file next to the
/// database, so an interrupted upload can go on in a later command.
fn sources(home: &Home) -> PathBuf {
    home.dir.join("uploads")
}

fn remember_source(home: &Home, id: &str, path: &Path) -> Result<(), String> {
    let dir = sources(home);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let abs = std::fs::canonicalize(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    std::fs::write(dir.join(id), abs.to_string_lossy().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))
}

fn source(home: &Home, id: &str) -> Option<PathBuf> {
    std::fs::read_to_string(sources(home).join(id)).ok().map(PathBuf::from)
}

fn forget_source(home: &Home, id: &str) {
    let _ = std::fs::remove_file(sources(home).join(id));
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `work` on a blocking thread while the session keeps the socket
/// alive, drawing `progress` on a bar.
async fn with_socket<T: Send + 'static>(
    s: &mut Session,
    progress: Arc<Progress>,
    pb: &ProgressBar,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let task = tokio::task::spawn_blocking(work);
    let cancel = progress.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel.store(true, Ordering::Relaxed);
        }
    });
    let waited = s
        .wait(Duration::from_secs(24 * 3600), |_, e| {
            if let Some(e) = &e {
                report(e);
            }
            pb.set_position(progress.done.load(Ordering::Relaxed));
            task.is_finished().then_some(())
        })
        .await;
    ctrl_c.abort();
    // The socket may have dropped while the bytes went on over HTTP: the
    // transfer's own result still counts.
    let out = task.await.map_err(|e| format!("the transfer stopped: {e}"))?;
    pb.set_position(progress.done.load(Ordering::Relaxed));
    if let Err(e) = waited {
        if !s.engine.is_open() {
            eprintln!("tether: {e}");
        }
    }
    Ok(out)
}

/// Waits for a ticket for upload `id`, moves the bytes, and repeats with a
/// new ticket after an interruption; then waits until the message is sent.
async fn upload_until_sent(s: &mut Session, home: &Home, id: &str, key: &str) -> Result<(), String> {
    let path = source(home, id).ok_or("the file of this upload is not known here any more")?;
    let server = s.engine.server_url().to_string();
    let mut tries = 0;
    loop {
        let ticket = s
            .wait(WAIT, |_, e| match e {
                Some(Event::UploadTicket { id: i, ticket, .. }) if i == id => Some(Ok(ticket)),
                Some(Event::UploadStopped { id: i, reason }) if i == id => Some(Err(reason)),
                Some(other) => {
                    report(&other);
                    None
                }
                None => None,
            })
            .await?
            .map_err(|reason| format!("not sent: {reason}"))?;
        let progress = Arc::new(Progress::default());
        let pb = bar(ticket.length, "upload");
        let (srv, t, k, p, pr) = (server.clone(), ticket.clone(), key.to_string(), path.clone(), progress.clone());
        let outcome = with_socket(s, progress, &pb, move || transfer::upload(&srv, &t, &k, &p, pr)).await?;
        pb.finish_and_clear();
        match outcome {
            Ok(digest) => {
                s.engine.upload_finished(id, &digest, now()).map_err(fail)?;
                forget_source(home, id);
                break;
            }
            Err(Failure::Retry(why)) if tries + 1 < TRIES => {
                tries += 1;
                eprintln!("tether: {why}; going on where the server left off…");
                tokio::time::sleep(Duration::from_millis(500 * tries as u64)).await;
                if !s.engine.is_open() {
                    s.connect().await?;
                }
                s.engine.upload_interrupted(id, now());
            }
            Err(f) => {
                if matches!(f, Failure::Fatal(_)) && f.message().starts_with("cancelled") {
                    s.engine.cancel_upload(id);
                } else if matches!(f, Failure::Fatal(_)) {
                    s.engine.discard_upload(id);
                    forget_source(home, id);
                }
                s.settle(Duration::from_secs(2), report).await.ok();
                return Err(format!("not sent: {}", f.message()));
            }
        }
    }
    // The message itself: like `tether send`.
    s.wait(WAIT, |engine, e| match e {
        Some(Event::Sent { id: done }) if done == id => Some(Ok(())),
        Some(Event::Error { message, .. }) if !engine.outbox().contains(id) => {
            Some(Err(format!("not sent: {message}")))
        }
        Some(other) => {
            report(&other);
            None
        }
        None => None,
    })
    .await?
}

/// List files being sent that did not finish; resume or cancel them.
#[derive(Debug, clap::Args)]
pub struct Uploads {
    /// Send every unfinished file now, from where the server left off.
    #[arg(long, conflicts_with = "cancel")]
    resume: bool,
    /// Stop sending this file (the message shows as not sent).
    #[arg(long, value_name = "ID")]
    cancel: Option<String>,
}

impl Uploads {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open_registered()?;
        let uploads = engine.uploads();
        if let Some(prefix) = &self.cancel {
            let up = uploads
                .iter()
                .find(|u| u.id.starts_with(&prefix.to_ascii_lowercase()))
                .ok_or("no unfinished upload with that id")?;
            engine.discard_upload(&up.id);
            forget_source(home, &up.id);
            println!("Cancelled; the message shows as not sent.");
            return Ok(());
        }
        if uploads.is_empty() {
            println!("No unfinished uploads.");
            return Ok(());
        }
        for u in &uploads {
            let name = engine.file(&u.id).map(|f| f.file_name).unwrap_or_default();
            let why = if u.reason.is_empty() { String::new() } else { format!(" ({})", clean_line(&u.reason)) };
            println!("{}  {} to {}, {}{why}", &u.id[..12], clean_line(&name), clean_line(&u.chat), size(u.length));
        }
        if !self.resume {
            return Ok(());
        }
        let mut s = Session::new(engine);
        s.connect().await?;
        for u in uploads {
            if u.state == tether_client::UploadState::Stopped {
                s.engine.retry_upload(&u.id, now()).map_err(fail)?;
            }
            let key = s.engine.file(&u.id).map(|f| f.key).unwrap_or_default();
            match upload_until_sent(&mut s, home, &u.id, &key).await {
                Ok(()) => println!("Sent {}.", &u.id[..12]),
                Err(e) => eprintln!("tether: {}: {e}", &u.id[..12]),
            }
        }
        s.settle(Duration::from_secs(5), report).await.ok();
        s.close().await;
        Ok(())
    }
}

impl Download {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let id = find_file_message(&engine, &self.id)?;
        let file = engine.file(&id).ok_or("that message is not a file")?;
        if file.blob_id.is_empty() {
            return Err("this file was not uploaded yet".into());
        }
        let out = target(self.out.as_deref(), &file, &id)?;
        let mut s = Session::new(engine);
        s.connect().await?;
        let server = s.engine.server_url().to_string();
        let mut tries = 0;
        loop {
            s.engine.download_file(&id, now()).map_err(fail)?;
            let (ticket, file) = wait_download_ticket(&mut s, &id).await?;
            let progress = Arc::new(Progress::default());
            let pb = bar(ticket.length, "download");
            let (srv, t, f, o, pr) = (server.clone(), ticket.clone(), file.clone(), out.clone(), progress.clone());
            let outcome = with_socket(&mut s, progress, &pb, move || transfer::download(&srv, &t, &f, &o, pr)).await?;
            pb.finish_and_clear();
            match outcome {
                Ok(()) => break,
                Err(Failure::Retry(why)) if tries + 1 < TRIES => {
                    tries += 1;
                    eprintln!("tether: {why}; going on from where it stopped…");
                    tokio::time::sleep(Duration::from_millis(500 * tries as u64)).await;
                    if !s.engine.is_open() {
                        s.connect().await?;
                    }
                }
                Err(f) => {
                    s.close().await;
                    return Err(f.message().to_string());
                }
            }
        }
        s.engine.download_finished(&id, now());
        s.settle(Duration::from_secs(5), report).await.ok();
        s.close().await;
        println!("Saved {} ({}, checked).", out.display(), size(file.size));
        Ok(())
    }
}

async fn wait_download_ticket(s: &mut Session, id: &str) -> Result<(Ticket, FileRef), String> {
    s.wait(WAIT, |_, e| match e {
        Some(Event::DownloadTicket { id: i, ticket, file, .. }) if i == id => Some(Ok((ticket, file))),
        Some(Event::DownloadFailed { id: i, reason, .. }) if i == id => Some(Err(reason)),
        Some(other) => {
            report(&other);
            None
        }
        None => None,
    })
    .await?
}

/// The file message whose id is `prefix` (whole, or 8+ hex digits).
fn find_file_message(engine: &Engine, prefix: &str) -> Result<String, String> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("give the message's id (at least its first 8 hex digits; `tether read <contact>` shows it)".into());
    }
    let mut found: Vec<String> = Vec::new();
    for c in engine.chats() {
        for m in engine.messages(&c.handle) {
            if m.id.starts_with(&prefix) && engine.file(&m.id).is_some() {
                found.push(m.id.clone());
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!("no file message with id {prefix} on this computer (`tether read <contact>` lists them)")),
        _ => Err(format!("{prefix} matches {} messages: give more digits", found.len())),
    }
}

/// Where to save: `--out` (a file, or a directory), else the current
/// directory; the sender's name, made unique, never overwriting a file.
fn target(out: Option<&Path>, file: &FileRef, id: &str) -> Result<PathBuf, String> {
    let name = if media::file_name_ok(&file.file_name) { file.file_name.clone() } else { format!("file-{}", &id[..8]) };
    let (dir, explicit) = match out {
        Some(p) if p.is_dir() => (p.to_path_buf(), None),
        Some(p) => (p.parent().map(Path::to_path_buf).unwrap_or_default(), Some(p.to_path_buf())),
        None => (PathBuf::from("."), None),
    };
    if let Some(p) = explicit {
        // An explicit path: a half-done download there resumes; an existing
        // file is not overwritten.
        if p.exists() {
            return Err(format!("{} exists; choose another --out", p.display()));
        }
        return Ok(p);
    }
    let mut candidate = dir.join(&name);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    let mut n = 1;
    while candidate.exists() && !transfer::part_path(&candidate).exists() {
        candidate = dir.join(format!("{stem} ({n}){ext}"));
        n += 1;
    }
    Ok(candidate)
}
