//! `tether`: the primary device on the command line — a native adapter over
//! the sans-IO engine in `tether-client`.

mod qr;
mod session;
mod store;

use clap::{Parser, Subcommand};
use session::{Flow, Session, now};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tether_client::{Engine, Event, MessageBody, Role, Status};
use tether_proto::ErrorCode;

/// Tether: end-to-end encrypted messaging, from the command line.
///
/// This is a primary device: it holds the account key, links companions
/// (the browser extension) by QR or pairing code, and chats.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
struct Cli {
    /// Where this device keeps its keys and history [default: ~/.tether].
    #[arg(long, env = "TETHER_HOME", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account on a server; this device becomes its primary.
    Register {
        /// A phone number in E.164 form (+4915112345678) or a user name.
        handle: String,
        /// The server, e.g. http://127.0.0.1:7780.
        #[arg(long, env = "TETHER_SERVER")]
        server: String,
        /// Registration token (for servers that require one).
        #[arg(long)]
        token: Option<String>,
    },
    /// Link a companion: a QR screenshot/photo, a pasted tether://link# code, or --code.
    Link {
        /// Image file with the QR code, or the tether://link#… text.
        payload: Option<String>,
        /// The 8-character pairing code shown by the companion (XXXX-XXXX).
        #[arg(long)]
        code: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// List this account's devices.
    Devices,
    /// Log a linked device out (see `tether devices` for ids).
    Unlink { device: u32 },
    /// List contacts, or add one.
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
    },
    /// List chats with unread counts.
    Chats,
    /// Send a text message.
    Send { contact: String, text: String },
    /// Share a link (with a title and selected text).
    Share {
        contact: String,
        url: String,
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Show a chat's history and mark it read.
    Read {
        contact: String,
        /// How many of the latest messages to show.
        #[arg(long, short = 'n', default_value_t = 50)]
        last: usize,
    },
    /// Stay connected and print incoming messages.
    Listen {
        /// One JSON object a line, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show this device's state.
    Status,
    /// Delete this device's account data (keys, history) from this computer.
    Logout {
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Add a contact by handle (its keys are fetched and pinned).
    Add {
        handle: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Accept a contact's changed keys after checking with them.
    Trust { handle: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e}");
            ExitCode::FAILURE
        }
    }
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data.clone().unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".tether")
    })
}

fn open(cli: &Cli) -> Result<Engine, String> {
    let store = store::SqliteKv::open(&data_dir(cli))?;
    Engine::open(Box::new(store), Box::new(session::OsRandom), session::client_info()).map_err(|e| e.to_string())
}

fn registered(engine: &Engine) -> Result<(), String> {
    match engine.role() {
        Role::Unlinked { reason: Some(r) } => Err(format!("{r} Register again with `tether register <handle> --server URL`.")),
        Role::Unlinked { reason: None } => Err("this device is not registered: run `tether register <handle> --server URL`".into()),
        _ => Ok(()),
    }
}

/// Prints problems the engine reports while a command runs.
fn report(e: &Event) {
    match e {
        Event::Error { message, .. } => eprintln!("tether: {message}"),
        Event::SafetyWarning { handle, warning } => eprintln!("tether: ⚠ {handle}: {warning}"),
        _ => {}
    }
}

async fn connected(engine: Engine) -> Result<Session, String> {
    let mut s = Session::new(engine);
    s.connect().await?;
    Ok(s)
}

const WAIT: Duration = Duration::from_secs(30);

async fn run(cli: Cli) -> Result<(), String> {
    let mut engine = open(&cli)?;
    match &cli.command {
        Command::Register { handle, server, token } => {
            if let Some(h) = engine.handle() {
                return Err(format!("this device is already registered as {h} (data in {})", data_dir(&cli).display()));
            }
            match token {
                Some(t) => engine.register_with_token(handle, server, t, now()),
                None => engine.register(handle, server, now()),
            }
            .map_err(|e| e.to_string())?;
            let mut s = connected(engine).await?;
            let mut result = None;
            s.drive(WAIT, |_, e| match e {
                Some(Event::Registered { handle, fingerprint }) => {
                    result = Some(Ok((handle, fingerprint)));
                    Flow::Stop
                }
                Some(Event::Error { message, .. }) => {
                    result = Some(Err(message));
                    Flow::Stop
                }
                _ => Flow::Continue,
            })
            .await
            .or_else(|e| if result.is_some() { Ok(()) } else { Err(e) })?;
            let (handle, fingerprint) = result.unwrap_or(Err("registration did not finish".into()))?;
            s.settle(WAIT, report).await?;
            s.close().await;
            let fp = tether_proto::Fingerprint::parse(&fingerprint).map(|f| f.to_string()).unwrap_or(fingerprint);
            println!("Registered {handle} on {server}.");
            println!("Server key fingerprint: {fp}");
            println!("(This device pinned it: a server with another key will be refused.)");
            println!("\nNext: add a contact (`tether contacts add <handle>`), or link the browser extension (`tether link <qr.png>`).");
        }
        Command::Link { payload, code, yes } => {
            registered(&engine)?;
            let text = match (code, payload.as_deref()) {
                (Some(_), _) => None,
                (None, Some(p)) if p.trim_start().starts_with("tether://") => Some(p.to_string()),
                (None, Some(p)) => Some(qr::decode_file(std::path::Path::new(p))?),
                (None, None) => return Err("give the QR image, the tether://link# text, or --code XXXX-XXXX".into()),
            };
            let mut s = connected(engine).await?;
            match (code, text) {
                (Some(code), _) => s.engine.link_with_code(code, now()).map_err(|e| e.to_string())?,
                (None, Some(text)) => {
                    s.engine.link_from_uri(&text).map_err(|e| e.to_string())?;
                }
                (None, None) => unreachable!(),
            }
            // Wait for the request (immediate for a QR, fetched for a code).
            let mut ask = None;
            let mut failed = None;
            s.drive(WAIT, |_, e| match e {
                Some(Event::LinkRequest { platform, name }) => {
                    ask = Some((platform, name));
                    Flow::Stop
                }
                Some(Event::Error { message, .. }) => {
                    failed = Some(message);
                    Flow::Stop
                }
                _ => Flow::Continue,
            })
            .await?;
            if let Some(m) = failed {
                return Err(m);
            }
            let (platform, name) = ask.ok_or("the link request did not arrive")?;
            if !*yes && !confirm(&format!("Link {name} ({platform}) to this account? It will see your chats. [y/N] "))? {
                return Err("not linked".into());
            }
            let device = s.engine.confirm_link(now()).map_err(|e| e.to_string())?;
            let mut outcome: Option<Result<(), String>> = None;
            let mut history = None;
            s.drive(WAIT, |_, e| {
                match e {
                    Some(Event::HistorySent { messages, chunks, .. }) => history = Some((messages, chunks)),
                    Some(Event::LinkApproved { .. }) => outcome = Some(Ok(())),
                    Some(Event::Error { code, message }) => {
                        outcome = Some(Err(match code {
                            Some(ErrorCode::ExpiredRef | ErrorCode::UnknownRef) => "that QR code expired: ask the companion for a fresh one (\"Show a new code\") and scan again".into(),
                            _ => message,
                        }))
                    }
                    None if outcome.is_some() && history.is_some() => return Flow::Stop,
                    None if matches!(outcome, Some(Err(_))) => return Flow::Stop,
                    _ => {}
                }
                Flow::Continue
            })
            .await?;
            outcome.unwrap_or(Err("the link did not finish".into()))?;
            s.settle(WAIT, report).await?;
            s.close().await;
            let (messages, _) = history.unwrap_or((0, 0));
            println!("Linked {name} as device {device}; sent {messages} messages of history (last 90 days).");
        }
        Command::Devices => {
            registered(&engine)?;
            let mut s = connected(engine).await?;
            s.engine.request_devices(now()).map_err(|e| e.to_string())?;
            let mut devices = None;
            s.drive(WAIT, |_, e| match e {
                Some(Event::Devices { devices: d }) => {
                    devices = Some(d);
                    Flow::Stop
                }
                _ => Flow::Continue,
            })
            .await?;
            s.close().await;
            println!("{:<4} {:<16} {:<28} {:<17} LAST ACTIVE", "ID", "PLATFORM", "NAME", "LINKED");
            for d in devices.unwrap_or_default() {
                let this = if d.current { " (this device)" } else { "" };
                println!("{:<4} {:<16} {:<28} {:<17} {}{this}", d.device_id, d.platform, d.name, ago(d.linked_at_ms), ago(d.last_active_ms));
            }
        }
        Command::Unlink { device } => {
            registered(&engine)?;
            let mut s = connected(engine).await?;
            s.engine.remove_device(*device, now()).map_err(|e| e.to_string())?;
            let mut done = None;
            s.drive(WAIT, |_, e| match e {
                Some(Event::DeviceRemoved { .. }) => {
                    done = Some(Ok(()));
                    Flow::Stop
                }
                Some(Event::Error { message, .. }) => {
                    done = Some(Err(message));
                    Flow::Stop
                }
                _ => Flow::Continue,
            })
            .await?;
            s.close().await;
            done.unwrap_or(Err("the server did not confirm".into()))?;
            println!("Device {device} is logged out; it can no longer read new messages.");
        }
        Command::Contacts { command } => {
            registered(&engine)?;
            match command {
                Some(ContactsCommand::Add { handle, name }) => {
                    engine.add_contact(handle, name, now()).map_err(|e| e.to_string())?;
                    let mut s = connected(engine).await?;
                    let mut problem = None;
                    s.settle(WAIT, |e| {
                        report(e);
                        if let Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } = e {
                            problem = Some(message.clone());
                        }
                    })
                    .await?;
                    let c = s.engine.contact(&tether_proto::normalize_handle(handle).map_err(|e| e.to_string())?).cloned();
                    s.close().await;
                    match (c, problem) {
                        (Some(c), None) if c.warning.is_none() => println!("Added {} ({}).", c.handle, if c.name.is_empty() { &c.handle } else { &c.name }),
                        (_, Some(p)) => return Err(p),
                        (Some(c), None) => return Err(c.warning.unwrap_or_default()),
                        (None, None) => return Err("the contact was not added".into()),
                    }
                }
                Some(ContactsCommand::Trust { handle }) => {
                    engine.trust_contact(handle, now()).map_err(|e| e.to_string())?;
                    let mut s = connected(engine).await?;
                    s.settle(WAIT, report).await?;
                    s.close().await;
                    println!("Pinned {handle}'s current keys.");
                }
                None => {
                    let contacts: Vec<_> = engine.contacts().cloned().collect();
                    if contacts.is_empty() {
                        println!("No contacts yet: `tether contacts add <handle> --name NAME`.");
                    }
                    for c in contacts {
                        let warn = c.warning.map(|w| format!("  ⚠ {w}")).unwrap_or_default();
                        println!("{:<24} {}{warn}", c.handle, c.name);
                    }
                }
            }
        }
        Command::Chats => {
            registered(&engine)?;
            // Catch up first, so the list is current.
            let mut s = connected(engine).await?;
            s.settle(WAIT, report).await?;
            let engine = &s.engine;
            if engine.chats().is_empty() {
                println!("No chats yet: `tether send <contact> <text>`.");
            }
            for c in engine.chats() {
                let flags = [(c.pinned, "pinned"), (c.muted, "muted"), (c.archived, "archived")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(",");
                let unread = if c.unread > 0 { format!("({} unread)", c.unread) } else { String::new() };
                println!("{:<20} {:<12} {:<11} {} {}", c.handle, unread, ago(c.last_ms), c.last_preview, flags);
            }
            s.close().await;
        }
        Command::Send { contact, text } => {
            registered(&engine)?;
            send(engine, contact, |e, c| e.send_text(c, text, now())).await?;
        }
        Command::Share { contact, url, title, text } => {
            registered(&engine)?;
            send(engine, contact, |e, c| e.send_link(c, url, title, text, now())).await?;
        }
        Command::Read { contact, last } => {
            registered(&engine)?;
            let chat = tether_proto::normalize_handle(contact).map_err(|e| e.to_string())?;
            let mut s = connected(engine).await?;
            s.settle(WAIT, report).await?;
            let me = s.engine.handle().unwrap_or_default().to_string();
            let msgs = s.engine.messages(&chat);
            if msgs.is_empty() && s.engine.contact(&chat).is_none() {
                s.close().await;
                return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
            }
            for m in msgs.iter().skip(msgs.len().saturating_sub(*last)) {
                let who = if m.from_me { me.as_str() } else { m.sender_handle.as_str() };
                let tick = if m.from_me { status_tick(m.status) } else { "" };
                println!("[{}] {who}: {} {tick}", clock(m.time_ms), body_text(&m.body));
            }
            s.engine.mark_read(&chat, now()).map_err(|e| e.to_string())?;
            s.settle(WAIT, report).await?;
            s.close().await;
        }
        Command::Listen { json } => {
            registered(&engine)?;
            let json = *json;
            loop {
                let mut s = Session::new(engine);
                if let Err(e) = s.connect().await {
                    engine = s.engine;
                    eprintln!("tether: {e}; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                if !json {
                    eprintln!("Listening as {} (Ctrl-C to stop)…", s.engine.handle().unwrap_or_default());
                }
                let result = s
                    .drive(Duration::MAX / 4, |_, e| {
                        if let Some(e) = e {
                            print_event(&e, json);
                            if matches!(e, Event::Unlinked { .. }) {
                                return Flow::Stop;
                            }
                        }
                        Flow::Continue
                    })
                    .await;
                engine = s.engine;
                registered(&engine)?;
                if let Err(e) = result {
                    eprintln!("tether: {e}; reconnecting in 2 s");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        Command::Status => {
            println!("tether {} (protocol {})", tether_client::VERSION, tether_proto::PROTOCOL_VERSION);
            println!("data: {}", data_dir(&cli).display());
            match engine.role() {
                Role::Primary { handle, .. } => println!("primary device of {handle} on {}", engine.server_url()),
                Role::Companion { handle, device_id, .. } => println!("device {device_id} of {handle} on {}", engine.server_url()),
                Role::Unlinked { reason } => println!("not registered{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()),
            }
            if let Some(fp) = engine.server_fingerprint() {
                println!("server key: {fp}");
            }
            println!("unread: {}  outbox: {}", engine.unread_unmuted(), engine.outbox_len());
        }
        Command::Logout { yes } => {
            registered(&engine)?;
            if let Role::Primary { handle, .. } = engine.role() {
                let q = format!("This deletes the primary device of {handle} from this computer: its account key and history are gone for good. Continue? [y/N] ");
                if !*yes && !confirm(&q)? {
                    return Err("not logged out".into());
                }
                engine.logout(now()).map_err(|e| e.to_string())?;
                println!("Logged out; local data deleted.");
            } else {
                let mut s = connected(engine).await?;
                s.engine.logout(now()).map_err(|e| e.to_string())?;
                let _ = s.drive(WAIT, |_, e| if matches!(e, Some(Event::Unlinked { .. })) { Flow::Stop } else { Flow::Continue }).await;
                println!("Logged out; the server forgot this device and local data is deleted.");
            }
        }
    }
    Ok(())
}

async fn send(mut engine: Engine, contact: &str, write: impl FnOnce(&mut Engine, &str) -> Result<String, tether_client::Error>) -> Result<(), String> {
    let chat = tether_proto::normalize_handle(contact).map_err(|e| e.to_string())?;
    if engine.contact(&chat).is_none() {
        return Err(format!("unknown contact {chat}: add it first (`tether contacts add {chat}`)"));
    }
    let id = write(&mut engine, &chat).map_err(|e| e.to_string())?;
    let mut s = connected(engine).await?;
    let mut sent = false;
    let mut problem = None;
    s.drive(WAIT, |engine, e| {
        match &e {
            Some(Event::Sent { id: done }) if *done == id => sent = true,
            Some(e @ (Event::Error { .. } | Event::SafetyWarning { .. })) => {
                report(e);
                if let Event::SafetyWarning { warning, .. } = e {
                    problem = Some(warning.clone());
                }
            }
            None if sent && !engine.busy() => return Flow::Stop,
            None if problem.is_some() => return Flow::Stop,
            _ => {}
        }
        Flow::Continue
    })
    .await?;
    s.close().await;
    if let Some(p) = problem {
        return Err(format!("not sent (kept in the outbox): {p}"));
    }
    println!("Sent to {chat}.");
    Ok(())
}

fn confirm(question: &str) -> Result<bool, String> {
    print!("{question}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn body_text(b: &MessageBody) -> String {
    match b {
        MessageBody::Text { body } => body.clone(),
        MessageBody::Link { url, title, selection } => {
            let mut s = if title.is_empty() { url.clone() } else { format!("{title} <{url}>") };
            if !selection.is_empty() {
                s.push_str(&format!("\n    “{selection}”"));
            }
            s
        }
        MessageBody::Undecryptable { reason } => format!("⚠ could not be decrypted: {reason}"),
    }
}

fn status_tick(s: Status) -> &'static str {
    match s {
        Status::Pending => "(sending)",
        Status::Sent => "✓",
        Status::Delivered => "✓✓",
        Status::Read => "✓✓ read",
    }
}

fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m) = ((secs / 3600) % 24, (secs / 60) % 60);
    let days = secs / 86_400;
    let today = now() / 1000 / 86_400;
    if days == today { format!("{h:02}:{m:02}") } else { format!("{} days ago {h:02}:{m:02}", today.saturating_sub(days)) }
}

fn ago(ms: u64) -> String {
    if ms == 0 {
        return "never".into();
    }
    let s = now().saturating_sub(ms) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn print_event(e: &Event, json: bool) {
    match e {
        Event::Message { message: m } if !m.from_me || json => {
            if json {
                let (kind, text, url, title, selection) = match &m.body {
                    MessageBody::Text { body } => ("text", body.as_str(), "", "", ""),
                    MessageBody::Link { url, title, selection } => ("link", "", url.as_str(), title.as_str(), selection.as_str()),
                    MessageBody::Undecryptable { reason } => ("undecryptable", reason.as_str(), "", "", ""),
                };
                let v = serde_json::json!({
                    "event": "message", "id": m.id, "chat": m.chat, "from": m.sender_handle, "device": m.sender_device,
                    "from_me": m.from_me, "time_ms": m.time_ms, "kind": kind, "text": text, "url": url, "title": title, "selection": selection,
                });
                println!("{v}");
            } else {
                println!("[{}] {}: {}", clock(m.time_ms), m.sender_handle, body_text(&m.body));
            }
        }
        Event::MessageStatus { chat, id, status } if json => {
            println!("{}", serde_json::json!({"event": "status", "chat": chat, "id": id, "status": status}));
        }
        Event::Unlinked { reason } => {
            if json {
                println!("{}", serde_json::json!({"event": "unlinked", "reason": reason}));
            } else {
                eprintln!("tether: {reason}");
            }
        }
        Event::Error { message, .. } | Event::SafetyWarning { warning: message, .. } => {
            if json {
                println!("{}", serde_json::json!({"event": "error", "message": message}));
            } else {
                eprintln!("tether: {message}");
            }
        }
        _ => {}
    }
    let _ = std::io::stdout().flush();
}
