//! Files: the protocol rules of sending and fetching a blob (docs/protocol.md
//! §14). The engine holds the upload records, chooses keys, asks the server
//! for tickets over the socket and writes the end-to-end message once the
//! blob is whole; the host moves the bytes over HTTP and runs the cipher
//! (`tether_proto::media` natively, WebCrypto in a browser), and reports
//! back with `upload_finished` / `upload_interrupted` / `download_finished`.

use super::Engine;
use crate::content::{Body, FileShare};
use crate::error::Error;
use crate::event::Event;
use crate::model::{FileRef, MessageBody};
use crate::olm::hex;
use crate::requests::Pending;
use crate::uploads::{Upload, UploadState};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tether_proto::frames::{self as f, Request};
use tether_proto::media::{self, Attachment};
use tether_proto::ErrorCode;

use super::send::hex_to_bytes;

/// What the host knows about a file it is about to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct FileInfo {
    /// As the user's system names it; cleaned with `media::sanitize_file_name`.
    pub file_name: String,
    pub mime_type: String,
    /// Plaintext bytes.
    pub size: u64,
    pub width: u32,
    pub height: u32,
    /// Base64 of a small JPEG or PNG (at most 32 KiB decoded).
    pub thumbnail: String,
    pub duration_ms: u32,
    pub waveform: Vec<u8>,
}

/// A ticket for moving a blob's bytes over HTTP (the server's `BlobTicket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Ticket {
    /// Hex.
    pub blob_id: String,
    /// `Authorization: Bearer <token>`; a secret for its hour: never logged.
    pub token: String,
    /// Path on the server's HTTP origin (`/v1/blobs/<hex>`).
    pub path: String,
    /// The blob's whole length.
    pub length: u64,
    /// Uploads: the bytes the server holds already.
    pub offset: u64,
    pub expires_ms: u64,
}

impl From<f::BlobTicket> for Ticket {
    fn from(t: f::BlobTicket) -> Self {
        Self {
            blob_id: hex(&t.blob_id),
            token: t.token,
            path: t.path,
            length: t.length,
            offset: t.offset,
            expires_ms: t.expires_ms,
        }
    }
}

/// A sentence for a refusal the user should read.
pub(super) fn refusal(code: Option<ErrorCode>, server: &str) -> String {
    match code {
        Some(ErrorCode::BlobTooLarge) => "This file is larger than the server accepts (64 MB unless its operator set another limit).".into(),
        Some(ErrorCode::BlobQuota) => {
            "Your account's storage on the server is full: files you sent are kept until every recipient fetched them. Try again later, or ask the server's operator for more room.".into()
        }
        Some(ErrorCode::BlobNotFound) => "This file is no longer on the server: it expired or every device it was sent to fetched it.".into(),
        Some(ErrorCode::BadToken) => "The server refused the transfer's token (expired); try again.".into(),
        _ if server.is_empty() => "The server refused the file.".into(),
        _ => server.to_string(),
    }
}

/// Transient: not the file's fault, so the upload waits and asks again.
fn transient(code: Option<ErrorCode>) -> bool {
    matches!(
        code,
        None | Some(
            ErrorCode::Internal
                | ErrorCode::StoreUnavailable
                | ErrorCode::GoingAway
                | ErrorCode::RateLimited
                | ErrorCode::ServerBusy
        )
    )
}

impl Engine {
    // ----------------------------------------------------------- commands

    /// Sends a file to a chat (a contact or a group): the message shows at once (pending), and
    /// the engine asks the server for an upload ticket (now, or when the
    /// socket is next open). Returns the message id and the file's key (32
    /// bytes, hex), which the host encrypts with; `Event::UploadTicket`
    /// says where to put the bytes.
    pub fn send_file(
        &mut self,
        chat: &str,
        info: FileInfo,
        caption: &str,
        now: u64,
    ) -> Result<(String, String), Error> {
        let chat = self.writable_chat(chat)?;
        let thumbnail =
            B64.decode(info.thumbnail.as_bytes()).map_err(|_| Error::Invalid("the thumbnail is not base64".into()))?;
        let key = self.random::<32>();
        let file_name =
            if info.file_name.is_empty() { String::new() } else { media::sanitize_file_name(&info.file_name) };
        let probe = Attachment {
            blob_id: vec![0],
            key: key.to_vec(),
            digest: vec![0; 32],
            size: info.size,
            mime_type: info.mime_type.clone(),
            file_name: file_name.clone(),
            width: info.width,
            height: info.height,
            thumbnail,
            duration_ms: info.duration_ms,
            waveform: info.waveform.clone(),
        };
        if info.size > media::DEFAULT_MAX_SIZE {
            let mib = |b: u64| b.div_ceil(1024 * 1024);
            return Err(Error::Invalid(format!("this file is {} MiB: files can be at most {} MiB", mib(info.size), mib(media::DEFAULT_MAX_SIZE))));
        }
        probe.check().map_err(|e| Error::Invalid(e.to_string()))?;
        let length = media::ciphertext_len(info.size).ok_or_else(|| Error::Invalid("the file is too large".into()))?;
        if crate::groups::group_of(&chat).is_none() {
            self.accept_by_writing(&chat, now);
        }
        let id = hex(&self.random::<16>());
        let file = FileRef {
            blob_id: String::new(),
            key: hex(&key),
            digest: String::new(),
            size: info.size,
            mime_type: info.mime_type,
            file_name,
            width: info.width,
            height: info.height,
            thumbnail: info.thumbnail,
            duration_ms: info.duration_ms,
            waveform: info.waveform,
        };
        self.show_own(&id, &chat, MessageBody::File { file, caption: caption.to_string() }, now);
        let upload = Upload {
            id: id.clone(),
            chat,
            length,
            blob_id: String::new(),
            state: UploadState::Waiting,
            reason: String::new(),
        };
        self.uploads.put(upload, &mut self.fx);
        self.ask_tickets(now);
        self.finish();
        Ok((id, hex(&key)))
    }

    /// The host uploaded the whole blob (`digest` = its SHA-256, hex): the
    /// message goes out naming it.
    pub fn upload_finished(&mut self, id: &str, digest: &str, now: u64) -> Result<(), Error> {
        let up = self.uploads.get(id).cloned().ok_or_else(|| Error::Invalid("no such upload".into()))?;
        self.need(&up.chat)?;
        if up.blob_id.is_empty() {
            return Err(Error::Invalid("the upload has no blob yet".into()));
        }
        let digest_bytes = hex_to_bytes(digest);
        if digest_bytes.len() != 32 || digest.len() != 64 {
            return Err(Error::Invalid("the digest is not 32 bytes of hex".into()));
        }
        let Some((file, caption)) = self.chats.find(id).and_then(|m| match &m.body {
            MessageBody::File { file, caption } => Some((file.clone(), caption.clone())),
            _ => None,
        }) else {
            return Err(Error::Invalid("no such file message".into()));
        };
        let file = FileRef { blob_id: up.blob_id.clone(), digest: digest.to_ascii_lowercase(), ..file };
        self.chats.set_body(id, MessageBody::File { file: file.clone(), caption: caption.clone() }, &mut self.fx);
        self.uploads.remove(id, &mut self.fx);
        let body = Body::File(FileShare { attachment: Some(attachment(&file)), caption });
        self.queue_with_blobs(id, &up.chat, body, vec![up.blob_id], now);
        self.finish();
        Ok(())
    }

    /// The host's transfer broke off (network, an expired token, a
    /// restart): ask for a new ticket, which says where to go on.
    pub fn upload_interrupted(&mut self, id: &str, now: u64) {
        if self
            .uploads
            .update(id, &mut self.fx, |u| {
                if u.state != UploadState::Stopped {
                    u.state = UploadState::Waiting
                }
            })
            .is_some()
        {
            self.ask_tickets(now);
        }
        self.finish();
    }

    /// The user cancels a file being sent: it stops, and shows as not sent
    /// with "retry". The host drops its transfer.
    pub fn cancel_upload(&mut self, id: &str) {
        if self
            .uploads
            .update(id, &mut self.fx, |u| (u.state, u.reason) = (UploadState::Stopped, "cancelled".into()))
            .is_some()
        {
            let chat = self.uploads.get(id).map(|u| u.chat.clone()).unwrap_or_default();
            self.own_status(&chat, id, crate::model::Status::Failed);
            self.fx.emit(Event::UploadStopped { id: id.to_string(), reason: "cancelled".into() });
        }
        self.finish();
    }

    /// Tries a stopped upload again (the host still has the file).
    pub fn retry_upload(&mut self, id: &str, now: u64) -> Result<(), Error> {
        self.uploads
            .update(id, &mut self.fx, |u| (u.state, u.reason) = (UploadState::Waiting, String::new()))
            .ok_or_else(|| Error::Invalid("no such upload".into()))?;
        self.chats.reopen(id, &mut self.fx);
        self.ask_tickets(now);
        self.finish();
        Ok(())
    }

    /// Gives up on a file for good: the upload record goes, the message
    /// stays as not sent. The host deletes its copy of the file.
    pub fn discard_upload(&mut self, id: &str) {
        if let Some(up) = self.uploads.remove(id, &mut self.fx) {
            self.own_status(&up.chat, id, crate::model::Status::Failed);
        }
        self.finish();
    }

    /// Asks for a download ticket for a file message; `Event::DownloadTicket`
    /// (or `DownloadFailed`) answers.
    pub fn download_file(&mut self, id: &str, now: u64) -> Result<(), Error> {
        let file = self.file(id).ok_or_else(|| Error::Invalid("no such file message".into()))?;
        if file.blob_id.is_empty() {
            return Err(Error::Invalid("this file has not been uploaded yet".into()));
        }
        if !self.request(
            Request::BlobDownload(f::BlobDownload { blob_id: hex_to_bytes(&file.blob_id) }),
            Pending::BlobDownload { id: id.to_string() },
            now,
        ) {
            return Err(Error::Invalid("not connected".into()));
        }
        self.finish();
        Ok(())
    }

    /// The host has the whole file, checked and decrypted: the server may
    /// delete the blob once every device it went to said so.
    pub fn download_finished(&mut self, id: &str, now: u64) {
        if let Some(file) = self.file(id).filter(|f| !f.blob_id.is_empty()) {
            self.request(
                Request::BlobFetched(f::BlobFetched { blob_ids: vec![hex_to_bytes(&file.blob_id)] }),
                Pending::BlobFetched,
                now,
            );
        }
        self.finish();
    }

    /// Deletes blobs of this account from the server (hex ids; empty ones
    /// are skipped), when the sender deletes their message for everyone:
    /// one `BlobDelete`, nothing if no id is left or the connection is not
    /// open. The server ignores ids that are not this account's.
    pub(crate) fn delete_blobs(&mut self, blob_ids: &[String], now: u64) {
        let ids: Vec<Vec<u8>> = blob_ids.iter().filter(|id| !id.is_empty()).map(|id| hex_to_bytes(id)).collect();
        if ids.is_empty() {
            return;
        }
        self.request(Request::BlobDelete(f::BlobDelete { blob_ids: ids }), Pending::BlobDelete, now);
    }

    // ------------------------------------------------------------ queries

    /// Uploads not finished (to resume after a restart, or show progress).
    pub fn uploads(&self) -> Vec<Upload> {
        self.uploads.all().cloned().collect()
    }

    /// The file of a message, if it is a file message.
    pub fn file(&self, id: &str) -> Option<FileRef> {
        match &self.chats.find(id)?.body {
            MessageBody::File { file, .. } => Some(file.clone()),
            _ => None,
        }
    }

    // ----------------------------------------------------------- internals

    /// Asks for a ticket for every upload that waits for one.
    pub(super) fn ask_tickets(&mut self, now: u64) {
        if !self.is_open() || self.handle().is_none() || self.me.unconfirmed {
            return;
        }
        for id in self.uploads.waiting() {
            let Some(u) = self.uploads.get(&id).cloned() else { continue };
            let req = Request::BlobUpload(f::BlobUpload { length: u.length, resume: hex_to_bytes(&u.blob_id) });
            if self.request(req, Pending::BlobUpload { id: id.clone() }, now) {
                self.uploads.update(&id, &mut self.fx, |u| u.state = UploadState::Asking);
            }
        }
    }

    pub(super) fn upload_ticket(&mut self, id: String, t: f::BlobTicket) {
        let ticket = Ticket::from(t);
        let Some(up) = self.uploads.update(&id, &mut self.fx, |u| {
            u.blob_id = ticket.blob_id.clone();
            u.state = UploadState::Uploading;
        }) else {
            return; // discarded meanwhile
        };
        let Some(file) = self.file(&id) else { return };
        if file.blob_id != ticket.blob_id {
            let caption = match self.chats.find(&id).map(|m| &m.body) {
                Some(MessageBody::File { caption, .. }) => caption.clone(),
                _ => String::new(),
            };
            let file = FileRef { blob_id: ticket.blob_id.clone(), ..file.clone() };
            self.chats.set_body(&id, MessageBody::File { file, caption }, &mut self.fx);
        }
        self.fx.emit(Event::UploadTicket { id, chat: up.chat, key: file.key, ticket });
    }

    pub(super) fn upload_refused(&mut self, id: String, code: Option<ErrorCode>, err: f::ErrorInfo, now: u64) {
        let resumed = self.uploads.get(&id).is_some_and(|u| !u.blob_id.is_empty());
        if transient(code) {
            self.uploads.update(&id, &mut self.fx, |u| u.state = UploadState::Waiting);
            self.link.retry_at = Some(now + super::RETRY_MS);
        } else if code == Some(ErrorCode::BlobNotFound) && resumed {
            // The unfinished blob expired (24 h) or the server lost it:
            // start over with a new one.
            self.uploads.update(&id, &mut self.fx, |u| (u.blob_id, u.state) = (String::new(), UploadState::Waiting));
            self.ask_tickets(now);
        } else {
            let reason = refusal(code, &err.message);
            self.uploads.update(&id, &mut self.fx, |u| (u.state, u.reason) = (UploadState::Stopped, reason.clone()));
            let chat = self.uploads.get(&id).map(|u| u.chat.clone()).unwrap_or_default();
            self.own_status(&chat, &id, crate::model::Status::Failed);
            self.fx.emit(Event::UploadStopped { id, reason });
        }
    }

    pub(super) fn download_refused(&mut self, id: String, code: Option<ErrorCode>, err: f::ErrorInfo) {
        let reason = refusal(code, &err.message);
        self.fx.emit(Event::DownloadFailed { id, code, reason });
    }

    pub(super) fn download_ticket(&mut self, id: String, t: f::BlobTicket) {
        let Some(file) = self.file(&id) else { return };
        let chat = self.chats.find(&id).map(|m| m.chat.clone()).unwrap_or_default();
        self.fx.emit(Event::DownloadTicket { id, chat, file, ticket: Ticket::from(t) });
    }
}

/// The end-to-end descriptor of a file whose upload finished.
fn attachment(file: &FileRef) -> Attachment {
    Attachment {
        blob_id: hex_to_bytes(&file.blob_id),
        key: hex_to_bytes(&file.key),
        digest: hex_to_bytes(&file.digest),
        size: file.size,
        mime_type: file.mime_type.clone(),
        file_name: file.file_name.clone(),
        width: file.width,
        height: file.height,
        thumbnail: B64.decode(file.thumbnail.as_bytes()).unwrap_or_default(),
        duration_ms: file.duration_ms,
        waveform: file.waveform.clone(),
    }
}

/// A received descriptor as a message body, or why it cannot be shown.
pub(super) fn received(share: FileShare) -> MessageBody {
    let Some(a) = share.attachment else {
        return MessageBody::Undecryptable { reason: "a file message without its file".into() };
    };
    if let Err(e) = a.check() {
        return MessageBody::Undecryptable { reason: format!("a file this device refuses: {e}") };
    }
    let file = FileRef {
        blob_id: hex(&a.blob_id),
        key: hex(&a.key),
        digest: hex(&a.digest),
        size: a.size,
        mime_type: a.mime_type,
        file_name: a.file_name,
        width: a.width,
        height: a.height,
        thumbnail: if a.thumbnail.is_empty() { String::new() } else { B64.encode(&a.thumbnail) },
        duration_ms: a.duration_ms,
        waveform: a.waveform,
    };
    MessageBody::File { file, caption: share.caption }
}
