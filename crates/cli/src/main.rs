//! `tether`: the primary device on the command line — a native adapter over
//! the sans-IO engine in `tether-client`.
//!
//! `main` parses the command line and hands it to the command's module in
//! `cmd/`; `session` drives the engine over a WebSocket, `store` keeps its
//! data in SQLite, `format` writes messages and times, `qr` reads link codes
//! from images, `tls` sets up `wss://` (the system's roots and `--ca`).

mod cmd;
mod format;
mod qr;
mod session;
mod store;
mod tls;
mod transfer;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tether: end-to-end encrypted messaging, from the command line.
///
/// This is a primary device: it holds the account key, links companions
/// (the browser extension) by QR or pairing code, and chats.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, after_help = START)]
struct Cli {
    /// Where this device keeps its keys and history [default: ~/.tether].
    #[arg(long, env = "TETHER_HOME", global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Also trust this CA certificate (PEM) for https:// servers, e.g. a private CA's.
    #[arg(long, env = "TETHER_CA", global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The first steps, under `tether --help`.
const START: &str = "First steps:
  tether register alice --server http://127.0.0.1:7780
  (or --server https://chat.example.org; add --ca FILE for a private CA)
  tether contacts add bob --name Bob
  tether send bob \"hello\"              (prints the message's id)
  tether read bob                       (each message starts with its id)
  tether reply 3f2a9b1c \"see you then\"  (also: react, edit, delete)
  tether send me \"buy milk\"            (your note to self)
  tether group create Friends --members bob,carol
  tether send Friends \"hello all\"
  tether verify bob
  tether listen";

/// The commands; each one's help is the doc comment of its arguments
/// struct in `cmd/`.
#[derive(Debug, Subcommand)]
enum Command {
    Register(cmd::register::Register),
    RecoveryPhrase(cmd::recovery::RecoveryPhrase),
    Restore(cmd::recovery::Restore),
    Link(cmd::link::Link),
    Devices(cmd::devices::Devices),
    Unlink(cmd::unlink::Unlink),
    Contacts(cmd::contacts::Contacts),
    Chats(cmd::chats::Chats),
    Group(cmd::groups::Group),
    Send(cmd::send::Send),
    Reply(cmd::messages::Reply),
    React(cmd::messages::React),
    Edit(cmd::messages::Edit),
    Delete(cmd::messages::Delete),
    Share(cmd::send::Share),
    SendFile(cmd::files::SendFile),
    Download(cmd::files::Download),
    Uploads(cmd::files::Uploads),
    Read(cmd::read::Read),
    Search(cmd::search::Search),
    Draft(cmd::chat::Draft),
    Disappear(cmd::chat::Disappear),
    Unread(cmd::chat::Unread),
    Requests(cmd::requests::Requests),
    Accept(cmd::requests::Accept),
    Decline(cmd::requests::Decline),
    Block(cmd::requests::Block),
    Unblock(cmd::requests::Unblock),
    Report(cmd::requests::Report),
    Listen(cmd::listen::Listen),
    Status(cmd::status::Status),
    Logout(cmd::logout::Logout),
    Verify(cmd::verify::Verify),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tls::set_extra_ca(cli.ca);
    let home = cmd::Home::new(cli.data);
    let result = match cli.command {
        Command::Register(c) => c.run(&home).await,
        Command::RecoveryPhrase(c) => c.run(&home).await,
        Command::Restore(c) => c.run(&home).await,
        Command::Link(c) => c.run(&home).await,
        Command::Devices(c) => c.run(&home).await,
        Command::Unlink(c) => c.run(&home).await,
        Command::Contacts(c) => c.run(&home).await,
        Command::Chats(c) => c.run(&home).await,
        Command::Group(c) => c.run(&home).await,
        Command::Send(c) => c.run(&home).await,
        Command::Reply(c) => c.run(&home).await,
        Command::React(c) => c.run(&home).await,
        Command::Edit(c) => c.run(&home).await,
        Command::Delete(c) => c.run(&home).await,
        Command::Share(c) => c.run(&home).await,
        Command::SendFile(c) => c.run(&home).await,
        Command::Download(c) => c.run(&home).await,
        Command::Uploads(c) => c.run(&home).await,
        Command::Read(c) => c.run(&home).await,
        Command::Search(c) => c.run(&home).await,
        Command::Draft(c) => c.run(&home).await,
        Command::Disappear(c) => c.run(&home).await,
        Command::Unread(c) => c.run(&home).await,
        Command::Requests(c) => c.run(&home).await,
        Command::Accept(c) => c.run(&home).await,
        Command::Decline(c) => c.run(&home).await,
        Command::Block(c) => c.run(&home).await,
        Command::Unblock(c) => c.run(&home).await,
        Command::Report(c) => c.run(&home).await,
        Command::Listen(c) => c.run(&home).await,
        Command::Status(c) => c.run(&home).await,
        Command::Logout(c) => c.run(&home).await,
        Command::Verify(c) => c.run(&home).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e}");
            ExitCode::FAILURE
        }
    }
}
