//! `tether-server`: command line and process setup around [`tether_server::Server`].

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tether_server::{Config, Registration, Server, SystemClock};
use tokio::net::TcpListener;

/// Tether relay server: end-to-end encrypted messages, stored and forwarded.
///
/// Settings come from flags, then TETHER_* environment variables, then the
/// --config TOML file, then defaults.
#[derive(Debug, Parser)]
#[command(name = "tether-server", version, about)]
struct Args {
    /// Address to listen on [default: 127.0.0.1:7780].
    #[arg(long, env = "TETHER_LISTEN", global = true)]
    listen: Option<String>,
    /// Directory for the embedded SQLite database and the server's key [default: ./data].
    #[arg(long, env = "TETHER_DATA", global = true)]
    data: Option<PathBuf>,
    /// A TOML file with any setting (see docs/operations.md).
    #[arg(long, env = "TETHER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Who may register: open (default on loopback) or token (default elsewhere).
    #[arg(long, env = "TETHER_REGISTRATION", value_enum)]
    registration: Option<Registration>,
    /// Most linked companions per account [default: 4].
    #[arg(long, env = "TETHER_MAX_COMPANIONS")]
    max_companions: Option<u32>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Registration tokens (for --registration token).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the server key's fingerprint (what clients pin).
    Fingerprint,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a single-use registration token and print it.
    Create,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &Args) -> Result<Config, tether_server::Error> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = &args.listen {
        c.listen = v.clone();
    }
    if let Some(v) = &args.data {
        c.data = v.clone();
    }
    if let Some(v) = args.registration {
        c.registration = Some(v);
    }
    if let Some(v) = args.max_companions {
        c.max_companions = v;
    }
    Ok(c)
}

async fn run(args: Args) -> Result<(), tether_server::Error> {
    let config = config(&args)?;
    let listen = config.listen.clone();
    let policy = config.registration_policy();
    let server = Server::open(config, Arc::new(SystemClock)).await?;
    match args.command {
        Some(Command::Token { command: TokenCommand::Create }) => {
            println!("{}", server.create_token().await?);
            return Ok(());
        }
        Some(Command::Fingerprint) => {
            println!("{}", server.fingerprint());
            return Ok(());
        }
        None => {}
    }
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|source| tether_server::Error::Listen { addr: listen.clone(), source })?;
    tracing::info!(registration = ?policy, "registration policy");
    server.serve(listener, shutdown_signal()).await?;
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
    tracing::info!("shutting down: closing connections");
}
