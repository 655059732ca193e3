//! The phone web app (the account's primary in a browser), served at `/`
//! from the files `cargo xtask build` puts in `dist/app`, embedded in the
//! binary at build time (see `build.rs`; a placeholder page when they were
//! not built).
//!
//! Every answer carries the headers an app shell needs: a content type by
//! extension (`application/manifest+json`, `application/wasm`,
//! `text/javascript`, …), an ETag (the shell is revalidated, not trusted
//! for a fixed time: the service worker keeps it for offline use), and
//! security headers: a Content-Security-Policy that lets in only this
//! origin's scripts (plus compiling its wasm) and connections (the
//! WebSocket, `ws:`/`wss:` of this host), and a Permissions-Policy that
//! allows the camera (to scan a companion's QR) to this origin only.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

/// `dist/app`, or the placeholder page (build.rs names the directory).
static APP: Dir<'static> = include_dir!("$TETHER_APP_DIR");

/// The routes of the web app: `/` and every embedded file. The server's
/// own routes (`/healthz`, `/v1/ws`, …) are more specific and win.
pub fn router() -> Router {
    Router::new().route("/", get(index)).route("/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    // include_dir paths are relative, `/`-separated, without `..`.
    let Some(file) = (!path.split('/').any(|p| p == ".." || p.is_empty())).then(|| APP.get_file(path)).flatten() else {
        return (StatusCode::NOT_FOUND, security_headers(request), "not found").into_response();
    };
    let body = file.contents();
    let etag = format!("\"{:016x}\"", fnv1a(body));
    let mut headers = security_headers(request);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control(path)));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if path == "sw.js" {
        // The worker controls the whole origin from the root.
        headers.insert("service-worker-allowed", HeaderValue::from_static("/"));
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, body).into_response()
}

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Everything is revalidated (a cheap 304 with the ETag): the service
/// worker holds the shell for offline use and replaces it when its
/// precache version changes, so a stale HTTP cache must never shadow an
/// update. The worker's own script is never taken from the HTTP cache.
fn cache_control(path: &str) -> &'static str {
    if path == "sw.js" { "no-store" } else { "no-cache" }
}

/// The headers on every answer of the web app.
fn security_headers(request: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    // `connect-src 'self'` covers ws:/wss: of this host in current
    // browsers; naming them keeps older ones working.
    let host = request.get(header::HOST).and_then(|v| v.to_str().ok()).filter(|host| {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
    });
    let sockets = host.map(|host| format!(" ws://{host} wss://{host}")).unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self'{sockets}; worker-src 'self'; manifest-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h
}

/// FNV-1a, 64 bits: an ETag only needs to change with the content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_served_with_its_type_and_headers() {
        let mut request = HeaderMap::new();
        request.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7780"));
        let r = serve("index.html", &request);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("ws://127.0.0.1:7780"), "{csp}");
        assert!(r.headers()["permissions-policy"].to_str().unwrap().contains("camera=(self)"));
        // Revalidation: the same ETag answers 304.
        request.insert(header::IF_NONE_MATCH, r.headers()[header::ETAG].clone());
        assert_eq!(serve("index.html", &request).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("../Cargo.toml", &request).status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("nothing-here.js", &request).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("manifest.webmanifest"), "application/manifest+json");
        assert_eq!(content_type("wasm/tether_app_bg.wasm"), "application/wasm");
        assert_eq!(content_type("app/main.js"), "text/javascript; charset=utf-8");
    }
}
