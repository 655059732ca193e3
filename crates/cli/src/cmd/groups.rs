//! `tether group …`: create a group, change it (add, remove, leave,
//! rename, admins) and show it; and how every command that takes a chat
//! (`send`, `share`, `send-file`, `read`) finds a contact or a group from
//! what the user typed ([`find`]).
//!
//! A chat argument is, in this order:
//! 1. `g:` and a group's id (or its first 8 or more hex digits);
//! 2. the note to self: `me`, `self` (unless a contact has that handle)
//!    or this account's own handle;
//! 3. a contact's handle (as `tether contacts` lists it; `Bob` and `bob`
//!    are the same handle): a contact always wins over a group of the same
//!    name, and the command says how to name the group instead;
//! 4. a group's name, exactly, then ignoring case, when one group has it
//!    (several give an error that lists their ids);
//! 5. a group's id, 32 hex digits (or the first 8 or more).
//!
//! Every group this computer knows counts, including groups the user left.
//!
//! Group changes are made on the state the server has: the command
//! catches up first, checks what it can (member, admin, contact) so the
//! error is clear, asks the engine, then waits until the server took the
//! change (like `tether send`) and says what happened.

use super::{Home, WAIT, caught_up, fail, handle, report};
use crate::format::clean_line;
use crate::session::{Session, now};
use std::time::Duration;
use tether_client::groups::group_of;
use tether_client::{Engine, Event, GroupInfo, GroupOp, sanitize_name};

/// How long, after the change went, the rest of the outbox may take.
const DRAIN: Duration = Duration::from_secs(10);

/// Create a group, change it, or show it (without a command: list groups).
#[derive(Debug, clap::Args)]
#[command(after_help = NAMING)]
pub struct Group {
    #[command(subcommand)]
    command: Option<GroupCommand>,
}

/// How a group is named on the command line, under `tether group --help`.
const NAMING: &str = "A group is named by its name when no other group has it (exactly, else ignoring case),
else by its id (the 32 hex digits `group create` and `group list` print, the first 8 or more,
or g:ID). In `send`, `read` and the rest a contact's handle wins over a group of the same name.";

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// Create a group with contacts (you are its admin); prints its name and id.
    Create {
        /// The group's name (quote it if it has spaces).
        name: String,
        /// Contacts' handles, comma-separated (`--members bob,carol`).
        #[arg(long, short = 'm', value_delimiter = ',', required = true, num_args = 1..)]
        members: Vec<String>,
    },
    /// Add contacts to a group (admins only).
    Add {
        /// The group: its name or id.
        group: String,
        /// Contacts' handles.
        #[arg(required = true, value_delimiter = ',')]
        handles: Vec<String>,
    },
    /// Remove members from a group (admins only).
    Remove {
        /// The group: its name or id.
        group: String,
        /// Members' handles.
        #[arg(required = true, value_delimiter = ',')]
        handles: Vec<String>,
    },
    /// Leave a group (its chat stays on this computer).
    Leave {
        /// The group: its name or id.
        group: String,
    },
    /// Rename a group (admins only).
    Rename {
        /// The group: its name or id.
        group: String,
        /// The new name.
        name: String,
    },
    /// Make a member an admin, or with --remove no longer one (admins only).
    Admin {
        /// The group: its name or id.
        group: String,
        /// The member's handle.
        handle: String,
        /// Take the member's admin rights away instead.
        #[arg(long)]
        remove: bool,
    },
    /// Show a group: name, id, members and admins.
    Info {
        /// The group: its name or id.
        group: String,
    },
    /// List groups: name, members, your part, id.
    List,
}

impl Group {
    pub async fn run(self, home: &Home) -> Result<(), String> {
        let engine = home.open_registered()?;
        match self.command {
            Some(GroupCommand::Create { name, members }) => create(engine, &name, &members).await,
            Some(GroupCommand::Add { group, handles }) => {
                change(engine, &group, Change::Add(handles.iter().map(|h| handle(h)).collect::<Result<_, _>>()?)).await
            }
            Some(GroupCommand::Remove { group, handles }) => {
                let handles = handles.iter().map(|h| handle(h)).collect::<Result<_, _>>()?;
                change(engine, &group, Change::Remove(handles)).await
            }
            Some(GroupCommand::Leave { group }) => change(engine, &group, Change::Leave).await,
            Some(GroupCommand::Rename { group, name }) => change(engine, &group, Change::Rename(name)).await,
            Some(GroupCommand::Admin { group, handle: h, remove }) => {
                change(engine, &group, Change::Admin(handle(&h)?, !remove)).await
            }
            Some(GroupCommand::Info { group }) => show(engine, &group, true).await,
            Some(GroupCommand::List) | None => show(engine, "", false).await,
        }
    }
}

// ------------------------------------------------------------- naming

/// What a chat argument names.
#[derive(Debug, Clone)]
pub enum Target {
    /// A contact's handle.
    Contact(String),
    /// A group, as this computer holds it.
    Group(GroupInfo),
    /// The note to self (`me`, `self` or the own handle): the chat key is
    /// this account's handle; what goes there reaches only its own devices.
    Note(String),
}

impl Target {
    /// The engine's chat key: the handle, or `g:` and the group's id.
    pub fn chat(&self) -> String {
        match self {
            Target::Contact(h) | Target::Note(h) => h.clone(),
            Target::Group(g) => g.chat.clone(),
        }
    }

    /// How messages name it: `bob`, `“Trip”`.
    pub fn label(&self) -> String {
        match self {
            Target::Contact(h) => clean_line(h),
            Target::Group(g) => format!("“{}”", clean_line(&g.name)),
            Target::Note(_) => tether_client::NOTE_TO_SELF.to_string(),
        }
    }

    /// The accounts whose key warning holds a message to it (the contact,
    /// or every other member).
    pub fn watched(&self) -> Vec<String> {
        match self {
            Target::Contact(h) => vec![h.clone()],
            Target::Group(g) => g.members.iter().filter(|m| !m.me).map(|m| m.handle.clone()).collect(),
            Target::Note(_) => vec![],
        }
    }
}

/// Why an argument names nothing.
#[derive(Debug)]
pub struct Miss {
    pub message: String,
    /// Nothing has that name here yet: catching up with the server might
    /// bring it (a group one was just added to). Not for ambiguous names.
    pub unknown: bool,
}

/// What `text` names (see the module's doc for the order). `groups_only`
/// skips contacts (the `group` commands take only groups).
pub fn target(engine: &Engine, text: &str, groups_only: bool) -> Result<Target, Miss> {
    let text = text.trim();
    let groups = engine.group_list();
    let ambiguous = |found: Vec<&GroupInfo>, what: &str| Miss { message: ambiguity(what, &found), unknown: false };
    if let Some(id) = text.strip_prefix("g:") {
        return match by_id(&groups, id) {
            Some(found) if found.len() == 1 => Ok(Target::Group(found[0].clone())),
            Some(found) if found.len() > 1 => Err(ambiguous(found, text)),
            _ => Err(Miss { message: format!("no group with id {} on this computer", clean_line(id)), unknown: true }),
        };
    }
    if !groups_only && let Some(me) = engine.note_to_self() {
        let word = text.to_lowercase();
        // `me` is never a handle (handles have 3 or more characters); a
        // contact called `self` wins over the note to self.
        let named_self = word == "self" && engine.contact("self").is_none();
        if word == "me" || named_self || handle(text).is_ok_and(|h| h == me) {
            return Ok(Target::Note(me.to_string()));
        }
    }
    if !groups_only
        && let Ok(h) = handle(text)
        && (engine.contact(&h).is_some() || engine.chat(&h).is_some())
    {
        if let Some(g) = groups.iter().find(|g| g.name.to_lowercase() == text.to_lowercase()) {
            eprintln!(
                "tether: note: {} is a contact's handle; the group “{}” is `{}`",
                clean_line(&h),
                clean_line(&g.name),
                g.id
            );
        }
        return Ok(Target::Contact(h));
    }
    let name = sanitize_name(text);
    let exact: Vec<&GroupInfo> = groups.iter().filter(|g| g.name == name).collect();
    let folded: Vec<&GroupInfo> = groups.iter().filter(|g| g.name.to_lowercase() == name.to_lowercase()).collect();
    for found in [exact, folded] {
        match found.len() {
            0 => {}
            1 => return Ok(Target::Group(found[0].clone())),
            _ => return Err(ambiguous(found, &name)),
        }
    }
    match by_id(&groups, text) {
        Some(found) if found.len() == 1 => return Ok(Target::Group(found[0].clone())),
        Some(found) if found.len() > 1 => return Err(ambiguous(found, text)),
        _ => {}
    }
    let message = match handle(text) {
        Ok(h) if !groups_only => format!(
            "unknown contact {h}: add it first (`tether contacts add {h}`); no group is called that either (`tether group list`)"
        ),
        _ => format!("no group called “{}” on this computer (`tether group list` shows yours)", clean_line(text)),
    };
    Err(Miss { message, unknown: true })
}

/// The groups whose id is `text` or starts with it (8 or more hex
/// digits); `None` when `text` cannot be an id.
fn by_id<'a>(groups: &'a [GroupInfo], text: &str) -> Option<Vec<&'a GroupInfo>> {
    let hex = text.trim().to_ascii_lowercase();
    if hex.len() < 8 || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(groups.iter().filter(|g| g.id.starts_with(&hex)).collect())
}

/// The error for a name (or id prefix) that several groups have.
fn ambiguity(what: &str, found: &[&GroupInfo]) -> String {
    let mut s = format!("“{}” names {} groups; name one by its id:", clean_line(what), found.len());
    for g in found {
        let part = if g.am_member { "" } else { ", you left" };
        s.push_str(&format!("\n  {}  {}  ({} members{part})", g.id, clean_line(&g.name), g.members.len()));
    }
    s
}

/// What `text` names, catching up with the server first when nothing
/// here has that name (a group this account was just added to arrives
/// then). The session is connected if it caught up.
pub async fn find(engine: Engine, text: &str, groups_only: bool) -> Result<(Session, Target), String> {
    match target(&engine, text, groups_only) {
        Ok(t) => Ok((Session::new(engine), t)),
        Err(Miss { unknown: true, .. }) => {
            let (s, offline) = caught_up(engine).await;
            match target(&s.engine, text, groups_only) {
                Ok(t) => Ok((s, t)),
                Err(miss) => {
                    s.close().await;
                    Err(match offline {
                        Some(e) => format!("{}\n(could not check with the server: {e})", miss.message),
                        None => miss.message,
                    })
                }
            }
        }
        Err(miss) => Err(miss.message),
    }
}

// ------------------------------------------------------------- waiting

/// How a group entry (a message or a change) ended, when the server answered.
pub enum Outcome {
    /// The server took it.
    Sent,
    /// It waits until the user resolves a warning about this member: (handle, warning).
    Held(String, String),
    /// It left the outbox without being sent: why.
    Refused(String),
}

/// Follows the engine until it is clear what became of outbox entry `id`;
/// a key warning about one of `watched` holds it.
pub fn step(engine: &Engine, e: Option<Event>, id: &str, watched: &[String]) -> Option<Outcome> {
    match e {
        Some(Event::Sent { id: done }) if done == id => Some(Outcome::Sent),
        Some(Event::SafetyWarning { handle, warning }) if watched.contains(&handle) => {
            Some(Outcome::Held(handle, warning))
        }
        Some(Event::Error { message, .. }) if !engine.outbox().contains(id) => Some(Outcome::Refused(message)),
        Some(other) => {
            report(&other);
            None
        }
        // It left the outbox without being sent: it was refused (the
        // reason was reported as it came).
        None if !engine.outbox().contains(id) => Some(Outcome::Refused("the server did not take it".into())),
        None => None,
    }
}

/// The first of `watched` whose keys carry a warning: nothing goes to a
/// group with such a member until the user acts.
pub fn held(engine: &Engine, watched: &[String]) -> Option<(String, String)> {
    watched.iter().find_map(|h| engine.contact(h).and_then(|c| c.warning.clone()).map(|w| (h.clone(), w)))
}

/// Gives the rest of the outbox (messages queued earlier, receipts) a
/// moment to go; what does not stays queued.
pub async fn drain(s: &mut Session) {
    let _ = s
        .wait(DRAIN, |engine, e| {
            if let Some(e) = &e {
                report(e);
            }
            (e.is_none() && !engine.busy()).then_some(())
        })
        .await;
    let left = s.engine.outbox_len();
    if left > 0 {
        eprintln!("tether: {left} earlier message(s) still queued; they go with the next connection.");
    }
}

/// Connects and catches up: group changes are checked against the state
/// the server has. Nothing is queued when the server cannot be reached.
async fn fresh(engine: Engine) -> Result<Session, String> {
    let mut s = Session::new(engine);
    s.connect().await.map_err(|e| format!("{e}\nNothing was changed."))?;
    s.settle(WAIT, report).await.map_err(|e| format!("{e}\nNothing was changed."))?;
    Ok(s)
}

/// Waits until the server took the group entry the engine just queued
/// (the one of `group` that is not in `before`).
async fn until_taken(s: &mut Session, group: &str, before: &[String], watched: &[String]) -> Result<(), String> {
    let Some(id) = s.engine.outbox().group_ids(group).into_iter().find(|i| !before.contains(i)) else {
        return Err("the engine queued nothing".into());
    };
    let outcome = s.wait(WAIT, |engine, e| step(engine, e, &id, watched)).await;
    match outcome {
        Ok(Outcome::Sent) => {
            drain(s).await;
            Ok(())
        }
        Ok(Outcome::Held(h, warning)) => Err(format!(
            "not done yet: {}: {}\nIt waits on this computer: once you have checked with them, `tether contacts trust {h}` \
             fetches their keys again and it goes. Do not do it again.",
            clean_line(&h),
            clean_line(&warning)
        )),
        Ok(Outcome::Refused(why)) => Err(format!("not done: {}", clean_line(&why))),
        Err(e) => Err(format!(
            "{e}\ntether: the change is queued on this computer and goes with the next connection \
             (`tether listen`, `tether chats`); check with `tether group info`. Do not do it again."
        )),
    }
}

// ------------------------------------------------------------- commands

/// Creates the group, waits until the server took it, prints name and id.
async fn create(engine: Engine, name: &str, members: &[String]) -> Result<(), String> {
    let members: Vec<String> = members.iter().map(|m| handle(m)).collect::<Result<_, _>>()?;
    let mut s = fresh(engine).await?;
    let me = s.engine.handle().unwrap_or_default().to_string();
    let others: Vec<String> = members.iter().filter(|m| **m != me).cloned().collect();
    if let Some((h, w)) = held(&s.engine, &others) {
        s.close().await;
        return Err(format!(
            "{}: {}\nCheck with them, then `tether contacts trust {h}`; nothing was created.",
            clean_line(&h),
            clean_line(&w)
        ));
    }
    let chat = s.engine.create_group(name, &members, now()).map_err(fail)?;
    let group = group_of(&chat).unwrap_or_default().to_string();
    let result = until_taken(&mut s, &group, &[], &others).await;
    let info = s.engine.group_info(&chat);
    let same_name: Vec<GroupInfo> = s
        .engine
        .group_list()
        .into_iter()
        .filter(|g| g.id != group && info.as_ref().is_some_and(|i| i.name.to_lowercase() == g.name.to_lowercase()))
        .collect();
    let contact_named =
        info.as_ref().and_then(|i| handle(&i.name).ok()).filter(|h| s.engine.contact(h).is_some() || *h == me);
    s.close().await;
    result?;
    let info = info.ok_or("the group is not on this computer")?;
    let names: Vec<String> = others.iter().map(|h| clean_line(h)).collect();
    println!("Created the group “{}” with {}.", clean_line(&info.name), names.join(", "));
    println!("  name  {}", clean_line(&info.name));
    println!("  id    {}", info.id);
    if !same_name.is_empty() {
        println!("Another group is called that too: name this one by its id.");
    } else if let Some(h) = contact_named {
        println!("{h} is also a contact's handle, which wins in `tether send`: name the group by its id there.");
    } else {
        println!("Send to it with `tether send '{}' TEXT`.", clean_line(&info.name).replace('\'', "'\\''"));
    }
    Ok(())
}

/// A change the user asked for, before the engine's terms.
enum Change {
    Add(Vec<String>),
    Remove(Vec<String>),
    Leave,
    Rename(String),
    Admin(String, bool),
}

/// Checks the change against the group, makes it, waits for the server.
async fn change(engine: Engine, text: &str, change: Change) -> Result<(), String> {
    let s = fresh(engine).await?;
    let (mut s, target) = match target(&s.engine, text, true) {
        Ok(t) => (s, t),
        Err(miss) => {
            s.close().await;
            return Err(miss.message);
        }
    };
    let Target::Group(g) = target else { unreachable!("groups only") };
    if let Err(e) = check(&s.engine, &g, &change) {
        s.close().await;
        return Err(e);
    }
    let name = clean_line(&g.name);
    let (op, done) = match change {
        Change::Add(hs) => {
            let list = hs.iter().map(|h| clean_line(h)).collect::<Vec<_>>().join(", ");
            (GroupOp::Add { handles: hs }, format!("Added {list} to “{name}”."))
        }
        Change::Remove(hs) => {
            let list = hs.iter().map(|h| clean_line(h)).collect::<Vec<_>>().join(", ");
            (GroupOp::Remove { handles: hs }, format!("Removed {list} from “{name}”."))
        }
        Change::Leave => (GroupOp::Leave, format!("You left “{name}”.")),
        Change::Rename(new) => {
            let shown = clean_line(&sanitize_name(&new));
            (GroupOp::Rename { name: new }, format!("Renamed “{name}” to “{shown}”."))
        }
        Change::Admin(h, admin) => {
            let done = if admin {
                format!("{} is now an admin of “{name}”.", clean_line(&h))
            } else {
                format!("{} is no longer an admin of “{name}”.", clean_line(&h))
            };
            (GroupOp::SetAdmin { handle: h, admin }, done)
        }
    };
    // Everyone the change goes to: the members now, and those it adds.
    let mut watched = Target::Group(g.clone()).watched();
    if let GroupOp::Add { handles } = &op {
        watched.extend(handles.iter().cloned());
    }
    if let Some((h, w)) = held(&s.engine, &watched) {
        s.close().await;
        return Err(format!(
            "{}: {}\nCheck with them, then `tether contacts trust {h}`; nothing was changed.",
            clean_line(&h),
            clean_line(&w)
        ));
    }
    let before = s.engine.outbox().group_ids(&g.id);
    if let Err(e) = s.engine.change_group(&g.chat, op, now()) {
        s.close().await;
        return Err(fail(e));
    }
    let result = until_taken(&mut s, &g.id, &before, &watched).await;
    s.close().await;
    result?;
    println!("{done}");
    Ok(())
}

/// The errors the engine would give, in the user's terms, before anything is queued.
fn check(engine: &Engine, g: &GroupInfo, change: &Change) -> Result<(), String> {
    let name = clean_line(&g.name);
    if !g.am_member {
        return Err(format!("you are not in “{name}” any more (you left or were removed)"));
    }
    let member = |h: &str| g.members.iter().find(|m| m.handle == h);
    let admins = || g.members.iter().filter(|m| m.admin).map(|m| clean_line(&m.handle)).collect::<Vec<_>>().join(", ");
    let need_admin = |what: &str| {
        if g.am_admin {
            Ok(())
        } else {
            Err(format!("you are not an admin of “{name}”: only an admin may {what} (its admins: {})", admins()))
        }
    };
    match change {
        Change::Add(hs) => {
            need_admin("add members")?;
            for h in hs {
                if member(h).is_some() {
                    return Err(format!("{} is already in “{name}”", clean_line(h)));
                }
                if engine.contact(h).is_none() {
                    return Err(format!("unknown contact {h}: add it first (`tether contacts add {h}`)"));
                }
            }
        }
        Change::Remove(hs) => {
            need_admin("remove members")?;
            for h in hs {
                if member(h).is_none() {
                    return Err(format!("{} is not in “{name}”", clean_line(h)));
                }
            }
        }
        Change::Leave => {}
        Change::Rename(new) => {
            need_admin("rename the group")?;
            if sanitize_name(new).is_empty() {
                return Err("the new name is empty".into());
            }
            if sanitize_name(new) == g.name {
                return Err(format!("the group is already called “{name}”"));
            }
        }
        Change::Admin(h, admin) => {
            need_admin(if *admin { "make admins" } else { "take admin rights away" })?;
            match member(h) {
                None => return Err(format!("{} is not in “{name}”", clean_line(h))),
                Some(m) if m.admin == *admin => {
                    let is = if *admin { "already" } else { "not" };
                    return Err(format!("{} is {is} an admin of “{name}”", clean_line(h)));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `group info` (one group) or `group list` (all), after catching up.
async fn show(engine: Engine, text: &str, one: bool) -> Result<(), String> {
    let (s, offline) = caught_up(engine).await;
    let result = if one {
        target(&s.engine, text, true).map_err(|m| m.message).map(|t| match t {
            Target::Group(g) => print_info(&g),
            Target::Contact(_) | Target::Note(_) => unreachable!("groups only"),
        })
    } else {
        print_list(&s.engine.group_list());
        Ok(())
    };
    s.close().await;
    result?;
    match offline {
        Some(e) => Err(format!("{e}\n(this is what this computer knows; newer changes may wait on the server)")),
        None => Ok(()),
    }
}

fn print_info(g: &GroupInfo) {
    println!("“{}”", clean_line(&g.name));
    println!("  id       {}", g.id);
    let part = match (g.am_member, g.am_admin) {
        (false, _) => "you are not in it any more",
        (true, true) => "you are an admin",
        (true, false) => "you are a member",
    };
    println!("  members  {} ({part})", g.members.len());
    for m in &g.members {
        let who = if m.me { format!("{} (you)", m.handle) } else { clean_line(&m.handle) };
        let name = if m.me || m.name == m.handle { String::new() } else { clean_line(&m.name) };
        let admin = if m.admin { "admin" } else { "" };
        println!("{}", format!("    {who:<28} {name:<28} {admin}").trim_end());
    }
}

fn print_list(groups: &[GroupInfo]) {
    if groups.is_empty() {
        println!("No groups yet: `tether group create NAME --members bob,carol`.");
    }
    for g in groups {
        let part = match (g.am_member, g.am_admin) {
            (false, _) => "left",
            (true, true) => "admin",
            (true, false) => "member",
        };
        println!("{:<24} {:>4} members  {part:<6}  {}", clean_line(&g.name), g.members.len(), g.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_client::GroupMemberView;

    fn group(id: &str, name: &str) -> GroupInfo {
        let me = GroupMemberView { handle: "alice".into(), name: "You".into(), admin: true, me: true };
        GroupInfo {
            id: id.repeat(32 / id.len()),
            chat: format!("g:{}", id.repeat(32 / id.len())),
            name: name.into(),
            members: vec![me],
            am_member: true,
            am_admin: true,
        }
    }

    #[test]
    fn ids_match_whole_or_by_eight_or_more_digits() {
        let gs = [group("ab", "Trip"), group("cd", "Trip")];
        assert_eq!(by_id(&gs, "abababab").unwrap().len(), 1);
        assert_eq!(by_id(&gs, &"cd".repeat(16)).unwrap()[0].id, "cd".repeat(16));
        assert!(by_id(&gs, "abab").is_none(), "too short to be an id");
        assert!(by_id(&gs, "Trip").is_none());
        assert!(by_id(&gs, "ef01ef01").unwrap().is_empty());
    }

    #[test]
    fn an_ambiguous_name_lists_every_candidate_id() {
        let gs = [group("ab", "Trip"), group("cd", "Trip")];
        let text = ambiguity("Trip", &gs.iter().collect::<Vec<_>>());
        assert!(text.starts_with("“Trip” names 2 groups"), "{text}");
        assert!(text.contains(&"ab".repeat(16)) && text.contains(&"cd".repeat(16)), "{text}");
    }
}
