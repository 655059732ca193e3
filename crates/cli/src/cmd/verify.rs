//! `tether verify`: the safety number shared with a contact; mark it
//! verified after comparing it, or check a picture of their code.

use super::{Home, WAIT, connected, fail, handle, report};
use crate::format::clean_line;
use crate::qr;
use std::path::PathBuf;
use tether_client::{Comparison, Engine};

/// Show the safety number you share with a contact, and verify it.
///
/// Compare the 60 digits with them (in person or on a call), or scan the
/// code their screen shows. If they match, nobody (not the server either)
/// sits between you. The number changes when either account's key does.
#[derive(Debug, clap::Args)]
pub struct Verify {
    /// The contact's handle.
    contact: String,
    /// The digits match what they see: mark them verified.
    #[arg(long, conflicts_with = "scan")]
    confirm: bool,
    /// A picture (PNG or JPEG) of the code their screen shows: checked
    /// against this number, and marked verified if it matches.
    #[arg(long, value_name = "IMAGE")]
    scan: Option<PathBuf>,
}

impl Verify {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open_registered()?;
        let chat = handle(&self.contact)?;
        let Some(c) = engine.contact(&chat) else {
            return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
        };
        if c.account_key.is_empty() && c.warning.is_none() {
            // Their key was never fetched: fetch it now.
            let mut s = connected(engine).await?;
            s.settle(WAIT, report).await?;
            s.close().await;
            engine = home.open_registered()?;
        }
        if let Some(w) = engine.contact(&chat).and_then(|c| c.warning.clone()) {
            return Err(format!(
                "{chat}: {}\nNo safety number until you accept their new key: `tether contacts trust {chat}` (it starts unverified).",
                clean_line(&w)
            ));
        }
        if let Some(image) = &self.scan {
            let text = qr::decode_file(image)?;
            return match engine.verify_scanned(&chat, &text).map_err(fail)? {
                Comparison::Match => {
                    println!("✓ The code matches: {chat} is verified.");
                    Ok(())
                }
                Comparison::Mismatch => Err(format!(
                    "✗ the code does NOT match: {chat}'s screen shows other keys than this device has. Someone (the server?) \
                     may be in between; do not mark them verified. Check that both of you are on the latest keys and compare again."
                )),
                Comparison::WrongPair => {
                    Err(format!("that code is not {chat}'s safety number with you (another contact's, or your own screen's)"))
                }
            };
        }
        if self.confirm {
            engine.mark_verified(&chat).map_err(fail)?;
            println!("{chat} is now verified. If their key ever changes you will be warned, and they are unverified again.");
            return Ok(());
        }
        show(&engine, &chat)
    }
}

/// Prints the number (3 rows of 4 groups), the code's text, and the state.
fn show(engine: &Engine, chat: &str) -> Result<(), String> {
    let n = engine.safety_number(chat).map_err(fail)?;
    println!("Safety number with {chat}:");
    let groups: Vec<&str> = n.number.split(' ').collect();
    for row in groups.chunks(4) {
        println!("    {}", row.join(" "));
    }
    println!("Code: {}", n.qr);
    if n.verified {
        println!("✓ Verified.");
    } else {
        println!(
            "Not verified. Compare these digits with {chat} (in person or on a call), then `tether verify {chat} --confirm`; \
             or save a picture of the code on their screen and `tether verify {chat} --scan picture.png`."
        );
    }
    Ok(())
}
