//! `--http-redirect ADDR`: a plain-HTTP listener beside the TLS one that
//! answers every request with a permanent redirect (308) to the same path
//! over HTTPS, so a browser given `chat.example.org` ends up on TLS. It
//! serves nothing else.

use crate::Error;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// Serves redirects on `listener` to `https://<the request's host>:<https_port>`
/// (no port when it is 443) until the process ends.
pub async fn serve_redirect(listener: TcpListener, https_port: u16) -> Result<(), Error> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let app = axum::Router::new().fallback(redirect).with_state(https_port);
    tracing::info!(%addr, https_port, "HTTP redirect to HTTPS listening");
    axum::serve(listener, app).await.map_err(|source| Error::Listen { addr, source })
}

/// One redirect: 308 to the same path and query over HTTPS; 400 without a
/// usable Host header.
async fn redirect(State(https_port): State<u16>, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(host_name);
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "a Host header naming this server is needed").into_response();
    };
    let authority = if https_port == 443 { host.to_string() } else { format!("{host}:{https_port}") };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match HeaderValue::from_str(&format!("https://{authority}{path}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The host name (or IP literal) of a Host header, without its port; `None`
/// if it holds anything a host name cannot.
fn host_name(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_headers_lose_their_port_and_odd_ones_are_refused() {
        assert_eq!(host_name("chat.example.org"), Some("chat.example.org"));
        assert_eq!(host_name("chat.example.org:80"), Some("chat.example.org"));
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(host_name("evil.example/path"), None);
        assert_eq!(host_name("a.example:x"), None);
        assert_eq!(host_name(""), None);
    }
}
