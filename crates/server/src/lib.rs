//! tether-server: the relay every Tether client talks to.
//!
//! `serve` runs the HTTP side (health, and as the relay grows the WebSocket
//! endpoint and media) on a listener the caller binds, until `shutdown`
//! resolves. Tests bind `127.0.0.1:0` and run it in-process.
#![forbid(unsafe_code)]

mod error;
mod store;

pub use error::Error;
pub use store::SqliteStore;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use std::future::Future;
use tokio::net::TcpListener;

/// Server version, reported by `/healthz`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
struct AppState {
    /// The persistent store.
    store: SqliteStore,
}

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    protocol: u16,
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting and
/// lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    store: SqliteStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let app = router(AppState { store });
    tracing::info!(%addr, version = VERSION, "tether-server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(state)
}

/// `GET /healthz`: 200 when the store answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ok = state.store.ping().await.is_ok();
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if ok { "ok" } else { "store unavailable" };
    (code, Json(Health { status, version: VERSION, protocol: tether_proto::PROTOCOL_VERSION }))
}
