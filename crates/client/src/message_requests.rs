//! Message requests: who may reach the chat list. A message from an account
//! that is not a contact (no chat with it, never added or accepted) waits
//! here, one entry per sender however much it sends, and raises no
//! notification, unread count or receipt until the user accepts it. The
//! user can also delete a request, block a sender (everything from it is
//! dropped from then on, silently) or report it as spam (block and delete;
//! the report is kept here: the server has no report endpoint).
//!
//! Each sender this part knows is in one typed state ([`Standing`]):
//! `Requesting` (messages waiting) → `Accepted` | `Blocked`; deleting a
//! request or unblocking forgets the sender (the next message is a new
//! request). A sender this part does not know is a contact if a chat with
//! it exists (the user started it, or it came with the primary's history);
//! the engine decides that, this part only keeps the states.

use crate::effects::Effects;
use crate::error::Error;
use crate::model::ChatMessage;
use crate::store::KvStore;
use serde::{Deserialize, Serialize};
use crate::sorted::Map;

const NS_STANDING: &str = "standing";

/// Messages kept per request (the rest are counted, not kept): a stranger
/// cannot make this device store more than this much of its text.
pub const KEPT_PER_REQUEST: usize = 10;
/// Open requests at most; beyond it, messages from further strangers are
/// dropped (counted in `dropped`) until the user clears some.
pub const MAX_REQUESTS: usize = 200;

/// A sender's standing with this account.
// Read through `tagged` (see its `Deserialize`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Standing {
    /// Not a contact; its messages wait for the user.
    Requesting(Request),
    /// Accepted by the user (here or on another own device): a contact.
    Accepted { at_ms: u64 },
    /// Everything from it is dropped. `reported`: the user reported it as
    /// spam (kept on this device only: there is no server report endpoint).
    Blocked { at_ms: u64, reported: bool },
}

/// The `state`-tagged records the derived form reads (a `Requesting`
/// record holds its `Request`'s fields), through one flat struct (see
/// `tagged`).
impl<'de> Deserialize<'de> for Standing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::need;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        enum State {
            Requesting,
            Accepted,
            Blocked,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Flat {
            state: State,
            handle: Option<String>,
            first_ms: Option<u64>,
            last_ms: Option<u64>,
            count: Option<u32>,
            messages: Option<Vec<ChatMessage>>,
            at_ms: Option<u64>,
            reported: Option<bool>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.state {
            State::Requesting => Standing::Requesting(Request {
                handle: need(f.handle, "handle")?,
                first_ms: need(f.first_ms, "firstMs")?,
                last_ms: need(f.last_ms, "lastMs")?,
                count: need(f.count, "count")?,
                messages: need(f.messages, "messages")?,
            }),
            State::Accepted => Standing::Accepted { at_ms: need(f.at_ms, "atMs")? },
            State::Blocked => {
                Standing::Blocked { at_ms: need(f.at_ms, "atMs")?, reported: need(f.reported, "reported")? }
            }
        })
    }
}

/// An open message request: who, since when, how many, the first messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub handle: String,
    pub first_ms: u64,
    pub last_ms: u64,
    /// Every message it sent while requesting, kept or not.
    pub count: u32,
    /// The first [`KEPT_PER_REQUEST`] messages, in arrival order.
    pub messages: Vec<ChatMessage>,
}

/// Where an incoming message from someone else goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To its chat, as from a contact.
    Chat,
    /// Into a request (no notification, no unread count, no receipt).
    Request,
    /// Dropped: the sender is blocked, or too many requests are open.
    Drop,
}

#[derive(Default)]
pub struct MessageRequests {
    /// By handle.
    senders: Map<String, Standing>,
    /// Messages dropped since load because `MAX_REQUESTS` were open.
    dropped: u64,
}

impl MessageRequests {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let rows = store.scan(NS_STANDING).map_err(Error::Store)?;
        let mut senders = Map::new();
        for (handle, bytes) in rows {
            senders.insert(handle, crate::store::decode::<Standing>("sender standing", &bytes)?);
        }
        Ok(Self { senders, dropped: 0 })
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The sender's standing, if this part knows it.
    pub fn standing(&self, handle: &str) -> Option<&Standing> {
        self.senders.get(handle)
    }

    pub fn is_blocked(&self, handle: &str) -> bool {
        matches!(self.senders.get(handle), Some(Standing::Blocked { .. }))
    }

    pub fn is_accepted(&self, handle: &str) -> bool {
        matches!(self.senders.get(handle), Some(Standing::Accepted { .. }))
    }

    /// Open requests, newest activity first.
    pub fn open(&self) -> Vec<&Request> {
        let mut v: Vec<&Request> = self
            .senders
            .values()
            .filter_map(|s| match s {
                Standing::Requesting(r) => Some(r),
                _ => None,
            })
            .collect();
        v.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.handle.cmp(&b.handle)));
        v
    }

    /// Blocked handles with whether they were reported, by handle.
    pub fn blocked(&self) -> Vec<(&str, u64, bool)> {
        self.senders
            .iter()
            .filter_map(|(h, s)| match s {
                Standing::Blocked { at_ms, reported } => Some((h.as_str(), *at_ms, *reported)),
                _ => None,
            })
            .collect()
    }

    /// The answers given so far, as own-device syncs carry them: accepted
    /// and blocked (or reported) senders. Open requests are not answers.
    pub fn answers(&self) -> Vec<(String, u32)> {
        use crate::content::{STANDING_ACCEPT, STANDING_BLOCK, STANDING_REPORT};
        self.senders
            .iter()
            .filter_map(|(h, s)| match s {
                Standing::Accepted { .. } => Some((h.clone(), STANDING_ACCEPT)),
                Standing::Blocked { reported: false, .. } => Some((h.clone(), STANDING_BLOCK)),
                Standing::Blocked { reported: true, .. } => Some((h.clone(), STANDING_REPORT)),
                Standing::Requesting(_) => None,
            })
            .collect()
    }

    /// Messages dropped because too many requests were open.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Where a message from `handle` goes; `known` says whether the engine
    /// already has a chat with it.
    pub(crate) fn route(&self, handle: &str, known: bool) -> Route {
        match self.senders.get(handle) {
            Some(Standing::Blocked { .. }) => Route::Drop,
            Some(Standing::Accepted { .. }) => Route::Chat,
            Some(Standing::Requesting(_)) => Route::Request,
            None if known => Route::Chat,
            None if self.open_count() >= MAX_REQUESTS => Route::Drop,
            None => Route::Request,
        }
    }

    fn open_count(&self) -> usize {
        self.senders.values().filter(|s| matches!(s, Standing::Requesting(_))).count()
    }

    /// Files a message into its sender's request (opening one if needed);
    /// returns the request as it now is, or None if the message was
    /// dropped or already there.
    pub(crate) fn file(&mut self, m: ChatMessage, fx: &mut Effects) -> Option<Request> {
        if self.route(&m.sender_handle, false) != Route::Request {
            self.dropped += 1;
            return None;
        }
        let handle = m.sender_handle.clone();
        let entry = self.senders.entry(handle.clone()).or_insert_with(|| {
            Standing::Requesting(Request {
                handle: handle.clone(),
                first_ms: m.time_ms,
                last_ms: m.time_ms,
                count: 0,
                messages: vec![],
            })
        });
        let Standing::Requesting(r) = entry else { return None };
        if r.messages.iter().any(|x| x.id == m.id) {
            return None;
        }
        r.count = r.count.saturating_add(1);
        r.first_ms = r.first_ms.min(m.time_ms);
        r.last_ms = r.last_ms.max(m.time_ms);
        if r.messages.len() < KEPT_PER_REQUEST {
            r.messages.push(m);
        }
        let r = r.clone();
        fx.put(NS_STANDING, &handle, &Standing::Requesting(r.clone()));
        Some(r)
    }

    /// The user accepted `handle`: returns the messages its request held
    /// (for the chat), if it had one.
    pub(crate) fn accept(&mut self, handle: &str, now: u64, fx: &mut Effects) -> Vec<ChatMessage> {
        let before = self.set(handle, Standing::Accepted { at_ms: now }, fx);
        match before {
            Some(Standing::Requesting(r)) => r.messages,
            _ => vec![],
        }
    }

    /// Blocks `handle` (dropping its request, if any).
    pub(crate) fn block(&mut self, handle: &str, reported: bool, now: u64, fx: &mut Effects) {
        self.set(handle, Standing::Blocked { at_ms: now, reported }, fx);
    }

    /// Forgets `handle`: deletes its request, or unblocks it. Returns
    /// whether there was anything to forget.
    pub(crate) fn forget(&mut self, handle: &str, fx: &mut Effects) -> bool {
        if self.senders.remove(handle).is_some() {
            fx.delete(NS_STANDING, handle);
            true
        } else {
            false
        }
    }

    fn set(&mut self, handle: &str, standing: Standing, fx: &mut Effects) -> Option<Standing> {
        fx.put(NS_STANDING, handle, &standing);
        self.senders.insert(handle.to_string(), standing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageBody, Status};
    use crate::store::MemoryStore;

    fn msg(id: u32, from: &str) -> ChatMessage {
        ChatMessage {
            id: format!("{id:032x}"),
            chat: from.into(),
            from_me: false,
            sender_handle: from.into(),
            sender_device: 1,
            time_ms: 1000 + id as u64,
            body: MessageBody::Text { body: format!("spam {id}") },
            status: Status::Delivered,
            seq: 0,
            receipts: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn one_request_per_sender_with_a_count_and_a_bounded_copy() {
        let mut r = MessageRequests::default();
        let mut fx = Effects::default();
        for i in 0..50 {
            r.file(msg(i, "mallory"), &mut fx);
        }
        r.file(msg(0, "mallory"), &mut fx); // a repeat
        let open = r.open();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].count, 50);
        assert_eq!(open[0].messages.len(), KEPT_PER_REQUEST);
        assert_eq!(open[0].first_ms, 1000);
        let mut store = MemoryStore::default();
        store.apply(&fx.ops).unwrap();
        let again = MessageRequests::load(&store).unwrap();
        assert_eq!(again.open()[0].count, 50, "requests survive a restart");
    }

    #[test]
    fn block_accept_forget_move_between_states() {
        let mut r = MessageRequests::default();
        let mut fx = Effects::default();
        r.file(msg(1, "eve"), &mut fx);
        r.block("eve", true, 5, &mut fx);
        assert_eq!(r.route("eve", true), Route::Drop, "blocked beats a chat");
        assert!(r.file(msg(2, "eve"), &mut fx).is_none());
        assert!(r.open().is_empty());
        assert_eq!(r.blocked(), vec![("eve", 5, true)]);
        assert!(r.forget("eve", &mut fx));
        assert_eq!(r.route("eve", false), Route::Request);
        r.file(msg(3, "eve"), &mut fx);
        assert_eq!(r.accept("eve", 9, &mut fx).len(), 1);
        assert_eq!(r.route("eve", false), Route::Chat);
        assert_eq!(r.route("bob", true), Route::Chat);
    }
}
