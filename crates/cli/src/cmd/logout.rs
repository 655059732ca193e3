//! `tether logout`: delete this device's account data from this computer.

use super::{Home, WAIT, confirm, connected, fail};
use crate::session::now;
use tether_client::{Event, Role};

/// Delete this device's account data (keys, history) from this computer.
#[derive(Debug, clap::Args)]
pub struct Logout {
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
}

impl Logout {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open_registered()?;
        if let Role::Primary { handle, .. } = engine.role() {
            let q = format!(
                "This deletes the primary device of {handle} from this computer: its account key and history are gone for good. Continue? [y/N] "
            );
            if !self.yes && !confirm(&q)? {
                return Err("not logged out".into());
            }
            engine.logout(now()).map_err(fail)?;
            println!("Logged out; local data deleted.");
        } else {
            // A companion asks the server to forget it first.
            let mut s = connected(engine).await?;
            s.engine.logout(now()).map_err(fail)?;
            let _ = s.wait(WAIT, |_, e| matches!(e, Some(Event::Unlinked { .. })).then_some(())).await;
            println!("Logged out; the server forgot this device and local data is deleted.");
        }
        Ok(())
    }
}
