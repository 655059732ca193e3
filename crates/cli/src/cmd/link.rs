//! `tether link`: approve a companion (the browser extension) from its QR
//! code, the `tether://link#…` text, or its pairing code.

use super::{Home, WAIT, confirm, connected, fail, report};
use crate::format::clean_line;
use crate::qr;
use crate::session::{Session, now};
use std::path::Path;
use tether_client::Event;
use tether_proto::ErrorCode;

/// Link a companion: a QR screenshot/photo, a pasted tether://link# code, or --code.
#[derive(Debug, clap::Args)]
pub struct Link {
    /// Image file with the QR code, or the tether://link#… text.
    payload: Option<String>,
    /// The 8-character pairing code shown by the companion (XXXX-XXXX).
    #[arg(long, conflicts_with = "payload")]
    code: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
}

/// How the companion was identified.
enum Offer {
    /// The `tether://link#…` text (typed, or read from a QR image).
    Uri(String),
    /// The pairing code the companion shows.
    Code(String),
}

impl Link {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let offer = self.offer()?;
        let mut s = connected(engine).await?;
        match offer {
            Offer::Code(code) => s.engine.link_with_code(&code, now()).map_err(fail)?,
            Offer::Uri(text) => drop(s.engine.link_from_uri(&text).map_err(fail)?),
        }
        let (platform, name, confirmation) = request(&mut s).await?;
        let check = match &confirmation {
            Some(c) => format!(" Check that it shows {c}."),
            None => String::new(),
        };
        if self.yes {
            if let Some(c) = &confirmation {
                println!("Confirmation: {c} (the other device shows it too)");
            }
        } else if !confirm(&format!("Link {name} ({platform}) to this account? It will see your chats.{check} [y/N] "))? {
            return Err("not linked".into());
        }
        let device = s.engine.confirm_link(now()).map_err(fail)?;
        let messages = approval(&mut s).await?;
        s.settle(WAIT, report).await?;
        s.close().await;
        println!("Linked {name} as device {device}; sent {messages} messages of history (last 90 days).");
        Ok(())
    }

    /// What identifies the companion, read before connecting (a bad image
    /// fails without touching the network).
    fn offer(&self) -> Result<Offer, String> {
        match (&self.code, self.payload.as_deref()) {
            (Some(code), _) => Ok(Offer::Code(code.clone())),
            (None, Some(p)) if p.trim_start().starts_with("tether://") => Ok(Offer::Uri(p.to_string())),
            (None, Some(p)) => Ok(Offer::Uri(qr::decode_file(Path::new(p))?)),
            (None, None) => Err("give the QR image, the tether://link# text, or --code XXXX-XXXX".into()),
        }
    }
}

/// Waits for the companion's request (immediate for a QR; for a code, once
/// both sides proved the code): its platform, name and the confirmation
/// both screens show (codes only).
async fn request(s: &mut Session) -> Result<(String, String, Option<String>), String> {
    s.wait(WAIT, |_, e| match e? {
        Event::LinkRequest { platform, name, confirmation } => Some(Ok((clean_line(&platform), clean_line(&name), confirmation))),
        Event::Error { code, message } => Some(Err(link_error(code, message))),
        _ => None,
    })
    .await?
}

/// Waits until the server added the companion and its history was sent;
/// the number of messages sent.
async fn approval(s: &mut Session) -> Result<usize, String> {
    let (mut approved, mut history) = (false, None);
    s.wait(WAIT, |_, e| {
        match e? {
            Event::HistorySent { messages, .. } => history = Some(messages),
            Event::LinkApproved { .. } => approved = true,
            Event::Error { code, message } => return Some(Err(link_error(code, message))),
            _ => {}
        }
        Some(Ok(history?)).filter(|_| approved)
    })
    .await?
}

/// A refusal while linking, with what to do about it.
fn link_error(code: Option<ErrorCode>, message: String) -> String {
    match code {
        Some(ErrorCode::ExpiredRef | ErrorCode::UnknownRef) => {
            "that QR code expired: ask the companion for a fresh one (\"Show a new code\") and scan again".into()
        }
        _ => clean_line(&message),
    }
}
