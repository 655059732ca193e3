//! Which connection serves which device (or waiting guest), and how to
//! reach it: a bounded channel for pushes, plus a wake-up for when that
//! channel is full (the connection then catches up from the store) or the
//! connection must close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tether_proto::ErrorCode;
use tether_proto::frames::Event;
use tokio::sync::{Notify, mpsc};

use crate::store::StoredEnvelope;

/// Pushes queued per connection before it falls back to reading the store.
pub const PUSH_QUEUE: usize = 256;

/// Something for a connection to send.
#[derive(Debug)]
pub enum Outbound {
    Envelope(Arc<StoredEnvelope>),
    Event(Event),
    /// A guest was linked: it is now this device.
    Promote {
        handle: String,
        device_id: u32,
        event: Event,
    },
}

/// A way to reach one connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Distinguishes a reconnect from the connection it replaces.
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Set when a push was dropped because `tx` was full.
    pub lagged: Arc<AtomicBool>,
    /// Set when the connection must close, and why.
    pub close: Arc<Mutex<Option<ErrorCode>>>,
    pub wake: Arc<Notify>,
}

impl ConnHandle {
    pub fn new() -> (Self, mpsc::Receiver<Outbound>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(PUSH_QUEUE);
        let h = Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            tx,
            lagged: Arc::default(),
            close: Arc::default(),
            wake: Arc::default(),
        };
        (h, rx)
    }

    /// Pushes, or marks the connection lagged if its queue is full.
    pub fn push(&self, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(out) {
            self.lagged.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    /// Asks the connection to close with `code`.
    pub fn close(&self, code: ErrorCode) {
        *self.close.lock().expect("close lock") = Some(code);
        self.wake.notify_one();
    }
}

/// Device key: (handle, device id).
type DeviceKey = (String, u32);

#[derive(Debug, Default)]
pub struct Router {
    devices: Mutex<HashMap<DeviceKey, ConnHandle>>,
    guests: Mutex<HashMap<[u8; 32], ConnHandle>>,
}

impl Router {
    /// Registers a device's connection; a previous one for the same device
    /// is told to close (the newest connection wins).
    pub fn add_device(&self, handle: &str, device_id: u32, conn: ConnHandle) {
        let old = self.devices.lock().expect("router lock").insert((handle.to_string(), device_id), conn);
        if let Some(old) = old {
            old.close(ErrorCode::GoingAway);
        }
    }

    pub fn remove_device(&self, handle: &str, device_id: u32, conn_id: u64) {
        let mut map = self.devices.lock().expect("router lock");
        let key = (handle.to_string(), device_id);
        if map.get(&key).is_some_and(|c| c.id == conn_id) {
            map.remove(&key);
        }
    }

    pub fn device(&self, handle: &str, device_id: u32) -> Option<ConnHandle> {
        self.devices.lock().expect("router lock").get(&(handle.to_string(), device_id)).cloned()
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
