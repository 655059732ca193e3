//! Message requests between the parts: where a stranger's message goes,
//! and the user's answers to it (accept, delete, block, unblock, report
//! spam), each applied here and sent to this account's other devices as a
//! `StandingSync`, which they apply the same way.

use super::Engine;
use crate::content::{
    Body, RECEIPT_DELIVERED, STANDING_ACCEPT, STANDING_BLOCK, STANDING_FORGET, STANDING_REPORT, StandingSync,
};
use crate::error::Error;
use crate::event::Event;
use crate::message_requests::{Route, Standing};
use crate::model::ChatMessage;
use crate::view::{BlockedSummary, RequestSummary};
use tether_proto::normalize_handle;

/// Written (in the `self` namespace) once this store keeps standings.
const STANDINGS_MARKER: &str = "standings_v1";

impl Engine {
    // ------------------------------------------------------------ upgrade

    /// A store written before message requests existed: every contact it
    /// has was someone whose messages reached the chat list, so each is
    /// accepted once (else a contact added but never written to would
    /// turn into a request). Fresh and wiped stores are marked current.
    pub(super) fn upgrade_standings(&mut self) -> Result<(), Error> {
        let rows = self.store.scan(super::NS_SELF).map_err(Error::Store)?;
        if rows.iter().any(|(k, _)| k == STANDINGS_MARKER) {
            return Ok(());
        }
        if self.handle().is_some() {
            let contacts: Vec<String> = self.directory.contacts().map(|c| c.handle.clone()).collect();
            for h in contacts {
                if self.msg_requests.standing(&h).is_none() {
                    self.msg_requests.accept(&h, 0, &mut self.fx);
                }
            }
        }
        self.standings_current();
        let ops = std::mem::take(&mut self.fx.ops);
        self.store.apply(&ops).map_err(Error::Store)?;
        Ok(())
    }

    /// Marks the store as keeping standings (no upgrade needed).
    pub(super) fn standings_current(&mut self) {
        self.fx.put(super::NS_SELF, STANDINGS_MARKER, &true);
    }

    // ------------------------------------------------------------ queries

    /// Open message requests, newest first, named by handle only.
    pub fn message_requests(&self) -> Vec<RequestSummary> {
        self.msg_requests
            .open()
            .into_iter()
            .map(|r| RequestSummary {
                handle: r.handle.clone(),
                count: r.count,
                first_ms: r.first_ms,
                last_ms: r.last_ms,
                first_preview: r.messages.first().map(ChatMessage::preview).unwrap_or_default(),
            })
            .collect()
    }

    /// The messages a request keeps (the first few), oldest first.
    pub fn request_messages(&self, handle: &str) -> Vec<ChatMessage> {
        match self.msg_requests.standing(handle) {
            Some(Standing::Requesting(r)) => r.messages.clone(),
            _ => vec![],
        }
    }

    /// Blocked senders, by handle.
    pub fn blocked_list(&self) -> Vec<BlockedSummary> {
        self.msg_requests
            .blocked()
            .into_iter()
            .map(|(h, at, reported)| BlockedSummary { handle: h.to_string(), blocked_ms: at, reported })
            .collect()
    }

    /// A sender's standing (None: a contact by its chat, or unknown).
    pub fn standing(&self, handle: &str) -> Option<&Standing> {
        self.msg_requests.standing(handle)
    }

    // ----------------------------------------------------------- commands

    /// Accepts a sender: its request's messages move to a chat (unread,
    /// without notifications), they get delivery receipts, and later messages are
    /// a contact's.
    pub fn accept_request(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let handle = self.standing_command(handle)?;
        let ids = self.apply_standing(&handle, STANDING_ACCEPT, now);
        if !ids.is_empty() {
            self.receipt(&handle, RECEIPT_DELIVERED, ids, now);
        }
        self.sync_standing(&handle, STANDING_ACCEPT, now);
        Ok(())
    }

    /// Deletes a request (the sender may write again: a new request).
    pub fn delete_request(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let handle = self.standing_command(handle)?;
        if !matches!(self.msg_requests.standing(&handle), Some(Standing::Requesting(_))) {
            return Err(Error::Invalid(format!("no message request from {handle}")));
        }
        self.apply_standing(&handle, STANDING_FORGET, now);
        self.sync_standing(&handle, STANDING_FORGET, now);
        Ok(())
    }

    /// Blocks a sender: its request goes, and everything it sends from now
    /// on is dropped without a trace (it is not told).
    pub fn block(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let handle = self.standing_command(handle)?;
        self.apply_standing(&handle, STANDING_BLOCK, now);
        self.sync_standing(&handle, STANDING_BLOCK, now);
        Ok(())
    }

    /// Blocks a sender and records it as reported spam. There is no server
    /// report endpoint: the record stays on this account's devices.
    pub fn report_spam(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let handle = self.standing_command(handle)?;
        self.apply_standing(&handle, STANDING_REPORT, now);
        self.sync_standing(&handle, STANDING_REPORT, now);
        Ok(())
    }

    /// Unblocks a sender (its next message is a new request).
    pub fn unblock(&mut self, handle: &str, now: u64) -> Result<(), Error> {
        let handle = self.standing_command(handle)?;
        if !self.msg_requests.is_blocked(&handle) {
            return Err(Error::Invalid(format!("{handle} is not blocked")));
        }
        self.apply_standing(&handle, STANDING_FORGET, now);
        self.sync_standing(&handle, STANDING_FORGET, now);
        Ok(())
    }

    // ----------------------------------------------------------- internals

    fn standing_command(&self, handle: &str) -> Result<String, Error> {
        let me = self.handle().ok_or(Error::NotRegistered)?;
        let handle = normalize_handle(handle)?;
        if handle == me {
            return Err(Error::Invalid("that is this account".into()));
        }
        Ok(handle)
    }

    fn sync_standing(&mut self, handle: &str, action: u32, now: u64) {
        self.to_own_devices(handle, Body::Standing(StandingSync { handle: handle.to_string(), action }), now);
        self.finish();
    }

    /// Applies an answer to a sender (from this device or another own
    /// device); returns the ids of the messages an accept moved to the chat.
    pub(super) fn apply_standing(&mut self, handle: &str, action: u32, now: u64) -> Vec<Vec<u8>> {
        match action {
            STANDING_ACCEPT => {
                let held = self.msg_requests.accept(handle, now, &mut self.fx);
                self.directory.ensure(handle, &mut self.fx);
                let mut ids = Vec::new();
                for m in held {
                    ids.push(super::send::hex_to_bytes(&m.id));
                    // Unread in the chat, but not notified: the user has
                    // seen the request.
                    self.chats.add_unnotified(m, &mut self.fx);
                }
                ids
            }
            STANDING_BLOCK | STANDING_REPORT => {
                self.msg_requests.block(handle, action == STANDING_REPORT, now, &mut self.fx);
                vec![]
            }
            STANDING_FORGET => {
                if !self.msg_requests.is_accepted(handle) {
                    self.msg_requests.forget(handle, &mut self.fx);
                }
                vec![]
            }
            _ => {
                self.fx.error("another device of this account sent a request answer this version does not know");
                vec![]
            }
        }
    }

    /// Where a message from someone else goes, filing it if it is a
    /// request. Returns true if it goes to its chat.
    pub(super) fn screen(&mut self, m: &ChatMessage) -> bool {
        let known = self.chats.get(&m.chat).is_some();
        match self.msg_requests.route(&m.sender_handle, known) {
            Route::Chat => true,
            Route::Drop => false,
            Route::Request => {
                if let Some(r) = self.msg_requests.file(m.clone(), &mut self.fx) {
                    self.fx.emit(Event::Request { handle: r.handle, message: m.clone(), count: r.count });
                }
                false
            }
        }
    }

    /// A sender whose messages are dropped unread (blocked).
    pub(super) fn is_blocked(&self, handle: &str) -> bool {
        self.msg_requests.is_blocked(handle)
    }

    /// The user adds someone as a contact: that accepts them (and tells
    /// this account's other devices), unless already accepted.
    pub(super) fn accept_by_adding(&mut self, handle: &str, now: u64) {
        if !self.msg_requests.is_accepted(handle) && Some(handle) != self.handle() {
            self.apply_standing(handle, STANDING_ACCEPT, now);
            self.to_own_devices(
                handle,
                Body::Standing(StandingSync { handle: handle.to_string(), action: STANDING_ACCEPT }),
                now,
            );
        }
    }

    /// The user writes to a requester: that accepts it.
    pub(super) fn accept_by_writing(&mut self, handle: &str, now: u64) {
        if matches!(self.msg_requests.standing(handle), Some(Standing::Requesting(_))) {
            self.apply_standing(handle, STANDING_ACCEPT, now);
            self.to_own_devices(
                handle,
                Body::Standing(StandingSync { handle: handle.to_string(), action: STANDING_ACCEPT }),
                now,
            );
        }
    }
}
