//! `tether-server`: command line and process setup around [`tether_server::serve`].

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tether_server::SqliteStore;
use tokio::net::TcpListener;

/// Tether relay server: end-to-end encrypted messages, stored and forwarded.
#[derive(Debug, Parser)]
#[command(name = "tether-server", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "TETHER_LISTEN", default_value = "127.0.0.1:7780")]
    listen: String,
    /// Directory for the embedded SQLite database and the server's keys.
    #[arg(long, env = "TETHER_DATA", default_value = "./data")]
    data: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), tether_server::Error> {
    let store = SqliteStore::open(&args.data).await?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|source| tether_server::Error::Listen { addr: args.listen.clone(), source })?;
    tether_server::serve(listener, store, shutdown_signal()).await?;
    tracing::info!("tether-server stopped");
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
