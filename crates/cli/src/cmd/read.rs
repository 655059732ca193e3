//! `tether read`: a chat's history, then marks it read.

use super::{Home, WAIT, connected, handle, report};
use crate::format::{body_text, clock, status_tick};
use crate::session::now;

/// Show a chat's history and mark it read.
#[derive(Debug, clap::Args)]
pub struct Read {
    /// The contact whose chat to show.
    contact: String,
    /// How many of the latest messages to show.
    #[arg(long, short = 'n', default_value_t = 50)]
    last: usize,
}

impl Read {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        let chat = handle(&self.contact)?;
        let mut s = connected(engine).await?;
        s.settle(WAIT, report).await?;
        let me = s.engine.handle().unwrap_or_default().to_string();
        let msgs = s.engine.messages(&chat);
        if msgs.is_empty() && s.engine.contact(&chat).is_none() {
            s.close().await;
            return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
        }
        for m in msgs.iter().skip(msgs.len().saturating_sub(self.last)) {
            let who = if m.from_me { me.as_str() } else { m.sender_handle.as_str() };
            let tick = if m.from_me { status_tick(m.status) } else { "" };
            println!("[{}] {who}: {} {tick}", clock(m.time_ms), body_text(&m.body));
        }
        s.engine.mark_read(&chat, now()).map_err(|e| e.to_string())?;
        s.settle(WAIT, report).await?;
        s.close().await;
        Ok(())
    }
}
