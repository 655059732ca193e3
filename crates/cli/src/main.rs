//! `tether`: the primary device on the command line.
//!
//! The CLI is a native adapter over the sans-IO engine in `tether-client`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tether: end-to-end encrypted messaging, primary device.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    /// Where this device keeps its keys and history.
    #[arg(long, env = "TETHER_HOME", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show this device's engine and protocol versions and whether it is registered.
    Status,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Status => {
            let status = tether_client::Engine::new().status();
            println!(
                "tether {} (protocol {})",
                status.version, status.protocol_version
            );
            match status.link {
                tether_client::LinkState::Unlinked => {
                    println!("not registered on any server yet")
                }
                tether_client::LinkState::Linked { handle, device_id } => {
                    println!("registered as {handle}, device {device_id}")
                }
            }
        }
    }
}
