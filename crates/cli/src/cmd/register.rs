//! `tether register`: create an account; this device becomes its primary.

use super::{Home, WAIT, connected, fail, report};
use crate::session::now;
use tether_client::Event;
use tether_proto::ErrorCode;

/// Create an account on a server; this device becomes its primary.
#[derive(Debug, clap::Args)]
pub struct Register {
    /// A phone number in E.164 form (+4915112345678) or a user name.
    handle: String,
    /// The server, e.g. http://127.0.0.1:7780.
    #[arg(long, env = "TETHER_SERVER", value_name = "URL")]
    server: String,
    /// Registration token (for servers that require one).
    #[arg(long)]
    token: Option<String>,
    /// Do not print the recovery phrase (`tether recovery-phrase` shows it).
    #[arg(long)]
    no_phrase: bool,
}

impl Register {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let mut engine = home.open()?;
        if let Some(h) = engine.handle() {
            return Err(format!("this device is already registered as {h} (data in {})", home.dir.display()));
        }
        match &self.token {
            Some(t) => engine.register_with_token(&self.handle, &self.server, t, now()),
            None => engine.register(&self.handle, &self.server, now()),
        }
        .map_err(fail)?;
        let mut s = connected(engine).await?;
        let (handle, fingerprint) = s
            .wait(WAIT, |_, e| match e? {
                Event::Registered { handle, fingerprint } => Some(Ok((handle, fingerprint))),
                Event::Error { code: Some(ErrorCode::HandleTaken), message } => {
                    Some(Err(format!("{message}: choose another handle")))
                }
                Event::Error { code: Some(ErrorCode::RegistrationClosed), message } => Some(Err(format!(
                    "{message}; then `tether register {} --server {} --token TOKEN`",
                    self.handle, self.server
                ))),
                Event::Error { message, .. } => Some(Err(message)),
                _ => None,
            })
            .await??;
        s.settle(WAIT, report).await?;
        let phrase = s.engine.recovery_phrase().map_err(fail)?;
        s.close().await;
        let fp = tether_proto::Fingerprint::parse(&fingerprint).map(|f| f.to_string()).unwrap_or(fingerprint);
        println!("Registered {handle} on {}.", self.server);
        println!("Server key fingerprint: {fp}");
        println!("(This device pinned it: a server with another key will be refused.)");
        if !self.no_phrase {
            super::recovery::print_for_new_account(&phrase);
        }
        println!(
            "\nNext: add a contact (`tether contacts add <handle>`), or link the browser extension (`tether link <qr.png>`)."
        );
        Ok(())
    }
}
