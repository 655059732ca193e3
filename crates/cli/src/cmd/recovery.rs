//! `tether recovery-phrase` and `tether restore`: the account's recovery
//! phrase, and restoring the account from it on this computer.

use super::{Home, WAIT, connected, fail, handle, report};
use crate::session::now;
use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use tether_client::{Event, Role};
use tether_proto::ErrorCode;

/// Prints the phrase as numbered words, four to a line.
pub fn print_phrase(phrase: &str) {
    let words: Vec<&str> = phrase.split(' ').collect();
    for (row, chunk) in words.chunks(4).enumerate() {
        let line: Vec<String> =
            chunk.iter().enumerate().map(|(i, w)| format!("{:>2}. {w:<10}", row * 4 + i + 1)).collect();
        println!("  {}", line.join(" ").trim_end());
    }
}

/// What `tether register` prints about the phrase.
pub fn print_for_new_account(phrase: &str) {
    println!("\nRecovery phrase: write these 24 words down; they restore your account:");
    print_phrase(phrase);
    println!("Anyone who has them can take your account over: keep them offline.");
    println!("(`tether recovery-phrase` shows them again; `tether restore <handle>` uses them.)");
}

/// Show the account's recovery phrase (primary only).
#[derive(Debug, clap::Args)]
pub struct RecoveryPhrase {
    /// The 24 words on one line, space-separated, nothing else (for scripts).
    #[arg(long)]
    plain: bool,
}

impl RecoveryPhrase {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        if !matches!(engine.role(), Role::Primary { .. }) {
            return Err("only the primary device (the one that registered) has the recovery phrase".into());
        }
        let phrase = engine.recovery_phrase().map_err(fail)?;
        if self.plain {
            println!("{phrase}");
        } else {
            println!(
                "Recovery phrase of {} (these 24 words restore the account):",
                engine.handle().unwrap_or_default()
            );
            print_phrase(&phrase);
        }
        Ok(())
    }
}

/// Restore an account on this computer from its recovery phrase (read from
/// standard input, or `--phrase-file`; never from the command line). This
/// computer becomes the account's primary; every other device of the
/// account is logged out. Contacts and chats are not restored.
#[derive(Debug, clap::Args)]
pub struct Restore {
    /// The account's handle.
    handle: String,
    /// The server, e.g. http://127.0.0.1:7780.
    #[arg(long, env = "TETHER_SERVER", value_name = "URL")]
    server: String,
    /// Read the phrase from this file instead of standard input.
    #[arg(long, value_name = "FILE")]
    phrase_file: Option<PathBuf>,
}

impl Restore {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let handle = handle(&self.handle)?;
        let mut engine = home.open()?;
        if let Some(h) = engine.handle() {
            return Err(format!("this device is already registered as {h} (data in {})", home.dir.display()));
        }
        let phrase = match &self.phrase_file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => read_phrase()?,
        };
        engine.restore(&handle, &self.server, &phrase, now()).map_err(fail)?;
        drop(phrase);
        let mut s = connected(engine).await?;
        s.wait(WAIT, |_, e| match e? {
            Event::Registered { .. } => Some(Ok(())),
            Event::Error { code: Some(ErrorCode::UnknownAccount), .. } => {
                Some(Err(format!("no account {handle} on {}", self.server)))
            }
            Event::Error { message, .. } => Some(Err(message)),
            _ => None,
        })
        .await??;
        s.settle(WAIT, report).await?;
        s.close().await;
        println!("Restored @{handle} on this computer; your other devices were logged out.");
        println!("Contacts and chats are not in the phrase: add your contacts again (`tether contacts add <handle>`).");
        Ok(())
    }
}

/// The phrase from standard input: on a terminal, lines until 24 words
/// came; from a pipe or file, all of it.
fn read_phrase() -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut all = String::new();
        stdin.lock().read_to_string(&mut all).map_err(|e| format!("cannot read the phrase: {e}"))?;
        return Ok(all);
    }
    eprintln!("Type the 24 words of the recovery phrase (Enter after each line; numbers are ignored):");
    let mut all = String::new();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("cannot read the phrase: {e}"))?;
        all.push_str(&line);
        all.push('\n');
        let words =
            all.split_whitespace().filter(|w| !w.trim_end_matches(['.', ')', ':']).chars().all(|c| c.is_ascii_digit()));
        if words.count() >= tether_client::PHRASE_WORDS {
            break;
        }
    }
    Ok(all)
}
