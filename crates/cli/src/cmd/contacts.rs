//! `tether contacts`: list contacts, add one, or accept changed keys.

use super::{Home, WAIT, connected, fail, handle, report};
use crate::format::clean_line;
use crate::session::now;
use tether_client::{Contact, Event};

/// List contacts, add one, or accept a contact's changed keys.
#[derive(Debug, clap::Args)]
pub struct Contacts {
    /// Without one, the contacts are listed.
    #[command(subcommand)]
    command: Option<ContactsCommand>,
}

/// What to do with contacts.
#[derive(Debug, clap::Subcommand)]
enum ContactsCommand {
    /// Add a contact by handle (its keys are fetched and pinned).
    Add {
        /// Their phone number (E.164) or user name.
        handle: String,
        /// What to call them here (default: their handle).
        #[arg(long, default_value = "", hide_default_value = true)]
        name: String,
    },
    /// Accept a contact's changed keys after checking with them.
    Trust {
        /// The contact whose new keys to pin.
        handle: String,
    },
}

impl Contacts {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        match self.command {
            Some(ContactsCommand::Add { handle, name }) => add(engine, &handle, &name).await,
            Some(ContactsCommand::Trust { handle }) => trust(engine, &handle).await,
            None => {
                list(&engine);
                Ok(())
            }
        }
    }
}

/// Adds the contact, then connects so its keys are fetched and checked.
async fn add(mut engine: tether_client::Engine, text: &str, name: &str) -> Result<(), String> {
    engine.add_contact(text, name, now()).map_err(fail)?;
    let mut s = connected(engine).await?;
    // What went wrong fails the command; the last problem is its error,
    // any earlier ones are printed.
    let mut problems = Vec::new();
    s.settle(WAIT, |e| {
        if let Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } = e {
            problems.push(message.clone());
        }
    })
    .await?;
    let problem = problems.pop();
    for p in problems {
        eprintln!("tether: {}", clean_line(&p));
    }
    let contact = s.engine.contact(&handle(text)?).cloned();
    s.close().await;
    match (contact, problem) {
        (_, Some(p)) => Err(clean_line(&p)),
        (Some(Contact { warning: Some(w), .. }), None) => Err(clean_line(&w)),
        (Some(c), None) => {
            println!("Added {} ({}).", clean_line(&c.handle), clean_line(if c.name.is_empty() { &c.handle } else { &c.name }));
            Ok(())
        }
        (None, None) => Err("the contact was not added".into()),
    }
}

/// Pins the contact's current keys.
async fn trust(mut engine: tether_client::Engine, handle: &str) -> Result<(), String> {
    engine.trust_contact(handle, now()).map_err(fail)?;
    let mut s = connected(engine).await?;
    s.settle(WAIT, report).await?;
    s.close().await;
    println!("Pinned {handle}'s current keys. They are unverified: compare safety numbers with `tether verify {handle}`.");
    Ok(())
}

/// One line per contact: handle, the name shown (a name they chose carries
/// their handle), verified or not, and any warning.
fn list(engine: &tether_client::Engine) {
    let mut any = false;
    for c in engine.contacts() {
        any = true;
        let warn = c.warning.as_ref().map(|w| format!("  ⚠ {}", clean_line(w))).unwrap_or_default();
        let state = if c.verified { "✓ verified" } else { "unverified" };
        let name = clean_line(&engine.display_name(&c.handle));
        println!("{:<24} {:<24} {state}{warn}", clean_line(&c.handle), name);
    }
    if !any {
        println!("No contacts yet: `tether contacts add <handle> --name NAME`.");
    }
}
