//! `tether read`: a chat's history, then marks it read.

use super::{Home, WAIT, caught_up, fail, handle, report};
use crate::format::{body_text, clean_line, clock, status_tick};
use crate::session::now;
use tether_client::Engine;

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
        let (mut s, offline) = caught_up(engine).await;
        if s.engine.messages(&chat).is_empty() && s.engine.contact(&chat).is_none() {
            s.close().await;
            return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
        }
        self.print(&s.engine, &chat);
        if let Some(e) = offline {
            return Err(format!("{e}\n(this is the history on this computer; newer messages may wait on the server)"));
        }
        s.engine.mark_read(&chat, now()).map_err(fail)?;
        s.settle(WAIT, report).await?;
        s.close().await;
        Ok(())
    }

    /// The chat's last messages, oldest first.
    fn print(&self, engine: &Engine, chat: &str) {
        let me = engine.handle().unwrap_or_default();
        let msgs = engine.messages(chat);
        for m in msgs.iter().skip(msgs.len().saturating_sub(self.last)) {
            let who = clean_line(if m.from_me { me } else { m.sender_handle.as_str() });
            let tick = if m.from_me { status_tick(m.status) } else { "" };
            println!("[{}] {who}: {} {tick}", clock(m.time_ms), body_text(&m.body));
            if matches!(m.body, tether_client::MessageBody::File { .. }) && !m.from_me {
                println!("    id {} (`tether download {}`)", m.id, &m.id[..8]);
            }
        }
    }
}
