//! `tether unlink`: log a linked device out.

use super::{Home, WAIT, connected, fail};
use crate::session::now;
use tether_client::Event;

/// Log a linked device out (see `tether devices` for ids).
#[derive(Debug, clap::Args)]
pub struct Unlink {
    /// The device's id, as `tether devices` shows it.
    device: u32,
}

impl Unlink {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let mut s = connected(engine).await?;
        s.engine.remove_device(self.device, now()).map_err(fail)?;
        let done = s
            .wait(WAIT, |_, e| match e? {
                Event::DeviceRemoved { .. } => Some(Ok(())),
                Event::Error { message, .. } => Some(Err(message)),
                _ => None,
            })
            .await;
        s.close().await;
        done??;
        println!("Device {} is logged out; it can no longer read new messages.", self.device);
        Ok(())
    }
}
