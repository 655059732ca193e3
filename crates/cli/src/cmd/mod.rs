//! One module per command; each defines its arguments (clap) and `run`.
//! What several commands share is here: the data directory, opening the
//! engine, connecting, and reporting what the engine says while they wait.

pub mod chat;
pub mod chats;
pub mod contacts;
pub mod devices;
pub mod files;
pub mod groups;
pub mod link;
pub mod listen;
pub mod logout;
pub mod messages;
pub mod read;
pub mod recovery;
pub mod register;
pub mod requests;
pub mod search;
pub mod send;
pub mod status;
pub mod unlink;
pub mod verify;
pub mod wait;

use crate::format::clean_line;
use crate::session::{self, Session};
use crate::store::SqliteKv;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tether_client::{Engine, Event, Role};

/// How long a command waits for the server to answer.
pub const WAIT: Duration = Duration::from_secs(30);

/// This device's data directory, where the engine keeps keys and history.
pub struct Home {
    /// `--data`, `$TETHER_HOME`, or `~/.tether`.
    pub dir: PathBuf,
}

impl Home {
    /// `dir`, or `~/.tether` when none is given.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.unwrap_or_else(|| {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".tether")
        });
        Self { dir }
    }

    /// The engine on this directory's store.
    pub fn open(&self) -> Result<Engine, String> {
        let store = SqliteKv::open(&self.dir)?;
        Engine::open(Box::new(store), Box::new(session::OsRandom), session::client_info()).map_err(fail)
    }

    /// The engine, for commands that need an account.
    pub fn open_registered(&self) -> Result<Engine, String> {
        let engine = self.open()?;
        registered(&engine)?;
        Ok(engine)
    }
}

/// Fails, saying what to do, if this device has no account (never had one,
/// or was removed or logged out).
pub fn registered(engine: &Engine) -> Result<(), String> {
    match engine.role() {
        Role::Unlinked { reason: Some(r) } => {
            Err(format!(
                "{r} Register again with `tether register <handle> --server URL` (or restore an account from its recovery phrase: `tether restore <handle> --server URL`)."
            ))
        }
        Role::Unlinked { reason: None } => {
            Err("this device is not registered: run `tether register <handle> --server URL`".into())
        }
        _ => Ok(()),
    }
}

/// A session on `engine`, connected.
pub async fn connected(engine: Engine) -> Result<Session, String> {
    let mut s = Session::new(engine);
    s.connect().await?;
    Ok(s)
}

/// Catches up with the server (this also sends the outbox) for a command
/// that shows what this computer has: the session, and why it is offline
/// if it is (the command then shows what it has).
pub async fn caught_up(engine: Engine) -> (Session, Option<String>) {
    let mut s = Session::new(engine);
    let offline = match s.connect().await {
        Ok(()) => s.settle(WAIT, report).await.err(),
        Err(e) => Some(e),
    };
    (s, offline)
}

/// Prints the problems the engine reports while a command runs.
pub fn report(e: &Event) {
    match e {
        Event::Error { message, .. } => eprintln!("tether: {}", clean_line(message)),
        Event::SafetyWarning { handle, warning } => eprintln!("tether: ⚠ {}: {}", clean_line(handle), clean_line(warning)),
        _ => {}
    }
}

/// An engine error for the terminal, with the command that fixes it where
/// there is one (the engine itself names no CLI commands).
pub fn fail(e: tether_client::Error) -> String {
    use tether_client::Error;
    match e {
        Error::NotRegistered => format!("{e}: run `tether register <handle> --server URL`"),
        Error::UnknownContact(ref h) => format!("{e} (`tether contacts add {h}`)"),
        Error::UnknownDevice(_) => format!("{e} (see `tether devices`)"),
        Error::Offline => format!("{e}: is it running? (`tether status` shows its address)"),
        e => e.to_string(),
    }
}

/// A handle as the protocol spells it (`+49 151 …` → `+49151…`).
pub fn handle(text: &str) -> Result<String, String> {
    tether_proto::normalize_handle(text).map_err(|e| e.to_string())
}

/// Asks a yes/no question on the terminal; anything but yes is no.
pub fn confirm(question: &str) -> Result<bool, String> {
    print!("{question}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}
