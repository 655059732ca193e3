//! `tether status`: this device's state, without connecting.

use super::Home;
use tether_client::Role;

/// Show this device's state and how many messages wait to be sent (does not connect).
#[derive(Debug, clap::Args)]
pub struct Status {}

impl Status {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open()?;
        println!("tether {} (protocol {})", tether_client::VERSION, tether_proto::PROTOCOL_VERSION);
        println!("data: {}", home.dir.display());
        match engine.role() {
            Role::Primary { handle, .. } => println!("primary device of {handle} on {}", engine.server_url()),
            Role::Companion { handle, device_id, .. } => {
                println!("device {device_id} of {handle} on {}", engine.server_url())
            }
            Role::Unlinked { reason } => {
                println!("not registered{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())
            }
        }
        if let Some(fp) = engine.server_fingerprint() {
            println!("server key: {fp}");
        }
        println!("unread: {}  outbox: {}", engine.unread_unmuted(), engine.outbox_len());
        if engine.outbox_len() > 0 {
            println!("(the outbox goes with the next command that connects, e.g. `tether chats` or `tether listen`)");
        }
        Ok(())
    }
}
