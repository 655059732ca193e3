//! What the chat screen shows beside a chat's messages: which messages the
//! message menu may offer to react to, edit or delete for everyone right
//! now. The rules are the engine's (`tether_client::{reactable, editable,
//! deletable_for_everyone}`); this only lists the ids they allow.

use serde::Serialize;
use tether_client::{Engine, deletable_for_everyone, editable, reactable};
use tsify::Tsify;

/// The ids of a chat's messages each action may be offered for, at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct MessageActions {
    /// Messages that take reactions (and replies): not lines, not deleted,
    /// not unreadable.
    pub reactable: Vec<String>,
    /// Own texts and captions still within the edit window.
    pub editable: Vec<String>,
    /// Own messages still within the delete-for-everyone window.
    pub deletable: Vec<String>,
}

/// What may be done with the messages of `chat` at `now`.
pub fn message_actions(e: &Engine, chat: &str, now: u64) -> MessageActions {
    let me = e.handle().unwrap_or_default();
    let mut actions = MessageActions::default();
    for m in e.messages(chat) {
        if reactable(m) {
            actions.reactable.push(m.id.clone());
        }
        if editable(m, me, now) {
            actions.editable.push(m.id.clone());
        }
        if deletable_for_everyone(m, me, now) {
            actions.deletable.push(m.id.clone());
        }
    }
    actions
}

/// A page of a chat's messages: the latest ones (see `Core::message_page`),
/// and how many the chat has in all.
#[derive(serde::Serialize, tsify::Tsify)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<tether_client::ChatMessage>,
    pub total: usize,
}
