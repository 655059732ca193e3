//! The blob routes (docs/protocol.md §14.3): `HEAD`, `PATCH`, `GET` and
//! `OPTIONS /v1/blobs/<32 hex digits>`, authorised by a bearer token.
//!
//! Uploads follow tus 1.0 core: `HEAD` tells the offset, `PATCH` appends
//! at exactly that offset, streaming the body to the blob's bytes
//! (files.rs: a `.part` file, or part objects of at most 4 MiB; never the
//! whole body in memory), and answers `204` with the new offset once the
//! bytes are durable. A body that stops early keeps what arrived. The
//! upload is whole when the offset reaches the length (a file is renamed
//! to `<hex>` and the directory fsynced). Downloads stream the bytes,
//! whole or by one `Range`.
//!
//! Refusals are JSON `{"code", "message"}` with an error code of
//! tether-proto. CORS: any origin, with the headers tus and ranges need.

use super::files::Append;
use super::token::{Direction, Grant, Refused};
use super::{UploadLock, Wait};
use crate::Shared;
use crate::store::{Blob, BlobId};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tether_proto::ErrorCode;
use tower_http::cors::{Any, CorsLayer};

const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION: &str = "1.0.0";
/// The content type tus requires on a PATCH.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// A PATCH body that sends nothing for this long is taken as stopped.
const BODY_IDLE: Duration = Duration::from_secs(60);

/// The blob routes, with CORS and without a body size limit (a PATCH body
/// may be as long as the blob; the handler enforces the blob's length).
pub fn router(s: Arc<Shared>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::HEAD, Method::PATCH, Method::GET, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::RANGE, UPLOAD_OFFSET, TUS_RESUMABLE])
        .expose_headers([
            UPLOAD_OFFSET,
            UPLOAD_LENGTH,
            TUS_RESUMABLE,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
        ])
        .max_age(Duration::from_secs(3600));
    Router::new()
        .route("/v1/blobs/{id}", get(download).head(head).patch(patch).options(options))
        .layer(DefaultBodyLimit::disable())
        .layer(cors)
        .with_state(s)
}

/// A refusal: JSON `{"code", "message"}`, counted in the metrics.
fn refuse(s: &Shared, status: StatusCode, code: ErrorCode, message: &str) -> Response {
    s.metrics.error(code);
    let body = serde_json::json!({ "code": code.as_str(), "message": message });
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The store failed: logged, answered `500 internal`.
fn store_failed(s: &Shared, e: impl std::fmt::Display) -> Response {
    tracing::error!("store: {e}");
    refuse(s, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the server's store failed; try again")
}

/// The blob's bytes cannot be read or written: logged, answered `500`.
fn files_failed(s: &Shared, id: &BlobId, what: &str, e: std::io::Error) -> Response {
    tracing::error!(blob = %id, "{what} failed in {}: {e}", s.blobs.files.describe());
    refuse(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "the server cannot store or read the blob; try again",
    )
}

fn not_found(s: &Shared) -> Response {
    refuse(
        s,
        StatusCode::NOT_FOUND,
        ErrorCode::BlobNotFound,
        "no such blob: it expired, was fetched by all, or never was",
    )
}

fn bad_token(s: &Shared, why: &str) -> Response {
    refuse(s, StatusCode::UNAUTHORIZED, ErrorCode::BadToken, why)
}

/// Adds the tus headers every upload answer carries.
fn with_offset(mut r: Response, offset: u64, length: Option<u64>) -> Response {
    let h = r.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    if let Some(length) = length {
        h.insert(UPLOAD_LENGTH, HeaderValue::from(length));
    }
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Checks the request's bearer token for this blob and direction, and that
/// its device is still active.
async fn authorise(s: &Shared, headers: &HeaderMap, id: &BlobId, direction: Direction) -> Result<Grant, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| bad_token(s, "an `Authorization: Bearer <token>` header is required"))?;
    let grant = s.blobs.key.verify(token, id, direction, s.clock.now_ms()).map_err(|e| {
        bad_token(
            s,
            match e {
                Refused::Malformed => "the token is not valid",
                Refused::Expired => "the token expired: ask for a new ticket",
                Refused::Mismatch => "the token is for another blob or direction",
            },
        )
    })?;
    let active = s.active_devices(&grant.handle).await.map_err(|e| store_failed(s, e))?;
    if !active.is_some_and(|a| a.contains(&grant.device_id)) {
        return Err(bad_token(s, "the token's device was removed"));
    }
    Ok(grant)
}

/// The blob a request names, if its path is an id and it is stored; for
/// uploads, only the owner's.
async fn stored_blob(s: &Shared, id: &BlobId, owner: Option<&str>) -> Result<Blob, Response> {
    match s.store.blob(id).await {
        Ok(Some(b)) if owner.is_none_or(|h| b.handle == h) => Ok(b),
        Ok(_) => Err(not_found(s)),
        Err(e) => Err(store_failed(s, e)),
    }
}

/// `OPTIONS` without CORS preflight headers (a preflight is answered by
/// the CORS layer): what the route allows.
async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("HEAD, PATCH, GET, OPTIONS"));
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    h.insert(HeaderName::from_static("tus-version"), HeaderValue::from_static(TUS_VERSION));
    r
}

/// `HEAD`: how many bytes of the upload the server holds.
async fn head(State(s): State<Arc<Shared>>, Path(hex): Path<String>, headers: HeaderMap) -> Response {
    let Some(id) = BlobId::from_hex(&hex) else { return not_found(&s) };
    let grant = match authorise(&s, &headers, &id, Direction::Upload).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    // Wait for a PATCH in progress, so the offset is the one it left.
    let lock = s.blobs.lock(id, Wait::Patiently).await;
    let blob = match stored_blob(&s, &id, Some(&grant.handle)).await {
        Ok(b) => b,
        Err(r) => {
            if let Some(lock) = lock {
                lock.gone();
            }
            return r;
        }
    };
    if blob.complete
        && let Some(lock) = lock
    {
        lock.gone();
    }
    match s.blobs.received(&blob).await {
        Ok(offset) => with_offset(StatusCode::OK.into_response(), offset, Some(blob.length)),
        Err(e) => files_failed(&s, &id, "reading an upload's offset", e),
    }
}

/// Why the body of a PATCH ended.
enum Stop {
    /// All of it arrived.
    End,
    /// The connection broke or went quiet: what arrived is kept.
    Broken,
    /// The server is shutting down: what arrived is kept.
    Shutdown,
    /// More bytes than the blob has left: nothing of this PATCH is kept.
    TooMuch,
    /// Another request wrote at this offset first (another node's PATCH
    /// of the same upload): nothing of this PATCH is kept.
    Raced,
    /// A newer PATCH of the same upload asked this one to stop: what
    /// arrived is kept.
    TakenOver,
    /// Writing the bytes failed.
    Io(std::io::Error),
}

/// `PATCH`: appends the body at the server's offset, in a task of its own:
/// when the client goes away, the HTTP stack drops the request's handler,
/// and a write still under way would land after the upload's lock was
/// released, behind a newer PATCH's bytes. The task runs to its end
/// instead (the body stops, what arrived is kept and synced), and only
/// then lets the upload go.
async fn patch(State(s): State<Arc<Shared>>, Path(hex): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let failed = s.clone();
    match tokio::spawn(append_patch(s, hex, headers, body)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("a PATCH failed: {e}");
            refuse(
                &failed,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the server cannot store the upload",
            )
        }
    }
}

async fn append_patch(s: Arc<Shared>, hex: String, headers: HeaderMap, body: Body) -> Response {
    let Some(id) = BlobId::from_hex(&hex) else { return not_found(&s) };
    let grant = match authorise(&s, &headers, &id, Direction::Upload).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM) {
        return refuse(
            &s,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "a PATCH needs Content-Type: application/offset+octet-stream",
        );
    }
    let Some(claimed) = headers.get(UPLOAD_OFFSET).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    else {
        return refuse(&s, StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "a PATCH needs an Upload-Offset header");
    };
    // A PATCH in progress of the same upload is one its uploader gave up
    // (it sends again): asked to stop, it keeps what arrived.
    let Some(lock) = s.blobs.lock(id, Wait::TakingOver).await else {
        let offset = match stored_blob(&s, &id, Some(&grant.handle)).await {
            Ok(b) => match s.blobs.received(&b).await {
                Ok(n) => n,
                Err(e) => return files_failed(&s, &id, "reading an upload's offset", e),
            },
            Err(r) => return r,
        };
        let r = refuse(&s, StatusCode::CONFLICT, ErrorCode::BadRequest, "another PATCH of this upload is in progress");
        return with_offset(r, offset, None);
    };
    let blob = match stored_blob(&s, &id, Some(&grant.handle)).await {
        Ok(b) => b,
        Err(r) => {
            lock.gone();
            return r;
        }
    };
    let offset = match s.blobs.received(&blob).await {
        Ok(n) => n,
        Err(e) => return files_failed(&s, &id, "reading an upload's offset", e),
    };
    if blob.complete {
        lock.gone();
        let r = refuse(&s, StatusCode::CONFLICT, ErrorCode::BadRequest, "the upload is whole already");
        return with_offset(r, offset, Some(blob.length));
    }
    if claimed != offset {
        let r = refuse(
            &s,
            StatusCode::CONFLICT,
            ErrorCode::BadRequest,
            "Upload-Offset is not the server's: go on from the Upload-Offset of this answer",
        );
        return with_offset(r, offset, Some(blob.length));
    }
    let room = blob.length - offset;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > room) {
        let r =
            refuse(&s, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BlobTooLarge, "the body goes past the blob's length");
        return with_offset(r, offset, Some(blob.length));
    }

    let mut appending = match s.blobs.files.append(&id, offset).await {
        Ok(a) => a,
        Err(e) => return files_failed(&s, &id, "opening an upload", e),
    };
    let (mut stop, written) = append(&s, &lock, appending.as_mut(), body, room).await;
    let mut kept = written;
    // Durable before the answer. Nothing is kept of a body that was too
    // long. A PATCH that lost a race at an offset (to another node's PATCH
    // of the same upload, which carries the same bytes) keeps the parts it
    // wrote before: they are the upload's, and the other's follow them.
    let done = match stop {
        Stop::TooMuch => {
            kept = 0;
            appending.abort().await
        }
        Stop::Raced => Ok(()),
        _ => appending.commit().await,
    };
    match done {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => stop = Stop::Raced,
        Err(e) => return files_failed(&s, &id, "storing an upload", e),
    }
    if let Stop::Raced = stop {
        kept = match s.blobs.received(&blob).await {
            Ok(n) => n.saturating_sub(offset),
            Err(e) => return files_failed(&s, &id, "reading an upload's offset", e),
        };
    }
    s.metrics.blob_bytes_received.inc_by(kept);
    let now = offset + kept;
    tracing::debug!(blob = %id, offset, bytes = kept, "blob bytes received");
    if now == blob.length {
        if let Err(r) = complete(&s, &blob).await {
            return r;
        }
        // Whole: nothing more to write, so nothing to hold.
        lock.gone();
    } else {
        drop(lock);
    }
    let r = match stop {
        Stop::End => StatusCode::NO_CONTENT.into_response(),
        Stop::TooMuch => {
            refuse(&s, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BlobTooLarge, "the body goes past the blob's length")
        }
        Stop::Broken => {
            refuse(&s, StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "the body stopped early; what arrived is kept")
        }
        Stop::Shutdown => refuse(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::GoingAway,
            "the server is shutting down; what arrived is kept",
        ),
        Stop::TakenOver => refuse(
            &s,
            StatusCode::CONFLICT,
            ErrorCode::BadRequest,
            "a newer PATCH of this upload took over; what arrived is kept",
        ),
        Stop::Raced => refuse(
            &s,
            StatusCode::CONFLICT,
            ErrorCode::BadRequest,
            "another PATCH of this upload wrote at this offset first: go on from HEAD's Upload-Offset",
        ),
        Stop::Io(e) => {
            tracing::error!(blob = %id, "writing an upload failed: {e}");
            refuse(&s, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the server cannot store the upload")
        }
    };
    with_offset(r, now, None)
}

/// Streams `body` to the upload, at most `room` bytes; returns why it
/// stopped and how many bytes it wrote.
async fn append(s: &Shared, lock: &UploadLock<'_>, to: &mut dyn Append, body: Body, room: u64) -> (Stop, u64) {
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    loop {
        let next = tokio::select! {
            () = s.shutdown.cancelled() => return (Stop::Shutdown, written),
            () = lock.wanted() => return (Stop::TakenOver, written),
            next = tokio::time::timeout(BODY_IDLE, stream.next()) => next,
        };
        let chunk = match next {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => return (Stop::End, written),
            Ok(Some(Err(_))) | Err(_) => return (Stop::Broken, written),
        };
        if written + chunk.len() as u64 > room {
            return (Stop::TooMuch, written);
        }
        if let Err(e) = to.write(chunk.clone()).await {
            let stop = if e.kind() == std::io::ErrorKind::AlreadyExists { Stop::Raced } else { Stop::Io(e) };
            return (stop, written);
        }
        written += chunk.len() as u64;
    }
}

/// The upload is whole: its bytes become a whole blob (a `.part` file is
/// renamed, durably), then the record says so.
async fn complete(s: &Shared, blob: &Blob) -> Result<(), Response> {
    s.blobs.files.finish(&blob.id).await.map_err(|e| files_failed(s, &blob.id, "finishing an upload", e))?;
    match s.store.complete_blob(&blob.id).await {
        Ok(true) => {
            s.metrics.blob_uploads.inc();
            tracing::info!(blob = %blob.id, length = blob.length, "blob upload complete");
            Ok(())
        }
        Ok(false) => {
            // Expired meanwhile.
            s.blobs.delete_files(&blob.id).await;
            Err(not_found(s))
        }
        Err(e) => Err(store_failed(s, e)),
    }
}

/// A `Range` header, as far as the blob routes take it.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No range, or one this server ignores (several, or malformed): the
    /// whole blob (RFC 9110 §14.2 lets a server ignore a Range).
    Whole,
    /// Bytes `.0` to `.1`, both included.
    Part(u64, u64),
    /// A range that starts at or past the end.
    Unsatisfiable,
}

fn parse_range(value: Option<&HeaderValue>, length: u64) -> Range {
    let Some(spec) = value.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Range::Whole };
    let number =
        |t: &str| (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit())).then(|| t.parse::<u64>().ok()).flatten();
    match (a.trim(), b.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => Range::Unsatisfiable,
            Some(n) => Range::Part(length.saturating_sub(n), length - 1),
            None => Range::Whole,
        },
        (first, "") => match number(first) {
            Some(a) if a >= length => Range::Unsatisfiable,
            Some(a) => Range::Part(a, length - 1),
            None => Range::Whole,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a > b => Range::Whole,
            (Some(a), Some(_)) if a >= length => Range::Unsatisfiable,
            (Some(a), Some(b)) => Range::Part(a, b.min(length - 1)),
            _ => Range::Whole,
        },
    }
}

/// `GET`: the whole blob, or one range of it, streamed from its file.
async fn download(State(s): State<Arc<Shared>>, Path(hex): Path<String>, headers: HeaderMap) -> Response {
    let Some(id) = BlobId::from_hex(&hex) else { return not_found(&s) };
    if let Err(r) = authorise(&s, &headers, &id, Direction::Download).await {
        return r;
    }
    let blob = match stored_blob(&s, &id, None).await {
        Ok(b) if b.complete => b,
        Ok(_) => return not_found(&s),
        Err(r) => return r,
    };
    let length = blob.length;
    let (status, first, last) = match parse_range(headers.get(header::RANGE), length) {
        Range::Whole => (StatusCode::OK, 0, length - 1),
        Range::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Range::Unsatisfiable => {
            let mut r =
                refuse(&s, StatusCode::RANGE_NOT_SATISFIABLE, ErrorCode::BadRequest, "the range is outside the blob");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let stream = match s.blobs.files.read(&id, first, last).await {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(blob = %id, "a whole blob's bytes are missing: {e}");
            return not_found(&s);
        }
        Err(e) => return files_failed(&s, &id, "reading a blob", e),
    };
    let n = last - first + 1;
    // A shutdown cuts a download short (the client resumes by range)
    // rather than waiting for a slow reader.
    let stream = stream.take_until(s.shutdown.clone().cancelled_owned());
    let body = Body::from_stream(stream);
    s.metrics.blob_downloads.inc();
    s.metrics.blob_bytes_sent.inc_by(n);
    tracing::debug!(blob = %id, first, bytes = n, "blob download");
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{length}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, length: u64) -> Range {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), length)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 100), Range::Whole);
        assert_eq!(range("bytes=0-", 100), Range::Part(0, 99));
        assert_eq!(range("bytes=10-19", 100), Range::Part(10, 19));
        assert_eq!(range("bytes=90-200", 100), Range::Part(90, 99), "the end is clamped");
        assert_eq!(range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(range("bytes=-1000", 100), Range::Part(0, 99));
        assert_eq!(range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=100-120", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Range::Unsatisfiable);
        for ignored in ["bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes=-", "bytes=+1-2"] {
            assert_eq!(range(ignored, 100), Range::Whole, "{ignored}");
        }
    }
}
