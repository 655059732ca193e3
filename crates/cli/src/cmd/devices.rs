//! `tether devices`: this account's devices, as the server lists them.

use super::{Home, WAIT, connected, fail, report};
use crate::format::{ago, clean_line};
use crate::session::now;
use tether_client::Event;

/// List this account's devices.
#[derive(Debug, clap::Args)]
pub struct Devices {}

impl Devices {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let mut s = connected(engine).await?;
        s.engine.request_devices(now()).map_err(fail)?;
        let devices = s
            .wait(WAIT, |_, e| match e? {
                Event::Devices { devices } => Some(devices),
                other => {
                    report(&other);
                    None
                }
            })
            .await?;
        s.close().await;
        println!("{:<4} {:<16} {:<28} {:<17} LAST ACTIVE", "ID", "PLATFORM", "NAME", "LINKED");
        for d in devices {
            let this = if d.current { " (this device)" } else { "" };
            let (linked, active) = (ago(d.linked_at_ms), ago(d.last_active_ms));
            println!("{:<4} {:<16} {:<28} {:<17} {active}{this}", d.device_id, clean_line(&d.platform), clean_line(&d.name), linked);
        }
        Ok(())
    }
}
