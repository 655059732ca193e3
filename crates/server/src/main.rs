//! `tether-server`: command line and process setup around [`tether_server::Server`].

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tether_server::{Config, Registration, Server, SystemClock, Tls};
use tokio::net::TcpListener;

/// Every frame allocates (its buffer, its decoded message) on whichever of
/// tokio's threads polls the connection: mimalloc's per-thread heaps spend
/// less of the relay's CPU there than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Directory for the embedded SQLite database, the server's key and uploaded files [default: ./data].
    #[arg(long, env = "TETHER_DATA", global = true)]
    data: Option<PathBuf>,
    /// Keep the relay's state in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) instead of SQLite in
    /// --data. The server key and uploaded files stay in --data.
    #[arg(long, env = "TETHER_DATABASE_URL", value_name = "URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// A TOML file with any setting (see docs/operations.md).
    #[arg(long, env = "TETHER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Who may register: open (default on loopback) or token (default elsewhere).
    #[arg(long, env = "TETHER_REGISTRATION", value_enum)]
    registration: Option<Registration>,
    /// Most linked companions per account [default: 4].
    #[arg(long, env = "TETHER_MAX_COMPANIONS")]
    max_companions: Option<u32>,
    /// Most accounts one group message may go to (the largest group) [default: 1024].
    #[arg(long, env = "TETHER_MAX_GROUP_SIZE", value_name = "ACCOUNTS")]
    max_group_size: Option<u32>,
    /// Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key. SIGHUP reloads both files.
    #[arg(long, env = "TETHER_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "TETHER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a certificate for NAME obtained over ACME (TLS-ALPN-01 on the listen port, which must be
    /// reachable as NAME:443). Repeatable; the variable takes a comma-separated list.
    #[arg(long = "acme-domain", env = "TETHER_ACME_DOMAIN", value_name = "NAME", value_delimiter = ',')]
    acme_domains: Vec<String>,
    /// Contact address for the ACME account (expiry notices).
    #[arg(long, env = "TETHER_ACME_EMAIL", value_name = "ADDRESS")]
    acme_email: Option<String>,
    /// ACME directory URL [default: Let's Encrypt production].
    #[arg(long, env = "TETHER_ACME_DIRECTORY", value_name = "URL")]
    acme_directory: Option<String>,
    /// Where the ACME account key and certificate are kept [default: <data>/acme].
    #[arg(long, env = "TETHER_ACME_CACHE", value_name = "DIR")]
    acme_cache: Option<PathBuf>,
    /// Also trust this CA (PEM) for the ACME directory's HTTPS (a private or test CA).
    #[arg(long, env = "TETHER_ACME_CA", value_name = "FILE")]
    acme_ca: Option<PathBuf>,
    /// With TLS: also listen for plain HTTP on ADDR (e.g. 0.0.0.0:80) and redirect every request to HTTPS.
    #[arg(long, env = "TETHER_HTTP_REDIRECT", value_name = "ADDR")]
    http_redirect: Option<String>,
    /// Largest file a device may upload, in plaintext bytes [default: 67108864, 64 MiB].
    #[arg(long, env = "TETHER_MAX_FILE_SIZE", value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Most bytes of files (uploaded and unfinished) one account may hold [default: 1073741824, 1 GiB].
    #[arg(long, env = "TETHER_BLOB_QUOTA", value_name = "BYTES")]
    blob_quota: Option<u64>,
    /// Where uploaded files are kept [default: <data>/blobs].
    #[arg(long, env = "TETHER_BLOB_DIR", value_name = "DIR", global = true)]
    blob_dir: Option<PathBuf>,
    /// Keep uploaded files in an S3-compatible object store instead:
    /// s3://bucket[/prefix]. Endpoint, region and credentials come from
    /// AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    /// (and AWS_ALLOW_HTTP=true for a plain-HTTP endpoint).
    #[arg(long, env = "TETHER_BLOB_URL", value_name = "URL")]
    blob_url: Option<String>,
    /// NATS server through which several nodes wake each other's devices
    /// (nats://host:4222) [default: none, one node].
    #[arg(long, env = "TETHER_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,
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
    if let Some(v) = &args.database_url {
        c.database_url = Some(tether_server::DatabaseUrl(v.clone()));
    }
    if let Some(v) = args.registration {
        c.registration = Some(v);
    }
    if let Some(v) = args.max_companions {
        c.max_companions = v;
    }
    if let Some(v) = args.max_group_size {
        c.max_group_size = v;
    }
    if let Some(v) = &args.tls_cert {
        c.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        c.tls_key = Some(v.clone());
    }
    if !args.acme_domains.is_empty() {
        c.acme_domains = args.acme_domains.clone();
    }
    if let Some(v) = &args.acme_email {
        c.acme_email = Some(v.clone());
    }
    if let Some(v) = &args.acme_directory {
        c.acme_directory = Some(v.clone());
    }
    if let Some(v) = &args.acme_cache {
        c.acme_cache = Some(v.clone());
    }
    if let Some(v) = &args.acme_ca {
        c.acme_ca = Some(v.clone());
    }
    if let Some(v) = &args.http_redirect {
        c.http_redirect = Some(v.clone());
    }
    if let Some(v) = args.max_file_size {
        c.max_file_size = v;
    }
    if let Some(v) = args.blob_quota {
        c.blob_quota = v;
    }
    if let Some(v) = &args.blob_dir {
        c.blob_dir = Some(v.clone());
    }
    if let Some(v) = &args.blob_url {
        c.blob_url = Some(v.clone());
    }
    if let Some(v) = &args.nats_url {
        c.nats_url = Some(v.clone());
    }
    Ok(c)
}

async fn run(args: Args) -> Result<(), tether_server::Error> {
    let config = config(&args)?;
    let tls_source = config.tls()?;
    let listen = config.listen.clone();
    let http_redirect = config.http_redirect.clone();
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
    match tls_source {
        None => server.serve(listener, shutdown_signal()).await?,
        Some(source) => {
            let tls = Tls::start(&source)?;
            reload_on_sighup(tls.clone());
            if let Some(addr) = http_redirect {
                let https_port = listener.local_addr().map(|a| a.port()).unwrap_or(443);
                let plain = TcpListener::bind(&addr)
                    .await
                    .map_err(|source| tether_server::Error::Listen { addr: addr.clone(), source })?;
                tokio::spawn(async move {
                    if let Err(e) = tether_server::serve_redirect(plain, https_port).await {
                        tracing::error!("HTTP redirect: {e}");
                    }
                });
            }
            server.serve_tls(listener, &tls, shutdown_signal()).await?
        }
    }
    tracing::info!("tether-server stopped");
    Ok(())
}

/// On SIGHUP, reads the certificate files again; a file that does not load
/// leaves the current certificate in place. (With TLS on, SIGHUP no longer
/// ends the process.)
fn reload_on_sighup(tls: Tls) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch SIGHUP, certificate files will not be reloaded: {e}");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(true) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(false) => tracing::info!("SIGHUP: nothing to reload (ACME renews its certificate itself)"),
                Err(e) => tracing::error!("SIGHUP: TLS certificate not reloaded, keeping the current one: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    drop(tls);
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
