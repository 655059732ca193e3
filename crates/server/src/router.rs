//! Which connection serves which device (or waiting guest), and how to
//! reach it: a small mailbox per connection holding pushes (bounded: when
//! full, the connection is marked lagged and catches up from the store),
//! finished writes of its own requests, and a close request, with one
//! wake-up for all of them.
//!
//! The mailbox allocates nothing until something is put in it, so an idle
//! connection costs one small `Arc`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tether_proto::ErrorCode;
use tether_proto::frames::Event;
use tokio::sync::Notify;

use crate::store::StoredEnvelope;

/// Pushes queued per connection before it falls back to reading the store.
pub const PUSH_QUEUE: usize = 256;

/// Something for a connection to send. Small (16 bytes): rare, large
/// variants are boxed.
#[derive(Debug)]
pub enum Outbound {
    Envelope(Arc<StoredEnvelope>),
    Event(Box<Event>),
    /// A guest was linked: it is now this device.
    Promote(Box<Promotion>),
}

/// A guest's promotion to a device (see [`Outbound::Promote`]).
#[derive(Debug)]
pub struct Promotion {
    pub handle: String,
    pub device_id: u32,
    pub event: Event,
}

/// What a durable write of a connection's request (a `Send` or an `Ack`)
/// answers once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Sent` with the time the send was accepted.
    Sent { server_time_ms: u64 },
    /// `Done` for an `Ack`.
    Acked,
}

/// A finished write: the request it answers and whether it is durable.
#[derive(Debug)]
pub struct Done {
    pub request_id: u64,
    pub outcome: Outcome,
    pub written: Written,
    /// With `EpochTaken`: the group's epoch the writer holds (0 if unknown).
    pub group_epoch: u64,
}

/// What became of a request's write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed.
    Ok,
    /// The transaction failed: nothing of it was stored.
    Failed,
    /// The database was unreachable: nothing of it was stored.
    Unavailable,
    /// Refused before the transaction: a recipient's queue would exceed its
    /// quota. Nothing of the send was stored.
    QueueFull,
    /// A blob the send names was gone or unfinished at commit time.
    /// Nothing of the send was stored.
    BlobGone,
    /// The send's group epoch is not above the group's stored one (another
    /// change came first). Nothing of the send was stored.
    EpochTaken,
}

impl Written {
    /// What a failed write became: [`Written::Unavailable`] when the
    /// database could not be reached, else [`Written::Failed`].
    pub fn failed(e: &crate::store::StoreError) -> Self {
        if e.is_unavailable() { Written::Unavailable } else { Written::Failed }
    }
}

/// What [`ConnHandle::next`] found in the mailbox, most urgent first.
#[derive(Debug)]
pub enum Next {
    /// The connection must close, and why.
    Close(ErrorCode),
    /// A write of this connection's finished: answer it.
    Done(Done),
    /// Pushes were dropped since the last look: catch up from the store
    /// before sending any later push.
    Lagged,
    Push(Outbound),
    Empty,
}

#[derive(Debug, Default)]
struct Mailbox {
    close: Option<ErrorCode>,
    done: VecDeque<Done>,
    lagged: bool,
    pushes: VecDeque<Outbound>,
}

#[derive(Debug, Default)]
struct Inbox {
    mail: Mutex<Mailbox>,
    wake: Notify,
}

/// A way to reach one connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Distinguishes a reconnect from the connection it replaces.
    pub id: u64,
    inbox: Arc<Inbox>,
}

impl ConnHandle {
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self { id: NEXT.fetch_add(1, Ordering::Relaxed), inbox: Arc::default() }
    }

    fn mail(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.inbox.mail.lock().expect("mailbox lock")
    }

    /// Pushes, or marks the connection lagged if its queue is full.
    pub fn push(&self, out: Outbound) {
        self.try_push(out);
    }

    /// [`ConnHandle::push`], saying whether the push was queued.
    pub fn try_push(&self, out: Outbound) -> bool {
        let queued = {
            let mut m = self.mail();
            if m.pushes.len() >= PUSH_QUEUE {
                m.lagged = true;
                false
            } else {
                m.pushes.push_back(out);
                true
            }
        };
        self.inbox.wake.notify_one();
        queued
    }

    /// Marks the connection lagged: it drains its queue from the store
    /// before any later push (copies another node stored for it).
    pub fn lag(&self) {
        self.mail().lagged = true;
        self.inbox.wake.notify_one();
    }

    /// Hands a finished write back to the connection that asked for it.
    pub fn done(&self, done: Done) {
        self.mail().done.push_back(done);
        self.inbox.wake.notify_one();
    }

    /// Asks the connection to close with `code`.
    pub fn close(&self, code: ErrorCode) {
        self.mail().close = Some(code);
        self.inbox.wake.notify_one();
    }

    /// Waits until something may be in the mailbox (possibly spuriously).
    pub async fn woken(&self) {
        self.inbox.wake.notified().await;
    }

    /// Wakes the connection again (it left work in the mailbox).
    pub fn rewake(&self) {
        self.inbox.wake.notify_one();
    }

    /// Takes the most urgent item.
    pub fn next(&self) -> Next {
        let mut m = self.mail();
        if let Some(code) = m.close.take() {
            return Next::Close(code);
        }
        if let Some(d) = m.done.pop_front() {
            return Next::Done(d);
        }
        if std::mem::take(&mut m.lagged) {
            return Next::Lagged;
        }
        match m.pushes.pop_front() {
            Some(out) => {
                if m.pushes.is_empty() && m.pushes.capacity() > 16 {
                    // A burst is over: give its memory back.
                    m.pushes = VecDeque::new();
                }
                Next::Push(out)
            }
            None => Next::Empty,
        }
    }

    /// Takes a finished write only (while closing, pushes no longer matter).
    pub fn next_done(&self) -> Option<Done> {
        self.mail().done.pop_front()
    }
}

#[derive(Debug, Default)]
pub struct Router {
    /// handle -> (device id, connection) (looked up by `&str`, no
    /// allocation). An account has a few devices: a short list costs an
    /// idle device less than a map of its own would.
    devices: Mutex<HashMap<String, Vec<(u32, ConnHandle)>>>,
    guests: Mutex<HashMap<[u8; 32], ConnHandle>>,
}

impl Router {
    /// Registers a device's connection; a previous one for the same device
    /// is told to close (the newest connection wins).
    pub fn add_device(&self, handle: &str, device_id: u32, conn: ConnHandle) {
        let old = {
            let mut map = self.devices.lock().expect("router lock");
            let account = map.entry(handle.to_string()).or_default();
            match account.iter_mut().find(|(id, _)| *id == device_id) {
                Some((_, c)) => Some(std::mem::replace(c, conn)),
                None => {
                    account.push((device_id, conn));
                    None
                }
            }
        };
        if let Some(old) = old {
            old.close(ErrorCode::GoingAway);
        }
    }

    pub fn remove_device(&self, handle: &str, device_id: u32, conn_id: u64) {
        let mut map = self.devices.lock().expect("router lock");
        if let Some(account) = map.get_mut(handle) {
            account.retain(|(id, c)| *id != device_id || c.id != conn_id);
            if account.is_empty() {
                map.remove(handle);
            }
        }
    }

    /// Takes a device's connection out of the router (it is told to close
    /// by the caller, with its own reason; a new connection for the same
    /// device id then replaces nothing).
    pub fn take_device(&self, handle: &str, device_id: u32) -> Option<ConnHandle> {
        let mut map = self.devices.lock().expect("router lock");
        let account = map.get_mut(handle)?;
        let at = account.iter().position(|(id, _)| *id == device_id);
        let conn = at.map(|at| account.swap_remove(at).1);
        if account.is_empty() {
            map.remove(handle);
        }
        conn
    }

    pub fn device(&self, handle: &str, device_id: u32) -> Option<ConnHandle> {
        let map = self.devices.lock().expect("router lock");
        map.get(handle)?.iter().find(|(id, _)| *id == device_id).map(|(_, c)| c.clone())
    }

    /// Marks every device connection lagged (after NATS came back: the
    /// wake-ups other nodes sent meanwhile may be lost).
    pub fn lag_all(&self) {
        for account in self.devices.lock().expect("router lock").values() {
            account.iter().for_each(|(_, c)| c.lag());
        }
    }

    pub fn add_guest(&self, key: [u8; 32], conn: ConnHandle) {
        self.guests.lock().expect("router lock").insert(key, conn);
    }

    pub fn remove_guest(&self, key: &[u8; 32], conn_id: u64) {
        let mut map = self.guests.lock().expect("router lock");
        if map.get(key).is_some_and(|c| c.id == conn_id) {
            map.remove(key);
        }
    }

    pub fn guest(&self, key: &[u8; 32]) -> Option<ConnHandle> {
        self.guests.lock().expect("router lock").get(key).cloned()
    }
}
